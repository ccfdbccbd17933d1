"""Quality suite: weight-free video quality proxies (paper §5.3, visual quality).

For each clip of a small battery (a static camera, a dolly, a pan, a mixed path; generated clips are shared
with the actions suite when both run) and each model, on the generated video and — as a reference — on the
ground-truth render of the same trajectory:

* ``flicker``: VBench temporal flickering (meaningful for the static-camera clip; reported for all);
* ``smoothness``: the flow-interpolation proxy of VBench motion smoothness;
* ``sharpness``: variance of the Laplacian (same resolution for every model, so comparable);
* ``psnr_early`` / ``ssim_early``: per-frame PSNR / SSIM against the ground truth over the first
  ``early_seconds`` (frame 0, the VAE round trip of the conditioning frame, included), plus their mean over
  frames 1…: generated frames drift from the exact render as the clip goes on, so only early frames are a
  fair comparison.

**Horizon** (:mod:`relic.eval.suites.horizon`, the ``horizon`` key): PSNR against the ground truth beside the
frozen start frame at 1, 2, 5, 10 and 20 s of a 20 s wander through the scene (issue 23's "beats copying").

LPIPS needs network weights: it is computed only when ``lpips_weights`` points to a local file
(:mod:`relic.eval.lpips`); otherwise it is omitted and the report says so.
"""

from __future__ import annotations

import numpy as np

from relic.eval.metrics import motion_smoothness, per_frame, sharpness, ssim, temporal_flicker
from relic.eval.suites.memory import psnr
from relic.eval.suites.horizon import run as run_horizon
from relic.eval.suites.common import ClipCache, World, motion_rows, script, static_rows


def battery(frames: int = 25, rot_deg: float = 2.0, quick: bool = False) -> list[tuple[str, np.ndarray, float]]:
    """(name, actions, γ); the dolly / pan names coincide with the actions suite so clips are shared."""
    if quick:
        return [("static", script(static_rows(4)), 1.0),
                ("dolly_in", script(motion_rows(4, dolly_in=1.0)), 1.0)]
    n = frames - 1
    return [("static", script(static_rows(n)), 1.0),
            ("dolly_in", script(motion_rows(n, dolly_in=1.0)), 1.0),
            ("pan_right", script(motion_rows(n, pan_right=rot_deg)), 1.0),
            ("dolly_in+pan_right", script(motion_rows(n, dolly_in=1.0, pan_right=rot_deg)), 1.0)]


def video_metrics(v: np.ndarray) -> dict:
    return {"flicker": temporal_flicker(v), "smoothness": motion_smoothness(v), "sharpness": sharpness(v)}


def _mean(v) -> float | None:
    f = [x for x in v if x is not None and np.isfinite(x)]
    return float(np.mean(f)) if f else None


def early_psnr(frames: np.ndarray, gt: np.ndarray, fps: int, early_seconds: float = 1.0
               ) -> tuple[list[float], float | None]:
    """Per-frame PSNR (dB) of uint8 (T h w 3) ``frames`` against ``gt`` over the first ``early_seconds``
    (frame 0 included, at least 2 frames) and its mean over frames 1… (None when nothing is finite)."""
    k = min(len(frames), max(2, int(round(early_seconds * fps)) + 1))
    p = per_frame(psnr, frames[:k], gt[:k])
    return [float(x) for x in p], _mean(p[1:])


def run(sessions: list, world: World, cache: ClipCache, seeds: list[int], fps: int, quick: bool = False,
        frames: int = 25, rot_deg: float = 2.0, early_seconds: float = 1.0, lpips=None) -> dict:
    """Every model on every (seed, clip). ``lpips``: an optional callable (a, b uint8 (f h w 3)) -> (f,)."""
    rows: dict[str, list[dict]] = {s.eval_label: [] for s in sessions}
    gt_rows = []
    scripts = battery(frames, rot_deg, quick)
    for seed in seeds:
        for name, actions, gamma in scripts:
            gt_done = False
            for s in sessions:
                clip = cache.get(s, world, seed, name, actions, gamma)
                if clip is None:
                    rows[s.eval_label].append({"seed": seed, "clip": name,
                                               "skipped": "no start pose with clearance and an open view"})
                    continue
                if not gt_done:
                    gt_rows.append({"seed": seed, "clip": name, **video_metrics(clip.gt)})
                    gt_done = True
                k = min(len(clip.frames), max(2, int(round(early_seconds * fps)) + 1))
                p = per_frame(psnr, clip.frames[:k], clip.gt[:k])
                q = per_frame(ssim, clip.frames[:k], clip.gt[:k])
                row = {"seed": seed, "clip": name, **video_metrics(clip.frames),
                       "psnr_early": [float(x) for x in p], "ssim_early": [float(x) for x in q],
                       "psnr_early_mean": _mean(p[1:]), "ssim_early_mean": _mean(q[1:])}
                if lpips is not None:
                    d = lpips(clip.frames[:k], clip.gt[:k])
                    row["lpips_early"] = [float(x) for x in d]
                    row["lpips_early_mean"] = _mean(d[1:])
                rows[s.eval_label].append(row)
    keys = ["flicker", "smoothness", "sharpness", "psnr_early_mean", "ssim_early_mean"] + \
        (["lpips_early_mean"] if lpips is not None else [])
    models = {}
    for label, rs in rows.items():
        done = [r for r in rs if "skipped" not in r]
        static = [r for r in done if r["clip"] == "static"]
        models[label] = {"summary": {"n_clips": len(done), **{k: _mean([r[k] for r in done]) for k in keys},
                                     "flicker_static": _mean([r["flicker"] for r in static])},
                         "results": rs}
    gt_done = [r for r in gt_rows]
    gt_summary = {"n_clips": len(gt_done),
                  **{k: _mean([r[k] for r in gt_done]) for k in ("flicker", "smoothness", "sharpness")},
                  "flicker_static": _mean([r["flicker"] for r in gt_done if r["clip"] == "static"])}
    return {"seeds": list(seeds), "clips": [n for n, _, _ in scripts], "early_seconds": early_seconds,
            "horizon": run_horizon(sessions, world, seeds, fps, quick, rot_deg),
            "ground_truth": {"summary": gt_summary, "results": gt_rows}, "models": models,
            "lpips": "computed" if lpips is not None else
            "omitted: LPIPS needs network weights; pass --lpips-weights PATH (a local safetensors file)"}
