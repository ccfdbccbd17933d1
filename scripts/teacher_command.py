"""Which motions does a teacher read? The conditioning probe per σ and per motion axis, on its training windows.

For ``--batches`` batches of a teacher stage's data (its YAML; ``--seconds`` windows, normalized latents, latent 0
the single-image latent) this runs :func:`relic.training.probe.action_sensitivity` at each σ of ``--sigmas``
alone: the relative increase of the flow loss (equally of the x0 error, which is σ times the velocity error)
when every action is mirrored, when the command is static, and when one axis alone is mirrored (dolly in ↔ out,
truck, pedestal, tilt, pan, roll; poses re-integrated) on the windows that move along that axis. A gap near 0
means the teacher ignores that part of the command; the σ → 1 rows matter most, where the noisy latents no
longer show the motion. It also prints how much of each motion the windows carry (mean |action| per frame).

    python scripts/teacher_command.py --teacher weights/stages/teacher_r6 --config configs/tiny/teacher_r6.yaml
"""

from __future__ import annotations

import argparse
import json

import torch

from relic.eval.direction import MOTIONS
from relic.training.probe import AXES, action_sensitivity
from relic.training.teacher import teacher_and_windows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", required=True, help="teacher DiT directory")
    p.add_argument("--config", required=True, help="the teacher stage's YAML: its data")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--batches", type=int, default=10)
    p.add_argument("--first-batch", type=int, default=10_000, help="index of the first data batch")
    p.add_argument("--sigmas", default="0.5,0.8,1.0")
    p.add_argument("--min-motion", type=float, default=0.3,
                   help="a window moves along an axis when its mean |action| per video frame there is at least this")
    p.add_argument("--json", default=None, help="write the table here")
    args = p.parse_args()
    dit, data = teacher_and_windows(args.teacher, args.config, args.seconds)
    batches = [data.batch(args.first_batch + i, 0, 1) for i in range(args.batches)]
    table = {}
    for s in [float(x) for x in args.sigmas.split(",")]:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            table[s] = action_sensitivity(dit, batches, sigmas=(s,), min_motion=args.min_motion)
    cols = ["mirror_gap", "static_gap", *[f"mirror_gap/{a}" for a in AXES]]
    print("| σ | " + " | ".join(c.replace("mirror_gap/", "mirror ") for c in cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for s, out in table.items():
        print(f"| {s:g} | " + " | ".join(f"{out[c]:+.4f}" if c in out else "–" for c in cols) + " |")
    first = next(iter(table.values()))
    print("windows per axis: " + ", ".join(f"{a} {int(first[f'windows/{a}'])}" for a in AXES))
    a = torch.cat([b.actions[:, 1:, :len(MOTIONS)] for b in batches]).abs().mean((0, 1)).tolist()
    print("mean |action| per video frame: " + ", ".join(f"{m} {x:.3f}" for m, x in zip(MOTIONS, a)))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"by_sigma": {str(s): out for s, out in table.items()},
                       "mean_abs_action": dict(zip(MOTIONS, a))}, fh, indent=1)


if __name__ == "__main__":
    main()
