"""Stage mechanisms: SSIM, VAE causality, ODE schedules, hybrid forcing = one masked forward."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from relic.training.losses import psnr, ssim


def test_ssim_matches_the_eval_metric():
    from relic.eval.metrics import psnr as psnr_np
    from relic.eval.metrics import ssim as ssim_np

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, size=(2, 24, 30, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, size=a.shape), 0, 255).astype(np.uint8)
    ta = torch.from_numpy(a).float().permute(0, 3, 1, 2) / 127.5 - 1
    tb = torch.from_numpy(b).float().permute(0, 3, 1, 2) / 127.5 - 1
    assert float(ssim(ta, tb)) == pytest.approx(ssim_np(a, b), abs=1e-4)
    assert psnr(ta, tb) == pytest.approx(psnr_np(a, b), abs=1e-3)
    assert float(ssim(ta, ta)) == pytest.approx(1.0, abs=1e-6)


def test_vae_stays_causal():
    """Changing later frames never changes the reconstruction of earlier ones (the training loss's model)."""
    from relic.config import VAEConfig
    from relic.models.vae import WanVAE
    from relic.training.vae import VAELossConfig, vae_loss

    torch.manual_seed(0)
    vae = WanVAE(VAEConfig(z_dim=4, base_dim=8, dim_mult=(1, 2, 2, 2), num_res_blocks=1))
    x = torch.rand(1, 3, 9, 16, 16) * 2 - 1
    y = x.clone()
    y[:, :, 5:] = torch.rand_like(y[:, :, 5:])
    with torch.no_grad():
        rx, _, _ = vae(x)
        ry, _, _ = vae(y)
    torch.testing.assert_close(rx[:, :, :5], ry[:, :, :5], rtol=0, atol=1e-6)
    assert (rx[:, :, 5:] - ry[:, :, 5:]).abs().max() > 1e-4
    loss, parts = vae_loss(vae, x, VAELossConfig(), torch.Generator().manual_seed(0))
    loss.backward()
    assert set(parts) == {"l1", "ssim", "kl"} and all(p.grad is not None for p in vae.parameters())


def test_ode_schedule_passes_through_the_student_timesteps():
    from relic.config import SamplerConfig
    from relic.runtime.sampling import student_sigmas
    from relic.runtime.sampling import cfg_sample
    from relic.training.teacher import ode_sigma_schedule

    knots = student_sigmas(SamplerConfig())
    sched = ode_sigma_schedule(knots, 12)
    assert sched[0] == 1.0 and sched[-1] == 0.0 and all(a > b for a, b in zip(sched, sched[1:]))
    assert all(k in sched for k in knots)
    x = torch.randn(1, 2, 3, 2, 2)
    # a linear velocity field v = x (exact solution known): the recorded states are the running states
    out, rec = cfg_sample(lambda xx, t, c: torch.zeros_like(xx), x, sched, 1.0, knots)
    assert torch.equal(out, x) and all(torch.equal(r, x) for r in rec)


def test_ode_pair_spacing_is_the_teachers_own_schedule():
    """spacing "shifted": the Euler steps are even in unshifted time, so with the student's t ∈ {1000, 750, 500,
    250} as knots and 20 steps the schedule IS the teacher sampler's (5 steps from σ = 1 to 0.9375, not 1);
    "linear" (shift 1) is the earlier schedule, even in σ."""
    from relic.config import SamplerConfig
    from relic.runtime.sampling import euler_sigmas, student_sigmas
    from relic.training.teacher import ode_sigma_schedule

    knots = student_sigmas(SamplerConfig())
    shifted = ode_sigma_schedule(knots, 20, 5.0)
    np.testing.assert_allclose(shifted, euler_sigmas(20, 5.0), rtol=0, atol=1e-12)
    assert all(k in shifted for k in knots) and shifted.index(knots[1]) == 5
    linear = ode_sigma_schedule(knots, 20)
    assert linear.index(knots[1]) == 1                                  # one Euler step from σ = 1 to 0.9375
    # a sampler shift other than the student's: the knots are still hit exactly, steps still about even in u
    odd = ode_sigma_schedule(knots, 12, 3.0)
    assert odd[0] == 1.0 and odd[-1] == 0.0 and all(k in odd for k in knots) and abs(len(odd) - 13) <= 1
    assert all(a > b for a, b in zip(odd, odd[1:]))


def _tiny_dit():
    from relic.config import DiTConfig
    from relic.models.dit import DiT

    torch.manual_seed(0)
    dit = DiT(DiTConfig(dim=32, ffn_dim=64, text_dim=8, num_heads=2, num_layers=2, freq_dim=32, action_hidden=16,
                        pose_hidden=16))
    for p in dit.parameters():
        if p.abs().sum() == 0 and p.ndim > 1:
            torch.nn.init.normal_(p, std=0.02)
    return dit.eval()


def _pair(f=5, h=4, w=6, k=4):
    g = torch.Generator().manual_seed(1)
    return {"trajectory": torch.randn(1, k, 16, f, h, w, generator=g), "x0": torch.randn(1, 16, f, h, w, generator=g),
            "actions": torch.rand(1, 1 + 4 * (f - 1), 13, generator=g), "R": torch.eye(3).expand(1, f, 3, 3),
            "P": torch.rand(1, f, 3, generator=g), "text": torch.randn(1, 3, 8, generator=g),
            "text_mask": torch.ones(1, 3, dtype=torch.bool)}


@pytest.mark.parametrize("K", [1, 2, 4])
def test_hybrid_forcing_without_compression_equals_one_masked_forward(K):
    """With no compression (window = everything), the clean prefix -> K/V -> context path equals a single
    forward over [clean prefix, noisy blocks] with a block-causal mask."""
    from relic.config import MemoryConfig, relic_tiny
    from relic.runtime.sampling import context_sigma, student_sigmas
    from relic.training.ode import block_causal_mask, hybrid_forward

    dit = _tiny_dit()
    mcfg = dataclasses.replace(relic_tiny(), memory=MemoryConfig(window=None, dtype="fp32"))
    pair = _pair()
    f = pair["x0"].shape[2]
    steps = torch.tensor([3, 0, 2, 1][:K])
    with torch.no_grad():
        x0_hat, target = hybrid_forward(dit, pair, mcfg, K, steps)
        n_clean = f - K
        sig = student_sigmas(mcfg.sampler)
        xt = torch.cat([pair["x0"][:, :, :n_clean]] + [pair["trajectory"][:, int(s), :, n_clean + j:n_clean + j + 1]
                                                      for j, s in enumerate(steps)], dim=2)
        t = torch.tensor([context_sigma(mcfg.sampler) * 1000] * n_clean + [sig[int(s)] * 1000 for s in steps])[None]
        v = dit(xt, t, pair["text"], pair["text_mask"], pair["actions"], pair["R"], pair["P"],
                attn_mask=block_causal_mask(f, 6, 1))
        ref = xt[:, :, n_clean:] - t[:, n_clean:].view(1, 1, -1, 1, 1) / 1000 * v[:, :, n_clean:]
    torch.testing.assert_close(x0_hat, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(target, pair["x0"][:, :, n_clean:])


def test_hybrid_forcing_uses_the_memory_modules_compression():
    """With a window of 1 and pooling 2, the noisy blocks see fewer context tokens and a different result."""
    from relic.config import MemoryConfig, relic_tiny
    from relic.training.ode import hybrid_forward

    dit = _tiny_dit()
    pair = _pair()
    full = dataclasses.replace(relic_tiny(), memory=MemoryConfig(window=None, dtype="fp32"))
    comp = dataclasses.replace(relic_tiny(), memory=MemoryConfig(window=1, schedule=(2,), dtype="fp32"))
    with torch.no_grad():
        a, _ = hybrid_forward(dit, pair, full, 1, torch.tensor([1]))
        b, _ = hybrid_forward(dit, pair, comp, 1, torch.tensor([1]))
    assert (a - b).abs().max() > 1e-5
    loss_grad = hybrid_forward(dit.train(), pair, comp, 2, torch.tensor([0, 3]))[0].pow(2).mean()
    loss_grad.backward()
    assert dit.blocks[0].self_attn.q.weight.grad is not None


def test_teacher_init_applies_model_dit_overrides(tmp_path):
    """Starting the teacher from a checkpoint keeps its weights but takes shape-free settings (RoPE scaling for
    the 20 s horizon) from the stage config; a shape-changing override is refused with one clear error."""
    import torch

    from relic.config import DiTConfig
    from relic.errors import UserError
    from relic.models.dit import DiT
    from relic.training.teacher import init_dit

    torch.manual_seed(0)
    src = DiT(DiTConfig(dim=32, ffn_dim=64, text_dim=16, num_heads=2, num_layers=1, freq_dim=32,
                        action_hidden=16, pose_hidden=16))
    src.save_pretrained(tmp_path / "init")
    dit = init_dit(str(tmp_path / "init"), {"rope_scaling": "ntk", "rope_scale": 4.0})
    assert dit.cfg.rope_scaling == "ntk" and dit.cfg.rope_scale == 4.0
    for k, v in src.state_dict().items():
        if v.is_floating_point() and k in dict(src.named_parameters()):
            assert torch.equal(dit.state_dict()[k], v), k
    assert init_dit(str(tmp_path / "init"), None).cfg == src.cfg
    with pytest.raises(UserError, match="change the shapes"):
        init_dit(str(tmp_path / "init"), {"ffn_dim": 96})


def test_deeper_init_is_the_checkpoints_function_and_trains(tmp_path):
    """model.dit.num_layers = 2x the checkpoint's: block expansion gives exactly the checkpoint's output (every
    conditioning path awake: actions with coordinate offsets, poses, camera rays, text), the copies' zeroed output layers get
    gradients, and a depth that is not a multiple is one clear error."""
    import torch

    from relic.config import DiTConfig
    from relic.errors import UserError
    from relic.models.dit import DiT
    from relic.training.teacher import init_dit

    torch.manual_seed(0)
    src = DiT(DiTConfig(dim=32, ffn_dim=64, text_dim=16, num_heads=2, num_layers=2, freq_dim=32,
                        action_hidden=16, pose_hidden=16, action_coords=True, camera_rays=True))
    for p in src.parameters():                      # wake the zero-initialized encoders
        if p.abs().sum() == 0:
            torch.nn.init.normal_(p, std=0.05)
    src.save_pretrained(tmp_path / "init")
    src = DiT.from_pretrained(tmp_path / "init").eval()
    deep = init_dit(str(tmp_path / "init"), {"num_layers": 4}).eval()
    assert len(deep.blocks) == 4 and deep.cfg.num_layers == 4
    assert torch.equal(deep.state_dict()["blocks.2.self_attn.q.weight"], src.state_dict()["blocks.1.self_attn.q.weight"])
    b, f, h, w = 2, 3, 4, 6
    x = torch.randn(b, 16, f, h, w)
    t = torch.tensor([[0.0, 700.0, 700.0], [0.0, 300.0, 300.0]])
    text, mask = torch.randn(b, 5, 16), torch.ones(b, 5, dtype=torch.bool)
    actions = torch.rand(b, 1 + 4 * (f - 1), 13)
    R = torch.linalg.qr(torch.randn(b, f, 3, 3))[0]
    P = torch.randn(b, f, 3)
    with torch.no_grad():
        ref = src(x, t, text, mask, actions, R, P)
        out = deep(x, t, text, mask, actions, R, P)
    assert ref.abs().mean() > 0 and torch.equal(out, ref)
    deep.train()
    deep(x, t, text, mask, actions, R, P).square().mean().backward()
    for name in ("blocks.1.self_attn.o.weight", "blocks.3.ffn.2.weight", "action_encoder.proj.1.weight",
                 "action_encoder.coord_proj.3.weight", "ray_encoder.proj.3.weight"):
        assert dict(deep.named_parameters())[name].grad.abs().sum() > 0, name
    with pytest.raises(UserError, match="multiple"):
        init_dit(str(tmp_path / "init"), {"num_layers": 3})


def test_old_ode_pairs_are_refused_and_regenerated(tmp_path):
    """Pairs of format 1 were sampled from the clip's video latent: reading one is a one-line error, and
    `relic train ode-pairs` does not count it as done."""
    from safetensors.torch import save_file

    from relic.errors import UserError
    from relic.training.ode import PAIR_FORMAT, _pair_done, read_pair

    old = tmp_path / "pair_000000.safetensors"
    save_file({"x0": torch.zeros(1)}, str(old), metadata={"format": "relic-ode-pair-1"})
    assert PAIR_FORMAT != "relic-ode-pair-1" and not _pair_done(old) and not _pair_done(tmp_path / "none")
    with pytest.raises(UserError, match="relic-ode-pair-1 is out of date") as e:
        read_pair(old)
    assert len(str(e.value).splitlines()) == 1


def test_dropout_masks_keep_the_text_only_draw_and_hit_their_rates():
    from relic.errors import UserError
    from relic.training.teacher import FlowConfig, dropout_masks

    b = 200_000
    drop, keep = dropout_masks(b, FlowConfig(text_dropout=0.1), torch.Generator().manual_seed(3))
    assert torch.equal(drop, torch.rand(b, generator=torch.Generator().manual_seed(3)) < 0.1)   # as before
    assert bool(keep.all())
    drop, keep = dropout_masks(b, FlowConfig(text_dropout=0.1, command_dropout=0.1, joint_dropout=0.05),
                               torch.Generator().manual_seed(4))
    rate = lambda m: float(m.float().mean())                                       # noqa: E731
    assert abs(rate(drop) - 0.1) < 0.003 and abs(rate(~keep) - 0.1) < 0.003
    assert abs(rate(drop & ~keep) - 0.05) < 0.003
    with pytest.raises(UserError, match="joint_dropout"):
        dropout_masks(4, FlowConfig(text_dropout=0.1, command_dropout=0.02, joint_dropout=0.05), torch.Generator())


@pytest.mark.parametrize("guide", ["text", "command", "all"])
def test_teacher_sampler_guidance_drops_what_it_names(guide):
    """The unconditional branch of CFG: the empty prompt and/or no command, the conditional one both."""
    from relic.training.teacher import teacher_sample

    dit = _tiny_dit()
    g = torch.Generator().manual_seed(2)
    f = 3
    first = torch.randn(1, 16, 1, 4, 6, generator=g)
    text, mask = torch.randn(1, 5, 8, generator=g), torch.ones(1, 5, dtype=torch.bool)
    empty = (torch.zeros(1, 5, 8), torch.ones(1, 5, dtype=torch.bool))
    a = torch.rand(1, 1 + 4 * (f - 1), 13, generator=g)
    R, P = torch.eye(3).expand(1, f, 3, 3).clone(), torch.randn(1, f, 3, generator=g)
    calls = []
    real_forward = dit.forward

    def spy(x, t, ctx, text_mask=None, actions=None, R_=None, P_=None, **kw):
        calls.append((ctx, actions is not None))
        return real_forward(x, t, ctx, text_mask, actions, R_, P_, **kw)

    dit.forward = spy
    noise = torch.randn(1, 16, f, 4, 6, generator=g)
    out, _ = teacher_sample(dit, first, f, text, mask, empty, a, R, P, steps=2, guidance=3.0, noise=noise, guide=guide)
    cond, uncond = calls[0], calls[1]
    assert cond[1] and uncond[1] == (guide == "text")
    same_text = torch.equal(uncond[0].kv[0][0], cond[0].kv[0][0])
    assert same_text == (guide == "command")
    # guidance 1 never runs the unconditional branch, whatever it would drop
    calls.clear()
    teacher_sample(dit, first, f, text, mask, empty, a, R, P, steps=2, guidance=1.0, noise=noise, guide=guide)
    assert len(calls) == 2 and all(c[1] for c in calls)


def test_unknown_guide_is_one_user_error():
    from relic.errors import UserError
    from relic.training.teacher import check_guide

    for g in ("text", "command", "all"):
        check_guide(g)
    with pytest.raises(UserError, match="guidance must drop one of"):
        check_guide("actions")


def test_renoise_sampler_is_the_students_sampler():
    """cfg_sample(sampler="renoise") on the student's σ's equals relic.runtime.sampling.student_denoise, step for
    step, with the same model and the same fresh noises (clean=0: no conditioning latent)."""
    from relic.config import SamplerConfig
    from relic.runtime.sampling import cfg_sample as integrate
    from relic.runtime.sampling import student_denoise, student_sigmas

    cfg = SamplerConfig(shift=2.0)
    w = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))

    def velocity(x, t):                                  # any smooth, t-dependent field
        return torch.einsum("ij,bjfhw->bifhw", w, x).tanh() * (t[:, None, :, None, None] / 1000.0) + 0.1 * x

    noise = torch.randn(2, 4, 3, 2, 2, generator=torch.Generator().manual_seed(1))
    ref = student_denoise(velocity, noise, cfg, generator=torch.Generator().manual_seed(7))
    out, _ = integrate(lambda x, t, cond: velocity(x, t), noise, student_sigmas(cfg) + [0.0], 1.0, [], "renoise",
                       torch.Generator().manual_seed(7), clean=0)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    euler, _ = integrate(lambda x, t, cond: velocity(x, t), noise, student_sigmas(cfg) + [0.0], 1.0, [], "euler")
    assert (euler - ref).abs().max() > 1e-3            # the ODE is a different sampler


