"""``relic generate``: one image + a prompt + an action script -> an H.264 mp4, through StreamingSession.

Every input is checked before the model is loaded (image, action script and its length against
``--max-seconds``, output directory), so a bad flag is a one-line error that costs nothing and leaves nothing.
The run shows a tqdm progress bar (video frames) and ends with the start-up time (model load, start frame and
first block) and the steady-state speed (the blocks after the first) apart: on a short script the start-up
dominates and a single FPS figure would say little about the model.

Under torchrun (``torchrun --standalone --nproc-per-node 4 --no-python relic generate ...``) the ranks form one
Ulysses sequence-parallel group (paper §4.5): each holds 1/P of the tokens and of the KV cache; rank 0 writes the
video. Every rank then leaves the process group through :func:`relic.training.distributed.exit_process`
(:mod:`relic.cli`).
"""

from __future__ import annotations

import argparse

from relic.options import add_threads_argument
from relic.runtime.default import DEFAULT_MODEL_HELP

#: default --max-seconds: 5 minutes of video
MAX_SECONDS = 300.0


def register(subparsers) -> None:
    help_ = "Generate a video from an image, a prompt and an action script (streams block by block)."
    p = subparsers.add_parser("generate", help=help_, description=help_ + " Shows a progress bar, then the "
                              "start-up time and the steady-state FPS.")
    p.add_argument("--image", required=True, help="start image (PNG/JPEG/WebP)")
    p.add_argument("--prompt", required=True, help="text prompt")
    p.add_argument("--actions", required=True,
                   help='action script: tokens ITEM[+ITEM...][*N | *Ts], where *N holds the action for N video '
                        'frames and *Ts for T seconds; at 16 FPS "w*16" = "w*1s" = 1 s of dolly-in. E.g. '
                        '"w*2s left*8 a+up*4" (keys w a s d e q up down left right z x, action names, static; '
                        "see README, Actions and keys)")
    p.add_argument("--out", required=True, help="output .mp4 (H.264, yuv420p); its directory must exist")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", default=None, metavar="DIR",
                     help=f"model directory (config.json + safetensors; {DEFAULT_MODEL_HELP})")
    src.add_argument("--preset", default=None, metavar="NAME", help="preset name with random weights (e.g. relic-tiny)")
    p.add_argument("--max-seconds", type=float, default=MAX_SECONDS, metavar="S",
                   help=f"refuse an action script longer than S seconds of video (default {MAX_SECONDS:g}, "
                        "i.e. 5 minutes)")
    p.add_argument("--gamma", type=float, default=1.0, help="speed coefficient γ (default 1.0)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--decoder", choices=["tiny", "vae"], default="tiny", help="frame decoder (default tiny)")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                   help="compute precision (default auto: bf16 where the CPU has native bf16 kernels, else fp32)")
    p.add_argument("--quantize", choices=["int8", "fp8"], default=None,
                   help="weight-only quantization of the DiT blocks (default off)")
    add_threads_argument(p)
    p.set_defaults(func=_generate, _parser=p)


def source_fps(source: str) -> int:
    """Video frames per second of a model directory (its config.json) or a preset, read without loading
    any weights (16 when it cannot be read: loading the model then gives the error)."""
    import json
    from pathlib import Path

    from relic.config import PRESETS, get_preset

    if source in PRESETS:
        return int(get_preset(source).fps)
    try:
        fps = json.loads((Path(source) / "config.json").read_text(encoding="utf-8")).get("fps", 16)
        return int(fps) if int(fps) > 0 else 16
    except (OSError, ValueError, TypeError, AttributeError):
        return 16


def read_image(path_str: str):
    """The start image as uint8 RGB (h w 3), or a one-line error naming the file and what is wrong."""
    from pathlib import Path

    import cv2

    from relic.errors import UserError

    path = Path(path_str)
    if path.is_dir():
        raise UserError("is a directory, not an image file", source=str(path))
    if not path.is_file():
        raise UserError("no such image file", source=str(path))
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise UserError("cannot read the image (not a PNG/JPEG/WebP file?)", source=str(path))
    image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if min(image.shape[:2]) < 8:
        raise UserError(f"image is too small ({image.shape[1]}x{image.shape[0]})", source=str(path))
    return image


