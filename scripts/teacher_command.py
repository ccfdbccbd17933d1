"""Does a teacher use the command? Its x0 error on training windows with the true, no and another window's command.

For ``--batches`` batches of a teacher stage's data (its YAML; ``--seconds`` windows, normalized latents, latent 0
the single-image latent) and one noise per batch, at each σ of ``--sigmas`` the teacher predicts x0 from the data's
noisy latents (latent 0 clean, its timestep 0, as in training) three times:

* ``true``: the window's own actions and poses;
* ``none``: no actions and no pose (the command-dropout condition);
* ``swapped``: the next window's actions and poses (the batch rolled by one), a wrong but plausible command;
* ``flip:<motion>``: each opposite pair (dolly in/out, truck, pedestal, tilt, pan, roll) exchanged in the actions
  and the poses re-integrated (eq. 3), the rest of the command kept: which motions the teacher reads. Windows
  without that motion do not change, so its gap is diluted by how often the data has it (printed below).

The x0 MSE over latents 1.. (normalized latent units) per condition and σ, and the gaps ``none − true`` and
``swapped − true``: a teacher that follows the command loses accuracy without it, most at high σ where the
noisy latents no longer show the motion; gaps near 0 mean the command is ignored. Each flip's gap is also
printed over just the windows that have that motion (``--min-motion``), where it is not diluted. It also prints how much of
each of the 12 motions the windows' actions carry (mean |value| per video frame), i.e. what the data teaches.

    python scripts/teacher_command.py --teacher weights/stages/teacher_r6 --config configs/tiny/teacher_r6.yaml
"""

from __future__ import annotations

import argparse
import json

import torch

import numpy as np

from relic.camera.actions import integrate
from relic.eval.direction import MOTIONS
from relic.training.teacher import teacher_and_windows

CONDITIONS = ("true", "none", "swapped")
PAIRS = (("dolly_in", "dolly_out"), ("truck_left", "truck_right"), ("pedestal_up", "pedestal_down"),
         ("tilt_up", "tilt_down"), ("pan_left", "pan_right"), ("roll_cw", "roll_ccw"))


def flipped(actions: torch.Tensor, pair: tuple[str, str], temporal: int = 4):
    """(b F 13) actions with the two motions of ``pair`` exchanged -> (actions, R (b f 3 3), P (b f 3)) per latent."""
    i, j = MOTIONS.index(pair[0]), MOTIONS.index(pair[1])
    a = actions.clone()
    a[..., [i, j]] = actions[..., [j, i]]
    Rs, Ps = zip(*(integrate(x.double().numpy(), 1.0) for x in a))
    R = torch.as_tensor(np.stack(Rs)[:, ::temporal], dtype=torch.float32)
    P = torch.as_tensor(np.stack(Ps)[:, ::temporal], dtype=torch.float32)
    return a, R, P


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", required=True, help="teacher DiT directory")
    p.add_argument("--config", required=True, help="the teacher stage's YAML: its data")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--batches", type=int, default=6)
    p.add_argument("--first-batch", type=int, default=10_000, help="index of the first data batch")
    p.add_argument("--sigmas", default="0.2,0.5,0.8,0.95,1.0")
    p.add_argument("--min-motion", type=float, default=0.3,
                   help="a window has a motion when its pair's mean |value| per video frame is at least this")
    p.add_argument("--json", default=None, help="write the table here")
    args = p.parse_args()
    dit, data = teacher_and_windows(args.teacher, args.config, args.seconds)
    sigmas = [float(s) for s in args.sigmas.split(",")]
    conds = CONDITIONS + tuple(f"flip:{a.split('_')[0]}" for a, _ in PAIRS)
    err = {c: {s: 0.0 for s in sigmas} for c in conds}
    # flip gaps on the windows that have the motion (mean |pair| >= --min-motion per video frame): undiluted
    gaps = {c: {s: [] for s in sigmas} for c in conds if c.startswith("flip:")}
    motion = torch.zeros(len(MOTIONS))
    frames = 0
    for i in range(args.batches):
        batch = data.batch(args.first_batch + i, 0, 1)
        x0 = batch.latents.float()
        b, f = x0.shape[0], x0.shape[2]
        a = batch.actions.float()
        motion += a[:, 1:, :len(MOTIONS)].abs().sum((0, 1))
        frames += a[:, 1:].shape[0] * a[:, 1:].shape[1]
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(i))
        roll = [(k + 1) % b for k in range(b)]
        _, R_own, P_own = flipped(batch.actions, ("dolly_in", "dolly_in"))       # nothing exchanged: its own poses
        assert torch.allclose(R_own, batch.R.float(), atol=1e-4) and torch.allclose(P_own, batch.P.float(), atol=1e-3)
        cmds = {"true": (batch.actions, batch.R, batch.P), "none": (None, None, None),
                "swapped": (batch.actions[roll], batch.R[roll], batch.P[roll]),
                **{f"flip:{pr[0].split('_')[0]}": flipped(batch.actions, pr) for pr in PAIRS}}
        for s in sigmas:
            x = (1 - s) * x0 + s * noise
            x[:, :, 0] = x0[:, :, 0]
            t = torch.full((b, f), s * 1000.0)
            t[:, 0] = 0.0
            per = {}
            for c, (act, R, P) in cmds.items():
                with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
                    v = dit(x, t, batch.text, batch.text_mask, act, R, P).float()
                pred = x - s * v
                per[c] = ((pred - x0)[:, :, 1:] ** 2).mean((1, 2, 3, 4))              # (b,)
                err[c][s] += float(per[c].mean()) / args.batches
            for pr in PAIRS:
                c = f"flip:{pr[0].split('_')[0]}"
                has = a[:, 1:, [MOTIONS.index(pr[0]), MOTIONS.index(pr[1])]].abs().sum(-1).mean(1) >= args.min_motion
                gaps[c][s] += (per[c] - per["true"])[has].tolist()
    print("| σ | true | " + " | ".join(f"{c} − true" for c in conds[1:]) + " |")
    print("|---" * (len(conds) + 1) + "|")
    for s in sigmas:
        e = [err[c][s] for c in conds]
        print(f"| {s:g} | {e[0]:.4f} | " + " | ".join(f"{x - e[0]:+.4f}" for x in e[1:]) + " |")
    print("on the windows with the motion (mean |pair| >= {:g} per frame): flip − true, mean (windows)".format(
        args.min_motion))
    for c, d in gaps.items():
        print(f"  {c:14s} " + " | ".join(f"σ {s:g}: {np.mean(v) if v else float('nan'):+.4f} ({len(v)})"
                                       for s, v in d.items()))
    per = (motion / max(frames, 1)).tolist()
    print("mean |action| per video frame: " + ", ".join(f"{m} {x:.3f}" for m, x in zip(MOTIONS, per)))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"x0_mse": {c: {str(s): v for s, v in d.items()} for c, d in err.items()},
                       "flip_gap_on_windows_with_motion": {c: {str(s): (float(np.mean(v)) if v else None)
                                                               for s, v in d.items()} for c, d in gaps.items()},
                       "mean_abs_action": dict(zip(MOTIONS, per))}, fh, indent=1)


if __name__ == "__main__":
    main()
