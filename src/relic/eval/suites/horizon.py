"""Horizon: does the stream beat copying the start frame at 1, 2, 5, 10 and 20 s? (part of the quality suite)

Issue 23's "beats copying" target: PSNR against the ground-truth render ≥ the frozen start frame + 1.5 dB at 1, 2
and 5 s, and not below it at 10 and 20 s. Every model streams :func:`wander_script` (a walk that turns, steps
forward and back and sideways, so that it stays near its start and the ground truth stays renderable for the
whole horizon) from the ground-truth start frame of each held-out scene. At each time t of :data:`TIMES_S`:

* ``psnr``: the model's PSNR against the ground truth, averaged over the frames within ±``half_window_s`` of t
  (one frame is noisy; a window of half a second is not);
* ``psnr_frozen``: the same for the trivial baseline, the start frame repeated;
* ``gain_db`` = psnr − psnr_frozen, per scene; the summary averages over scenes.

``_strip`` (not in the JSON; the report's ``quality_horizon_strip.png``): for the first :data:`STRIP_SCENES`
scenes, rows ground truth | each model | frozen at the start and at each time.

Shapes: frames and ground truth are uint8 (T h w 3), T = 1 + ``seconds`` · fps rounded to whole steps.
"""

from __future__ import annotations

import numpy as np

from relic.eval.suites.common import World, frame_grid, label_frame, motion_rows, script
from relic.eval.suites.memory import psnr

TIMES_S: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 20.0)
SECONDS = 20.0
STRIP_SCENES = 2                               # scenes shown in the strip image
WALK = 0.25                                    # walking magnitude of the wander script's legs
STARTS = 4                                     # start-pose draws (salts) tried per scene
TARGET_DB = {1.0: 1.5, 2.0: 1.5, 5.0: 1.5, 10.0: 0.0, 20.0: 0.0}     # gain over frozen the issue asks for


def wander_script(fps: int, seconds: float = SECONDS, rot_deg: float = 2.0, step: int = 4) -> np.ndarray:
    """(1 + n, 13) actions: n = seconds · fps rounded up to a multiple of ``step``, split into eight equal legs:
    walk in turning right, turn right, step in, turn left, walk back turning left, step left, turn right, step
    back (pans at ``rot_deg`` per frame, walks at magnitude :data:`WALK`: 0.8 m per leg at 20 s, so that the
    path fits the small rooms of the indoor flats)."""
    n = int(np.ceil(round(seconds * fps) / step)) * step
    w = WALK
    legs = [dict(dolly_in=w, pan_right=rot_deg / 2), dict(pan_right=rot_deg), dict(dolly_in=w),
            dict(pan_left=rot_deg), dict(dolly_out=w, pan_left=rot_deg / 2), dict(truck_left=w),
            dict(pan_right=rot_deg / 2), dict(dolly_out=w)]
    chunks = np.array_split(np.arange(n), len(legs))
    return script(*[motion_rows(len(c), **leg) for c, leg in zip(chunks, legs)])


def gains(gt: np.ndarray, frames: np.ndarray, fps: int, times: tuple[float, ...] = TIMES_S,
          half_window_s: float = 0.25) -> dict:
    """Per time: mean PSNR of ``frames`` and of the frozen start frame against ``gt`` over the frames within
    ±half_window_s of t (clipped to the clip; frame 0 excluded), and their difference. None past the clip."""
    out: dict[str, list] = {"psnr": [], "psnr_frozen": [], "gain_db": []}
    n = min(len(gt), len(frames))
    half = max(0, int(round(half_window_s * fps)))
    for t in times:
        k = int(round(t * fps))
        idx = [i for i in range(k - half, k + half + 1) if 1 <= i < n]
        if k >= n or not idx:
            for key in out:
                out[key].append(None)
            continue
        p = float(np.mean([psnr(frames[i], gt[i]) for i in idx]))
        f = float(np.mean([psnr(gt[0], gt[i]) for i in idx]))
        out["psnr"].append(p)
        out["psnr_frozen"].append(f)
        out["gain_db"].append(p - f)
    return out


def _mean(v: list) -> float | None:
    f = [x for x in v if x is not None and np.isfinite(x)]
    return float(np.mean(f)) if f else None


def run(sessions: list, world: World, seeds: list[int], fps: int, quick: bool = False, rot_deg: float = 2.0,
        seconds: float = SECONDS, times: tuple[float, ...] = TIMES_S) -> dict:
    """Every model streams the wander script in every scene -> per-scene rows and per-model summaries."""
    from relic.eval.suites.common import generate

    if quick:
        seconds, times = 1.0, (0.5, 1.0)
    actions = wander_script(fps, seconds, rot_deg, sessions[0].frames_per_step)
    models: dict[str, dict] = {s.eval_label: {"results": []} for s in sessions}
    cols = [0, *[int(round(t * fps)) for t in times]]
    blocks = []
    for seed in seeds:
        poses = next((p for salt in range(STARTS) if (p := world.start_pose(seed, actions, salt=salt)) is not None),
                     None)
        if poses is None:
            for m in models.values():
                m["results"].append({"seed": seed, "skipped": "no start pose with clearance and an open view"})
            continue
        gt = world.render(*poses)
        rows = [[label_frame(gt[k], f"gt {k / fps:g} s") for k in cols if k < len(gt)]]
        for s in sessions:
            frames = generate(s, gt[0], world.caption(seed), actions)
            models[s.eval_label]["results"].append({"seed": seed, **gains(gt, frames, fps, times)})
            rows.append([label_frame(frames[k], s.eval_label) for k in cols if k < len(frames)])
        rows.append([label_frame(gt[0], "frozen") for k in cols if k < len(gt)])
        if len(blocks) < STRIP_SCENES:
            blocks.append(rows)
    for m in models.values():
        done = [r for r in m["results"] if "skipped" not in r]
        m["summary"] = {"n_scenes": len(done),
                        **{k: [_mean([r[k][i] for r in done]) for i in range(len(times))]
                           for k in ("psnr", "psnr_frozen", "gain_db")}}
        m["summary"]["target_met"] = [None if g is None or t not in TARGET_DB else bool(g >= TARGET_DB[t])
                                      for t, g in zip(times, m["summary"]["gain_db"])]
    return {"script": "wander", "seconds": seconds, "times_s": list(times), "seeds": list(seeds),
            "target_db": [TARGET_DB.get(t) for t in times], "models": models, "_strip": frame_grid(blocks)}


__all__ = ["TIMES_S", "SECONDS", "TARGET_DB", "wander_script", "gains", "run"]
