"""DMD: the rollout is the runtime's, replayed back-propagation equals naive back-propagation, memory stays flat."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from relic.training.bench import bench_model_config, grads_of, make_problem, run_once
from relic.training.dmd import naive_backward, replay_backward, rollout, score_difference


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


@pytest.mark.parametrize("grad_steps", [1, 2])
def test_replay_gradients_equal_naive_full_graph(grad_steps):
    mcfg = _cfg()
    L = 5
    student, first, text, actions, R, P = make_problem(mcfg, L)
    g_sig = torch.Generator().manual_seed(9)
    # naive: one graph through every block, one backward
    ro_n, outs = rollout(student, mcfg, first, text, actions, R, P, L, torch.Generator().manual_seed(3),
                         grad_steps=grad_steps)
    grad = torch.randn(ro_n.latents.shape, generator=g_sig)
    naive_backward(outs, ro_n, grad)
    g_naive = grads_of(student).clone()
    student.zero_grad(set_to_none=True)
    # replay: rollout without autograd, then block by block
    with torch.no_grad():
        ro_r, _ = rollout(student, mcfg, first, text, actions, R, P, L, torch.Generator().manual_seed(3))
    assert not any(x.requires_grad for x in ro_r.latents.flatten()[:1])
    torch.testing.assert_close(ro_r.latents, ro_n.latents, rtol=0, atol=0)
    replay_backward(student, mcfg, ro_r, grad, text, actions, R, P, grad_steps)
    g_replay = grads_of(student)
    assert g_naive.norm() > 0
    rel = float((g_naive - g_replay).norm() / g_naive.norm())
    assert rel <= 1e-4, rel


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
