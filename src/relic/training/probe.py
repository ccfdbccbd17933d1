"""Does a DiT use its camera conditioning? (a training diagnostic for §4.1.2)

A denoiser that follows the commanded motion predicts the data better with the true actions than with the
mirrored ones (every action replaced by its opposite, :data:`relic.camera.OPPOSITE`, poses re-integrated) or
with none (all static, identity poses). :func:`action_sensitivity` measures that on fixed batches: the
relative increase of the image-to-video flow-matching loss (:func:`relic.training.losses.flow_matching_loss`)
under each counterfactual, with the same noise and noise levels. 0 means the conditioning is ignored (e.g. the
zero-initialized encoders of a fresh model); the teacher of a controllable model shows a clearly positive
``mirror`` gap. The gap of all motions mirrored at once is dominated by the commonest (pans), so the probe also
mirrors each axis alone (``mirror:dolly``, … :data:`AXES`) on just the windows that move along it: round 6's
teacher read pans, trucks and tilts and ignored dolly and roll entirely, which the joint gap did not show.
It is a statement about the training batches, not about held-out scenes — ``relic eval``'s
action suite measures that on generated video.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from relic.camera import ACTION_NAMES, OPPOSITE, STATIC, integrate
from relic.training.batches import LatentBatch, latent_poses
from relic.training.losses import flow_matching_loss

VARIANTS = ("true", "mirror", "static")
AXES = ("dolly", "truck", "pedestal", "tilt", "pan", "roll")      # each a pair of opposite actions


def axis_actions(axis: str) -> tuple[int, int]:
    """The two action indices of ``axis`` (:data:`AXES`), e.g. ``dolly`` -> (dolly_in, dolly_out)."""
    idx = tuple(i for i, n in enumerate(ACTION_NAMES[:STATIC]) if n.split("_")[0] == axis)
    if len(idx) != 2:
        raise ValueError(f"unknown axis {axis!r}; expected one of {', '.join(AXES)}")
    return idx


def axis_motion(batch: LatentBatch, axis: str) -> torch.Tensor:
    """(b,) mean |action| per video frame along ``axis`` (both directions; row 0 excluded)."""
    return batch.actions[:, 1:, list(axis_actions(axis))].abs().sum(-1).mean(1)


def counterfactual(batch: LatentBatch, kind: str) -> LatentBatch:
    """The batch with its actions replaced (``mirror``: each by its opposite; ``mirror:<axis>``: only that
    axis's two exchanged, :data:`AXES`; ``static``: none) and its per-latent poses re-integrated from them (eq. 3,
    units of d̄ as in the dataset); ``true`` returns it as is.

    actions (b F 13) -> (b F 13); R, P -> (b f 3 3), (b f 3).
    """
    if kind == "true":
        return batch
    a = batch.actions.clone()
    if kind == "mirror":
        a = a[..., list(OPPOSITE)]
    elif kind.startswith("mirror:"):
        i, j = axis_actions(kind.split(":", 1)[1])
        a[..., [i, j]] = batch.actions[..., [j, i]]
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


def rows(batch: LatentBatch, keep: torch.Tensor) -> LatentBatch:
    """The samples of ``batch`` where ``keep`` (b,) bool is True."""
    k = keep.nonzero().flatten()
    return LatentBatch(batch.latents[k], batch.actions[k], batch.R[k], batch.P[k], batch.text[k],
                       batch.text_mask[k], [batch.captions[i] for i in k.tolist()])


@torch.no_grad()
def action_sensitivity(dit, batches: Iterable[LatentBatch], sigmas: Iterable[float] = (0.5, 0.7, 0.9),
                       seed: int = 0, axes: Iterable[str] = AXES, min_motion: float = 0.3) -> dict[str, float]:
    """Flow loss with true / mirrored / static conditioning and the relative gaps.

    Returns ``loss_true``, ``loss_mirror``, ``loss_static`` (means over batches and ``sigmas``) and
    ``mirror_gap`` = loss_mirror / loss_true − 1, ``static_gap`` likewise; per axis of ``axes``, over the
    windows that move along it (:func:`axis_motion` ≥ ``min_motion``, same noise), ``mirror_gap/<axis>`` =
    loss with that axis mirrored / true − 1 and ``windows/<axis>`` their count (the gap is absent without any).
    """
    g = torch.Generator().manual_seed(seed)
    axes = tuple(axes)
    losses: dict[str, list[float]] = {k: [] for k in VARIANTS}
    per_axis: dict[str, dict[str, list[float]]] = {a: {"true": [], "mirror": []} for a in axes}
    count = {a: 0 for a in axes}
    for batch in batches:
        variants = {k: counterfactual(batch, k) for k in VARIANTS}
        moving = {a: axis_motion(batch, a) >= min_motion for a in axes}
        sub = {a: (rows(batch, m), rows(counterfactual(batch, f"mirror:{a}"), m)) for a, m in moving.items()
               if m.any()}
        for a, m in moving.items():
            count[a] += int(m.sum())
        for s in sigmas:
            sigma = torch.full((batch.latents.shape[0],), float(s))
            noise = torch.randn(batch.latents.shape, generator=g)
            for k, b in variants.items():
                losses[k].append(float(flow_matching_loss(dit, b, sigma, noise)))
            for a, (true, mirror) in sub.items():
                m = moving[a]
                for k, b in (("true", true), ("mirror", mirror)):
                    per_axis[a][k].append(float(flow_matching_loss(dit, b, sigma[m], noise[m])) * int(m.sum()))
    out = {f"loss_{k}": float(np.mean(v)) for k, v in losses.items()}
    out["mirror_gap"] = out["loss_mirror"] / out["loss_true"] - 1.0
    out["static_gap"] = out["loss_static"] / out["loss_true"] - 1.0
    for a in axes:
        out[f"windows/{a}"] = float(count[a])
        if per_axis[a]["true"]:
            out[f"mirror_gap/{a}"] = sum(per_axis[a]["mirror"]) / sum(per_axis[a]["true"]) - 1.0
    return out
