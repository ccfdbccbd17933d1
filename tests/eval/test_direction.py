"""Commanded vs estimated motion direction (relic.eval.direction)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest_helpers import K, base_rotation

from relic.camera.actions import ACTION_INDEX, integrate
from relic.eval.direction import (MOTION_AXES, MOTIONS, MotionSummary, commanded_motion, direction_accuracy,
                                  direction_matches, dominant_command, estimated_motion)
from relic.eval.pose_estimation import estimate_poses

OPPOSITE = {m: MOTIONS[i ^ 1] for i, m in enumerate(MOTIONS)}   # pairs are adjacent in ACTION_NAMES


def _script(name, T=7, mag=1.0):
    a = np.zeros((T, 13))
    a[0, 12] = 1.0
    a[1:, ACTION_INDEX[name]] = mag
    return a


def _exact_estimate(R, P):
    """What a perfect estimator would return for poses (R, P)."""
    dR = np.einsum("tij,tkj->tik", R[1:], R[:-1])
    step = np.einsum("tij,tj->ti", R[:-1], P[1:] - P[:-1])
    n = np.linalg.norm(step, axis=1, keepdims=True)
    d = np.where(n > 0, step / np.where(n > 0, n, 1.0), np.nan)
    return estimated_motion(dR, d, np.ones(len(dR), bool))


@pytest.mark.parametrize("name", MOTIONS)
def test_exact_motion_matches_its_command_and_not_the_opposite(name):
    a = _script(name)
    assert dominant_command(a) == name
    R, P = integrate(a, mean_displacement=0.1, R0=base_rotation())
    est = _exact_estimate(R, P)
    assert direction_matches(name, est) is True
    assert direction_matches(OPPOSITE[name], est) is False
    # The commanded summary agrees with the integrated poses: 6 frames of one unit on the commanded axis.
    cmd = commanded_motion(a)
    kind, axis, sign = MOTION_AXES[name]
    v = cmd.step if kind == "translation" else cmd.ypr
    assert v[axis] == pytest.approx(6.0 * sign) and np.abs(np.delete(v, axis)).max() == 0.0
    assert direction_matches(name, cmd) is True


def test_unknown_is_none_and_counted():
    nothing = MotionSummary(np.full(3, np.nan), np.full(3, np.nan), 0, 0)
    assert direction_matches("pan_left", nothing) is None
    rot_only = MotionSummary(np.full(3, np.nan), np.array([-5.0, 0.1, 0.0]), 4, 0)
    assert direction_matches("pan_left", rot_only) is True and direction_matches("dolly_in", rot_only) is None
    # A dominant other axis is a miss even with the right sign on the commanded one.
    assert direction_matches("tilt_up", MotionSummary(np.zeros(3), np.array([9.0, 1.0, 0.0]), 1, 1)) is False
    acc = direction_accuracy([("pan_left", True), ("pan_left", None), ("pan_left", False), ("dolly_in", True)])
    assert acc["pan_left"] == {"n": 3, "matched": 1, "unknown": 1, "accuracy": pytest.approx(1 / 3)}
    assert acc["dolly_in"]["accuracy"] == 1.0
    with pytest.raises(ValueError, match="unknown motion"):
        direction_matches("static", rot_only)


def test_estimator_direction_on_synthetic_renders(plane_scene):
    """All 12 single motions, rendered and estimated, match their commands."""
    for name in MOTIONS:
        R, P = integrate(_script(name, 6), mean_displacement=0.1, R0=base_rotation())
        est = estimate_poses(plane_scene.render_clip(R, P), K)
        assert direction_matches(name, estimated_motion(est.rel_R, est.rel_dir, est.pair_valid)) is True, name
