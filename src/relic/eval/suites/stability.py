"""Stability suite: one long stream per model (the issue's target: **a 5-minute stream keeps its quality proxies
(flicker, sharpness) within 10 % of the first 20 s, and the process memory stays flat**).

Each model streams ``seconds`` of video (default 300 s) from the ground-truth start frame of a held-out scene
(a start pose with clearance and an open view, :meth:`World.start_pose`) with the scene's caption. The long
stream has no ground truth. It is generated block by block with ``session.start`` / ``session.step`` and
scored on the fly; only one frame per segment is kept (for the strip plot).

Script (:func:`segment_actions`): every segment replays the same deterministic cycle of the 12 single motions
and four combined ones (``dolly_in+pan_right``, ``dolly_out+pan_left``, ``truck_left+tilt_up``,
``truck_right+tilt_down``), each followed by a hold; the cycle is fitted to the segment (slot =
segment frames // 16, 2/3 of a slot moving, the rest static), so segments differ only by their time in the
stream. Magnitudes: rotations ``rot_deg`` degrees per frame, translations 1.0 (d̄). Opposite motions follow each
other, so the camera keeps coming back near its start.

Per segment of ``segment_s`` seconds (rounded to whole blocks; segment 0 also holds the start frame):

* ``flicker``: VBench temporal flicker over the segment's consecutive frame pairs (the pair entering the
  segment included), ``(255 − mean MAE) / 255``, 1 = no change;
* ``sharpness``: mean variance of the Laplacian over the segment's frames;
* ``saturation``: mean HSV saturation over the segment's frames, and ``saturation_ratio``: that over the
  saturation of the ground-truth start frame (1 = as colourful as the scene; a stream collapsing to grey → 0);
* ``rss_mib``: the process's resident set size at the segment's end (``VmRSS`` of /proc/self/status; where
  that is missing, the peak ``ru_maxrss``), MiB;
* ``kv_tokens`` / ``kv_bytes`` / ``latents`` / ``memory_latents``: the KV cache's stats at the segment's end
  (``session.cache.stats()``: attended context tokens of the last block, stored K/V bytes);
* ``fps``: video frames of the segment per second of wall-clock generation (``start``/``step`` incl. decode).

Summary (:func:`summarize`):

* ``flicker_max_rel_dev``, ``sharpness_max_rel_dev``: ``max_i |x_i / x_0 − 1|`` over the segments i ≥ 1;
* ``saturation_ratio_first`` / ``_last`` / ``_min``: the saturation ratio of the first and last segment and the
  lowest of all;
  ``within_10pct``: that deviation ≤ 0.10, per proxy and ``all``;
* ``rss_growth_mib``: RSS at the end − RSS at the end of segment 0; ``rss_growth_second_half_mib``: RSS at the
  end − RSS at the end of the first segment ending at or after half the stream (the "mid" segment);
* ``kv_bytes_end`` and ``kv_growth_second_half_bytes`` (same mid point);
* ``memory_flat`` = ``rss_flat`` and ``kv_bounded``, where ``rss_flat``: the second-half RSS growth is < 5 % of
  the RSS at the end of segment 0, and ``kv_bounded``: the stored K/V bytes grew by ≤ 5 % over the second half
  (they do not when ``MemoryConfig.archive_latents`` caps the compressed memory — or memory is off — and the
  cap is reached within the first half; with an unbounded archive they grow with the stream, and the suite says so).
"""

from __future__ import annotations

import gc
import time

import numpy as np

from relic.eval.metrics import saturation, sharpness, temporal_flicker
from relic.eval.suites.common import World, motion_rows, script

#: (name, {action: magnitude in units of (rotations: rot_deg, translations: 1)}) replayed in every segment.
MOTIONS = [(n, {n: 1.0}) for n in ("dolly_in", "dolly_out", "truck_left", "truck_right", "pedestal_up",
                                   "pedestal_down", "tilt_up", "tilt_down", "pan_left", "pan_right", "roll_cw",
                                   "roll_ccw")] + \
          [("dolly_in+pan_right", {"dolly_in": 1.0, "pan_right": 1.0}),
           ("dolly_out+pan_left", {"dolly_out": 1.0, "pan_left": 1.0}),
           ("truck_left+tilt_up", {"truck_left": 1.0, "tilt_up": 1.0}),
           ("truck_right+tilt_down", {"truck_right": 1.0, "tilt_down": 1.0})]
