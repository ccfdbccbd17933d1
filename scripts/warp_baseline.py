"""The trivial baseline per motion axis: how much does moving the start latent the commanded way buy?

For ``--batches`` batches of a teacher stage's windows (its YAML; ``--seconds`` long), on the windows that move
along each axis (mean |action| ≥ ``--min-motion``): the RMS error of the last latent against the start latent
(frozen), against the start latent warped the better way (zoom in or out for dolly, horizontal shift for pan
and truck, rotation for roll; the direction and amount that fit the window best, with hindsight: an upper bound
for warping alone), and warped the opposite way (its best amount). The difference between the two is what
knowing the motion's direction is worth to a model that can only move the start frame.

The second table asks what a model that must predict x0 at σ = 1 can do with the direction when it does not
know the amount: its best (least-squares) guess with only the start frame to move is the AVERAGE of the warps
over the amounts the axis shows in the data (here the hindsight amounts of all the axis' windows). Printed:
the RMS difference between that average warped the window's way and warped the opposite way — the direction's
effect on such an x0, comparable to ``scripts/command_x0.py``'s "command changes x0 by" at σ = 1 — and the
two averages' errors. An axis whose two averages hardly differ gives a σ = 1 prediction no direction to lay
out, however well the model reads the command.

    python scripts/warp_baseline.py --config configs/tiny/teacher_r6.yaml
"""

from __future__ import annotations

import argparse
import math

import torch
import torch.nn.functional as F

from relic.training.probe import axis_motion
from relic.training.teacher import add_window_args, window_batches

SPEC = {"dolly": ("zoom", (1.05, 1.1, 1.2, 1.35, 1.5, 1.75, 2.0)),
        "pan": ("shift", (0.5, 1, 2, 3, 4, 6, 8, 10)),
        "truck": ("shift", (0.5, 1, 2, 3, 4, 6, 8)),
        "roll": ("rotate", (2, 4, 8, 12, 20, 30))}


def warp(x: torch.Tensor, kind: str, p: float) -> torch.Tensor:
    """x (n c h w) zoomed by p, shifted by p latent pixels, or rotated by p degrees about the centre."""
    n, _, h, w = x.shape
    if kind == "zoom":
        theta = [[1 / p, 0, 0], [0, 1 / p, 0]]
    elif kind == "shift":
        theta = [[1, 0, 2 * p / w], [0, 1, 0]]
    else:
        a, ar = math.radians(p), w / h
        theta = [[math.cos(a), -math.sin(a) / ar, 0], [math.sin(a) * ar, math.cos(a), 0]]
    grid = F.affine_grid(torch.tensor(theta).expand(n, 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def candidates(kind: str, params) -> list[tuple[float, int]]:
    """(warp parameter, direction ±1) pairs: zooms in and out, shifts and rotations both ways."""
    if kind == "zoom":
        return [(p, 1) for p in params] + [(1 / p, -1) for p in params]
    return [(s * p, s) for p in params for s in (1, -1)]


def signed(kind: str, magnitude: float, sign: int) -> float:
    """The warp parameter of an amount (zoom factor ≥ 1, shift, degrees ≥ 0) made the ``sign`` way."""
    if kind == "zoom":
        return magnitude if sign > 0 else 1 / magnitude
    return sign * magnitude


def average_warp(x: torch.Tensor, kind: str, magnitudes: list[float], sign: int) -> torch.Tensor:
    """(n c h w) -> the mean of x warped the ``sign`` way by every amount in ``magnitudes``."""
    return torch.stack([warp(x, kind, signed(kind, q, sign)) for q in magnitudes]).mean(0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_window_args(p)
    args = p.parse_args()
    batches = window_batches(args)
    print("| axis (windows) | frozen | best warp | best warp the opposite way |")
    print("|---|---|---|---|")
    windows: dict[str, list] = {}
    for axis, (kind, params) in SPEC.items():
        rows, windows[axis] = [], []
        for b in batches:
            m = axis_motion(b, axis) >= args.min_motion
            for x0, xt in zip(b.latents[m, :, 0].float(), b.latents[m, :, -1].float()):
                err = [(float((warp(x0[None], kind, q) - xt).pow(2).mean().sqrt()), s, q)
                       for q, s in candidates(kind, params)]
                best, sign, q = min(err)
                other = min(e for e, s, _ in err if s == -sign)
                rows.append((float((x0 - xt).pow(2).mean().sqrt()), best, other))
                windows[axis].append((x0, xt, sign, 1 / q if kind == "zoom" and sign < 0 else abs(q)))
        if not rows:
            print(f"| {axis} (0) | – | – | – |")
            continue
        f, b_, o = (sum(r[k] for r in rows) / len(rows) for k in range(3))
        print(f"| {axis} ({len(rows)}) | {f:.3f} | {b_:.3f} ({100 * (b_ / f - 1):+.1f} %) | "
              f"{o:.3f} ({100 * (o / f - 1):+.1f} %) |")
    print()
    print("| axis (windows) | amounts | the way vs the opposite way: x0 differs by | error the way "
          "| the opposite way |")
    print("|---|---|---|---|---|")
    for axis, (kind, _) in SPEC.items():
        ws = windows[axis]
        if not ws:
            continue
        mags = sorted({w[3] for w in ws})
        acc = []
        for x0, xt, sign, _ in ws:
            same, opp = (average_warp(x0[None], kind, mags, s)[0] for s in (sign, -sign))
            rms = lambda z: float(z.pow(2).mean().sqrt())                      # noqa: E731
            acc.append((rms(same - opp), rms(same - xt), rms(opp - xt)))
        d, e, o = (sum(r[k] for r in acc) / len(acc) for k in range(3))
        print(f"| {axis} ({len(ws)}) | {', '.join(f'{q:g}' for q in mags)} | {d:.3f} | {e:.3f} | {o:.3f} |")


if __name__ == "__main__":
    main()
