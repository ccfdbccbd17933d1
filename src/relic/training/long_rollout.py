"""Long self-rollouts scored on a re-anchored window (``dmd.window_seconds``; Self-Forcing++'s recipe, for i2v).

Plain DMD (:mod:`relic.training.dmd`) scores the student's whole rollout with the teacher, so the rollout can be
no longer than what the teacher was trained on (5 s for relic-tiny), while a player streams for minutes. Here
the student streams ``L`` blocks of a long sample (``data.seconds``, e.g. 20 s) through the runtime's compressed
cache exactly as in a stream, and the real and fake scores judge a **window** of ``W`` latents ``[k, k + W)`` of
it, drawn anew for every rollout, cut the way the data pipeline cuts a training window that starts at video
frame ``s = 4(k − 1)``:

* latent 0, the window's clean first latent: :func:`relic.data.start_image.encode_start_image` of frame ``s``,
  the last frame of the generated latent ``k − 1`` decoded by the autoencoder -- the function ``relic data
  encode`` applies to frame ``s`` of a real clip and the runtime to a start image (:func:`anchor_latent`);
* the actions: the static row, then video frames ``s + 1 .. s + 4W`` (each row is one frame-to-frame step,
  so a window's rows are a slice of the long sample's);
* the poses: those actions integrated from the identity (Algorithm 1's inverse, Eq. 3, as
  :class:`relic.data.dataset.ClipDataset` does for every sample), one per latent -- poses relative to frame
  ``s`` in units of the clip's d̄.

So the teacher sees a window of the student's stream as it saw windows of real clips in training (a test
compares with the dataset's own window at ``s``). Only the window's blocks get the DMD gradient; the blocks
before it are its context, written to the cache without gradient as always, and the window's first latent,
like a clip's, gets none. With ``k = 1`` and ``W = L`` the window is the whole rollout and this is plain DMD.

Shapes: latents (b c 1+L h w), actions (b 1+4L 13), R (b 1+L 3 3), P (b 1+L 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from relic.camera.actions import integrate
from relic.data.dataset import segment_frames
from relic.data.start_image import encode_start_image
from relic.errors import UserError
from relic.runtime.stream import to_uint8
from relic.training.batches import LatentBatch


def window_latents(window_seconds: float, fps: float = 16.0, temporal_factor: int = 4) -> int:
    """Latents after the first in a window of ``window_seconds`` (as a ``data.seconds`` sample has)."""
    return (segment_frames(window_seconds, fps, temporal_factor) - 1) // temporal_factor


def check_window(window: int, num_latents: int, frames_per_block: int) -> None:
    """A UserError unless a window of ``window`` latents fits ``num_latents`` (after the first) in whole blocks."""
    if window < frames_per_block or window % frames_per_block or window > num_latents:
        raise UserError(f"dmd.window_seconds gives {window} latents: it must be a multiple of the "
                        f"{frames_per_block}-latent block and at most the rollout's {num_latents} latents "
                        f"(data.seconds)")


def draw_window(num_blocks: int, window_blocks: int, generator: torch.Generator) -> int:
    """The window's first block j, uniform over 0 .. num_blocks − window_blocks (one draw); its first latent is
    k = 1 + j·n."""
    return int(torch.randint(0, num_blocks - window_blocks + 1, (), generator=generator))


@torch.no_grad()
def anchor_frame(vae, latents: torch.Tensor, k: int) -> torch.Tensor:
    """Video frame 4(k − 1), the last frame of latent k − 1 (k ≥ 1), decoded from ``latents`` (b c f h w).

    A :class:`relic.models.pooled_vae.PooledVAE` decodes latent i from latents i and i − 1 alone (exactly, by
    construction), so two latents suffice; any other autoencoder decodes the whole prefix 0 .. k − 1. Returns
    (b 3 1 H W) in [-1, 1].
    """
    if k < 1 or k > latents.shape[2]:
        raise ValueError(f"anchor latent k={k} is outside 1..{latents.shape[2]}")
    z = latents.to(next(vae.parameters()).dtype)
    if hasattr(vae, "decode_latents") and k >= 2:
        frames = vae.decode_latents(z[:, :, k - 1:k], z[:, :, k - 2:k - 1])
    else:
        frames = vae.decode(z[:, :, :k])
    return frames[:, :, -1:]


@torch.no_grad()
def anchor_latent(vae, latents: torch.Tensor, k: int) -> torch.Tensor:
    """The window's clean first latent (b c 1 h w): latent 0 itself when k = 1, else the start-image latent of
    frame 4(k − 1) (:func:`anchor_frame`, rounded to uint8 as an image, then
    :func:`relic.data.start_image.encode_start_image` one sample at a time, as the runtime and the latent
    cache)."""
    if k == 1:
        return latents[:, :, :1].clone()
    frames = anchor_frame(vae, latents, k)
    h, w = frames.shape[-2:]
    out = [encode_start_image(vae, to_uint8(frames[i:i + 1])[0], h, w) for i in range(frames.shape[0])]
    return torch.cat(out).to(latents)


def window_conditioning(actions: torch.Tensor, k: int, window: int, temporal_factor: int = 4
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Actions (b 1+4W 13) and per-latent poses (b 1+W 3 3), (b 1+W 3) of the window of ``window`` latents
    starting at latent k, from the long sample's per-frame ``actions`` (b F 13): the static row 0, then frames
    4(k−1)+1 .. 4(k−1)+4W; poses integrated from the identity (float64, as the dataset does), one per latent."""
    s = temporal_factor * (k - 1)
    stop = s + 1 + temporal_factor * window
    if k < 1 or stop > actions.shape[1]:
        raise ValueError(f"window of {window} latents at latent {k} needs frames up to {stop - 1}, "
                         f"the sample has {actions.shape[1]}")
    a = torch.cat([actions[:, :1], actions[:, s + 1:stop]], dim=1)
    Rs, Ps = [], []
    for i in range(a.shape[0]):
        R, P = integrate(a[i].detach().double().cpu().numpy(), 1.0)
        Rs.append(R[::temporal_factor])
        Ps.append(P[::temporal_factor])
    to = dict(dtype=actions.dtype, device=actions.device)
    return a, torch.as_tensor(np.stack(Rs), **to), torch.as_tensor(np.stack(Ps), **to)


