"""``relic data …``: annotate poses with actions, integrate actions to poses (and the data pipeline)."""

from __future__ import annotations

import argparse

from relic.commands import add_group


def register(subparsers) -> None:
    _, sub = add_group(subparsers, "data", "Data tools: pose <-> action conversion, curation filters, latent cache.")

    p = sub.add_parser("annotate", help="Algorithm 1: camera poses -> per-frame 13-DoF actions (actions.json).",
                       description="Algorithm 1: read camera poses and write per-frame 13-DoF actions.")
    p.add_argument("--in", dest="inp", required=True, help="camera file (cameras.json, RealEstate10K txt or UE export)")
    p.add_argument("--format", choices=["re10k", "json", "ue"], default=None,
                   help="input format (guessed from the file when omitted)")
    p.add_argument("--out", required=True, help="output actions.json")
    p.set_defaults(func=_annotate)

    p = sub.add_parser("integrate", help="Eq. 3: actions.json -> absolute camera poses (cameras.json).",
                       description="Eq. 3: integrate per-frame actions into absolute camera poses.")
    p.add_argument("--in", dest="inp", required=True, help="actions.json")
    p.add_argument("--gamma", type=float, default=1.0, help="speed coefficient γ (default 1.0)")
    p.add_argument("--out", required=True, help="output cameras.json")
    p.add_argument("--size", default="128x128", help="image size WxH written to cameras.json (default 128x128)")
    p.add_argument("--focal", type=float, default=None, help="focal length in pixels (default: 90° horizontal FOV)")
    p.set_defaults(func=_integrate)


def _annotate(args: argparse.Namespace) -> int:
    from relic.camera import annotate
    from relic.camera.action_file import write_actions_json
    from relic.camera.io import read_trajectory

    traj = read_trajectory(args.inp, args.format)
    actions, d_bar = annotate(traj.R, traj.P)
    write_actions_json(args.out, actions, d_bar, traj.fps)
    print(f"annotated {len(traj)} frames (d̄ = {d_bar:.6g}) -> {args.out}")
    return 0


def _integrate(args: argparse.Namespace) -> int:
    import numpy as np

    from relic.camera import Trajectory, integrate
    from relic.camera.action_file import read_actions_json
    from relic.camera.io import write_cameras_json
    from relic.errors import UserError

    actions, d_bar, fps = read_actions_json(args.inp)
    if not (np.isfinite(args.gamma) and args.gamma > 0):
        raise UserError(f"--gamma must be a positive number, got {args.gamma}")
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise UserError(f"--size must look like 128x128, got {args.size!r}") from None
    f = args.focal if args.focal else w / 2.0
    R, P = integrate(actions, d_bar, args.gamma)
    traj = Trajectory(R, P, np.arange(len(actions)) / fps, fps, w, h, (f, f, w / 2.0, h / 2.0))
    write_cameras_json(args.out, traj)
    print(f"integrated {len(actions)} frames (γ = {args.gamma}) -> {args.out}")
    return 0
