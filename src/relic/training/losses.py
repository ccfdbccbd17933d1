"""Differentiable losses shared by the stages (no downloaded weights).

* :func:`ssim` — Wang et al. 2004 SSIM in torch, the same definition as :func:`relic.eval.metrics.ssim`
  (Gaussian σ = 1.5, 11×11 window, K1 = 0.01, K2 = 0.03, population statistics, the 5-pixel border where the
  window leaves the image excluded): a valid (unpadded) convolution gives exactly the cropped map.
* :func:`psnr` — PSNR in dB of tensors in [-1, 1].
* :func:`flow_matching_loss` — the image-to-video flow-matching loss of a bidirectional DiT: what the teacher
  stage trains (:mod:`relic.training.teacher`), DMD's fake score regresses (:mod:`relic.training.dmd`) and the
  conditioning probe measures (:mod:`relic.training.probe`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from einops import rearrange

from relic.runtime.sampling import add_noise, velocity_target

if TYPE_CHECKING:
    from relic.training.batches import LatentBatch

_SIGMA, _RADIUS = 1.5, 5


def _window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    x = torch.arange(-_RADIUS, _RADIUS + 1, dtype=torch.float64)
    g = torch.exp(-(x ** 2) / (2 * _SIGMA ** 2))
    g = g / g.sum()
    return g.to(dtype=dtype, device=device)


def ssim(a: torch.Tensor, b: torch.Tensor, data_range: float = 2.0, low: float = -1.0) -> torch.Tensor:
    """Mean SSIM of images (n c h w) or videos (b c t h w) with values in [low, low + data_range].

    The luminance term is not shift invariant, so values are first shifted to [0, data_range] (as the
    0–255 images of the reference definition). Computed in fp32. Returns a scalar tensor (differentiable).
    """
    with torch.autocast(a.device.type, enabled=False):  # autocast would run the blur convs in bf16
        return _ssim_fp32(a, b, data_range, low)


def _ssim_fp32(a: torch.Tensor, b: torch.Tensor, data_range: float, low: float) -> torch.Tensor:
    if a.ndim == 5:
        a = rearrange(a, "b c t h w -> (b t) c h w")
        b = rearrange(b, "b c t h w -> (b t) c h w")
    a, b = a.float() - low, b.float() - low
    c = a.shape[1]
    g = _window(a.dtype, a.device)
    kh = g.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    kw = g.view(1, 1, 1, -1).expand(c, 1, 1, -1)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, kh, groups=c), kw, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = blur(a), blur(b)
    sxx = blur(a * a) - mx * mx
    syy = blur(b * b) - my * my
    sxy = blur(a * b) - mx * my
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return m.mean()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two tensors in [-1, 1] (mapped to 0–255 after clamping)."""
    x = (a.float().clamp(-1, 1) + 1) * 127.5
    y = (b.float().clamp(-1, 1) + 1) * 127.5
    mse = float(torch.mean((x - y) ** 2))
    return float("inf") if mse == 0.0 else 10.0 * float(torch.log10(torch.tensor(255.0 ** 2 / mse)))


_LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))


def laplacian(x: torch.Tensor) -> torch.Tensor:
    """The 4-neighbour Laplacian of each channel of images (n c h w) or videos (b c t h w), valid region only."""
    if x.ndim == 5:
        x = rearrange(x, "b c t h w -> (b t) c h w")
    c = x.shape[1]
    k = torch.tensor(_LAPLACIAN, dtype=x.dtype, device=x.device).view(1, 1, 3, 3).expand(c, 1, 3, 3)
    return F.conv2d(x, k, groups=c)


def detail_loss(recon: torch.Tensor, target: torch.Tensor, cell: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Two sharpness terms of videos (b c t h w) -> (edge L1, detail-energy L1), both scalar tensors.

    * edge: ``|lap(recon) - lap(target)|`` averaged, which puts the L1 loss's weight on edges;
    * energy: the L1 distance between the local RMS of the Laplacian over ``cell``-pixel cells of both,
      which asks for as much fine detail as the target has without asking where exactly (a blurred
      reconstruction has too little, and the pixel losses alone prefer blur where detail is uncertain).
    Computed in fp32 outside autocast.
    """
    with torch.autocast(recon.device.type, enabled=False):
        la, lb = laplacian(recon.float()), laplacian(target.float())
        edge = (la - lb).abs().mean()
        ea = F.avg_pool2d(la.pow(2), cell, ceil_mode=True).add(1e-6).sqrt()
        eb = F.avg_pool2d(lb.pow(2), cell, ceil_mode=True).add(1e-6).sqrt()
        return edge, (ea - eb).abs().mean()


def flow_matching_loss(dit, batch: LatentBatch, sigma: torch.Tensor, noise: torch.Tensor,
                       text: torch.Tensor | None = None, text_mask: torch.Tensor | None = None,
                       command_keep: torch.Tensor | None = None) -> torch.Tensor:
    """Image-to-video flow-matching loss of a bidirectional DiT.

    Args:
        batch: latents (b c f h w) etc.; latent 0 stays clean (timestep 0) and is not in the loss.
        sigma: (b,) noise levels; noise: (b c f h w).
        text, text_mask: override the batch's text (e.g. after text dropout).
        command_keep: (b,) bool, False where the sample's actions and pose are dropped (command dropout).
    """
    x0 = batch.latents
    b, f = x0.shape[0], x0.shape[2]
    s = sigma.view(b, 1, 1, 1, 1).to(x0)
    xt = add_noise(x0, noise, s)
    xt = torch.cat([x0[:, :, :1], xt[:, :, 1:]], dim=2)
    t = (sigma.view(b, 1) * 1000.0).expand(b, f).clone()
    t[:, 0] = 0.0
    v = dit(xt, t, batch.text if text is None else text, batch.text_mask if text_mask is None else text_mask,
            batch.actions, batch.R, batch.P, command_keep=command_keep)
    target = velocity_target(x0, noise)
    return ((v.float() - target.float()) ** 2)[:, :, 1:].mean()
