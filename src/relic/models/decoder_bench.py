"""``relic bench decoders``: seconds per latent of the Wan VAE decoder vs the tiny decoder (JSON + plot).

Both stream one latent at a time (4 frames each) at the preset's resolution, random weights, batch 1;
see :func:`relic.models.tiny_decoder.benchmark_decoders`. The tiny decoder must be >= 5x faster.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def add_bench_parser(sub) -> None:
    p = sub.add_parser("decoders", help="VAE decoder vs tiny decoder: seconds per latent (goal: tiny >= 5x faster).",
                       description="Time per streamed latent of the Wan VAE decoder and the tiny decoder at "
                                   "the preset's resolution, in fp32 and bf16.")
    p.add_argument("--json", required=True, help="output JSON")
    p.add_argument("--plot", default=None, help="output plot (default: JSON path with .png)")
    p.add_argument("--preset", default="relic-tiny", help="model preset (default relic-tiny)")
    p.add_argument("--latents", type=int, default=4, help="timed latents per decoder (default 4)")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from relic.config import get_preset
    from relic.errors import UserError
    from relic.fileio import save_figure, write_json_atomic
    from relic.models.tiny_decoder import benchmark_decoders

    if args.latents < 1:
        raise UserError("--latents must be >= 1")
    cfg = get_preset(args.preset)
    results = [benchmark_decoders(cfg, num_latents=args.latents, dtype=dt) for dt in (torch.float32, torch.bfloat16)]
    write_json_atomic(args.json, {"benchmark": "decoders", "goal_speedup": 5.0, "results": results})
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot = args.plot or str(Path(args.json).with_suffix(".png"))
    fig, ax = plt.subplots(figsize=(5, 3.5))
    names = [r["dtype"] for r in results]
    xs = range(len(results))
    ax.bar([x - 0.2 for x in xs], [r["vae_s_per_latent"] * 1e3 for r in results], 0.4, label="Wan VAE decoder")
    ax.bar([x + 0.2 for x in xs], [r["tiny_s_per_latent"] * 1e3 for r in results], 0.4, label="tiny decoder")
    for x, r in zip(xs, results):
        ax.text(x, r["vae_s_per_latent"] * 1e3, f"{r['speedup']:.0f}x", ha="center", va="bottom")
    ax.set_xticks(list(xs), names)
    ax.set_yscale("log")
    ax.set_ylabel(f"ms per latent (4 frames), {cfg.height}x{cfg.width}")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, plot, dpi=110, format="png")
    print(f"-> {args.json}, {plot}")
    return 0
