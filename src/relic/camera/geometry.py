"""Camera conventions and rotation utilities (paper §3.3).

The one convention used everywhere in relic
-------------------------------------------
* **Camera frame: OpenCV.** x points right, y points down, z points forward (the viewing direction).
* **World frame:** right-handed, metres, +Z up. (Unreal Engine exports are converted into it, see
  :mod:`relic.camera.ue`.)
* A camera pose is ``(R, P)``: ``R`` is the **world-to-camera** rotation (3, 3) and ``P`` the camera
  **position in world coordinates** (3,). A world point X maps to camera coordinates ``x_c = R (X - P)``.
  The rows of ``R`` are the camera's right, down and forward axes written in world coordinates.
* ``w2c = [[R, -R P], [0, 1]]`` and ``c2w = [[R^T, P], [0, 1]]`` (4, 4).
* Intrinsics ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in pixels; pixel (u, v) has its origin at the
  top-left corner of the top-left pixel, so the centre of pixel (0, 0) is (0.5, 0.5).

All camera math runs in float64 numpy: round trips are checked to 1e-6 and float32 cannot promise that.
"""

from __future__ import annotations

import numpy as np

ArrayF = np.ndarray


def w2c_from_pose(R: ArrayF, P: ArrayF) -> ArrayF:
    """(..., 3, 3) world-to-camera rotation and (..., 3) position -> (..., 4, 4) world-to-camera matrix."""
    R = np.asarray(R, dtype=np.float64)
    P = np.asarray(P, dtype=np.float64)
    out = np.zeros(R.shape[:-2] + (4, 4))
    out[..., :3, :3] = R
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", R, P)
    out[..., 3, 3] = 1.0
    return out


def pose_from_w2c(w2c: ArrayF) -> tuple[ArrayF, ArrayF]:
    """(..., 4, 4) or (..., 3, 4) world-to-camera matrix -> (R (..., 3, 3), P (..., 3))."""
    w2c = np.asarray(w2c, dtype=np.float64)
    R = w2c[..., :3, :3]
    t = w2c[..., :3, 3]
    P = -np.einsum("...ji,...j->...i", R, t)
    return R.copy(), P


def c2w_from_pose(R: ArrayF, P: ArrayF) -> ArrayF:
    """(..., 3, 3) world-to-camera rotation and (..., 3) position -> (..., 4, 4) camera-to-world matrix."""
    R = np.asarray(R, dtype=np.float64)
    out = np.zeros(R.shape[:-2] + (4, 4))
    out[..., :3, :3] = np.swapaxes(R, -1, -2)
    out[..., :3, 3] = np.asarray(P, dtype=np.float64)
    out[..., 3, 3] = 1.0
    return out


