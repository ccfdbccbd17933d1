"""``relic bench world``: renderer and end-to-end (render + H.264 encode) frames/s at 64², 128², 256².

``fps_render`` times :meth:`Renderer.render` alone over a clip's trajectory; ``fps`` times the whole
:func:`relic.world.write_clip` path (scene build, operator, render, mp4 encode, JSON) for several clips in
one process, and with ``--workers`` > 1 the aggregate throughput of that many processes (the dataset
writer's setting). ``cpu_ms_per_frame`` is the end-to-end CPU time (all threads) per frame: on a shared,
loaded machine it is the stabler number (an idle 2-core machine can reach at most 2000 / it frames/s). Results: ``{"results": [{"size", "fps_render", "fps", ...}], "machine": ...}``.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def _bench_size(size: int, seconds: float, clips: int, fps: float) -> dict:
    from relic.world.operator import Operator, states_to_trajectory
    from relic.world.scenes import make_scene
    from relic.world.writer import get_renderer, write_clip

    r = get_renderer(size, size)
    n_render, t_render = 0, 0.0
    for k in range(clips):
        scene = make_scene(1000 + k)
        path = Operator(scene, np.random.default_rng(k), fps).fly(int(seconds * fps))
        traj = states_to_trajectory(path.states, fps, size, size)
        r.set_scene(scene)
        t0 = time.perf_counter()
        r.render_many(traj.K, traj.R, traj.P)
        t_render += time.perf_counter() - t0
        n_render += len(traj)
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), _cpu_seconds()
        for k in range(clips):
            write_clip(Path(tmp) / f"clip_{k}", seed=1000 + k, seconds=seconds, size=size, fps=fps)
        t_e2e, c_e2e = time.perf_counter() - t0, _cpu_seconds() - c0
    frames = clips * int(seconds * fps)
    return {"size": size, "fps_render": n_render / t_render, "fps": frames / t_e2e, "frames": frames,
            "cpu_ms_per_frame": 1e3 * c_e2e / frames}


def _cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (llvmpipe rasterizes on its own threads)."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _dataset_fps(size: int, seconds: float, clips: int, fps: float, workers: int) -> float:
    from relic.world.writer import render_dataset

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        render_dataset(tmp, clips, seconds, size, fps, seed=0, workers=workers, progress=False)
        return clips * int(seconds * fps) / (time.perf_counter() - t0)


def run(sizes=(64, 128, 256), seconds: float = 20.0, clips: int = 2, fps: float = 16.0, workers: int = 2) -> dict:
    results = []
    for s in sizes:
        res = _bench_size(s, seconds, clips, fps)
        if workers > 1:
            res[f"fps_dataset_{workers}_workers"] = _dataset_fps(s, seconds, clips * workers, fps, workers)
        results.append(res)
        print(f"{s}x{s}: render {res['fps_render']:.0f} fps, end-to-end {res['fps']:.0f} fps "
              f"({res['cpu_ms_per_frame']:.2f} CPU-ms/frame)"
              + (f", dataset with {workers} workers {res[f'fps_dataset_{workers}_workers']:.0f} fps"
                 if workers > 1 else ""))
    return {"results": results, "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "settings": {"seconds": seconds, "clips": clips, "fps": fps, "workers": workers}}


def add_bench_parser(sub) -> None:
    p = sub.add_parser("world", help="Renderer and end-to-end (render + mp4) frames/s at 64, 128, 256.",
                       description="Frames/s of the procedural-world renderer alone and end to end "
                                   "(scene, operator, render, H.264 encode) at 64², 128² and 256².")
    p.add_argument("--json", required=True, help="output JSON")
    p.add_argument("--plot", default=None, help="output plot (default: JSON path with .png)")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds per clip (default 20, as in the dataset)")
    p.add_argument("--clips", type=int, default=2, help="clips per size (default 2)")
    p.add_argument("--workers", type=int, default=2, help="also time the dataset writer with this many workers")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from relic.errors import UserError
    from relic.fileio import save_figure, write_json_atomic

    if not (args.seconds > 0 and args.clips > 0 and args.workers > 0):
        raise UserError("--seconds, --clips and --workers must be positive")
    out = run(seconds=args.seconds, clips=args.clips, workers=args.workers)
    write_json_atomic(args.json, out)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plot = args.plot or str(Path(args.json).with_suffix(".png"))
    sizes = [r["size"] for r in out["results"]]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(sizes, [r["fps_render"] for r in out["results"]], "o-", label="render only")
    ax.plot(sizes, [r["fps"] for r in out["results"]], "s-", label="end to end (1 process)")
    key = f"fps_dataset_{args.workers}_workers"
    if args.workers > 1:
        ax.plot(sizes, [r[key] for r in out["results"]], "^-", label=f"dataset, {args.workers} workers")
    ax.axhline(300, color="grey", ls=":", label="goal at 128²")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [f"{s}²" for s in sizes])
    ax.set_ylabel("frames / s")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, plot, dpi=110, format="png")
    print(f"-> {args.json}, {plot}")
    return 0
