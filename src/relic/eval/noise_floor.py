"""The pose estimator's noise floor: ground-truth renders of commanded trajectories -> estimator -> RPE.

A generated video can only be judged as precisely as the estimator reads a perfect one. For each action script
of a battery and each held-out scene seed, this module integrates the script into poses (eq. 3), renders them
with :mod:`relic.world` (no model involved), runs :func:`relic.eval.pose_estimation.estimate_poses` and scores
the estimate against the commanded poses with :func:`relic.eval.trajectory.evaluate` (RPE after Sim(3)
alignment, Δ = 1 frame) and :mod:`relic.eval.direction`.

Run it with ``python -m relic.eval.noise_floor --out DIR`` (writes ``noise_floor.json``, ``trajectories.png``
and ``rpe_per_action.png``); ``docs/eval.md`` shows the result.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from relic.camera.actions import ACTION_INDEX, integrate
from relic.camera.geometry import geodesic_angle, intrinsics_matrix, look_at
from relic.eval.direction import MOTIONS, direction_matches, dominant_command, estimated_motion
from relic.eval.pose_estimation import PoseEstimate, PoseEstimatorConfig, estimate_poses
from relic.eval.trajectory import evaluate, umeyama
from relic.fileio import save_figure, write_json_atomic


@dataclass
class NoiseFloorConfig:
    """What to render and how fast the camera moves.

    Attributes:
        seeds: scene seeds (held out from training by the caller).
        width, height, fov_deg: frame size and horizontal field of view (relic-tiny: 224×128, 90°).
        frames: frames per script (the first is the start pose).
        speed_m: translation per frame in metres at action magnitude 1 (the d̄ of eq. 3).
        rot_deg: rotation per frame in degrees at action magnitude 1.
        eye_height: lowest camera height above the floor in metres along the path.
        clearance: the whole path keeps at least this distance (m) to every solid.
        min_view_depth: the start, middle and end views must have a median depth of at least this (m).
    """

    seeds: tuple[int, ...] = (90001, 90002, 90003, 90004)
    width: int = 224
    height: int = 128
    fov_deg: float = 90.0
    frames: int = 25
    speed_m: float = 0.08
    rot_deg: float = 2.0
    eye_height: float = 1.5
    clearance: float = 0.35
    min_view_depth: float = 2.0
    estimator: PoseEstimatorConfig = field(default_factory=PoseEstimatorConfig)

    @property
    def K(self) -> np.ndarray:
        f = self.width / 2 / math.tan(math.radians(self.fov_deg) / 2)
        return intrinsics_matrix(f, f, self.width / 2, self.height / 2)


def single_motion_script(name: str, frames: int, magnitude: float = 1.0) -> np.ndarray:
    """(frames, 13) actions: the prepended static row, then ``name`` at ``magnitude`` on every frame."""
    a = np.zeros((frames, 13))
    a[0, ACTION_INDEX["static"]] = 1.0
    a[1:, ACTION_INDEX[name]] = magnitude
    return a


def battery(frames: int, rot_deg: float) -> list[tuple[str, np.ndarray]]:
    """The action scripts: each of the 12 motions alone, two combinations and a mixed path.

    Rotation entries carry degrees per frame (``rot_deg``); translation entries are in units of d̄ (1.0).
    """
    rot = {"tilt_up", "tilt_down", "pan_left", "pan_right", "roll_cw", "roll_ccw"}
    out = [(m, single_motion_script(m, frames, rot_deg if m in rot else 1.0)) for m in MOTIONS]
    combo = single_motion_script("dolly_in", frames)
    combo[1:, ACTION_INDEX["pan_right"]] = rot_deg
    out.append(("dolly_in+pan_right", combo))
    combo = single_motion_script("truck_left", frames)
    combo[1:, ACTION_INDEX["tilt_up"]] = rot_deg / 2
    out.append(("truck_left+tilt_up", combo))
    mixed = np.zeros((frames, 13))
    mixed[0, ACTION_INDEX["static"]] = 1.0
    parts = [("dolly_in", 1.0), ("pan_left", rot_deg), ("truck_right", 1.0), ("tilt_down", rot_deg / 2),
             ("dolly_out", 1.0)]
    for i, chunk in enumerate(np.array_split(np.arange(1, frames), len(parts))):
        mixed[chunk, ACTION_INDEX[parts[i][0]]] = parts[i][1]
    out.append(("mixed", mixed))
    return out


def _start_pose(scene, renderer, actions: np.ndarray, cfg: NoiseFloorConfig, rng: np.random.Generator):
    """A start pose from which the integrated script keeps ``cfg.clearance`` to every solid and sees an open
    view (at the first, middle and last frame the median visible depth is at least ``cfg.min_view_depth`` and
    at least half the pixels hit geometry rather than sky); None if 400 random tries fail."""
    lo, hi = scene.bounds
    for _ in range(400):
        p = np.array([rng.uniform(lo[0], hi[0]), rng.uniform(lo[1], hi[1]), lo[2] + cfg.eye_height])
        yaw = rng.uniform(0, 2 * np.pi)
        R0 = look_at(p, p + np.array([np.cos(yaw), np.sin(yaw), 0.0]))
        R, P = integrate(actions, mean_displacement=cfg.speed_m, R0=R0, P0=p)
        P[:, 2] += max(0.0, lo[2] + cfg.eye_height - P[:, 2].min())   # a descending path starts higher
        if scene.clearance(P).min() < cfg.clearance or (P[:, 2] >= hi[2] - cfg.clearance).any():
            continue
        ok = True
        for k in (0, len(P) // 2, len(P) - 1):
            _, depth = renderer.render(cfg.K, R[k], P[k], depth=True)
            hit = np.isfinite(depth)
            if hit.mean() < 0.5 or np.median(depth[hit]) < cfg.min_view_depth:
                ok = False
                break
        if ok:
            return R, P
    return None


def _aligned_positions(P_ref: np.ndarray, est: PoseEstimate) -> np.ndarray:
    """Estimated positions (T, 3) aligned to the reference per segment by Sim(3); NaN where not observable."""
    out = np.full_like(P_ref, np.nan)
    for s in np.unique(est.segment):
        idx = np.flatnonzero(est.segment == s)
        if len(idx) < 3 or np.ptp(P_ref[idx], axis=0).max() < 1e-6 or np.ptp(est.P[idx], axis=0).max() < 1e-9:
            continue
        out[idx] = umeyama(est.P[idx], P_ref[idx], with_scale=True).apply_points(est.P[idx])
    return out


def score_clip(name: str, actions: np.ndarray, R: np.ndarray, P: np.ndarray, est: PoseEstimate) -> dict:
    """Score an estimate against commanded poses R (T 3 3), P (T 3): RPE/ATE after Sim(3) alignment (Δ = 1),
    median per-frame rotation and translation-direction errors, valid pairs, and (for a single-motion script
    ``name``) whether the direction matches. Unknowns are None. Used by :func:`run` and the eval suites."""
    err = evaluate(R, P, est.R, est.P, delta=1, with_scale=True, segment=est.segment)
    dR = np.einsum("tij,tkj->tik", R[1:], R[:-1])
    step = np.einsum("tij,tj->ti", R[:-1], P[1:] - P[:-1])
    rot_err = np.rad2deg(geodesic_angle(dR, est.rel_R))
    norm = np.linalg.norm(step, axis=1)
    has_t = (norm > 1e-9) & np.isfinite(est.rel_dir).all(1)
    tdir = np.rad2deg(np.arccos(np.clip(np.sum(est.rel_dir[has_t] * step[has_t], 1) / norm[has_t], -1, 1)))
    match = (direction_matches(dominant_command(actions),
                               estimated_motion(est.rel_R, est.rel_dir, est.pair_valid))
             if name in MOTIONS else None)
    return {
        **err.to_dict(),
        "rot_err_per_frame_median_deg": float(np.nanmedian(rot_err)) if np.isfinite(rot_err).any() else None,
        "trans_dir_err_median_deg": float(np.median(tdir)) if len(tdir) else None,
        "pairs_valid": int(est.pair_valid.sum()), "pairs_with_parallax": int(est.parallax.sum()),
        "direction_match": match,
    }


def run(cfg: NoiseFloorConfig = NoiseFloorConfig(), scripts: list[tuple[str, np.ndarray]] | None = None) -> dict:
    """Render every script in every scene, estimate, score. Returns a JSON-ready dict (see docs/eval.md)."""
    from relic.world.renderer import Renderer
    from relic.world.scenes import make_scene

    scripts = battery(cfg.frames, cfg.rot_deg) if scripts is None else scripts
    K = cfg.K
    renderer = Renderer(cfg.width, cfg.height)
    results, tracks = [], []
    est_time, n_pairs_total = 0.0, 0
    try:
        for seed in cfg.seeds:
            scene = make_scene(seed)
            renderer.set_scene(scene)
            rng = np.random.default_rng(seed)
            for name, actions in scripts:
                poses = _start_pose(scene, renderer, actions, cfg, rng)
                if poses is None:
                    results.append({"seed": seed, "script": name, "skipped": "no start pose with clearance and an open view"})
                    continue
                R, P = poses
                frames = np.stack([renderer.render(K, r, p) for r, p in zip(R, P)])
                t0 = time.perf_counter()
                est = estimate_poses(frames, K, cfg.estimator)
                est_time += time.perf_counter() - t0
                n_pairs_total += len(frames) - 1
                results.append({"seed": seed, "script": name, "family": scene.family,
                                **score_clip(name, actions, R, P, est)})
                tracks.append((seed, name, P, _aligned_positions(P, est)))
    finally:
        renderer.release()
    summary = _summarize(results)
    summary["ms_per_pair"] = 1000 * est_time / max(n_pairs_total, 1)
    return {"config": {**asdict(cfg), "K": K.tolist()}, "summary": summary, "results": results,
            "_tracks": tracks}


def _summarize(results: list[dict]) -> dict:
    done = [r for r in results if "skipped" not in r]

    def med(key, rows):
        v = [r[key] for r in rows if r.get(key) is not None]
        return float(np.median(v)) if v else None

    def mean(key, rows):
        v = [r[key] for r in rows if r.get(key) is not None]
        return float(np.mean(v)) if v else None

    per_script = {}
    for name in dict.fromkeys(r["script"] for r in done):
        rows = [r for r in done if r["script"] == name]
        matches = [r["direction_match"] for r in rows if name in MOTIONS]
        per_script[name] = {
            "n": len(rows), "rpe_trans": mean("rpe_trans", rows), "rpe_rot_deg": mean("rpe_rot_deg", rows),
            "scale_observable": all(r["scale_observable"] for r in rows),
            "rot_err_per_frame_median_deg": med("rot_err_per_frame_median_deg", rows),
            "trans_dir_err_median_deg": med("trans_dir_err_median_deg", rows),
            "direction_accuracy": (sum(m is True for m in matches) / len(matches)) if matches else None,
        }
    return {
        "n_clips": len(done), "n_skipped": len(results) - len(done),
        "rpe_trans": mean("rpe_trans", done), "rpe_rot_deg": mean("rpe_rot_deg", done),
        "rot_err_per_frame_median_deg": med("rot_err_per_frame_median_deg", done),
        "trans_dir_err_median_deg": med("trans_dir_err_median_deg", done),
        "per_script": per_script,
    }


def plot(report: dict, out_dir: str | Path) -> list[Path]:
    """Top-down trajectory overlays (commanded vs estimated) and RPE bars per script; atomic PNG writes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    written = []
    tracks = [t for t in report["_tracks"] if report["_tracks"]]
    seed0 = tracks[0][0] if tracks else None
    shown = [t for t in tracks if t[0] == seed0]
    cols = 5
    rows = max(1, math.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (seed, name, P, Pe) in zip(axes.ravel(), shown):
        ax.axis("on")
        ext = np.ptp(P, axis=0)
        side = ext[2] > max(ext[0], ext[1])                      # vertical motion: show a side view
        i, j = ((0 if ext[0] >= ext[1] else 1), 2) if side else (0, 1)
        ax.plot(P[:, i], P[:, j], "k-", lw=2, label="commanded")
        ax.plot(P[0, i], P[0, j], "ko", ms=4)
        if np.isfinite(Pe).any():
            ax.plot(Pe[:, i], Pe[:, j], "r--", lw=1.5, label="estimated (Sim(3))")
        else:
            ax.text(0.5, 0.1, "no baseline: rotation only", transform=ax.transAxes, ha="center", fontsize=8)
        ax.set_title(name + (f" (side view, {'xy'[i]}–z)" if side else ""), fontsize=9)
        ax.set_aspect("equal", adjustable="datalim")
        ax.tick_params(labelsize=6)
    axes.ravel()[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"Top-down trajectories (x, y in metres), scene seed {seed0}: commanded vs estimated")
    fig.tight_layout()
    path = out_dir / "trajectories.png"
    save_figure(fig, path, dpi=90)
    written.append(path)

    per = report["summary"]["per_script"]
    names = list(per)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4))
    rt = [per[n]["rpe_trans"] if per[n]["rpe_trans"] is not None else 0.0 for n in names]
    rr = [per[n]["rpe_rot_deg"] or 0.0 for n in names]
    a1.bar(names, rt, color=["C0" if per[n]["rpe_trans"] is not None else "lightgray" for n in names])
    for i, n in enumerate(names):
        if per[n]["rpe_trans"] is None:
            a1.text(i, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    a1.set_ylabel("RPE translation (m, Sim(3), Δ=1)")
    a2.bar(names, rr, color="C1")
    a2.set_ylabel("RPE rotation (deg, Δ=1)")
    for a in (a1, a2):
        a.tick_params(axis="x", rotation=70, labelsize=7)
    fig.suptitle("Noise floor: pose estimator on ground-truth renders (mean over scenes)")
    fig.tight_layout()
    path = out_dir / "rpe_per_action.png"
    save_figure(fig, path, dpi=90)
    written.append(path)
    return written


def write(report: dict, out_dir: str | Path) -> list[Path]:
    """``noise_floor.json`` plus the plots in ``out_dir``."""
    out_dir = Path(out_dir)
    paths = plot(report, out_dir)
    write_json_atomic(out_dir / "noise_floor.json", {k: v for k, v in report.items() if not k.startswith("_")})
    return [out_dir / "noise_floor.json", *paths]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--seeds", type=int, nargs="+", default=list(NoiseFloorConfig.seeds))
    ap.add_argument("--frames", type=int, default=NoiseFloorConfig.frames)
    args = ap.parse_args(argv)
    cfg = NoiseFloorConfig(seeds=tuple(args.seeds), frames=args.frames)
    report = run(cfg)
    for p in write(report, args.out):
        print(p)
    s = report["summary"]
    print(f"clips {s['n_clips']} (skipped {s['n_skipped']}), RPE trans {s['rpe_trans']}, RPE rot {s['rpe_rot_deg']} deg, "
          f"{s['ms_per_pair']:.1f} ms/pair")


if __name__ == "__main__":
    main()