@dataclass
class Window:
    """A scored window: its first latent index k, its length W (latents) and the re-anchored batch."""

    k: int
    size: int
    batch: LatentBatch                                # latents (b c 1+W h w): anchor + the window's latents

    def scatter(self, grad: torch.Tensor, num_latents: int) -> torch.Tensor:
        """The window batch's gradient (b c 1+W h w) as the rollout's (b c num_latents h w): zero outside the
        window and at the anchor."""
        full = grad.new_zeros((*grad.shape[:2], num_latents, *grad.shape[3:]))
        full[:, :, self.k:self.k + self.size] = grad[:, :, 1:]
        return full


def cut_window(vae, latents: torch.Tensor, long: LatentBatch, k: int, window: int) -> Window:
    """The window [k, k + window) of a rollout's ``latents`` (b c 1+L h w), conditioned on the long sample ``long``
    (its actions, poses and text), re-anchored as the data pipeline cuts a clip (module docstring)."""
    if k + window > latents.shape[2]:
        raise ValueError(f"window [{k}, {k + window}) is outside the rollout's {latents.shape[2]} latents")
    anchor = anchor_latent(vae, latents, k)
    a, R, P = window_conditioning(long.actions, k, window)
    x = torch.cat([anchor, latents[:, :, k:k + window]], dim=2)
    return Window(k, window, LatentBatch(x, a, R, P, long.text, long.text_mask, long.captions))


__all__ = ["window_latents", "check_window", "draw_window", "anchor_frame", "anchor_latent", "window_conditioning",
           "Window", "cut_window"]
