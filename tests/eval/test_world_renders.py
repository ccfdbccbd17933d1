"""The pose estimator and the noise-floor run on real renders of the procedural world (relic.world)."""

from __future__ import annotations

import json

import numpy as np

from relic.camera.geometry import geodesic_angle
from relic.eval.noise_floor import NoiseFloorConfig, battery, run, write
from relic.eval.pose_estimation import estimate_poses


def test_noise_floor_on_rendered_clips(tmp_path):
    cfg = NoiseFloorConfig(seeds=(90002,), frames=9)
    scripts = [s for s in battery(cfg.frames, cfg.rot_deg) if s[0] in ("pan_right", "dolly_in", "dolly_in+pan_right")]
    report = run(cfg, scripts)
    rows = {r["script"]: r for r in report["results"]}
    assert set(rows) == {"pan_right", "dolly_in", "dolly_in+pan_right"} and report["summary"]["n_skipped"] == 0
    # Ground-truth renders: rotation per frame well under 2 degrees, directions right, scale flagged correctly.
    for r in rows.values():
        assert r["rot_err_per_frame_median_deg"] < 1.0 and r["pairs_valid"] == 8
    assert rows["pan_right"]["scale_observable"] is False and rows["pan_right"]["rpe_trans"] is None
    assert rows["pan_right"]["direction_match"] is True and rows["dolly_in"]["direction_match"] is True
    assert rows["dolly_in"]["trans_dir_err_median_deg"] < 20.0
    assert rows["dolly_in+pan_right"]["rpe_trans"] < cfg.speed_m
    # The Sim(3)-aligned estimated path stays close to the commanded one.
    _, _, P, Pe = next(t for t in report["_tracks"] if t[1] == "dolly_in")
    assert np.isfinite(Pe).all() and np.abs(Pe - P).max() < 3 * cfg.speed_m
    paths = write(report, tmp_path)
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    saved = json.loads((tmp_path / "noise_floor.json").read_text())
    assert "_tracks" not in saved and saved["summary"]["n_clips"] == 3


def test_estimated_rotation_matches_rendered_ground_truth():
    from relic.eval.noise_floor import _start_pose
    from relic.world.renderer import Renderer
    from relic.world.scenes import make_scene

    cfg = NoiseFloorConfig(frames=9)
    a = np.zeros((9, 13))
    a[0, 12] = 1.0
    a[1:, 9] = 2.0     # pan right 2°/frame
    a[1:, 6] = 1.0     # tilt up 1°/frame
    a[1:, 3] = 1.0     # truck right
    scene = make_scene(90003)
    r = Renderer(cfg.width, cfg.height)
    try:
        r.set_scene(scene)
        R, P = _start_pose(scene, r, a, cfg, np.random.default_rng(0))
        frames = np.stack([r.render(cfg.K, x, y) for x, y in zip(R, P)])
    finally:
        r.release()
    est = estimate_poses(frames, cfg.K)
    dR = np.einsum("tij,tkj->tik", R[1:], R[:-1])
    err = np.rad2deg(geodesic_angle(dR, est.rel_R))
    assert est.pair_valid.all() and np.median(err) < 1.0