ROTATIONS = {"tilt_up", "tilt_down", "pan_left", "pan_right", "roll_cw", "roll_ccw"}
TOLERANCE = 0.10        # quality proxies: relative deviation from segment 0
RSS_TOLERANCE = 0.05    # memory_flat: second-half RSS growth, relative to segment 0's RSS
KV_TOLERANCE = 0.05     # memory_flat: second-half growth of the stored K/V bytes, relative to the mid point


def segment_actions(frames: int, rot_deg: float = 2.0, move_fraction: float = 2 / 3) -> np.ndarray:
    """The per-frame actions (frames 13) of one segment: the :data:`MOTIONS` cycle fitted to ``frames``."""
    slot = max(1, frames // len(MOTIONS))
    move = max(1, int(round(slot * move_fraction)))
    rows = []
    for _, mags in MOTIONS:
        rows.append(motion_rows(move, **{k: v * (rot_deg if k in ROTATIONS else 1.0) for k, v in mags.items()}))
        rows.append(motion_rows(slot - move))
    a = np.concatenate(rows)[:frames]
    return np.concatenate([a, motion_rows(frames - len(a))])


def rss_mib() -> float:
    """The process's resident set size in MiB (VmRSS; fallback: peak RSS from getrusage)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0


class _Segment:
    """On-the-fly flicker / sharpness of a stream of uint8 frames (f h w 3); keeps only the last frame."""

    def __init__(self, prev: np.ndarray | None):
        self.prev, self.mae_sum, self.pairs, self.sharp_sum, self.frames, self.seconds = prev, 0.0, 0, 0.0, 0, 0.0
        self.sat_sum = 0.0

    def add(self, block: np.ndarray, seconds: float) -> None:
        v = block if self.prev is None else np.concatenate([self.prev[None], block])
        if len(v) >= 2:
            self.mae_sum += (1.0 - temporal_flicker(v)) * 255.0 * (len(v) - 1)
            self.pairs += len(v) - 1
        self.sharp_sum += sharpness(block) * len(block)
        self.sat_sum += sum(saturation(f) for f in block)
        self.frames += len(block)
        self.seconds += seconds
        self.prev = block[-1].copy()

    def result(self) -> dict:
        return {"flicker": (255.0 - self.mae_sum / self.pairs) / 255.0 if self.pairs else None,
                "sharpness": self.sharp_sum / self.frames, "saturation": self.sat_sum / self.frames,
                "frames": self.frames,
                "fps": self.frames / self.seconds if self.seconds > 0 else None}


def _max_rel_dev(values: list) -> float | None:
    """max_i≥1 |x_i / x_0 − 1| (None when x_0 is missing or 0, or there is no later value)."""
    x0, rest = values[0], [v for v in values[1:] if v is not None]
    if not x0 or not rest:
        return None
    return float(max(abs(v / x0 - 1.0) for v in rest))


def summarize(segments: list[dict], tolerance: float = TOLERANCE, rss_tolerance: float = RSS_TOLERANCE,
              kv_tolerance: float = KV_TOLERANCE) -> dict:
    """Segment rows (t_end_s, flicker, sharpness, rss_mib, kv_bytes) -> the stability summary (module docstring).

    A proxy whose deviation is unknown (one segment, or None values) is not within tolerance (``None``)."""
    t_end = [s["t_end_s"] for s in segments]
    mid = next(i for i, t in enumerate(t_end) if t >= t_end[-1] / 2)
    dev = {k: _max_rel_dev([s[k] for s in segments]) for k in ("flicker", "sharpness")}
    sat = [s.get("saturation_ratio") for s in segments]
    sat_known = [x for x in sat if x is not None]
    within = {k: (None if d is None else bool(d <= tolerance)) for k, d in dev.items()}
    rss = [s["rss_mib"] for s in segments]
    kv = [s["kv_bytes"] for s in segments]
    rss_half = rss[-1] - rss[mid]
    kv_half = kv[-1] - kv[mid]
    rss_flat = bool(rss_half < rss_tolerance * rss[0])
    kv_bounded = bool(kv_half <= kv_tolerance * kv[mid])
    return {"segments": len(segments), "stream_s": t_end[-1], "mid_segment": mid,
            "flicker_max_rel_dev": dev["flicker"], "sharpness_max_rel_dev": dev["sharpness"],
            "within_10pct": {**within, "all": bool(all(within.values()))},
            "saturation_ratio_first": sat[0], "saturation_ratio_last": sat[-1],
            "saturation_ratio_min": min(sat_known) if sat_known else None,
            "rss_start_mib": rss[0], "rss_end_mib": rss[-1], "rss_growth_mib": rss[-1] - rss[0],
            "rss_growth_second_half_mib": rss_half, "kv_bytes_end": kv[-1], "kv_growth_second_half_bytes": kv_half,
            "rss_flat": rss_flat, "kv_bounded": kv_bounded, "memory_flat": rss_flat and kv_bounded,
            "tolerances": {"quality": tolerance, "rss": rss_tolerance, "kv": kv_tolerance}}


def stream(session, frame0: np.ndarray, prompt: str, seconds: float, segment_s: float, rot_deg: float = 2.0,
           seed: int = 0, log=None) -> tuple[list[dict], list[np.ndarray]]:
    """Stream ``seconds`` of video in segments; returns (segment rows, one uint8 (h w 3) frame per segment end)."""
    n, fps = session.frames_per_step, session.cfg.fps
    seg_blocks = max(1, int(round(segment_s * fps / n)))
    seg_frames = seg_blocks * n
    n_seg = max(1, int(round(seconds * fps / seg_frames)))
    actions = segment_actions(seg_frames, rot_deg)
    session.gamma = 1.0
    rows, strip = [], []
    t0 = time.perf_counter()
    first = session.start(frame0, prompt, seed=seed)
    acc = _Segment(None)
    acc.add(first, time.perf_counter() - t0)
    sat0 = saturation(frame0)
    for i in range(n_seg):
        for b in range(seg_blocks):
            t0 = time.perf_counter()
            block = session.step(actions[b * n:(b + 1) * n])
            acc.add(block, time.perf_counter() - t0)
        gc.collect()
        mem = session.state["memory"]
        res = acc.result()
        res["saturation_ratio"] = res["saturation"] / sat0 if sat0 > 0 else None
        rows.append({"segment": i, "t_end_s": (i + 1) * seg_frames / fps, **res, "rss_mib": rss_mib(),
                     "kv_tokens": mem.get("tokens"), "kv_bytes": mem.get("bytes"), "latents": mem.get("latents"),
                     "memory_latents": mem.get("memory_latents")})
        strip.append(acc.prev)
        if log is not None:
            r = rows[-1]
            log(f"  {session.eval_label} {r['t_end_s']:.0f} s: flicker {r['flicker']:.4f} sharpness "
                f"{r['sharpness']:.1f} saturation {r['saturation']:.3f} RSS {r['rss_mib']:.0f} MiB KV {r['kv_bytes'] / 2**20:.1f} MiB "
                f"{r['fps']:.1f} FPS")
        acc = _Segment(acc.prev)
    return rows, strip


def run(sessions: list, world: World, seeds: list[int], quick: bool = False, seconds: float = 300.0,
        segment_s: float = 20.0, rot_deg: float = 2.0, log=None) -> dict:
    """One long stream per model from the first of ``seeds`` with a valid start pose (module docstring)."""
    if quick:
        seconds, segment_s = 2.0, 1.0
    probe = script(motion_rows(16, dolly_in=1.0))            # a short path: only its start pose is used
    seed = poses = None
    for seed in seeds:
        poses = world.start_pose(seed, probe)
        if poses is not None:
            break
    out = {"seconds": seconds, "segment_s": segment_s, "rot_deg": rot_deg, "motions": [m for m, _ in MOTIONS],
           "seed": seed, "models": {}}
    if poses is None:
        out["skipped"] = "no start pose with clearance and an open view in the scenes " + str(list(seeds))
        return out
    frame0 = world.render(poses[0][:1], poses[1][:1])[0]
    prompt = world.caption(seed)
    for s in sessions:
        rows, strip = stream(s, frame0, prompt, seconds, segment_s, rot_deg, log=log)
        out["models"][s.eval_label] = {"memory_config": {"archive_latents": s.memory.archive_latents,
                                                         "window": s.memory.window,
                                                         "token_budget": s.memory.token_budget},
                                       "summary": summarize(rows), "segments": rows}
        out.setdefault("_strips", {})[s.eval_label] = (frame0, strip)
        s.reset()                                           # free the long stream's cache
    return out
