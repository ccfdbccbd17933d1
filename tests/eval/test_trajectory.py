"""Umeyama alignment, RPE and ATE (relic.eval.trajectory)."""

from __future__ import annotations

import numpy as np
import pytest

from relic.camera.geometry import axis_angle_to_matrix, c2w_from_pose, pose_from_c2w
from relic.camera.synthetic import smooth_trajectory
from relic.eval.trajectory import Similarity, align, evaluate, rpe_per_pair, umeyama


def _random_sim(rng) -> Similarity:
    return Similarity(float(rng.uniform(0.2, 5.0)), axis_angle_to_matrix(rng.normal(size=3)), rng.normal(size=3) * 4)


@pytest.mark.parametrize("seed", range(5))
def test_umeyama_recovers_random_sim3(seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(50, 3))
    S = _random_sim(rng)
    got = umeyama(X, S.apply_points(X), with_scale=True)
    assert got.s == pytest.approx(S.s, rel=1e-10)
    np.testing.assert_allclose(got.R, S.R, atol=1e-10)
    np.testing.assert_allclose(got.t, S.t, atol=1e-9)


def test_umeyama_se3_keeps_unit_scale_and_recovers_rigid_motion():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(30, 3))
    S = Similarity(1.0, axis_angle_to_matrix(rng.normal(size=3)), rng.normal(size=3))
    got = umeyama(X, S.apply_points(X), with_scale=False)
    assert got.s == 1.0
    np.testing.assert_allclose(got.R, S.R, atol=1e-10)
    np.testing.assert_allclose(got.t, S.t, atol=1e-10)
    # With a scaled target SE(3) still returns s = 1 (and the right rotation), Sim(3) finds the scale.
    got = umeyama(X, 3.0 * S.apply_points(X), with_scale=False)
    assert got.s == 1.0
    np.testing.assert_allclose(got.R, S.R, atol=1e-10)


def test_umeyama_reflection_is_never_returned():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(20, 3))
    got = umeyama(X, X * np.array([1.0, 1.0, -1.0]))      # a mirror image: best proper rotation
    assert np.linalg.det(got.R) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(3))
def test_evaluate_is_zero_for_a_similarity_transformed_estimate(seed):
    rng = np.random.default_rng(seed)
    R, P = smooth_trajectory(seed, 40)
    S = _random_sim(rng)
    est_R, est_P = S.apply_poses(R, P)               # the estimate lives in another frame and scale
    e = evaluate(R, P, est_R, est_P, delta=1, with_scale=True)
    assert e.scale_observable and e.scale == pytest.approx(1.0 / S.s, rel=1e-9)
    assert e.rpe_trans < 1e-9 and e.rpe_rot_deg < 1e-6 and e.ate < 1e-9
    assert e.n_pairs == 39 and e.n_unknown == 0
    # align() maps the estimate back onto the reference.
    R2, P2, sim = align(P, est_R, est_P)
    np.testing.assert_allclose(P2, P, atol=1e-9)
    np.testing.assert_allclose(R2, R, atol=1e-9)


def _poses_from_c2w(mats):
    return pose_from_c2w(np.stack(mats))


def _c2w(Rc2w=np.eye(3), p=(0, 0, 0)):
    m = np.eye(4)
    m[:3, :3] = Rc2w
    m[:3, 3] = p
    return m


def _rz(deg):
    return axis_angle_to_matrix(np.array([0.0, 0.0, np.deg2rad(deg)]))


def test_rpe_hand_computed_translation():
    # Reference: unit steps along x. Estimate: steps of 1.1. SE(3): every pair is off by 0.1.
    ref = _poses_from_c2w([_c2w(p=(k, 0, 0)) for k in range(6)])
    est = _poses_from_c2w([_c2w(p=(1.1 * k, 0, 0)) for k in range(6)])
    e = evaluate(*ref, *est, delta=1, with_scale=False)
    assert e.rpe_trans == pytest.approx(0.1) and e.rpe_rot_deg == pytest.approx(0.0, abs=1e-9)
    e2 = evaluate(*ref, *est, delta=2, with_scale=False)
    assert e2.rpe_trans == pytest.approx(0.2) and e2.n_pairs == 4
    # Sim(3) removes the constant speed error completely (scale 1/1.1).
    e3 = evaluate(*ref, *est, delta=1, with_scale=True)
    assert e3.rpe_trans == pytest.approx(0.0, abs=1e-12) and e3.scale == pytest.approx(1 / 1.1)


def test_rpe_hand_computed_rotation_and_lever_arm():
    # Q_rel = (Rz(90°), 0) and P_rel = (Rz(90°), (0, 1, 0)): E = Q_rel^-1 P_rel = (I, Rz(-90°)(0, 1, 0)) = (I, (1, 0, 0)).
    ref = _poses_from_c2w([_c2w(), _c2w(_rz(90))])
    est = _poses_from_c2w([_c2w(), _c2w(_rz(90), (0, 1, 0))])
    t, r = rpe_per_pair(*ref, *est, delta=1)
    assert t[0] == pytest.approx(1.0) and r[0] == pytest.approx(0.0, abs=1e-9)
    # Q_rel = (I, (1, 0, 0)) and P_rel = (Rz(30°), (1, 0, 0)): E = (Rz(30°), 0): 30° and no translation error.
    ref = _poses_from_c2w([_c2w(), _c2w(p=(1, 0, 0))])
    est = _poses_from_c2w([_c2w(), _c2w(_rz(30), (1, 0, 0))])
    t, r = rpe_per_pair(*ref, *est, delta=1)
    assert t[0] == pytest.approx(0.0, abs=1e-12) and r[0] == pytest.approx(30.0)
    # RPE is taken in the first camera's frame: a rotated start frame changes nothing.
    C0 = _c2w(_rz(45), (3, -2, 1))
    ref2 = pose_from_c2w(np.stack([C0 @ c2w_from_pose(*[a[i] for a in ref]) for i in range(2)]))
    t2, r2 = rpe_per_pair(*ref2, *pose_from_c2w(np.stack([C0 @ c2w_from_pose(*[a[i] for a in est]) for i in range(2)])))
    assert t2[0] == pytest.approx(0.0, abs=1e-9) and r2[0] == pytest.approx(30.0)


