"""Algorithm 1 (annotate) and eq. 3 (integrate): semantics and the round-trip property."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relic.camera import ACTION_INDEX, ACTION_NAMES, NUM_ACTIONS, STATIC, annotate, integrate, look_at
from relic.camera.geometry import geodesic_angle
from relic.camera.synthetic import smooth_trajectory


def test_names():
    assert ACTION_NAMES == ("dolly_in", "dolly_out", "truck_left", "truck_right", "pedestal_up", "pedestal_down",
                            "tilt_up", "tilt_down", "pan_left", "pan_right", "roll_cw", "roll_ccw", "static")
    assert NUM_ACTIONS == 13


def _single(name, mag=1.0, n=4):
    a = np.zeros((n, 13))
    a[:, STATIC] = 0
    a[0, STATIC] = 1
    a[1:, ACTION_INDEX[name]] = mag
    return a


@pytest.mark.parametrize("name,axis,sign", [
    ("dolly_in", 2, 1), ("dolly_out", 2, -1), ("truck_right", 0, 1), ("truck_left", 0, -1),
    ("pedestal_up", 1, -1), ("pedestal_down", 1, 1)])
def test_translation_actions_move_along_camera_axes(name, axis, sign):
    R, P = integrate(_single(name), mean_displacement=0.5)
    step = R[0] @ (P[1] - P[0])
    expected = np.zeros(3)
    expected[axis] = 0.5 * sign
    np.testing.assert_allclose(step, expected, atol=1e-12)
    acts, d_bar = annotate(R, P)
    assert d_bar == pytest.approx(0.5)
    np.testing.assert_allclose(acts[1:, ACTION_INDEX[name]], 1.0)
    assert acts[0, STATIC] == 1 and (acts[1:, STATIC] == 0).all()


@pytest.mark.parametrize("name", ["tilt_up", "tilt_down", "pan_left", "pan_right", "roll_cw", "roll_ccw"])
def test_rotation_actions_round_trip_in_degrees(name):
    R, P = integrate(_single(name, 3.0))
    np.testing.assert_allclose(np.degrees(geodesic_angle(R[0], R[1])), 3.0, atol=1e-9)
    acts, _ = annotate(R, P)
    np.testing.assert_allclose(acts[1:, ACTION_INDEX[name]], 3.0, atol=1e-9)
    others = np.delete(acts[1:], [ACTION_INDEX[name]], axis=1)
    np.testing.assert_allclose(others, 0, atol=1e-12)


def test_pan_right_turns_view_right_in_world():
    R0 = look_at([0, 0, 0], [1, 0, 0])  # facing +X, right is -Y
    R, _ = integrate(_single("pan_right", 90.0, n=2), R0=R0)
    np.testing.assert_allclose(R[1][2], [0, -1, 0], atol=1e-12)


def test_static_frames_and_prepended_static():
    R = np.broadcast_to(np.eye(3), (5, 3, 3)).copy()
    P = np.zeros((5, 3))
    acts, d_bar = annotate(R, P)
    assert d_bar == 1.0
    np.testing.assert_array_equal(acts[:, STATIC], 1)
    np.testing.assert_array_equal(acts[:, :STATIC], 0)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), T=st.integers(2, 120))
def test_integrate_annotate_round_trip(seed, T):
    R, P = smooth_trajectory(seed, T)
    acts, d_bar = annotate(R, P)
    assert (acts >= 0).all()
    for i in range(0, 12, 2):                      # opposite pairs never both active
        assert not ((acts[:, i] > 0) & (acts[:, i + 1] > 0)).any()
    R2, P2 = integrate(acts, d_bar, R0=R[0], P0=P[0])
    assert np.degrees(geodesic_angle(R2, R)).max() < np.degrees(1e-6)
    scale = max(np.abs(P - P[0]).max(), 1e-12)
    assert np.abs(P2 - P).max() / scale < 1e-6
    # without d̄ the path is recovered up to global scale
    R3, P3 = integrate(acts, 1.0, R0=R[0], P0=P[0])
    np.testing.assert_allclose((P3 - P[0]) * d_bar, P - P[0], atol=1e-6 * scale)


def test_gamma_scales_motion():
    a = _single("dolly_in", 1.0, n=5)
    a[1:, ACTION_INDEX["pan_left"]] = 2.0
    _, P1 = integrate(a, 1.0, gamma=1.0)
    R2, P2 = integrate(a, 1.0, gamma=0.5)
    assert np.linalg.norm(P2[1] - P2[0]) == pytest.approx(0.5)
    assert np.degrees(geodesic_angle(R2[0], R2[1])) == pytest.approx(1.0)
