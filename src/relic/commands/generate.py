"""``relic generate``: one image + a prompt + an action script -> an H.264 mp4, through StreamingSession.

Under torchrun (``torchrun --nproc-per-node 4 -m relic generate ...``) the ranks form one Ulysses
sequence-parallel group (paper §4.5): each holds 1/P of the tokens and of the KV cache; rank 0 writes the video.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    help_ = "Generate a video from an image, a prompt and an action script (streams block by block)."
    p = subparsers.add_parser("generate", help=help_, description=help_ + " Prints the generation FPS.")
    p.add_argument("--image", required=True, help="start image (PNG/JPEG/WebP)")
    p.add_argument("--prompt", required=True, help="text prompt")
    p.add_argument("--actions", required=True,
                   help='action script, one token per video frame, e.g. "w*16 left*8 a+up*4" '
                        "(keys w a s d e q up down left right z x, or action names; see docs/runtime.md)")
    p.add_argument("--out", required=True, help="output .mp4 (H.264, yuv420p)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", default=None, help="model directory (config.json + safetensors; default: "
                     "$RELIC_MODEL, else the shipped weights/relic-tiny)")
    src.add_argument("--preset", default=None, help="preset name with random weights (e.g. relic-tiny)")
    p.add_argument("--gamma", type=float, default=1.0, help="speed coefficient γ (default 1.0)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--decoder", choices=["tiny", "vae"], default="tiny", help="frame decoder (default tiny)")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                   help="compute precision (default auto: bf16 where the CPU has native bf16 kernels, else fp32)")
    p.add_argument("--quantize", choices=["int8", "fp8"], default=None,
                   help="weight-only quantization of the DiT blocks (default off)")
    p.set_defaults(func=_generate, _parser=p)


def _generate(args: argparse.Namespace) -> int:
    import math
    import time
    from pathlib import Path

    import cv2
    import numpy as np

    from relic.camera import ActionScriptError, parse_action_script
    from relic.errors import UserError
    from relic.runtime.stream import StreamingSession
    from relic.video import Mp4Writer

    if not (math.isfinite(args.gamma) and args.gamma > 0):
        raise UserError(f"--gamma must be a positive number, got {args.gamma}")
    try:
        actions = parse_action_script(args.actions)
    except ActionScriptError as e:
        raise UserError(f"--actions: {e}") from None
    path = Path(args.image)
    if not path.is_file():
        raise UserError("no such image file", source=str(path))
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise UserError("cannot read the image (not a PNG/JPEG/WebP file?)", source=str(path))
    image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if min(image.shape[:2]) < 8:
        raise UserError(f"image is too small ({image.shape[1]}x{image.shape[0]})", source=str(path))
    if not str(args.out).lower().endswith(".mp4"):
        raise UserError("--out must end in .mp4", source=str(args.out))

    from relic.training.distributed import launched_by_torchrun

    sp, main = None, True
    if launched_by_torchrun():
        from relic.models.sequence_parallel import SequenceParallel
        from relic.training.distributed import DistributedConfig, init_distributed

        env = init_distributed(DistributedConfig(sp_size=int(__import__("os").environ["WORLD_SIZE"])))
        sp, main = SequenceParallel(env.mesh.get_group("sp")), env.is_main
    from relic.runtime.default import default_model

    session = StreamingSession.from_pretrained(args.model or args.preset or default_model(), decoder=args.decoder,
                                               gamma=args.gamma, precision=args.precision, sp=sp,
                                               quantize=args.quantize,
                                               device=current_device())
    session.text_encoder                      # load it now, outside the timed generation
    n = session.frames_per_step
    steps = -(-len(actions) // n)
    pad = steps * n - len(actions)
    if pad:
        static = np.zeros((pad, 13))
        static[:, 12] = 1.0
        actions = np.concatenate([actions, static])
        if main:
            print(f"padded the action script with {pad} static frame(s) to whole blocks of {n}")
    gen_time = 0.0
    with (Mp4Writer(args.out, fps=session.cfg.fps) if main else _NullWriter()) as writer:
        t0 = time.perf_counter()
        frames = session.start(image, args.prompt, seed=args.seed)
        gen_time += time.perf_counter() - t0
        writer.write(frames)
        total = frames.shape[0]
        for k in range(steps):
            t0 = time.perf_counter()
            frames = session.step(actions[k * n:(k + 1) * n])
            gen_time += time.perf_counter() - t0
            writer.write(frames)
            total += frames.shape[0]
    mem = session.state["memory"]
    fps = total / max(gen_time, 1e-9)
    if not main:
        return 0
    print(f"wrote {total} frames ({total / session.cfg.fps:.1f} s at {session.cfg.fps} FPS) -> {args.out}")
    print(f"generation: {fps:.1f} FPS (decode included; {fps / session.cfg.fps:.2f}x real time), "
          f"KV cache {mem.get('tokens', 0)} tokens, {mem.get('bytes', 0) / 2**20:.1f} MiB")
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