def test_pure_rotation_reports_rotation_only():
    # 10°/frame yaw commanded, 12°/frame estimated (plus spurious translation): rotation error 2°, scale unknown.
    ref = _poses_from_c2w([_c2w(_rz(10 * k)) for k in range(8)])
    est = _poses_from_c2w([_c2w(_rz(12 * k), (0.3 * k, 0, 0)) for k in range(8)])
    e = evaluate(*ref, *est, with_scale=True)
    assert e.scale_observable is False
    assert e.rpe_trans is None and e.ate is None and e.scale is None and e.rpe_trans_stats is None
    assert e.rpe_rot_deg == pytest.approx(2.0)
    d = e.to_dict()
    assert d["rpe_trans"] is None and d["scale_observable"] is False


def test_collapsed_estimate_scores_the_full_reference_motion():
    # The reference moves 0.5 per frame, the estimate stays put: no scale can help, the error is the motion.
    ref = _poses_from_c2w([_c2w(p=(0.5 * k, 0, 0)) for k in range(5)])
    est = _poses_from_c2w([_c2w() for _ in range(5)])
    e = evaluate(*ref, *est, with_scale=True)
    assert e.scale_observable and e.scale == 0.0
    assert e.rpe_trans == pytest.approx(0.5)


def test_unknown_frames_and_segments_are_skipped_and_counted():
    R, P = smooth_trajectory(1, 12)
    est_R, est_P = R.copy(), P * 2.0
    est_R[4], est_P[4] = np.nan, np.nan
    e = evaluate(R, P, est_R, est_P)
    assert e.n_pairs == 9 and e.n_unknown == 2
    assert e.rpe_trans < 1e-9 and e.rpe_rot_deg < 1e-6
    # Two segments, each in its own frame and scale: pairs across the cut are not compared.
    S = Similarity(0.3, axis_angle_to_matrix(np.array([0.1, 0.2, 0.3])), np.array([1.0, 2.0, 3.0]))
    est_R, est_P = R.copy(), P.copy()
    est_R[6:], est_P[6:] = S.apply_poses(R[6:], P[6:])
    seg = np.r_[np.zeros(6, int), np.ones(6, int)]
    e = evaluate(R, P, est_R, est_P, segment=seg)
    assert e.n_pairs == 10 and e.n_unknown == 1
    assert e.rpe_trans < 1e-9 and e.rpe_rot_deg < 1e-6 and e.ate < 1e-9
    # Without the segment information the cut is a large error.
    assert evaluate(R, P, est_R, est_P).rpe_trans > 0.1


def test_bad_arguments_raise():
    R, P = smooth_trajectory(0, 5)
    with pytest.raises(ValueError, match="delta"):
        evaluate(R, P, R, P, delta=5)
    with pytest.raises(ValueError, match="must both be"):
        evaluate(R, P, R[:4], P[:4])
    with pytest.raises(ValueError, match="zero variance"):
        umeyama(np.zeros((3, 3)), np.ones((3, 3)))


@pytest.mark.parametrize("seed", range(3))
def test_matches_evo(seed):
    """Cross-check against evo (GPL, test-only extra in pyproject.toml): RPE and ATE after Sim(3)/SE(3)."""
    from evo.core import metrics
    from evo.core.trajectory import PosePath3D

    rng = np.random.default_rng(seed)
    R, P = smooth_trajectory(seed, 30)
    # A noisy estimate in another frame and scale.
    noise_R = axis_angle_to_matrix(rng.normal(scale=0.02, size=(30, 3)))
    est_R, est_P = _random_sim(rng).apply_poses(noise_R @ R, P + rng.normal(scale=0.05, size=P.shape))
    for with_scale in (True, False):
        for delta in (1, 3):
            ours = evaluate(R, P, est_R, est_P, delta=delta, with_scale=with_scale)
            ref = PosePath3D(poses_se3=list(c2w_from_pose(R, P)))
            est = PosePath3D(poses_se3=list(c2w_from_pose(est_R, est_P)))
            est.align(ref, correct_scale=with_scale)
            rpe_t = metrics.RPE(metrics.PoseRelation.translation_part, delta=delta, delta_unit=metrics.Unit.frames,
                               all_pairs=True)
            rpe_t.process_data((ref, est))
            rpe_r = metrics.RPE(metrics.PoseRelation.rotation_angle_deg, delta=delta, delta_unit=metrics.Unit.frames,
                               all_pairs=True)
            rpe_r.process_data((ref, est))
            ape = metrics.APE(metrics.PoseRelation.translation_part)
            ape.process_data((ref, est))
            assert ours.rpe_trans == pytest.approx(rpe_t.get_statistic(metrics.StatisticsType.rmse), rel=1e-6)
            assert ours.rpe_rot_deg == pytest.approx(rpe_r.get_statistic(metrics.StatisticsType.mean), rel=1e-6)
            assert ours.ate == pytest.approx(ape.get_statistic(metrics.StatisticsType.rmse), rel=1e-6)