def test_renoise_teacher_sample_keeps_the_first_latent_and_recovers_an_oracles_x0():
    """With a model that knows x0 (v = (x − x0)/σ) every sampler returns x0 exactly, whatever the noise; the
    re-noising one keeps latent 0 bitwise, records x at the knots, and an unknown sampler is one UserError."""
    from relic.errors import UserError
    from relic.runtime.sampling import cfg_sample as integrate
    from relic.training.teacher import ode_sigma_schedule

    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(1, 2, 4, 3, 3, generator=g)
    x = torch.cat([x0[:, :, :1], torch.randn(1, 2, 3, 3, 3, generator=g)], dim=2)

    def oracle(xx, t, cond):
        s = (t / 1000.0).clamp_min(1e-9)[:, None, :, None, None]
        return (xx - x0) / s

    knots = [0.8, 0.5]
    sched = ode_sigma_schedule(knots, 6, 2.0)
    for sampler in ("euler", "renoise"):
        out, rec = integrate(oracle, x.clone(), sched, 1.0, knots, sampler, torch.Generator().manual_seed(0))
        torch.testing.assert_close(out, x0, rtol=0, atol=1e-5)
        assert torch.equal(out[:, :, :1], x0[:, :, :1]) and len(rec) == 2
    # at a knot the renoised state is (1 − σ) x0 + σ ε with latent 0 clean
    _, (at08, _) = integrate(oracle, x.clone(), sched, 1.0, knots, "renoise", torch.Generator().manual_seed(0))
    assert torch.equal(at08[:, :, :1], x0[:, :, :1])
    eps = (at08[:, :, 1:] - 0.2 * x0[:, :, 1:]) / 0.8
    assert 0.3 < float(eps.std()) < 2.0 and not torch.allclose(at08, x0)
    with pytest.raises(UserError, match="teacher sampler must be one of"):
        integrate(oracle, x, sched, 1.0, [], "ddim")
