"""``relic autoencoder eval``: the stage-0 quality gate, beside trivial and previous baselines.

::

    relic autoencoder eval --vae weights/stages/vae_pooled --tiny-decoder weights/stages/tiny_decoder_pooled \\
        --previous weights/stages/vae --out docs/eval/autoencoder

Renders held-out clips (scene seeds >= 2**32, indoor and outdoor in turn), reconstructs them with the VAE
decoder, the tiny decoder, "8x pool + bicubic" and the previous model's autoencoder, and writes
``autoencoder.json``, ``autoencoder.md`` and ``strip.png`` (ground truth | VAE | tiny | baselines) into --out.
See docs/eval.md ("The autoencoder gate").
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    help_ = "Autoencoder tools: the stage-0 quality gate."
    p = subparsers.add_parser("autoencoder", help=help_, description=help_)
    sub = p.add_subparsers(dest="autoencoder_command", metavar="SUBCOMMAND")
    e_help = ("Measure a VAE (and its tiny decoder) on held-out clips of both scene families beside 8x pool + "
              "bicubic and a previous autoencoder: PSNR, SSIM, flat-colour error, saturation and sharpness "
              "ratios, robustness to latent noise, encode time; writes JSON, markdown and a strip image.")
    e = sub.add_parser("eval", help=e_help, description=e_help)
    e.add_argument("--vae", required=True, metavar="DIR",
                   help="a VAE directory (what `relic train vae` exports to <out>/final) or a model directory")
    e.add_argument("--tiny-decoder", default=None, metavar="DIR",
                   help="a tiny-decoder directory or a model directory (default: the --vae model directory's, if any)")
    e.add_argument("--previous", default=None, metavar="DIR",
                   help="a model directory (or VAE directory) whose autoencoder is the second baseline, e.g. "
                        "weights/stages/vae (the autoencoder of rounds 1-5)")
    e.add_argument("--clips", type=int, default=8, help="held-out clips, alternating indoor/outdoor (default 8)")
    e.add_argument("--frames", type=int, default=65, help="frames per clip, 1 + 4k (default 65)")
    e.add_argument("--size", default="224x128", help="frame size WxH (default 224x128)")
    e.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="compute precision of the codecs (default fp32, so numbers do not depend on the CPU)")
    e.add_argument("--no-timing", action="store_true", help="skip the 20 s encode timing")
    e.add_argument("--out", required=True, help="output directory")
    e.set_defaults(func=_eval, _parser=e)
    p.set_defaults(_parser=p)


def _load_pair(directory: str, what: str):
    """(vae, tiny decoder or None) from a model directory, or the one network from a stage directory."""
    from pathlib import Path

    from relic.errors import UserError
    from relic.runtime.stream import DIT_FILE, VAE_FILE, load_model_dir

    d = Path(directory)
    if not d.is_dir():
        raise UserError(f"no such {what} directory", source=str(d))
    if (d / DIT_FILE).is_file() and (d / VAE_FILE).is_file():
        _, _, vae, tiny = load_model_dir(d, need_tiny=False)
        return vae, tiny
    if not (d / "config.json").is_file():
        raise UserError(f"not a {what} directory (no config.json)", source=str(d))
    if what == "tiny decoder":
        from relic.models.tiny_decoder import TinyDecoder
        return None, TinyDecoder.from_pretrained(d)
    from relic.models.autoencoder import load_vae
    return load_vae(d), None


def _eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from relic.errors import UserError
    from relic.eval import autoencoder as ae
    from relic.eval.suites.common import HELD_OUT_BASE
    from relic.fileio import atomic_path, write_json_atomic
    from relic.world.writer import parse_size, render_clip

    if args.clips < 1:
        raise UserError(f"--clips must be >= 1, got {args.clips}")
    if args.frames < 5 or (args.frames - 1) % 4:
        raise UserError(f"--frames must be 1 + 4k with k >= 1, got {args.frames}")
    width, height = parse_size(args.size)
    if width % 8 or height % 8:
        raise UserError(f"--size must be multiples of 8, got {args.size}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError("--out exists and is not a directory", source=str(out))
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    vae, tiny = _load_pair(args.vae, "VAE")
    if vae is None:
        raise UserError("--vae names no VAE", source=args.vae)
    if args.tiny_decoder:
        _, tiny = _load_pair(args.tiny_decoder, "tiny decoder")
        if tiny is None:
            raise UserError("--tiny-decoder names no tiny decoder", source=args.tiny_decoder)
    codecs = [ae.latent_codec("vae", vae, dtype=dtype)]
    if tiny is not None:
        codecs.append(ae.latent_codec("tiny", vae, tiny, dtype=dtype))
    codecs.append(ae.pool_bicubic_codec())
    if args.previous:
        pv, pt = _load_pair(args.previous, "previous autoencoder")
        codecs.append(ae.latent_codec("previous_vae", pv, dtype=dtype))
        if pt is not None:
            codecs.append(ae.latent_codec("previous_tiny", pv, pt, dtype=dtype))

    clips, meta = [], []
    for i in range(args.clips):
        seed, family = HELD_OUT_BASE + 500 + i, ("indoor", "outdoor")[i % 2]
        clip = render_clip(seed, seconds=(args.frames + 1) / 16.0, size=(width, height), family=family)
        if len(clip.frames) < args.frames:
            raise UserError(f"held-out clip {seed} rendered {len(clip.frames)} frames, fewer than --frames")
        clips.append(clip.frames[:args.frames])
        meta.append({"seed": seed, "family": family, "caption": clip.caption})
    report, recs = ae.evaluate(clips, codecs, time_encoders=not args.no_timing, log=lambda m: print(m, flush=True))
    report.update(held_out=meta, precision=args.precision, size=[width, height],
                  machine={"threads": torch.get_num_threads()})
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "autoencoder.json", report)
    table = ae.summary_table(report)
    with atomic_path(out / "autoencoder.md") as tmp:
        tmp.write_text("# Autoencoder gate\n\n" + table + "\n", encoding="utf-8")
    import cv2

    columns = [c.name for c in codecs]
    img = ae.strip(clips[:4], {k: v[:4] for k, v in recs.items()}, columns,
                   frames=(0, args.frames // 2, args.frames - 1))
    with atomic_path(out / "strip.png") as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
            raise UserError("could not write the strip image", source=str(out / "strip.png"))
    print(table)
    print(f"wrote {out / 'autoencoder.json'}, {out / 'autoencoder.md'} and {out / 'strip.png'}")
    return 0