def _generate(args: argparse.Namespace) -> int:
    import math
    import os
    import time

    import numpy as np

    from relic.camera import ActionScriptError, parse_action_script
    from relic.options import apply_threads, check_output_file, check_threads
    from relic.errors import UserError
    from relic.runtime.default import default_model

    t_begin = time.perf_counter()
    if not (math.isfinite(args.gamma) and args.gamma > 0):
        raise UserError(f"--gamma must be a positive number, got {args.gamma}")
    if not (math.isfinite(args.max_seconds) and args.max_seconds > 0):
        raise UserError(f"--max-seconds must be a positive number, got {args.max_seconds}")
    check_threads(args.threads)
    source = args.model or args.preset or default_model()
    fps = source_fps(source)
    try:
        actions = parse_action_script(args.actions, fps=fps)
    except ActionScriptError as e:
        raise UserError(f"--actions: {e}") from None
    seconds = len(actions) / fps
    if seconds > args.max_seconds:
        raise UserError(f"--actions is {seconds:g} s of video ({len(actions)} frames at {fps} FPS), over "
                        f"--max-seconds {args.max_seconds:g}; raise --max-seconds to generate it")
    image = read_image(args.image)
    if not str(args.out).lower().endswith(".mp4"):
        raise UserError("--out must end in .mp4", source=str(args.out))
    check_output_file(args.out, "--out")
    apply_threads(args.threads)

    from relic.runtime.stream import StreamingSession
    from relic.training.distributed import launched_by_torchrun
    from relic.video import Mp4Writer

    sp, main = None, True
    if launched_by_torchrun():
        from relic.models.sequence_parallel import SequenceParallel
        from relic.training.distributed import DistributedConfig, init_distributed

        env = init_distributed(DistributedConfig(sp_size=int(os.environ["WORLD_SIZE"])))
        sp, main = SequenceParallel(env.mesh.get_group("sp")), env.is_main

    session = StreamingSession.from_pretrained(source, decoder=args.decoder, gamma=args.gamma,
                                               precision=args.precision, sp=sp, quantize=args.quantize,
                                               device=current_device())
    session.text_encoder                      # load it now, with the model
    t_loaded = time.perf_counter()
    n = session.frames_per_step
    steps = -(-len(actions) // n)
    pad = steps * n - len(actions)
    if pad:
        static = np.zeros((pad, 13))
        static[:, 12] = 1.0
        actions = np.concatenate([actions, static])
        if main:
            print(f"padded the action script with {pad} static frame(s) to whole blocks of {n}")

    from tqdm import tqdm

    steady_time, steady_frames = 0.0, 0
    with (Mp4Writer(args.out, fps=session.cfg.fps) if main else _NullWriter()) as writer, \
            tqdm(total=1 + steps * n, desc="generate", unit="frame", disable=not main, dynamic_ncols=True) as bar:
        frames = session.start(image, args.prompt, seed=args.seed)
        writer.write(frames)
        bar.update(frames.shape[0])
        total = frames.shape[0]
        for k in range(steps):
            t0 = time.perf_counter()
            frames = session.step(actions[k * n:(k + 1) * n])
            if k == 0:
                t_first = time.perf_counter()
            else:
                steady_time += time.perf_counter() - t0
                steady_frames += frames.shape[0]
            writer.write(frames)
            bar.update(frames.shape[0])
            total += frames.shape[0]
    mem = session.state["memory"]
    if not main:
        return 0
    print(f"wrote {total} frames ({total / session.cfg.fps:.1f} s at {session.cfg.fps} FPS) -> {args.out}")
    print(f"start-up: {t_first - t_begin:.1f} s (model load {t_loaded - t_begin:.1f} s, start frame and first "
          f"block {t_first - t_loaded:.1f} s)")
    if steady_frames:
        fps_steady = steady_frames / max(steady_time, 1e-9)
        speed = (f"{fps_steady:.1f} FPS over the {steps - 1} block(s) after the first (decode included; "
                 f"{fps_steady / session.cfg.fps:.2f}x real time)")
    else:
        speed = "not measured (one block; a longer --actions script measures it)"
    print(f"steady state: {speed}, KV cache {mem.get('tokens', 0)} tokens, {mem.get('bytes', 0) / 2**20:.1f} MiB")
    return 0


def current_device() -> str:
    """cuda:<LOCAL_RANK> when CUDA is available (one GPU per torchrun rank), else cpu."""
    import os

    import torch

    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu"


class _NullWriter:
    """Ranks other than 0 generate in lock-step but write nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, frames) -> None:
        pass
