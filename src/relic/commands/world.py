"""``relic world …``: render clip datasets, render one view, plot dataset statistics."""

from __future__ import annotations

import argparse

from relic.commands import add_group


def register(subparsers) -> None:
    _, sub = add_group(subparsers, "world", "The procedural 3D world: render clip datasets, views and statistics.")

    p = sub.add_parser("render", help="Render clip directories (video.mp4, cameras.json, caption.txt, ...).",
                       description="Render N clips of procedural scenes flown by the simulated operator. "
                                   "Deterministic per seed; resumable (complete clips are skipped).")
    p.add_argument("--out", required=True, help="output directory (clip_000000, clip_000001, ...)")
    p.add_argument("--clips", type=int, required=True, help="number of clips")
    p.add_argument("--seconds", type=float, required=True, help="seconds per clip")
    p.add_argument("--size", default="128", help="frame size: 128 (square) or WxH such as 224x128; even")
    p.add_argument("--fps", type=float, default=16.0, help="frames per second (default 16)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--depth", action="store_true", help="also write depth.npz")
    p.add_argument("--operator-preset", default="default",
                   help="the simulated camera operator: default or roll (rolls in half the segments, "
                        "up to 40 deg/s and +-60 deg; docs/world.md)")
    p.add_argument("--operator", action="append", default=[], metavar="KEY=VALUE",
                   help="override one operator field, e.g. roll_prob=0.3 or roll_speed=[8,40]; repeatable")
    p.set_defaults(func=_render)

    p = sub.add_parser("view", help="Render one image of a scene (a start image for the demo).",
                       description="Render one image of the scene of --seed from the operator's start pose or --pose.")
    p.add_argument("--seed", type=int, required=True, help="scene seed")
    p.add_argument("--out", required=True, help="output image (.png or .jpg)")
    p.add_argument("--size", default="224x128", help="image size, 128 or WxH (default 224x128)")
    p.add_argument("--family", choices=["indoor", "outdoor"], default=None, help="scene family (default: from seed)")
    p.add_argument("--pose", default=None,
                   help="x,y,z,heading,pitch[,roll]: position in metres and angles in degrees "
                        "(heading counter-clockwise from +x, pitch up); default: the operator's start pose")
    p.set_defaults(func=_view)

    p = sub.add_parser("stats", help="Plot clip durations and the action distribution of a dataset.",
                       description="Histogram of clip durations and the 13-DoF action distribution "
                                   "(Algorithm 1) of the clips under DIR.")
    p.add_argument("dir", help="dataset directory")
    p.add_argument("--out", required=True, help="output image (stats.png)")
    p.add_argument("--json", default=None, help="also write the numbers as JSON")
    p.set_defaults(func=_stats)


def _positive(name: str, value: float) -> None:
    from relic.errors import UserError

    if not (value > 0):
        raise UserError(f"--{name} must be positive, got {value}")


def _size(text: str):
    from relic.errors import UserError
    from relic.world.writer import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise UserError(f"--size: {e}") from None


def operator_config(preset: str, overrides: list[str]):
    """``--operator-preset`` and ``--operator KEY=VALUE`` overrides -> a checked OperatorConfig (UserError if bad)."""
    import dataclasses

    from relic.config import config_from_dict
    from relic.errors import UserError
    from relic.training.config import parse_override
    from relic.world.operator import OPERATOR_PRESETS, OperatorConfig

    if preset not in OPERATOR_PRESETS:
        raise UserError(f"--operator-preset must be one of {', '.join(OPERATOR_PRESETS)}, got {preset!r}")
    fields = dataclasses.asdict(OPERATOR_PRESETS[preset])
    for text in overrides:
        keys, value = parse_override(text)
        name = ".".join(keys)
        if name not in fields:
            raise UserError(f"--operator {text!r}: unknown field {name!r} (fields: {', '.join(fields)})")
        want = tuple if isinstance(fields[name], tuple) else float
        ok = (isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)
              if want is tuple else isinstance(value, (int, float)) and not isinstance(value, bool))
        if not ok:
            raise UserError(f"--operator {text!r}: {name} must be "
                            + ("a pair [min, max]" if want is tuple else "a number"))
        fields[name] = [float(v) for v in value] if want is tuple else float(value)
    cfg = config_from_dict(OperatorConfig, fields, "--operator")
    try:
        return cfg.check()
    except ValueError as e:
        raise UserError(f"--operator: {e}") from None


def _render(args: argparse.Namespace) -> int:
    import math

    from relic.world.writer import render_dataset

    size = _size(args.size)
    for name in ("clips", "seconds", "fps", "workers"):
        _positive(name, getattr(args, name))
    if not math.isfinite(args.seconds) or not math.isfinite(args.fps):
        _positive("seconds", float("nan"))
    if args.seconds * args.fps < 2:
        from relic.errors import UserError
        raise UserError(f"--seconds x --fps must give at least 2 frames, got {args.seconds * args.fps:g}")
    operator = operator_config(args.operator_preset, args.operator)
    render_dataset(args.out, args.clips, args.seconds, size, args.fps, args.seed, args.workers, args.depth,
                   operator=operator)
    print(f"{args.clips} clips in {args.out}")
    return 0


def _view(args: argparse.Namespace) -> int:
    import numpy as np

    from relic.errors import UserError
    from relic.world.operator import Operator, intrinsics_for, pose_rotation
    from relic.world.scenes import make_scene
    from relic.world.writer import get_renderer

    w, h = _size(args.size)
    if not args.out.lower().endswith((".png", ".jpg", ".jpeg")):
        raise UserError("--out must end in .png or .jpg", source=args.out)
    scene = make_scene(args.seed, args.family)
    if args.pose:
        try:
            vals = [float(v) for v in args.pose.split(",")]
        except ValueError:
            raise UserError(f"--pose must be numbers x,y,z,heading,pitch[,roll], got {args.pose!r}") from None
        if len(vals) not in (5, 6) or not all(np.isfinite(vals)):
            raise UserError(f"--pose needs 5 or 6 finite numbers x,y,z,heading,pitch[,roll], got {args.pose!r}")
        state = np.array(vals + [0.0] * (6 - len(vals)))
    else:
        state = Operator(scene, np.random.default_rng(np.random.SeedSequence([args.seed, 1]))).start_state()
    fx, fy, cx, cy = intrinsics_for(w, h)
    K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    r = get_renderer(w, h)
    r.set_scene(scene)
    img = r.render(K, pose_rotation(state[3], state[4], state[5]), state[:3])
    from PIL import Image

    from relic.fileio import atomic_path

    with atomic_path(args.out) as tmp:
        Image.fromarray(img).save(tmp, format="PNG" if args.out.lower().endswith(".png") else "JPEG")
    print(f"{scene.family} scene {args.seed}: {scene.caption}")
    print(f"pose x,y,z,heading,pitch,roll = {','.join(f'{v:.3f}' for v in state)} -> {args.out}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from relic.world.stats import dataset_stats, plot_stats

    stats = dataset_stats(args.dir)
    plot_stats(stats, args.out)
    if args.json:
        from relic.fileio import write_json_atomic

        write_json_atomic(args.json, stats)
    print(f"{stats['clips']} clips, {stats['total_seconds']:.1f} s -> {args.out}")
    return 0
