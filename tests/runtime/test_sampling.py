"""Flow-matching sampling: shift, x0/velocity algebra, the student's few-step loop, the teacher's Euler+CFG."""

import pytest
import torch

from relic.config import SamplerConfig
from relic.runtime.sampling import (add_noise, context_sigma, euler_sample, euler_sigmas, shift_sigma,
                                    student_denoise, student_sigmas, velocity_target, x0_from_velocity)


def test_shift():
    assert shift_sigma(0.0, 5.0) == 0.0 and shift_sigma(1.0, 5.0) == 1.0
    assert shift_sigma(0.5, 5.0) == pytest.approx(2.5 / 3.0)
    assert shift_sigma(0.3, 1.0) == pytest.approx(0.3)
    sig = student_sigmas(SamplerConfig())
    assert sig[0] == 1.0 and sig == sorted(sig, reverse=True)
    assert sig[-1] == pytest.approx(5 * 0.25 / (1 + 4 * 0.25))
    assert context_sigma(SamplerConfig()) == 0.0


def test_velocity_algebra():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(2, 3, generator=g), torch.randn(2, 3, generator=g)
    xt = add_noise(x0, eps, 0.3)
    v = velocity_target(x0, eps)
    assert torch.allclose(x0_from_velocity(xt, v, 0.3), x0, atol=1e-6)


def test_student_with_oracle_recovers_x0_and_uses_renoise():
    """An oracle velocity model (knows x0) gives x0 exactly; the model sees the schedule's timesteps."""
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(1, 4, 2, 3, 3, generator=g)
    noise = torch.randn(x0.shape, generator=g)
    seen = []

    def oracle(x, t):
        seen.append(t.clone())
        sigma = t[0, 0] / 1000
        return (x - x0) / sigma                 # v = (x_σ - x0) / σ = ε - x0
    cfg = SamplerConfig()
    out = student_denoise(oracle, noise, cfg, renoise=[torch.randn(x0.shape, generator=g) for _ in range(3)])
    assert torch.allclose(out, x0, atol=1e-5)
    assert [float(t[0, 0]) for t in seen] == pytest.approx([s * 1000 for s in student_sigmas(cfg)])
    assert seen[0].shape == (1, 2)


def test_student_renoise_is_fresh_noise():
    """Between steps x = (1-σ') x0 + σ' ε' with the given ε'."""
    cfg = SamplerConfig(timesteps=(1000.0, 500.0), shift=1.0)
    x0 = torch.ones(1, 1, 1, 1, 1)
    eps2 = torch.full_like(x0, 3.0)
    xs = []

    def model(x, t):
        xs.append(x.clone())
        return x - x0 if t[0, 0] == 1000 else torch.zeros_like(x)
    student_denoise(model, torch.zeros_like(x0), cfg, renoise=[eps2])
    assert xs[1].item() == pytest.approx(0.5 * 1 + 0.5 * 3.0)


def test_euler_cfg_linear_path():
    """For data x0 fixed, the exact velocity ε - x0 along the straight path: Euler reaches x0 for any steps;
    CFG combines v_u + w (v_c - v_u)."""
    x0 = torch.randn(1, 2, 1, 2, 2)
    noise = torch.randn_like(x0)

    def model(x, t, cond):
        s = t[0, 0] / 1000
        v = (x - x0) / s
        return v if cond else v * 0.0
    assert torch.allclose(euler_sample(model, noise, steps=7, shift=3.0, guidance=1.0), x0, atol=1e-5)
    sig = euler_sigmas(4, 1.0)
    assert sig == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
    out = euler_sample(model, noise, steps=1, shift=1.0, guidance=2.0)
    assert torch.allclose(out, noise - 2.0 * (noise - x0), atol=1e-5)
