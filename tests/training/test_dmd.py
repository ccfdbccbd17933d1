"""DMD: the rollout is the runtime's, replayed back-propagation equals naive back-propagation for every exit step,
memory stays flat."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from relic.errors import UserError
from relic.training.bench import bench_model_config, grads_of, make_problem, run_once
from relic.training.dmd import (DMDConfig, dmd_sigmas, draw_exit_step, naive_backward, replay_backward, rollout,
                                score_difference)


def _cfg():
    # 32x48 frames -> 4x6 latents -> 2x3 tokens; window 1 so that memory latents get pooled by the schedule
    return bench_model_config(dim=32, layers=2, heads=2, window=1, height=32, width=48)


def test_rollout_is_the_runtime_student():
    """Same weights, noise and conditioning: our rollout's blocks equal relic.runtime.student.Student's."""
    from relic.runtime.student import Student

    mcfg = _cfg()
    L = 3
    student, first, (text, _), actions, R, P = make_problem(mcfg, L)
    with torch.no_grad():
        ro, _ = rollout(student, mcfg, first, (text, None), actions, R, P, L, torch.Generator().manual_seed(5))
        rt = Student(student, mcfg)
        cache = rt.new_cache(mcfg.latent_hw)
        tctx = student.prepare_text(text, None)
        rt.write_first(cache, first, tctx)
        Rn, Pn = R[0].double().numpy(), P[0].double().numpy()
        for rec in ro.blocks:
            s = rec.start
            noise, renoise = rec.noises()
            res = rt.generate_block(cache, noise, tctx, actions[:, 4 * s - 3:4 * s + 1], Rn[s:s + 1], Pn[s:s + 1],
                                    renoise=renoise)
            torch.testing.assert_close(res.x0, ro.latents[:, :, s:s + 1], rtol=1e-5, atol=1e-5)
    assert any(p[1] > 1 for p in cache.last_plan), "the test should exercise compressed memory"


@pytest.mark.parametrize("exit_step, grad_steps", [(None, 1), (None, 2), (0, 1), (1, 1), (2, 1), (3, 1), (2, 2)])
def test_replay_gradients_equal_naive_full_graph(exit_step, grad_steps):
    """For every exit step (None = the last, 3), the replay's gradients equal one backward through the full graph."""
    mcfg = _cfg()
    L = 5
    student, first, text, actions, R, P = make_problem(mcfg, L)
    g_sig = torch.Generator().manual_seed(9)
    # naive: one graph through every block, one backward
    ro_n, outs = rollout(student, mcfg, first, text, actions, R, P, L, torch.Generator().manual_seed(3),
                         grad_steps=grad_steps, exit_step=exit_step)
    grad = torch.randn(ro_n.latents.shape, generator=g_sig)
    naive_backward(outs, ro_n, grad)
    g_naive = grads_of(student).clone()
    student.zero_grad(set_to_none=True)
    # replay: rollout without autograd, then block by block
    with torch.no_grad():
        ro_r, _ = rollout(student, mcfg, first, text, actions, R, P, L, torch.Generator().manual_seed(3),
                          exit_step=exit_step)
    assert not any(x.requires_grad for x in ro_r.latents.flatten()[:1])
    assert all(rec.exit == (3 if exit_step is None else exit_step) for rec in ro_r.blocks)
    torch.testing.assert_close(ro_r.latents, ro_n.latents, rtol=0, atol=0)
    replay_backward(student, mcfg, ro_r, grad, text, actions, R, P, grad_steps)
    g_replay = grads_of(student)
    assert g_naive.norm() > 0
    rel = float((g_naive - g_replay).norm() / g_naive.norm())
    assert rel <= 1e-4, rel


def test_exit_step_output_is_that_steps_x0_and_the_cache_write():
    """With exit step e, a block's output is the x0 of its step e (the runtime's few-step sampler cut after step e,
    same noises), and that x0 is what the next block sees in the cache: block 2 of the rollout equals a runtime
    Student whose cache holds block 1's exit-step output."""
    from relic.runtime.sampling import student_denoise
    from relic.runtime.student import Student
    from relic.training.dmd import _block_cond

    mcfg = _cfg()
    L = 2
    student, first, (text, _), actions, R, P = make_problem(mcfg, L)
    Rn, Pn = R[0].double().numpy(), P[0].double().numpy()
    for e in range(4):
        with torch.no_grad():
            ro, _ = rollout(student, mcfg, first, (text, None), actions, R, P, L, torch.Generator().manual_seed(5),
                            exit_step=e)
            rt = Student(student, mcfg)
            cache = rt.new_cache(mcfg.latent_hw)
            tctx = student.prepare_text(text, None)
            rt.write_first(cache, first, tctx)
            cut = dataclasses.replace(mcfg.sampler, timesteps=mcfg.sampler.timesteps[:e + 1])
            for rec in ro.blocks:
                s = rec.start
                noise, renoise = rec.noises()
                ctx = rt.rotated_context(cache, Rn[s], Pn[s])
                a, Rb, Pb = _block_cond(actions, R, P, s, 1)

                def velocity(x, t):
                    return student(x, t, tctx, None, a, Rb, Pb, frame_offset=s, kv_context=ctx,
                                   kv_context_rotated=True)

                x0 = student_denoise(velocity, noise, cut, renoise=renoise[:e])
                torch.testing.assert_close(ro.latents[:, :, s:s + 1], x0, rtol=1e-5, atol=1e-5)
                # write this x0 into the cache as Student.generate_block writes its x0 (clean, t = 0): the
                # next block then matches the rollout only if the rollout wrote the exit step's x0 too
                _, kv = student(x0, torch.zeros(1, 1), tctx, None, a, Rb, Pb, frame_offset=s, kv_context=ctx,
                                kv_context_rotated=True, return_kv=True)
                cache.push_block(kv, Rn[s:s + 1], Pn[s:s + 1])


