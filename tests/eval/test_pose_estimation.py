"""OpenCV two-view pose estimation on exactly rendered synthetic planes (relic.eval.pose_estimation)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest_helpers import K, base_rotation

from relic.camera.actions import ACTION_INDEX, integrate
from relic.camera.geometry import axis_angle_to_matrix, geodesic_angle
from relic.eval.pose_estimation import chain, estimate_poses, relative_pose
from relic.eval.trajectory import evaluate


def _script(name: str, T: int = 9, mag: float = 1.0) -> np.ndarray:
    a = np.zeros((T, 13))
    a[0, 12] = 1.0
    a[1:, ACTION_INDEX[name]] = mag
    return a


def _gt_relative(R, P):
    dR = np.einsum("tij,tkj->tik", R[1:], R[:-1])
    step = np.einsum("tij,tj->ti", R[:-1], P[1:] - P[:-1])
    return dR, step


def test_relative_pose_convention_and_accuracy(plane_scene):
    # A mixed step: pan, tilt and a forward-right translation, seen from a moving camera.
    R0 = base_rotation()
    R1 = axis_angle_to_matrix(np.array([0.01, -0.02, 0.005])) @ R0
    P0, P1 = np.zeros(3), np.array([0.15, -0.1, 0.03])
    f0, f1 = plane_scene.render(R0, P0), plane_scene.render(R1, P1)
    r = relative_pose(f0, f1, K)
    assert r["valid"] and r["parallax"] and r["n_inliers"] >= 50
    assert np.rad2deg(geodesic_angle(r["R"], R1 @ R0.T)) < 0.3
    step = R0 @ (P1 - P0)
    cos = float(r["dir"] @ step / np.linalg.norm(step))
    assert np.rad2deg(np.arccos(min(cos, 1.0))) < 10.0


def test_pure_rotation_clip(plane_scene):
    """Pan + tilt: rotation within a small fraction of a degree per frame, no translation claimed."""
    a = _script("pan_right", 9, 1.5)
    a[1:, ACTION_INDEX["tilt_up"]] = 0.7
    R, P = integrate(a, mean_displacement=0.1, R0=base_rotation())
    est = estimate_poses(plane_scene.render_clip(R, P), K)
    assert est.pair_valid.all() and not est.parallax.any()
    dR, _ = _gt_relative(R, P)
    assert np.median(np.rad2deg(geodesic_angle(est.rel_R, dR))) < 0.1
    e = evaluate(R, P, est.R, est.P, segment=est.segment)
    assert e.scale_observable is False and e.rpe_trans is None and e.rpe_rot_deg < 0.1


@pytest.mark.parametrize("name", ["dolly_in", "truck_left", "pedestal_up"])
def test_translation_clip(plane_scene, name):
    R, P = integrate(_script(name, 9), mean_displacement=0.12, R0=base_rotation())
    est = estimate_poses(plane_scene.render_clip(R, P), K)
    assert est.pair_valid.all() and est.parallax.all()
    dR, step = _gt_relative(R, P)
    step /= np.linalg.norm(step, axis=1, keepdims=True)
    ang = np.rad2deg(np.arccos(np.clip((est.rel_dir * step).sum(1), -1, 1)))
    assert np.median(ang) < 10.0
    assert np.median(np.rad2deg(geodesic_angle(est.rel_R, dR))) < 0.3
    # Chained unit steps along a straight line at constant speed: Sim(3) removes the scale.
    e = evaluate(R, P, est.R, est.P, segment=est.segment)
    assert e.scale_observable and e.rpe_trans < 0.3 * 0.12


def test_chain_reproduces_ground_truth_from_exact_relative_poses():
    from relic.camera.synthetic import smooth_trajectory

    R, P = smooth_trajectory(3, 20)
    dR, step = _gt_relative(R, P)
    lengths = np.linalg.norm(step, axis=1)
    Rc, Pc, seg = chain(dR, step / lengths[:, None], np.ones(19, bool), step_lengths=lengths)
    # The chain starts at the identity/origin: compare after moving the ground truth there.
    np.testing.assert_allclose(Rc, R @ R[0].T, atol=1e-9)
    np.testing.assert_allclose(Pc, (P - P[0]) @ R[0].T, atol=1e-9)
    assert (seg == 0).all()
    # Unit steps: the trajectory is the same up to speed; a failed pair restarts the chain.
    valid = np.ones(19, bool)
    valid[9] = False
    Rc, Pc, seg = chain(dR, step / lengths[:, None], valid)
    assert (seg[:10] == 0).all() and (seg[10:] == 1).all()
    np.testing.assert_allclose(Rc[10], np.eye(3)) and np.testing.assert_allclose(Pc[10], 0.0)
    np.testing.assert_allclose(np.linalg.norm(np.diff(Pc[:10], axis=0), axis=1), 1.0)
    with pytest.raises(ValueError, match="step_lengths"):
        chain(dR, step, np.ones(19, bool), step_lengths=np.ones(3))


def test_failures_are_unknown_never_zero(plane_scene):
    R, P = integrate(_script("pan_left", 6), mean_displacement=0.1, R0=base_rotation())
    frames = plane_scene.render_clip(R, P)
    frames[3] = 128                                   # a blank frame: nothing to track into or out of
    est = estimate_poses(frames, K)
    assert list(est.pair_valid) == [True, True, False, False, True]
    assert np.isnan(est.rel_R[2:4]).all() and np.isnan(est.rel_dir[2:4]).all()
    assert est.n_tracks[3] == 0
    assert list(est.segment) == [0, 0, 0, 1, 2, 2]
    e = evaluate(R, P, est.R, est.P, segment=est.segment)
    assert e.n_pairs == 3 and e.n_unknown == 2
    with pytest.raises(ValueError, match="at least 2"):
        estimate_poses(frames[:1], K)


def test_estimates_do_not_depend_on_call_history(plane_scene):
    R, P = integrate(_script("truck_right", 5), mean_displacement=0.12, R0=base_rotation())
    frames = plane_scene.render_clip(R, P)
    first = estimate_poses(frames, K)
    estimate_poses(frames[::-1].copy(), K)          # advances OpenCV's global RNG
    again = estimate_poses(frames, K)
    np.testing.assert_array_equal(first.rel_R, again.rel_R)
    np.testing.assert_array_equal(first.rel_dir, again.rel_dir)
