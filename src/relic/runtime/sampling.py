"""Flow-matching sampling (rectified flow, as Wan-2.1) for the few-step student and the teacher (§4.4).

Conventions:

* σ ∈ [0, 1] is the noise level; x_σ = (1 - σ) x0 + σ ε.
* The model predicts the velocity v = ε - x0, so x0 = x_σ - σ v and ε = x_σ + (1 - σ) v.
* Timesteps t ∈ [0, num_train_timesteps] map to σ = t / num_train_timesteps, then Wan's shift
  σ' = shift σ / (1 + (shift - 1) σ); the model is conditioned on t' = σ' * num_train_timesteps.
* The student (Self-Forcing style) denoises a block in ``len(timesteps)`` steps: at each step predict x0,
  and, except after the last step, re-noise x0 to the next σ with fresh noise.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from relic.config import SamplerConfig
from relic.errors import UserError

# model(x (b c f h w), t (b f) model timesteps) -> v (b c f h w)
Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def shift_sigma(sigma: torch.Tensor | float, shift: float) -> torch.Tensor | float:
    """Wan's timestep shift σ' = shift σ / (1 + (shift - 1) σ)."""
    return shift * sigma / (1 + (shift - 1) * sigma)


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """x_σ = (1 - σ) x0 + σ ε. σ broadcasts against x0 (e.g. shape (b 1 f 1 1))."""
    return (1 - sigma) * x0 + sigma * noise


def x0_from_velocity(x: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor | float) -> torch.Tensor:
    """x0 = x_σ - σ v."""
    return x - sigma * v


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The flow-matching regression target v = ε - x0."""
    return noise - x0


def student_sigmas(cfg: SamplerConfig) -> list[float]:
    """Shifted noise levels of the student's steps, e.g. t ∈ {1000, 750, 500, 250} -> σ' (host floats)."""
    return [float(shift_sigma(t / cfg.num_train_timesteps, cfg.shift)) for t in cfg.timesteps]


def context_sigma(cfg: SamplerConfig) -> float:
    """Noise level at which clean blocks are written to the cache (``context_noise`` is a timestep)."""
    return float(shift_sigma(cfg.context_noise / cfg.num_train_timesteps, cfg.shift))


def _timesteps_like(x: torch.Tensor, sigma: float, num_train_timesteps: int) -> torch.Tensor:
    """(b f) model timesteps filled with σ * num_train_timesteps."""
    b, f = x.shape[0], x.shape[2]
    return torch.full((b, f), sigma * num_train_timesteps, dtype=torch.float32, device=x.device)


def student_denoise(model: Velocity, noise: torch.Tensor, cfg: SamplerConfig,
                    generator: torch.Generator | None = None,
                    renoise: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """Few-step student sampling of one block.

    Args:
        model: velocity model v(x, t).
        noise: (b c f h w) initial noise (σ = first shifted σ, normally 1).
        cfg: timesteps, shift.
        generator: source of the fresh noise for re-noising (ignored when ``renoise`` is given).
        renoise: explicit noises for steps 1.. (len(timesteps) - 1 tensors), for reproducible tests.
    Returns:
        x0 (b c f h w) after the last step.
    """
    sigmas = student_sigmas(cfg)
    x = noise
    x0 = noise
    for k, s in enumerate(sigmas):
        v = model(x, _timesteps_like(x, s, cfg.num_train_timesteps))
        x0 = x0_from_velocity(x, v.to(x.dtype), s)
        if k + 1 < len(sigmas):
            eps = renoise[k] if renoise is not None else torch.randn(
                x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
            x = add_noise(x0, eps, sigmas[k + 1])
    return x0


def euler_sigmas(steps: int, shift: float) -> list[float]:
    """steps+1 shifted σ from 1 to 0 (uniform in unshifted σ), as Wan's UniPC/Euler schedules."""
    return [float(shift_sigma(1 - i / steps, shift)) for i in range(steps + 1)]


def euler_sample(model: Callable[[torch.Tensor, torch.Tensor, bool], torch.Tensor], noise: torch.Tensor,
                 steps: int = 50, shift: float = 5.0, guidance: float = 5.0,
                 num_train_timesteps: int = 1000) -> torch.Tensor:
    """Multi-step Euler ODE sampler with classifier-free guidance, for the teacher: :func:`cfg_sample` over
    :func:`euler_sigmas`.

    Args:
        model: ``model(x, t, cond)`` -> v; ``cond=False`` gives the unconditional prediction.
        noise: (b c f h w) at σ = 1.
        guidance: CFG scale w (v = v_u + w (v_c - v_u)); 1 disables the unconditional pass.
    Returns:
        x0 (b c f h w).
    """
    return cfg_sample(model, noise, euler_sigmas(steps, shift), guidance, num_train_timesteps=num_train_timesteps)[0]


SAMPLERS = ("euler", "renoise")        # the teacher's ODE, or x0 + fresh noise at every step (the student's way)


def check_sampler(sampler: str) -> None:
    """A one-line error for a sampler that is not one of :data:`SAMPLERS`."""
    if sampler not in SAMPLERS:
        raise UserError(f"the teacher sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")


def cfg_sample(model: Callable[[torch.Tensor, torch.Tensor, bool], torch.Tensor], x: torch.Tensor,
               sigmas: Sequence[float], guidance: float, knots: Sequence[float] = (), sampler: str = "euler",
               generator: torch.Generator | None = None, clean: int = 1, num_train_timesteps: int = 1000
               ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """CFG sampling over the decreasing ``sigmas`` (1 → 0), recording x at each σ in ``knots`` (their order).

    Args:
        model: ``model(x, t, cond)`` -> v (b c f h w), t (b f) timesteps ``num_train_timesteps`` · σ.
        x: (b c f h w) at ``sigmas[0]``; with ``"renoise"`` its first ``clean`` latents are clean and stay so.
        guidance: CFG scale w (v = v_u + w (v_c − v_u)); 1 skips the unconditional pass.
        sampler: ``"euler"``: x ← x + (σ' − σ) v. ``"renoise"``: x̂0 = x − σ v, then x ← (1 − σ') x̂0 + σ' ε with
            fresh ε ~ N(0, I) from ``generator`` (the last step, σ' = 0, returns x̂0): exactly
            :func:`student_denoise` on the same σ's and noises (``clean=0``, tested).
    Returns:
        x at σ = 0 (b c f h w) and the recorded latents.
    """
    check_sampler(sampler)
    rec: dict[float, torch.Tensor] = {}
    for s, s_next in zip(sigmas[:-1], sigmas[1:]):
        for k in knots:
            if abs(s - k) < 1e-9:
                rec[k] = x.clone()
        t = _timesteps_like(x, s, num_train_timesteps)
        v = model(x, t, True)
        if guidance != 1.0:
            vu = model(x, t, False)
            v = vu + guidance * (v - vu)
        if sampler == "euler" or s_next == 0.0:
            x = x + (s_next - s) * v.to(x.dtype)
        else:
            x0 = x - s * v.to(x.dtype)
            eps = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
            x = torch.cat([x[:, :, :clean], ((1 - s_next) * x0 + s_next * eps)[:, :, clean:]], dim=2)
    missing = [k for k in knots if k not in rec]
    if missing:
        raise ValueError(f"σ knots {missing} are not on the schedule")
    return x, [rec[k] for k in knots]