def pose_from_c2w(c2w: ArrayF) -> tuple[ArrayF, ArrayF]:
    """(..., 4, 4) or (..., 3, 4) camera-to-world matrix -> (R (..., 3, 3), P (..., 3))."""
    c2w = np.asarray(c2w, dtype=np.float64)
    return np.swapaxes(c2w[..., :3, :3], -1, -2).copy(), c2w[..., :3, 3].copy()


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> ArrayF:
    """Pinhole intrinsics -> (3, 3) K."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def project(K: ArrayF, R: ArrayF, P: ArrayF, X: ArrayF) -> tuple[ArrayF, ArrayF]:
    """Project world points X (n, 3) -> (pixels (n, 2) as (u, v), depth z (n,)) for one camera."""
    Xc = (np.asarray(X, dtype=np.float64) - P) @ np.asarray(R).T
    z = Xc[:, 2]
    uv = (Xc @ np.asarray(K).T)[:, :2] / z[:, None]
    return uv, z


def look_at(position: ArrayF, target: ArrayF, up: ArrayF = (0.0, 0.0, 1.0)) -> ArrayF:
    """World-to-camera rotation (3, 3) of a camera at ``position`` looking at ``target``, roll-free w.r.t. ``up``."""
    f = np.asarray(target, dtype=np.float64) - np.asarray(position, dtype=np.float64)
    f = f / np.linalg.norm(f)
    right = np.cross(f, np.asarray(up, dtype=np.float64))
    n = np.linalg.norm(right)
    if n < 1e-9:
        raise ValueError("look_at: viewing direction is parallel to 'up'")
    right /= n
    down = np.cross(f, right)
    return np.stack([right, down, f])


def is_rotation(R: ArrayF, tol: float = 1e-4) -> np.ndarray:
    """(..., 3, 3) -> (...,) bool: orthonormal with determinant +1 within ``tol``."""
    R = np.asarray(R, dtype=np.float64)
    err = np.abs(np.einsum("...ij,...kj->...ik", R, R) - np.eye(3)).max(axis=(-1, -2))
    return (err <= tol) & (np.abs(np.linalg.det(R) - 1.0) <= tol)


def orthonormalize(R: ArrayF) -> ArrayF:
    """Nearest rotation (Frobenius) to each (..., 3, 3) matrix, by SVD with a determinant fix."""
    U, _, Vt = np.linalg.svd(np.asarray(R, dtype=np.float64))
    d = np.sign(np.linalg.det(U @ Vt))
    D = np.zeros(U.shape)
    D[..., 0, 0] = 1.0
    D[..., 1, 1] = 1.0
    D[..., 2, 2] = d
    return U @ D @ Vt


def geodesic_angle(R1: ArrayF, R2: ArrayF) -> ArrayF:
    """Angle in radians (...,) of the rotation R1^T R2, i.e. the geodesic distance on SO(3)."""
    M = np.einsum("...ji,...jk->...ik", np.asarray(R1, dtype=np.float64), np.asarray(R2, dtype=np.float64))
    tr = np.clip((np.trace(M, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    # arccos loses precision near 0; use the atan2 form with the skew part.
    skew = np.stack([M[..., 2, 1] - M[..., 1, 2], M[..., 0, 2] - M[..., 2, 0], M[..., 1, 0] - M[..., 0, 1]], -1)
    return np.arctan2(np.linalg.norm(skew, axis=-1) / 2.0, tr)


def axis_angle_to_matrix(rotvec: ArrayF) -> ArrayF:
    """Rodrigues: rotation vectors (..., 3) -> active rotation matrices (..., 3, 3)."""
    v = np.asarray(rotvec, dtype=np.float64)
    theta = np.linalg.norm(v, axis=-1, keepdims=True)
    safe = np.where(theta < 1e-12, 1.0, theta)
    k = v / safe
    K = np.zeros(v.shape[:-1] + (3, 3))
    K[..., 0, 1], K[..., 0, 2] = -k[..., 2], k[..., 1]
    K[..., 1, 0], K[..., 1, 2] = k[..., 2], -k[..., 0]
    K[..., 2, 0], K[..., 2, 1] = -k[..., 1], k[..., 0]
    th = theta[..., None]
    return np.eye(3) + np.sin(th) * K + (1.0 - np.cos(th)) * (K @ K)


# ---------------------------------------------------------------------------------------------------------
# UE-style intrinsic yaw / pitch / roll of a world-to-camera rotation.
#
# Unreal's FRotator applies yaw about the up axis, then pitch about the (new) right axis, then roll about
# the (new) forward axis: intrinsic Z-Y-X. Its basis vectors, written in UE's left-handed frame
# (X forward, Y right, Z up), are
#   forward = ( cP cY,              cP sY,              sP    )
#   right   = ( sR sP cY - cR sY,   sR sP sY + cR cY,  -sR cP )
#   up      = (-(cR sP cY + sR sY), cY sR - cR sP sY,   cR cP )
# We apply the same decomposition to a rotation expressed in an OpenCV-style frame by reading its
# forward / right / up axes in the UE axis order (X=z, Y=x, Z=-y). Positive yaw turns the view to the
# right (pan right), positive pitch raises it (tilt up), and positive roll rotates the camera clockwise as
# seen from behind it (the image content turns counter-clockwise).
# ---------------------------------------------------------------------------------------------------------

# CV coordinates (x right, y down, z forward) -> UE-ordered coordinates (X forward, Y right, Z up)
_CV_TO_UE = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def ue_basis(pitch: ArrayF, yaw: ArrayF, roll: ArrayF) -> tuple[ArrayF, ArrayF, ArrayF]:
    """UE rotator angles in degrees (...,) -> forward, right, up axes (..., 3) in UE-ordered coordinates."""
    p, y, r = (np.deg2rad(np.asarray(a, dtype=np.float64)) for a in (pitch, yaw, roll))
    sp, cp, sy, cy, sr, cr = np.sin(p), np.cos(p), np.sin(y), np.cos(y), np.sin(r), np.cos(r)
    forward = np.stack([cp * cy, cp * sy, sp], -1)
    right = np.stack([sr * sp * cy - cr * sy, sr * sp * sy + cr * cy, -sr * cp], -1)
    up = np.stack([-(cr * sp * cy + sr * sy), cy * sr - cr * sp * sy, cr * cp], -1)
    return forward, right, up


def ue_rotator_from_basis(forward: ArrayF, right: ArrayF, up: ArrayF) -> tuple[ArrayF, ArrayF, ArrayF]:
    """Inverse of :func:`ue_basis`: axes (..., 3) in UE-ordered coordinates -> (pitch, yaw, roll) degrees."""
    f = np.asarray(forward, dtype=np.float64)
    pitch = np.arctan2(f[..., 2], np.hypot(f[..., 0], f[..., 1]))
    yaw = np.arctan2(f[..., 1], f[..., 0])
    _, right0, up0 = ue_basis(np.rad2deg(pitch), np.rad2deg(yaw), np.zeros_like(pitch))
    # Roll turns (right0, up0) about forward: right = cR right0 - sR up0 ... solve with both projections.
    r = np.asarray(right, dtype=np.float64)
    cr = np.sum(r * right0, -1)
    sr = -np.sum(r * up0, -1)
    roll = np.arctan2(sr, cr)
    return np.rad2deg(pitch), np.rad2deg(yaw), np.rad2deg(roll)


def rotation_to_ypr(R: ArrayF) -> ArrayF:
    """World-to-camera rotation(s) (..., 3, 3) in CV convention -> (..., 3) = (yaw, pitch, roll) in degrees.

    The rotation is read in its own reference frame's axes (for a relative rotation ΔR = R_{t+1} R_t^T that
    frame is camera t), decomposed as UE's intrinsic yaw-pitch-roll.
    """
    R = np.asarray(R, dtype=np.float64)
    right_cv, down_cv, fwd_cv = R[..., 0, :], R[..., 1, :], R[..., 2, :]
    to_ue = lambda v: v @ _CV_TO_UE.T  # noqa: E731
    pitch, yaw, roll = ue_rotator_from_basis(to_ue(fwd_cv), to_ue(right_cv), to_ue(-down_cv))
    return np.stack([yaw, pitch, roll], -1)


def ypr_to_rotation(ypr: ArrayF) -> ArrayF:
    """(..., 3) (yaw, pitch, roll) degrees -> (..., 3, 3) CV world-to-camera rotation; inverse of
    :func:`rotation_to_ypr`."""
    ypr = np.asarray(ypr, dtype=np.float64)
    forward, right, up = ue_basis(ypr[..., 1], ypr[..., 0], ypr[..., 2])
    to_cv = lambda v: v @ _CV_TO_UE  # UE-ordered -> CV  # noqa: E731
    return np.stack([to_cv(right), -to_cv(up), to_cv(forward)], -2)
