"""Does a DiT use its camera conditioning? (a training diagnostic for §4.1.2)

A denoiser that follows the commanded motion predicts the data better with the true actions than with the
mirrored ones (every action replaced by its opposite, :data:`relic.camera.OPPOSITE`, poses re-integrated) or
with none (all static, identity poses). :func:`action_sensitivity` measures that on fixed batches: the
relative increase of the image-to-video flow-matching loss (:func:`relic.training.losses.flow_matching_loss`)
under each counterfactual, with the same noise and noise levels. 0 means the conditioning is ignored (e.g. the
zero-initialized encoders of a fresh model); the teacher of a controllable model shows a clearly positive
``mirror`` gap. It is a statement about the training batches, not about held-out scenes — ``relic eval``'s
action suite measures that on generated video.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from relic.camera import OPPOSITE, STATIC, integrate
from relic.training.batches import LatentBatch, latent_poses
from relic.training.losses import flow_matching_loss

VARIANTS = ("true", "mirror", "static")


def counterfactual(batch: LatentBatch, kind: str) -> LatentBatch:
    """The batch with its actions replaced (``mirror``: each by its opposite; ``static``: none) and its
    per-latent poses re-integrated from them (eq. 3, units of d̄ as in the dataset); ``true`` returns it as is.

    actions (b F 13) -> (b F 13); R, P -> (b f 3 3), (b f 3).
    """
    if kind == "true":
        return batch
    a = batch.actions.clone()
    if kind == "mirror":
        a = a[..., list(OPPOSITE)]
    elif kind == "static":
        a.zero_()
        a[..., STATIC] = 1.0
    else:
        raise ValueError(f"unknown counterfactual {kind!r}; expected one of {VARIANTS}")
    poses = [integrate(x.double().numpy(), 1.0) for x in a]
    R = torch.from_numpy(np.stack([r for r, _ in poses])).to(batch.R.dtype)
    P = torch.from_numpy(np.stack([p for _, p in poses])).to(batch.P.dtype)
    R, P = latent_poses(R, P)
    return LatentBatch(batch.latents, a, R, P, batch.text, batch.text_mask, batch.captions)


@torch.no_grad()
def action_sensitivity(dit, batches: Iterable[LatentBatch], sigmas: Iterable[float] = (0.5, 0.7, 0.9),
                       seed: int = 0) -> dict[str, float]:
    """Flow loss with true / mirrored / static conditioning and the relative gaps.

    Returns ``loss_true``, ``loss_mirror``, ``loss_static`` (means over batches and ``sigmas``) and
    ``mirror_gap`` = loss_mirror / loss_true − 1, ``static_gap`` likewise.
    """
    g = torch.Generator().manual_seed(seed)
    losses: dict[str, list[float]] = {k: [] for k in VARIANTS}
    for batch in batches:
        variants = {k: counterfactual(batch, k) for k in VARIANTS}
        for s in sigmas:
            sigma = torch.full((batch.latents.shape[0],), float(s))
            noise = torch.randn(batch.latents.shape, generator=g)
            for k, b in variants.items():
                losses[k].append(float(flow_matching_loss(dit, b, sigma, noise)))
    out = {f"loss_{k}": float(np.mean(v)) for k, v in losses.items()}
    out["mirror_gap"] = out["loss_mirror"] / out["loss_true"] - 1.0
    out["static_gap"] = out["loss_static"] / out["loss_true"] - 1.0
    return out
