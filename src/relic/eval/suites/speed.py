"""Speed suite: the runtime benchmark's figures for the model under test (``relic bench stream``).

It reuses :mod:`relic.runtime.bench`'s measurement (:func:`relic.runtime.bench._at_horizon`): for each horizon
the session is brought to that point (the first block generated for real, the history before it filled with
K/V of the right shapes along a wandering camera path), then ``blocks`` real steps (denoise + cache write +
decode) are timed. Fields: ``fps``, ``block_ms_p50/p95``, ``action_latency_ms``, ``kv_tokens``, ``kv_bytes``
(definitions in the benchmark's docstring). No baselines here: ``relic bench stream`` has them. Wall-clock
timing: the machine's load average is recorded next to the figures.
"""

from __future__ import annotations

import os

import numpy as np


def run(sessions: list, quick: bool = False, horizons_s: tuple[float, ...] = (5.0, 20.0, 60.0),
        blocks: int = 4) -> dict:
    from relic.runtime.bench import _at_horizon, _machine, _path_actions

    if quick:
        horizons_s, blocks = (1.0,), 1
    out = {"horizons_s": list(horizons_s), "blocks": blocks, "machine": _machine(), "models": {}}
    for s in sessions:
        cfg = s.cfg
        c = s._dit_cfg.temporal_compression
        image = (np.random.default_rng(0).random((cfg.height, cfg.width, 3)) * 255).astype(np.uint8)
        max_lat = int(max(horizons_s) * cfg.fps / c) + 2 + (blocks + 2) * cfg.frames_per_block
        actions = _path_actions(1 + 4 * max_lat)
        rows = []
        s.gamma = 1.0
        for sec in horizons_s:
            latents = int(sec * cfg.fps / c)
            rows.append({"seconds": sec, **_at_horizon(s, image, latents, actions, blocks)})
        out["models"][s.eval_label] = {"horizons": rows}
    out["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    return out
