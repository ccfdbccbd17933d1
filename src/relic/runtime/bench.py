"""``relic bench stream``: streaming speed, action latency and KV size vs horizon, with two baselines.

For each horizon (seconds of video already streamed) the benchmark brings a session to that point and
times ``--blocks`` real :meth:`StreamingSession.step` calls (denoise + cache write + decode):

* the history before the horizon is filled into the cache with K/V of the right shapes along a real
  camera path (the token count, plan and selection depend only on the config and the poses, not on the
  values), so 300 s are measured without generating 300 s first; the first horizon is generated for real;
* ``full_cache``: the same session with compression off and an infinite window (every latent uncompressed),
  measured up to ``--full-max-seconds`` and extrapolated linearly in context tokens beyond (flagged
  ``"estimated": true``);
* ``recompute``: no cache: every denoising step reruns the DiT over all history latents + the block
  (a full causal forward). Its block time is measured up to ``--recompute-max-tokens`` tokens and
  extrapolated quadratically beyond (flagged ``"estimated": true``) through two measured points; when no
  horizon is short enough to give them (e.g. ``--seconds 20`` alone), they are measured at the longest history
  within the limit (and at the first frame alone, if needed) (``recompute_measured_tokens`` lists every measured
  point). A limit under one latent's tokens measures nothing: the baseline then says ``"skipped"`` and why.

The model is the default one (the shipped ``weights/relic-tiny``, as ``relic play`` and ``relic generate``),
``--model DIR`` or ``--preset NAME`` (random weights; the speed is that of the architecture). Prompts are zero
text states: the text encoder is not timed.

Definitions: ``fps`` = video frames per step / mean step time (decode included); ``block_ms_p50/p95`` =
step time percentiles; ``action_latency_ms`` = 1.5 × p50 step time (an action arrives on average half a
block before the next block starts and shows in that block's first frame); ``kv_tokens`` = context tokens
attended per block; ``kv_bytes`` = bytes the cache stores. Timing uses wall clock: on a shared machine,
run it when the machine is otherwise idle, and read the ``load_avg`` recorded in the JSON. ``cpu_ms_p50``
and ``fps_cpu`` use CPU time instead (with ``--threads 1``: this thread's CPU time, which other processes
cannot inflate by preempting it): the speed this process would have on one otherwise idle core.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time

import numpy as np
import torch

FIELDS = ("fps", "block_ms_p50", "block_ms_p95", "action_latency_ms", "kv_tokens", "kv_bytes")


DESCRIPTION = ("Streaming speed, action latency and KV-cache size vs horizon (seconds of video already streamed), "
               "against two baselines: full_cache (nothing compressed) and recompute (no cache). Times real "
               "StreamingSession.step calls on the shipped model (default), another model directory or a preset "
               "with random weights. Writes JSON (and a plot); see docs/benchmarks.md.")


def add_bench_parser(sub) -> None:
    from relic.options import add_threads_argument
    from relic.runtime.default import DEFAULT_MODEL_HELP

    p = sub.add_parser("stream", help="Streaming FPS, action latency and KV tokens vs horizon (+ baselines).",
                       description=DESCRIPTION)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", default=None, metavar="DIR",
                     help=f"model directory to time (config.json + safetensors; {DEFAULT_MODEL_HELP})")
    src.add_argument("--preset", default=None, metavar="NAME",
                     help="time a preset with random weights instead (e.g. relic-tiny, wan2.1-1.3b)")
    p.add_argument("--seconds", default="5,20,60,300", metavar="S[,S...]",
                   help="comma-separated horizons in seconds of video (default 5,20,60,300)")
    p.add_argument("--blocks", type=int, default=8, help="timed blocks per horizon (default 8)")
    p.add_argument("--baseline-blocks", type=int, default=2, help="timed blocks per baseline point (default 2)")
    p.add_argument("--full-max-seconds", type=float, default=60.0,
                   help="largest horizon at which full_cache is measured; beyond, its block time is "
                        "extrapolated linearly in context tokens (flagged estimated; default 60)")
    p.add_argument("--recompute-max-tokens", type=int, default=6000,
                   help="largest history (tokens) for which recompute is measured; beyond, it is extrapolated "
                        "quadratically from measured points at or under it (flagged estimated; default 6000)")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                   help="compute precision (default auto: bf16 where the CPU has native bf16 kernels, else fp32)")
    p.add_argument("--compile", action="store_true", help="torch.compile the DiT")
    add_threads_argument(p)
    p.add_argument("--no-baselines", action="store_true", help="skip the full_cache and recompute baselines")
    p.add_argument("--kv-dtype-blocks", type=int, default=0,
                   help="also stream this many blocks with fp8 and fp32 KV storage and report the output "
                        "difference against the bf16 cache (default 0 = skip)")
    p.add_argument("--json", default="stream_bench.json", help="output JSON (default stream_bench.json)")
    p.add_argument("--plot", default=None, help="output plot (PNG; default none)")
    p.set_defaults(func=_main)


class _ZeroText:
    """Prompt-free text states (the benchmark measures the stream, not the text encoder)."""

    def __init__(self, dim: int, n: int):
        self.dim, self.n = dim, n

    def encode(self, prompts):
        return torch.zeros(len(prompts), self.n, self.dim), torch.ones(len(prompts), self.n, dtype=torch.bool)


def _machine() -> dict:
    from relic.precision import bf16_is_fast

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "bf16_native": bf16_is_fast("cpu"), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "load_avg": [round(x, 2) for x in os.getloadavg()]}


def _path_actions(frames: int, seed: int = 0) -> np.ndarray:
    """A wandering camera: forward with pans and turn-backs (so views get revisited)."""
    rng = np.random.default_rng(seed)
    a = np.zeros((frames, 13))
    k = 0
    while k < frames:
        n = int(rng.integers(8, 32))
        kind = rng.choice(["dolly_in", "pan_left", "pan_right", "truck_left", "dolly_out"])
        idx = {"dolly_in": 0, "dolly_out": 1, "truck_left": 2, "pan_left": 8, "pan_right": 9}[kind]
        a[k:k + n, idx] = 2.0 if idx >= 6 else 1.0
        k += n
    a[:, 12] = (a[:, :12] == 0).all(1)
    return a


def _fill_history(session, latents: int, actions: np.ndarray) -> None:
    """Push ``latents`` synthetic clean latents (after the first frame) along the poses of ``actions``."""
    from relic.camera import integrate
    from relic.memory import LatentKV
    from relic.models.attention import token_positions

    cache = session.cache
    d = session._dit_cfg
    gh, gw = cache.grid
    R, P = integrate(actions[:1 + 4 * latents], 1.0, session.gamma)
    g = torch.Generator().manual_seed(0)
    for i in range(1, latents + 1):
        n = gh * gw
        k = torch.randn(d.num_layers, 1, n, d.num_heads, d.head_dim, generator=g).to(session.student.compute_dtype)
        cache.push(LatentKV(i, k, k.clone(), token_positions(1, gh, gw, i), (gh, gw)), R[4 * i], P[4 * i])
    session._R, session._P = R, P
    session._actions = actions[:1 + 4 * latents]


def _cpu_clock() -> float:
    """CPU seconds of this thread with one torch thread (time lost to other processes is not counted),
    else of the whole process (all threads)."""
    return time.thread_time() if torch.get_num_threads() == 1 else time.process_time()


def _time_steps(session, actions: np.ndarray, blocks: int) -> tuple[list[float], list[float]]:
    n = session.frames_per_step
    start = session._actions.shape[0]
    wall, cpu = [], []
    for b in range(blocks):
        a = actions[start + b * n:start + (b + 1) * n]
        t0, c0 = time.perf_counter(), _cpu_clock()
        session.step(a)
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((_cpu_clock() - c0) * 1e3)
    return wall, cpu


def _summary(times: tuple[list[float], list[float]], frames_per_step: int, stats: dict) -> dict:
    ms_arr, cpu = np.asarray(times[0]), np.asarray(times[1])
    p50 = float(np.percentile(ms_arr, 50))
    return {"fps": round(frames_per_step / (ms_arr.mean() / 1e3), 2), "block_ms_p50": round(p50, 1),
            "block_ms_p95": round(float(np.percentile(ms_arr, 95)), 1), "action_latency_ms": round(1.5 * p50, 1),
            "kv_tokens": int(stats.get("tokens", 0)), "kv_bytes": int(stats.get("bytes", 0)),
            "cpu_ms_p50": round(float(np.percentile(cpu, 50)), 1),
            "fps_cpu": round(frames_per_step / (cpu.mean() / 1e3), 2)}


def _config(source: str):
    """The RelicConfig of a preset or of a model directory (its config.json), read without loading weights."""
    import json
    from pathlib import Path

    from relic.config import PRESETS, RelicConfig, config_from_dict, get_preset
    from relic.errors import UserError

    if source in PRESETS:
        return get_preset(source)
    path = Path(source) / "config.json"
    if not path.is_file():
        raise UserError(f"{source!r} is neither a model directory (no config.json) nor a preset "
                        f"({', '.join(PRESETS)})")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise UserError(f"invalid JSON: {e}", source=str(path)) from None
    return config_from_dict(RelicConfig, raw, source=str(path))


def _session(source: str, args, text, memory=None):
    """A session on a preset (random weights) or a model directory, with ``memory`` in place of its own."""
    from relic.config import PRESETS
    from relic.runtime.stream import StreamingSession

    kw = dict(precision=args.precision, compile=getattr(args, "compile", False), text_encoder=text)
    if source in PRESETS:
        cfg = _config(source)
        if memory is not None:
            cfg = dataclasses.replace(cfg, memory=memory)
        return StreamingSession.from_pretrained(cfg.name, config=cfg, **kw)
    session = StreamingSession.from_pretrained(source, **kw)
    if memory is not None:
        session.memory = memory
    return session


def _at_horizon(session, image, latents, actions, blocks) -> dict:
    session.start(image, "benchmark")
    _time_steps(session, actions, 1)                       # warm-up block (lazy init, allocations)
    session.start(image, "benchmark")
    if latents > 0:
        _fill_history(session, latents, actions)
    ms = _time_steps(session, actions, blocks)
    return _summary(ms, session.frames_per_step, session.cache.stats())


@torch.no_grad()
def _recompute_ms(session, tokens_hist: int, reps: int) -> tuple[float, float]:
    """One block without a cache: len(timesteps) full forwards over history + block (causal over blocks)."""
    d = session._dit_cfg
    T = session.cache.T
    lat = max(tokens_hist // T, 0) + session.cfg.frames_per_block
    gh, gw = session.cache.grid
    ph, pw = d.patch_size[1:]
    x = torch.randn(1, d.in_channels, lat, gh * ph, gw * pw)
    t = torch.zeros(1, lat)
    text = session._text
    steps = len(session.cfg.sampler.timesteps)
    times, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), _cpu_clock()
        with session._autocast():
            for _ in range(steps):
                session.student.dit(x, t, text)
        times.append((time.perf_counter() - t0) * 1e3)
        cpu.append((_cpu_clock() - c0) * 1e3)
    return float(np.median(times)), float(np.median(cpu))


def _source(args: argparse.Namespace) -> str:
    from relic.runtime.default import default_model

    return getattr(args, "model", None) or getattr(args, "preset", None) or default_model()


def _recompute_points(session, tokens_hist: int, max_tokens: int, points: list, reps: int) -> None:
    """Make sure ``points`` holds two measured (tokens, ms, cpu ms) recompute points to extrapolate
    ``tokens_hist`` from: the longest whole-latent history within ``max_tokens``, then the first frame alone."""
    T = session.cache.T
    for n in (max_tokens // T * T, T):
        if len(points) >= 2 or not T <= n <= max_tokens or any(p[0] == n for p in points):
            continue
        ms, cms = _recompute_ms(session, n, reps)
        points.append((n, ms, cms))
        points.sort()


def run(args: argparse.Namespace) -> dict:
    from relic.options import apply_threads
    from relic.config import MemoryConfig

    apply_threads(getattr(args, "threads", None))
    horizons = [float(s) for s in str(args.seconds).split(",") if s.strip()]
    source = _source(args)
    cfg = _config(source)
    text = _ZeroText(cfg.dit.text_dim, cfg.text_len)
    image = (np.random.default_rng(0).random((cfg.height, cfg.width, 3)) * 255).astype(np.uint8)
    frames_per_latent = cfg.dit.temporal_compression
    max_lat = int(max(horizons) * cfg.fps / frames_per_latent) + 2 + (args.blocks + 2) * cfg.frames_per_block
    actions = _path_actions(1 + 4 * max_lat)
    session = _session(source, args, text)
    cfg = session.cfg
    full_mem = MemoryConfig(window=None, compress=False, dtype=session.memory.dtype)
    full = None if args.no_baselines else _session(source, args, text, memory=full_mem)
    result = {"model": source, "preset": cfg.name, "resolution": [cfg.height, cfg.width], "machine": _machine(),
              "precision": session.precision, "compile": bool(args.compile), "frames_per_block": cfg.frames_per_block,
              "memory": dataclasses.asdict(session.memory), "dit": {"dim": cfg.dit.dim, "layers": cfg.dit.num_layers,
                                                                     "heads": cfg.dit.num_heads}, "horizons": []}
    rec_points: list[tuple[int, float, float]] = []
    full_points: list[tuple[int, float]] = []
    cpu_points: list[tuple[int, float]] = []
    for sec in horizons:
        latents = int(sec * cfg.fps / frames_per_latent)
        print(f"horizon {sec:g} s ({latents} latents) ...", flush=True)
        row = {"seconds": sec, **_at_horizon(session, image, latents, actions, args.blocks), "baselines": {}}
        if full is not None:
            tokens_full = (latents + 1) * session.cache.T
            if sec <= args.full_max_seconds or len(full_points) < 2:
                fc = _at_horizon(full, image, latents, actions, args.baseline_blocks)
                full_points.append((fc["kv_tokens"], fc["block_ms_p50"]))
                cpu_points.append((fc["kv_tokens"], fc["cpu_ms_p50"]))
                fc["estimated"] = False
            else:
                (n1, m1), (n2, m2) = full_points[-2], full_points[-1]
                # linear in context tokens; a timing-noise slope below 0 is 0 (more context never costs less)
                ms = m2 + max(m2 - m1, 0.0) / max(n2 - n1, 1) * (tokens_full - n2)
                bpt = full.cache.stats()["bytes"] / max(full.cache.stats()["stored_tokens"], 1)
                c1, c2 = cpu_points[-2][1], cpu_points[-1][1]
                cpu_ms = c2 + max(c2 - c1, 0.0) / max(n2 - n1, 1) * (tokens_full - n2)
                fc = {"fps": round(session.frames_per_step / (ms / 1e3), 3), "block_ms_p50": round(ms, 1),
                      "cpu_ms_p50": round(cpu_ms, 1), "fps_cpu": round(session.frames_per_step / (cpu_ms / 1e3), 3),
                      "block_ms_p95": round(ms, 1), "action_latency_ms": round(1.5 * ms, 1),
                      "kv_tokens": int(tokens_full), "kv_bytes": int(bpt * tokens_full), "estimated": True}
            row["baselines"]["full_cache"] = fc
            row["baselines"]["recompute"] = _recompute_row(session, cfg, latents, args, rec_points)
        result["horizons"].append(row)
        print({k: row[k] for k in FIELDS + ("cpu_ms_p50", "fps_cpu")}, flush=True)
    if rec_points:
        result["recompute_measured_tokens"] = [n for n, _, _ in rec_points]
    if args.kv_dtype_blocks:
        result["kv_dtype"] = kv_dtype_difference(source, args.kv_dtype_blocks, session.precision)
        print(result["kv_dtype"], flush=True)
    result["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    return result


def _recompute_row(session, cfg, latents: int, args, rec_points: list) -> dict:
    """The recompute baseline at a horizon: measured when its history is within --recompute-max-tokens, else
    extrapolated (ms = a + c n², through the two measured points nearest below; ``estimated``). When not even
    the first frame fits under --recompute-max-tokens nothing can be measured: ``skipped`` says so."""
    T = session.cache.T
    tokens_hist = (latents + 1) * T
    if tokens_hist <= args.recompute_max_tokens:
        ms, cms = _recompute_ms(session, tokens_hist, args.baseline_blocks)
        rec_points.append((tokens_hist, ms, cms))
        rec_points.sort()
        est = False
    else:
        _recompute_points(session, tokens_hist, args.recompute_max_tokens, rec_points, args.baseline_blocks)
        if not rec_points:
            return {"skipped": f"--recompute-max-tokens {args.recompute_max_tokens} is under one latent's "
                               f"{T} tokens: no recompute point to measure or extrapolate from"}
        (n1, m1, c1), (n2, m2, c2) = (rec_points[-2], rec_points[-1]) if len(rec_points) > 1 else \
            ((0, 0.0, 0.0), rec_points[-1])
        # fit ms = a + c n^2 through the last two measured points; the cost cannot fall with more history, so
        # a timing-noise slope below 0 is 0 and the estimate is never under a measured point
        ms = max(m2, m1 + max(m2 - m1, 0.0) / max(n2 ** 2 - n1 ** 2, 1) * (tokens_hist ** 2 - n1 ** 2))
        cms = max(c2, c1 + max(c2 - c1, 0.0) / max(n2 ** 2 - n1 ** 2, 1) * (tokens_hist ** 2 - n1 ** 2))
        est = True
    fr = session.frames_per_step
    return {"fps": round(fr / (ms / 1e3), 3), "block_ms_p50": round(ms, 1), "block_ms_p95": round(ms, 1),
            "action_latency_ms": round(1.5 * ms, 1), "kv_tokens": int(tokens_hist + T * cfg.frames_per_block),
            "kv_bytes": 0, "cpu_ms_p50": round(cms, 1), "fps_cpu": round(fr / (cms / 1e3), 3), "estimated": est}


@torch.no_grad()
def kv_dtype_difference(source: str, blocks: int, precision: str = "bf16") -> dict:
    """Stream the same blocks with KV storage bf16 (reference), fp8 and fp32; report output differences.

    ``source`` is a preset name (random weights) or a model directory. Returns per dtype: latent_rel_err
    (mean |x0 - x0_bf16| / mean |x0_bf16| over all blocks), latent_max_abs, frame_mae (uint8 frames, 0..255)
    and kv_bytes.
    """
    cfg = _config(source)
    text = _ZeroText(cfg.dit.text_dim, cfg.text_len)
    image = (np.random.default_rng(0).random((cfg.height, cfg.width, 3)) * 255).astype(np.uint8)
    actions = _path_actions(1 + 4 * (blocks + 1) * cfg.frames_per_block)
    runs = {}
    for dt in ("bf16", "fp8", "fp32"):
        s = _session(source, argparse.Namespace(precision=precision), text,
                     memory=dataclasses.replace(cfg.memory, dtype=dt))
        lat, frames = [], []
        orig = s.student.generate_block

        def spy(*a, **k):
            r = orig(*a, **k)
            lat.append(r.x0.float().clone())
            return r

        s.student.generate_block = spy
        s.start(image, "x", seed=0)
        n = s.frames_per_step
        for b in range(blocks):
            frames.append(s.step(actions[1 + b * n:1 + (b + 1) * n]))
        runs[dt] = (torch.cat(lat, 2), np.concatenate(frames), s.cache.stats()["bytes"])
    ref_lat, ref_fr, _ = runs["bf16"]
    out = {}
    for dt, (lat, fr, nbytes) in runs.items():
        out[dt] = {"latent_rel_err": float((lat - ref_lat).abs().mean() / ref_lat.abs().mean()),
                   "latent_max_abs": float((lat - ref_lat).abs().max()),
                   "frame_mae": float(np.abs(fr.astype(np.int16) - ref_fr.astype(np.int16)).mean()),
                   "kv_bytes": int(nbytes)}
    return {"blocks": blocks, "precision": precision, "vs_bf16": out}


def plot(result: dict, path: str) -> None:
    """Block time and KV tokens vs horizon, ours vs baselines."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from relic.fileio import save_figure

    hs = result["horizons"]
    x = [h["seconds"] for h in hs]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    time_key, time_label = ("cpu_ms_p50", "CPU ms per block, p50 (load-independent)") if "cpu_ms_p50" in hs[0] \
        else ("block_ms_p50", "block time p50 (ms)")
    for key, ax, label in ((time_key, axes[0], time_label), ("kv_tokens", axes[1], "KV tokens")):
        ax.plot(x, [h[key] for h in hs], "o-", label="RELIC cache")
        if key == "cpu_ms_p50":
            ax.plot(x, [h["block_ms_p50"] for h in hs], "o:", color="C0", alpha=0.5, label="RELIC cache, wall (loaded machine)")
        for name in ("full_cache", "recompute"):
            pts = [(xi, h["baselines"].get(name, {}).get(key)) for xi, h in zip(x, hs)]
            pts = [(xi, y) for xi, y in pts if y is not None]        # a skipped baseline has no point
            if pts:
                ax.plot(*zip(*pts), "s--", label=name + " (hollow = extrapolated)")
                est = [(xi, h["baselines"][name][key]) for xi, h in zip(x, hs)
                       if h["baselines"].get(name, {}).get("estimated")]
                if est:
                    ax.plot(*zip(*est), "s", mfc="white", color=ax.lines[-1].get_color())
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("horizon (s of video)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    r = result
    fig.suptitle(f"relic bench stream: {r.get('model', r['preset'])} {r['resolution'][0]}x{r['resolution'][1]}, {r['precision']}, "
                 f"{r['machine']['threads']} thread(s) on a {r['machine']['cpus']}-CPU machine")
    fig.tight_layout()
    save_figure(fig, path, dpi=100, format="png")


def _main(args: argparse.Namespace) -> int:
    from relic.options import check_output_file, check_threads
    from relic.errors import UserError
    from relic.fileio import write_json_atomic

    try:
        hs = [float(s) for s in str(args.seconds).split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seconds must be comma-separated numbers, got {args.seconds!r}") from None
    if not hs or min(hs) <= 0 or not all(np.isfinite(hs)):
        raise UserError("--seconds needs positive horizons")
    if args.blocks < 1 or args.baseline_blocks < 1:
        raise UserError("--blocks and --baseline-blocks must be >= 1")
    if args.recompute_max_tokens < 0:
        raise UserError(f"--recompute-max-tokens must be >= 0, got {args.recompute_max_tokens}")
    check_threads(args.threads)
    check_output_file(args.json, "--json")
    if args.plot:
        check_output_file(args.plot, "--plot")
    _config(_source(args))                     # a bad --model is a one-line error before anything runs
    result = run(args)
    write_json_atomic(args.json, result)
    if args.plot:
        plot(result, args.plot)
    print(f"wrote {args.json}" + (f" and {args.plot}" if args.plot else ""))
    return 0