def test_draw_exit_step_and_dmd_sigmas():
    g = torch.Generator().manual_seed(0)
    draws = [draw_exit_step("sampled", 4, g) for _ in range(400)]
    assert set(draws) == {0, 1, 2, 3} and all(60 < draws.count(k) < 140 for k in range(4))
    assert draw_exit_step("last", 4, g) == 3 and draw_exit_step(1, 4, g) == 1
    for bad in ("first", 4, -1, True):
        with pytest.raises(UserError, match="exit_step"):
            draw_exit_step(bad, 4, g)
    s = dmd_sigmas(20000, DMDConfig(), torch.Generator().manual_seed(1))
    assert float(s.max()) == pytest.approx(0.98) and float(s.min()) >= 0.02 - 1e-7   # Self-Forcing: clamp after shift
    assert float((s == 0.98).float().mean()) > 0.05                              # the clamp takes the top of u
    old = dmd_sigmas(20000, DMDConfig(sigma="shift_range"), torch.Generator().manual_seed(1))
    assert 0.99 < float(old.max()) <= 0.9960 + 1e-4                              # the earlier scheme: up to 0.996
    with pytest.raises(UserError, match="dmd.sigma"):
        dmd_sigmas(1, DMDConfig(sigma="bogus"), g)


def test_score_difference_vanishes_when_fake_equals_real_without_guidance():
    x = torch.randn(2, 4, 3, 2, 2)

    def real(xt, t, cond):
        return xt * 0.3 + (0.1 if cond else -0.1)

    def fake(xt, t):
        return xt * 0.3 + 0.1

    g, val = score_difference(real, fake, x, torch.tensor([0.5, 0.9]), torch.randn_like(x), guidance=1.0)
    assert torch.count_nonzero(g) == 0 and val == 0.0
    g, _ = score_difference(real, fake, x, torch.tensor([0.5, 0.9]), torch.randn_like(x), guidance=3.0)
    assert torch.count_nonzero(g[:, :, 0]) == 0 and g[:, :, 1:].abs().sum() > 0


@pytest.mark.slow
def test_replay_peak_memory_flat_while_naive_grows():
    """Naive peak grows by a whole block graph per block; the replay's only by the stored context segments
    (first frame + window + compressed memory, what the runtime cache holds)."""
    mcfg = bench_model_config(dim=128, layers=2, heads=2, window=2, height=64, width=112)
    peaks = {(m, L): run_once(mcfg, L, m)["peak_mb"] for L in (3, 7) for m in ("naive", "replay")}
    naive_slope = (peaks["naive", 7] - peaks["naive", 3]) / 4
    replay_slope = (peaks["replay", 7] - peaks["replay", 3]) / 4
    assert peaks["naive", 7] > 1.8 * peaks["naive", 3], peaks
    assert replay_slope < 0.35 * naive_slope, peaks
    assert peaks["replay", 7] < 0.4 * peaks["naive", 7], peaks
    np.testing.assert_array_less(0, list(peaks.values()))


def _write_pairs(directory, n: int, f: int = 5, h: int = 4, w: int = 6, k: int = 4):
    from relic.training.ode import write_pair

    g = torch.Generator().manual_seed(11)
    for i in range(n):
        write_pair(directory / f"pair_{i:06d}.safetensors", torch.randn(k, 16, f, h, w, generator=g),
                   torch.randn(16, f, h, w, generator=g), torch.rand(1 + 4 * (f - 1), 13, generator=g),
                   torch.eye(3).expand(f, 3, 3), torch.rand(f, 3, generator=g), torch.randn(3, 8, generator=g),
                   torch.ones(3, dtype=torch.bool), f"pair {i}", [0.9, 0.7, 0.5, 0.2])


