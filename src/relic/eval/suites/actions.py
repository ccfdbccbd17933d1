"""Actions suite: does the generated video move the way the actions commanded? (paper §5.3, action accuracy)

For each script of a fixed battery and each held-out scene: render the commanded trajectory (the ground
truth), generate a clip from its first frame with the same actions, estimate the camera poses of both videos
with :func:`relic.eval.pose_estimation.estimate_poses`, and score both against the commanded poses with
:func:`relic.eval.noise_floor.score_clip` (RPE after Sim(3) alignment, Δ = 1; per-frame rotation and
translation-direction errors; direction match for single motions). The ground-truth score is the **noise
floor** of that very trajectory: a model cannot be measured more precisely than this.

Battery (:func:`battery`): the 12 motions alone, two combinations, two speeds γ, and a long mixed path.
``--quick``: two one-block scripts (5 frames; one at γ = 2) in one scene.
"""

from __future__ import annotations

import numpy as np

from relic.eval.direction import MOTIONS, direction_accuracy, dominant_command
from relic.eval.noise_floor import _aligned_positions, _summarize, score_clip
from relic.eval.pose_estimation import estimate_poses
from relic.eval.suites.common import ClipCache, World, motion_rows, script

ROTATIONS = {"tilt_up", "tilt_down", "pan_left", "pan_right", "roll_cw", "roll_ccw"}


def _single(name: str, frames: int, rot_deg: float) -> np.ndarray:
    return script(motion_rows(frames - 1, **{name: rot_deg if name in ROTATIONS else 1.0}))


def battery(frames: int = 25, rot_deg: float = 2.0, long_frames: int = 161,
            quick: bool = False) -> list[tuple[str, np.ndarray, float]]:
    """(name, actions (T 13), γ) scripts. T − 1 must be a multiple of the frames per step (4)."""
    if quick:
        return [("dolly_in", _single("dolly_in", 5, rot_deg), 1.0),
                ("pan_right@γ=2", _single("pan_right", 5, rot_deg), 2.0)]
    out = [(m, _single(m, frames, rot_deg), 1.0) for m in MOTIONS]
    n = frames - 1
    out.append(("dolly_in+pan_right", script(motion_rows(n, dolly_in=1.0, pan_right=rot_deg)), 1.0))
    out.append(("truck_left+tilt_up", script(motion_rows(n, truck_left=1.0, tilt_up=rot_deg / 2)), 1.0))
    out.append(("dolly_in@γ=0.5", _single("dolly_in", frames, rot_deg), 0.5))
    out.append(("dolly_in@γ=2", _single("dolly_in", frames, rot_deg), 2.0))
    out.append(("pan_right@γ=0.5", _single("pan_right", frames, rot_deg), 0.5))
    out.append(("pan_right@γ=2", _single("pan_right", frames, rot_deg), 2.0))
    parts = [dict(dolly_in=1.0), dict(pan_left=rot_deg * 2), dict(truck_right=1.0), dict(tilt_down=rot_deg / 2),
             dict(dolly_in=1.0, pan_right=rot_deg), dict(tilt_up=rot_deg / 2), dict(dolly_out=1.0),
             dict(pan_right=rot_deg * 2), dict(truck_left=1.0, pedestal_up=0.5)]
    chunks = np.array_split(np.arange(long_frames - 1), len(parts))
    out.append(("long_mixed", script(*[motion_rows(len(c), **p) for c, p in zip(chunks, parts)]), 1.0))
    return out


def base_motion(name: str) -> str | None:
    """The single motion a script name stands for (``pan_right@γ=2`` -> ``pan_right``), else None."""
    base = name.split("@")[0]
    return base if base in MOTIONS else None


def score_script(name: str, clip_actions: np.ndarray, gamma: float, R, P, frames, K) -> tuple[dict, np.ndarray]:
    """Estimate the camera of ``frames`` (T h w 3 uint8) and score it against the commanded poses R, P
    (:func:`relic.eval.noise_floor.score_clip` on the γ-scaled actions) -> (row, aligned estimated positions)."""
    est = estimate_poses(frames, K)
    a = clip_actions.copy()
    a[:, :12] *= gamma
    row = score_clip(base_motion(name) or name, a, R, P, est)
    return row, _aligned_positions(P, est)


def run(sessions: list, world: World, cache: ClipCache, seeds: list[int], quick: bool = False,
        frames: int = 25, rot_deg: float = 2.0) -> dict:
    """Every model on every (seed, script): RPE next to the noise floor. Returns a JSON-ready dict plus
    ``_tracks`` [(label, seed, name, P_cmd, P_est_aligned, P_gt_est_aligned)] for the plots."""
    scripts = battery(frames, rot_deg, quick=quick)
    floor_rows, tracks = [], []
    rows: dict[str, list[dict]] = {s.eval_label: [] for s in sessions}
    for seed in seeds:
        for name, actions, gamma in scripts:
            floor_done = False
            for s in sessions:
                clip = cache.get(s, world, seed, name, actions, gamma)
                if clip is None:
                    rows[s.eval_label].append({"seed": seed, "script": name, "gamma": gamma,
                                               "skipped": "no start pose with clearance and an open view"})
                    continue
                if not floor_done:
                    row, gt_track = score_script(name, actions, gamma, clip.R, clip.P, clip.gt, world.K)
                    floor_rows.append({"seed": seed, "script": name, "gamma": gamma, **row})
                    floor_done = True
                row, track = score_script(name, actions, gamma, clip.R, clip.P, clip.frames, world.K)
                rows[s.eval_label].append({"seed": seed, "script": name, "gamma": gamma,
                                           "generation_s": round(clip.seconds, 3), **row})
                tracks.append((s.eval_label, seed, name, clip.P, track, gt_track))
            if not floor_done:
                floor_rows.append({"seed": seed, "script": name, "gamma": gamma,
                                   "skipped": "no start pose with clearance and an open view"})
    models = {}
    for label, rs in rows.items():
        summary = _summarize(rs)
        dirs = direction_accuracy([(base_motion(r["script"]), r["direction_match"]) for r in rs
                                   if "skipped" not in r and base_motion(r["script"]) is not None])
        models[label] = {"summary": summary, "direction_accuracy": dirs, "results": rs}
    return {
        "seeds": list(seeds),
        "battery": [{"name": n, "frames": len(a), "gamma": g, "command": dominant_command(a) if base_motion(n) else
                     "combination"} for n, a, g in scripts],
        "noise_floor": {"summary": _summarize(floor_rows), "results": floor_rows},
        "models": models,
        "_tracks": tracks,
    }
