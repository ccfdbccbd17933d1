"""Warp the start latent by the COMMANDED pose: how much of the hindsight warp does a causal warp keep?

``scripts/warp_baseline.py`` picks each window's warp with hindsight. Here the warp comes from the window's own
pose (R, P of its last latent, relative to the first frame, P in units of d̄, exactly what the DiT is given): the
homography of a fronto-parallel plane at depth D in front of the first camera,
``x_k ~ K R (I − P e3ᵀ / D) K⁻¹ x_0`` (exact for pure rotations whatever D), applied to the start latent at latent
resolution (:func:`relic.models.conditioning.plane_warp`, what ``DiTConfig.warp_condition`` feeds the DiT). One D
for every window (printed for each of ``--depths``). Per axis: the last latent's RMS error frozen, warped by the
commanded pose, and warped by the pose with that axis mirrored (re-integrated as ``scripts/command_x0.py`` does); pixels the warp cannot fill keep the start latent.

    python scripts/pose_warp.py --config configs/tiny/teacher_r6.yaml
"""

from __future__ import annotations

import argparse

import torch

from relic.models.conditioning import plane_warp
from relic.training.probe import axis_motion, counterfactual, rows
from relic.training.teacher import add_window_args, window_batches


def last_warp(z0: torch.Tensor, batch, depth: float) -> tuple[torch.Tensor, torch.Tensor]:
    """z0 (n c h w) warped to the batch's last latent pose, the start latent where the warp has no source."""
    warped, mask = plane_warp(z0, batch.R[:, -1:], batch.P[:, -1:], depth)
    warped, mask = warped[:, :, 0], mask[:, :, 0]
    return warped + z0 * (1 - mask), mask


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_window_args(p)
    p.add_argument("--axes", default="dolly,pan,truck,roll")
    p.add_argument("--depths", default="32,64,128,256")
    args = p.parse_args()
    batches = window_batches(args)
    depths = [float(d) for d in args.depths.split(",")]
    rms = lambda z: z.pow(2).mean((1, 2, 3)).sqrt()                              # noqa: E731  (n,)
    print("| axis (windows) | D (d̄) | frozen | warped as commanded | warped with the axis mirrored | coverage |")
    print("|---|---|---|---|---|---|")
    for axis in args.axes.split(","):
        acc = {d: [] for d in depths}
        for b in batches:
            m = axis_motion(b, axis) >= args.min_motion
            if not m.any():
                continue
            true, mirror = rows(b, m), rows(counterfactual(b, f"mirror:{axis}"), m)
            z0, zt = true.latents[:, :, 0].float(), true.latents[:, :, -1].float()
            for d in depths:
                a, mask = last_warp(z0, true, d)
                c, _ = last_warp(z0, mirror, d)
                acc[d].append(torch.stack([rms(z0 - zt), rms(a - zt), rms(c - zt), mask.mean((1, 2, 3))], 1))
        for d in depths:
            if acc[d]:
                v = torch.cat(acc[d])
                f, a, c, cov = v.mean(0).tolist()
                print(f"| {axis} ({len(v)}) | {d:g} | {f:.3f} | {a:.3f} ({100 * (a / f - 1):+.1f} %) | "
                      f"{c:.3f} ({100 * (c / f - 1):+.1f} %) | {100 * cov:.0f} % |")


if __name__ == "__main__":
    main()
