"""``relic bench …``: benchmarks that write JSON (and a plot). Speed targets live here, never in unit tests.

Each benchmark's code lives in its own area; this module only lists them. A benchmark module exposes
``add_bench_parser(subparsers)`` which adds its subcommand (and sets ``func``). Modules that don't exist
yet are skipped, so a benchmark appears as soon as its area lands.
"""

from __future__ import annotations

import importlib
import importlib.util

from relic.commands import add_group

BENCHMARKS = {
    "world": "relic.world.bench",        # renderer + mp4 encode frames/s
    "stream": "relic.runtime.bench",     # streaming FPS, latency, KV tokens vs horizon
    "replay": "relic.training.bench",    # replayed vs naive back-prop: peak memory and time vs blocks
    "decoders": "relic.models.decoder_bench",  # Wan VAE decoder vs tiny decoder, s per latent
    "scale": "relic.training.estimate",  # memory / throughput estimates per GPU count (docs/scaling.md)
}


def register(subparsers) -> None:
    _, sub = add_group(subparsers, "bench", "Benchmarks: write JSON results (and a plot) for speed and memory targets.")
    for module in BENCHMARKS.values():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            importlib.import_module(module).add_bench_parser(sub)
