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

    p = sub.add_parser("filter", help="Curation filters (§3.2): report kept / cut / rejected clips.",
                       description="Run the curation filters (camera motion, viewpoint stability, exposure, "
                                   "render quality) on every clip under DIR; print a markdown table and write it.")
    p.add_argument("dir", metavar="DIR", help="a clip directory, a directory of clips, or RealEstate10K txt+mp4")
    p.add_argument("--report", default=None, help="write the markdown table here (atomic)")
    p.add_argument("--json", default=None, help="write the verdicts (kept segments) as JSON here (atomic)")
    p.add_argument("--no-cut", action="store_true", help="reject flagged clips instead of cutting clean segments")
    p.add_argument("--min-segment", type=int, default=None, help="shortest clean segment kept, in frames (default 17)")
    p.set_defaults(func=_filter)

    p = sub.add_parser("encode", help="Latent cache: encode every clip once with the VAE (resumable).",
                       description="Encode every clip under DIR with the VAE into one safetensors file per clip. "
                                   "Clips already encoded with the same VAE are skipped.")
    p.add_argument("dir", metavar="DIR", help="a clip directory or a directory of clips")
    p.add_argument("--vae", required=True, help="VAE model directory (config.json + safetensors)")
    p.add_argument("--out", required=True, help="cache directory")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="storage dtype of the latents (default float32)")
    p.add_argument("--no-reverse", action="store_true",
                   help="skip the time-reversed latents (palindrome samples then need pixel mode)")
    p.add_argument("--chunk", type=int, default=8, help="latents encoded per VAE call (bounds memory; default 8)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"],
                   help="encoder arithmetic: fp32, or bf16 autocast (about 2x faster on CPU; default fp32)")
    p.set_defaults(func=_encode)


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


def _filter(args: argparse.Namespace) -> int:
    import dataclasses

    from tqdm import tqdm

    from relic.data.clips import list_clips
    from relic.data.filters import FilterConfig, filter_clip, report_markdown
    from relic.errors import UserError
    from relic.fileio import write_json_atomic, write_text_atomic

    cfg = FilterConfig()
    if args.no_cut:
        cfg = dataclasses.replace(cfg, cut=())
    if args.min_segment is not None:
        if args.min_segment < 2:
            raise UserError(f"--min-segment must be at least 2 frames, got {args.min_segment}")
        cfg = dataclasses.replace(cfg, min_segment_frames=args.min_segment)
    clips = list_clips(args.dir)
    if not clips:
        raise UserError("no complete clips found", source=args.dir)
    verdicts = [filter_clip(c, cfg) for c in tqdm(clips, desc="filter", unit="clip", disable=len(clips) < 2)]
    text = report_markdown(verdicts)
    print(text, end="")
    if args.report:
        write_text_atomic(args.report, text)
    if args.json:
        write_json_atomic(args.json, {"config": dataclasses.asdict(cfg), "clips": [v.to_dict() for v in verdicts]})
    return 0


def _encode(args: argparse.Namespace) -> int:
    from relic.data.clips import list_clips
    from relic.data.latents import encode_dataset
    from relic.errors import UserError

    if args.chunk < 1:
        raise UserError(f"--chunk must be at least 1, got {args.chunk}")
    clips = list_clips(args.dir)
    if not clips:
        raise UserError("no complete clips found", source=args.dir)
    done, skipped = encode_dataset(clips, args.vae, args.out, args.dtype, not args.no_reverse, args.chunk,
                                   precision=args.precision)
    print(f"encoded {done} clip(s), skipped {skipped} already cached -> {args.out}")
    return 0
