"""Camera conventions: matrix conversions, UE rotators, Euler decomposition, projection."""

import numpy as np
import pytest

from relic.camera import (c2w_from_pose, geodesic_angle, is_rotation, look_at, orthonormalize, pose_from_c2w,
                          pose_from_w2c, project, rotation_to_ypr, w2c_from_pose, ypr_to_rotation)
from relic.camera.geometry import axis_angle_to_matrix
from relic.camera.io import pose_to_ue, ue_to_pose


def random_rotations(rng, n):
    return axis_angle_to_matrix(rng.normal(size=(n, 3)))


def test_w2c_c2w_round_trip():
    rng = np.random.default_rng(0)
    R, P = random_rotations(rng, 5), rng.normal(size=(5, 3))
    R2, P2 = pose_from_w2c(w2c_from_pose(R, P))
    np.testing.assert_allclose(R2, R, atol=1e-12)
    np.testing.assert_allclose(P2, P, atol=1e-12)
    R3, P3 = pose_from_c2w(c2w_from_pose(R, P))
    np.testing.assert_allclose(R3, R, atol=1e-12)
    np.testing.assert_allclose(P3, P, atol=1e-12)
    # w2c and c2w are inverses
    np.testing.assert_allclose(w2c_from_pose(R, P) @ c2w_from_pose(R, P), np.broadcast_to(np.eye(4), (5, 4, 4)),
                               atol=1e-12)


def test_camera_maps_its_position_to_origin_and_looks_along_z():
    R = look_at([1.0, 2.0, 3.0], [4.0, 2.0, 3.0])  # looking along world +X, Z up
    X = np.array([[1.0, 2.0, 3.0], [4.0, 2.0, 3.0], [1.0, 2.0, 4.0], [1.0, 1.0, 3.0]])
    xc = (X - [1.0, 2.0, 3.0]) @ R.T
    np.testing.assert_allclose(xc[0], 0, atol=1e-12)
    np.testing.assert_allclose(xc[1], [0, 0, 3], atol=1e-12)      # target is straight ahead (+z)
    np.testing.assert_allclose(xc[2], [0, -1, 0], atol=1e-12)     # world up is image up (-y)
    np.testing.assert_allclose(xc[3], [1, 0, 0], atol=1e-12)      # world -Y is to the right when facing +X
    assert is_rotation(R)


def test_projection_of_principal_point():
    K = np.array([[100.0, 0, 64], [0, 100.0, 48], [0, 0, 1]])
    R = look_at([0, 0, 0], [0, 5, 0])
    uv, z = project(K, R, np.zeros(3), np.array([[0, 5, 0], [1, 5, 0]]))
    np.testing.assert_allclose(uv[0], [64, 48])
    assert z[0] == pytest.approx(5)
    assert uv[1][0] > 64  # +X is to the right when facing +Y with Z up


def test_ypr_round_trip_and_semantics():
    rng = np.random.default_rng(1)
    ypr = np.stack([rng.uniform(-170, 170, 50), rng.uniform(-85, 85, 50), rng.uniform(-170, 170, 50)], -1)
    np.testing.assert_allclose(rotation_to_ypr(ypr_to_rotation(ypr)), ypr, atol=1e-9)
    # +yaw turns the view to the right: the new forward axis has a positive x in the old camera frame
    fwd = ypr_to_rotation([10.0, 0, 0])[2]
    assert fwd[0] > 0 and abs(fwd[1]) < 1e-12
    # +pitch raises the view: forward gets a negative y (y is down)
    fwd = ypr_to_rotation([0, 10.0, 0])[2]
    assert fwd[1] < 0 and abs(fwd[0]) < 1e-12
    # +roll (clockwise seen from behind): the camera's right axis tips downward (+y in the old frame)
    right = ypr_to_rotation([0, 0, 10.0])[0]
    assert right[1] > 0


def test_orthonormalize_and_geodesic():
    rng = np.random.default_rng(2)
    R = random_rotations(rng, 4)
    noisy = R + 1e-3 * rng.normal(size=R.shape)
    assert not is_rotation(noisy, 1e-6).any()
    fixed = orthonormalize(noisy)
    assert is_rotation(fixed, 1e-9).all()
    assert (geodesic_angle(fixed, R) < 5e-3).all()
    Rz = axis_angle_to_matrix(np.array([0, 0, 0.3]))
    assert geodesic_angle(np.eye(3), Rz) == pytest.approx(0.3, abs=1e-12)
    assert geodesic_angle(np.eye(3), np.eye(3)) == 0.0


# --- Unreal Engine exports: hand-checked cases ------------------------------------------------------------

def _ue_forward(pitch, yaw, roll=0.0):
    R, _ = ue_to_pose(np.zeros((1, 3)), np.array([[pitch, yaw, roll]]))
    return R[0]


def test_ue_identity_looks_along_x():
    R = _ue_forward(0, 0)
    np.testing.assert_allclose(R[2], [1, 0, 0], atol=1e-12)     # forward = world +X
    np.testing.assert_allclose(R[1], [0, 0, -1], atol=1e-12)    # image down = world -Z
    np.testing.assert_allclose(R[0], [0, -1, 0], atol=1e-12)    # right = UE +Y = relic -Y
    assert np.linalg.det(R) == pytest.approx(1.0)


def test_ue_yaw_plus_90_turns_right():
    R0, R1 = _ue_forward(0, 0), _ue_forward(0, 90)
    np.testing.assert_allclose(R1[2], R0[0], atol=1e-12)  # new forward = old right
    ypr = rotation_to_ypr(R1 @ R0.T)
    np.testing.assert_allclose(ypr, [90, 0, 0], atol=1e-9)


def test_ue_pitch_plus_looks_up_and_roll_sign():
    np.testing.assert_allclose(_ue_forward(90, 0)[2], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(rotation_to_ypr(_ue_forward(20, 0) @ _ue_forward(0, 0).T), [0, 20, 0], atol=1e-9)
    np.testing.assert_allclose(rotation_to_ypr(_ue_forward(0, 0, 15) @ _ue_forward(0, 0).T), [0, 0, 15],
                               atol=1e-9)


def test_ue_location_and_round_trip():
    rng = np.random.default_rng(3)
    loc = rng.normal(size=(20, 3)) * 500
    rot = np.stack([rng.uniform(-80, 80, 20), rng.uniform(-170, 170, 20), rng.uniform(-170, 170, 20)], -1)
    R, P = ue_to_pose(loc, rot)
    np.testing.assert_allclose(P[:, 0], loc[:, 0] / 100)
    np.testing.assert_allclose(P[:, 1], -loc[:, 1] / 100)
    assert is_rotation(R, 1e-9).all()
    loc2, rot2 = pose_to_ue(R, P)
    np.testing.assert_allclose(loc2, loc, atol=1e-9)
    np.testing.assert_allclose(rot2, rot, atol=1e-9)