def test_regression_adds_weight_times_the_ode_init_gradient_of_the_steps_pair(tmp_path):
    """DMD's regression term back-propagates exactly ``weight`` × ODE init's hybrid-forcing loss on the step's pair
    (the same files cycle, the same K / step draw), and returns that loss."""
    import contextlib
    import types

    from relic.config import DiTConfig
    from relic.models.dit import DiT
    from relic.training.dmd import DMDStageConfig, DMDTask, RegressionConfig
    from relic.training.ode import draw_hybrid, hybrid_forcing_loss, list_pairs, pair_batch, read_pair

    _write_pairs(tmp_path, 3)
    torch.manual_seed(0)
    dit = DiT(DiTConfig(dim=32, ffn_dim=64, text_dim=8, num_heads=2, num_layers=2, freq_dim=32, action_hidden=16,
                        pose_hidden=16, warp_condition=True))
    for p in dit.parameters():                                    # wake the zero-initialized outputs
        if p.abs().sum() == 0 and p.ndim > 1:
            torch.nn.init.normal_(p, std=0.02)
    task = DMDTask(DMDStageConfig(regression=RegressionConfig(weight=0.7, pairs=str(tmp_path))))
    task.student, task.pair_files = dit, list_pairs(tmp_path)

    def gen(*key):
        return torch.Generator().manual_seed(hash(key) & 0xFFFF)

    trainer = types.SimpleNamespace(loop=types.SimpleNamespace(grad_accum=1), generator=gen,
                                    autocast=contextlib.nullcontext)
    value = task._regression(trainer, step=4)                     # step 4 of 3 files -> pair_000001
    got = {n: p.grad.clone() for n, p in dit.named_parameters() if p.grad is not None}
    dit.zero_grad(set_to_none=True)
    pair = pair_batch(task.pair_files, 4, 0, 1, 1)
    assert torch.equal(pair["x0"][0], read_pair(tmp_path / "pair_000001.safetensors")["x0"])
    K, steps = draw_hybrid(task.cfg.regression.hybrid, pair, task.model_cfg, gen("regression", 0))
    loss = hybrid_forcing_loss(dit, pair, task.model_cfg, K, steps)
    loss.backward()
    assert value == pytest.approx(float(loss.detach()), rel=1e-6) and value > 0
    want = {n: 0.7 * p.grad for n, p in dit.named_parameters() if p.grad is not None}
    assert got.keys() == want.keys() and len(got) > 10
    # (w · loss).backward() and w · (loss.backward()) round differently: compare to the tensor's own scale (a wrong
    # weight is off by tens of per cent, the rounding by ~1e-6 of the largest entry)
    tol = {n: 1e-5 * float(want[n].abs().max()) for n in want}
    for n in want:
        torch.testing.assert_close(got[n], want[n], rtol=1e-5, atol=tol[n])
    # decay [2, 6]: step 4 is half-way down, so half the gradient; past the end nothing is read or back-propagated
    dit.zero_grad(set_to_none=True)
    task.cfg.regression.decay = [2, 6]
    assert task._regression(trainer, step=4) == pytest.approx(value, rel=1e-6)
    for n, p in dit.named_parameters():
        if n in want:
            torch.testing.assert_close(p.grad, 0.5 * want[n], rtol=1e-5, atol=tol[n])
    dit.zero_grad(set_to_none=True)
    task.pair_files = []                                          # would fail if a pair were read
    assert task._regression(trainer, step=6) == 0.0
    assert all(p.grad is None for p in dit.parameters())
    # weight 0 is plain DMD: nothing is read or back-propagated
    task.cfg.regression.decay = None
    task.cfg.regression.weight = 0.0
    assert task._regression(trainer, step=4) == 0.0
    assert all(p.grad is None for p in dit.parameters())


def test_regression_weight_decays_linearly_from_start_to_end():
    from relic.training.dmd import RegressionConfig

    rc = RegressionConfig(weight=0.4, decay=[300, 600])
    assert [rc.weight_at(s) for s in (0, 299, 300)] == [0.4, 0.4, 0.4]
    assert rc.weight_at(450) == pytest.approx(0.2) and rc.weight_at(599) == pytest.approx(0.4 / 300)
    assert rc.weight_at(600) == 0.0 and rc.weight_at(10_000) == 0.0
    assert RegressionConfig(weight=0.4).weight_at(10_000) == 0.4


@pytest.mark.parametrize("reg", [{"weight": 0.5}, {"weight": -1.0, "pairs": "x"}, {"weight": 1.0, "pairs": "x",
                                                                                    "batch_size": 0},
                                 {"weight": 1.0, "pairs": "x", "decay": [5, 5]},
                                 {"weight": 1.0, "pairs": "x", "decay": [3]}])
def test_regression_config_errors_are_one_line(reg, tmp_path):
    from relic.training.dmd import DMDStageConfig, DMDTask, RegressionConfig

    task = DMDTask(DMDStageConfig(regression=RegressionConfig(**reg)))
    with pytest.raises(UserError, match="regression needs") as e:
        task.build(None)
    assert len(str(e.value).splitlines()) == 1
    task = DMDTask(DMDStageConfig(regression=RegressionConfig(weight=0.5, pairs=str(tmp_path / "none"))))
    with pytest.raises(UserError, match="ODE pair directory not found"):
        task.build(None)
