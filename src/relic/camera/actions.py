"""The 13-DoF action space, Algorithm 1 (annotate) and eq. 3 (integrate). Paper §3.3 and §4.1.2.

An action vector A ∈ R^13 has non-negative magnitudes in the paper's order (:data:`ACTION_NAMES`).

* Translations (dolly, truck, pedestal) are the camera-frame displacement ΔP^c_t = R_t (P_{t+1} − P_t)
  divided by the clip's mean non-zero displacement d̄, so 1.0 means "a typical step of this clip".
  In the OpenCV camera frame: dolly in = +z, dolly out = −z, truck right = +x, truck left = −x,
  pedestal up = −y, pedestal down = +y.
* Rotations (tilt, pan, roll) are degrees per frame of ΔR^c_t = R_{t+1} R_t^T decomposed as UE's intrinsic
  yaw / pitch / roll (:func:`relic.camera.geometry.rotation_to_ypr`): pan right = +yaw, tilt up = +pitch,
  roll clockwise = +roll.
* ``static`` is 1 when no other entry is active, else 0.
* Opposite pairs are never both non-zero.

Frame indexing: ``actions[0]`` is the prepended static action and ``actions[k]`` (k ≥ 1) moves the camera
from pose k−1 to pose k, so T poses give T actions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from relic.camera.geometry import rotation_to_ypr, ypr_to_rotation

ACTION_NAMES: tuple[str, ...] = (
    "dolly_in", "dolly_out", "truck_left", "truck_right", "pedestal_up", "pedestal_down",
    "tilt_up", "tilt_down", "pan_left", "pan_right", "roll_cw", "roll_ccw", "static",
)
NUM_ACTIONS = 13
ACTION_INDEX = {name: i for i, name in enumerate(ACTION_NAMES)}
STATIC = ACTION_INDEX["static"]

# (positive index, negative index) of each signed axis. Translation axes are camera-frame
# (z forward, x right, -y up); rotation axes are (pitch, yaw, roll).
_TRANSLATION_PAIRS = ((0, 1), (3, 2), (4, 5))  # +z: dolly_in, +x: truck_right, up (-y): pedestal_up
_ROTATION_PAIRS = ((6, 7), (9, 8), (10, 11))   # +pitch: tilt_up, +yaw: pan_right, +roll: roll_cw


def _opposites() -> tuple[int, ...]:
    out = list(range(NUM_ACTIONS))
    for a, b in _TRANSLATION_PAIRS + _ROTATION_PAIRS:
        out[a], out[b] = b, a
    return tuple(out)


#: OPPOSITE[i] is the action that undoes action i (dolly_in <-> dolly_out, ...; static stays static):
#: ``actions[..., OPPOSITE]`` commands the mirrored motion, ``signed_motion`` of it is the negation.
OPPOSITE: tuple[int, ...] = _opposites()


@dataclass(frozen=True)
class AnnotateConfig:
    """Thresholds of Algorithm 1.

    Attributes:
        translation_eps: a step shorter than this (world units) counts as zero when computing d̄.
        static_translation: a translation component below this fraction of d̄ is inactive.
        static_rotation_deg: a yaw/pitch/roll below this many degrees per frame is inactive.
    """

    translation_eps: float = 1e-9
    static_translation: float = 1e-6
    static_rotation_deg: float = 1e-5


def _signed_to_pairs(values: np.ndarray, pairs, out: np.ndarray) -> None:
    for k, (pos, neg) in enumerate(pairs):
        v = values[:, k]
        out[:, pos] = np.where(v > 0, v, 0.0)
        out[:, neg] = np.where(v < 0, -v, 0.0)


def _pairs_to_signed(actions: np.ndarray, pairs) -> np.ndarray:
    return np.stack([actions[:, pos] - actions[:, neg] for pos, neg in pairs], -1)


def annotate(R: np.ndarray, P: np.ndarray, config: AnnotateConfig = AnnotateConfig()) -> tuple[np.ndarray, float]:
    """Algorithm 1: poses -> per-frame actions.

    Args:
        R: (T, 3, 3) world-to-camera rotations.
        P: (T, 3) camera positions.
    Returns:
        actions (T, 13) float64 with a static action prepended, and d̄ (mean non-zero step length;
        1.0 when the camera never moves).
    """
    R = np.asarray(R, dtype=np.float64)
    P = np.asarray(P, dtype=np.float64)
    T = R.shape[0]
    if T < 2:
        raise ValueError("annotate needs at least 2 poses")
    dP = np.einsum("tij,tj->ti", R[:-1], P[1:] - P[:-1])           # (T-1, 3) camera-frame steps
    norms = np.linalg.norm(dP, axis=-1)
    moving = norms > config.translation_eps
    d_bar = float(norms[moving].mean()) if moving.any() else 1.0
    rel = dP / d_bar
    trans = np.stack([rel[:, 2], rel[:, 0], -rel[:, 1]], -1)        # (dolly, truck, pedestal) signed
    trans[np.abs(trans) < config.static_translation] = 0.0
    dR = np.einsum("tij,tkj->tik", R[1:], R[:-1])                   # R_{t+1} R_t^T
    ypr = rotation_to_ypr(dR)
    rot = np.stack([ypr[:, 1], ypr[:, 0], ypr[:, 2]], -1)           # (pitch, yaw, roll) signed
    rot[np.abs(rot) < config.static_rotation_deg] = 0.0
    out = np.zeros((T, NUM_ACTIONS))
    _signed_to_pairs(trans, _TRANSLATION_PAIRS, out[1:])
    _signed_to_pairs(rot, _ROTATION_PAIRS, out[1:])
    out[:, STATIC] = (out[:, :STATIC] == 0).all(axis=1).astype(np.float64)
    return out, d_bar


def signed_motion(actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 13) actions -> camera-frame steps in units of d̄ (T, 3) as (x, y, z), and (yaw, pitch, roll) degrees (T, 3)."""
    a = np.asarray(actions, dtype=np.float64)
    tr = _pairs_to_signed(a, _TRANSLATION_PAIRS)        # (dolly, truck, pedestal)
    step = np.stack([tr[:, 1], -tr[:, 2], tr[:, 0]], -1)
    rot = _pairs_to_signed(a, _ROTATION_PAIRS)           # (pitch, yaw, roll)
    ypr = np.stack([rot[:, 1], rot[:, 0], rot[:, 2]], -1)
    return step, ypr


def integrate(actions: np.ndarray, mean_displacement: float = 1.0, gamma: float = 1.0,
              R0: np.ndarray | None = None, P0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 3: actions -> absolute poses.

    P_{t+1} = P_t + R_t^T (γ d̄ ΔP^c_t) and R_{t+1} = ΔR^c_t R_t, starting from (R0, P0) (identity and the
    origin by default). Rotations are scaled by γ as well, so γ is a global speed coefficient.

    Args:
        actions: (T, 13); row 0 is ignored (it is the prepended static action).
    Returns:
        R (T, 3, 3) world-to-camera rotations and P (T, 3) positions.
    """
    a = np.asarray(actions, dtype=np.float64)
    T = a.shape[0]
    step, ypr = signed_motion(a)
    dR = ypr_to_rotation(ypr * gamma)
    R = np.empty((T, 3, 3))
    P = np.empty((T, 3))
    R[0] = np.eye(3) if R0 is None else np.asarray(R0, dtype=np.float64)
    P[0] = np.zeros(3) if P0 is None else np.asarray(P0, dtype=np.float64)
    scale = gamma * mean_displacement
    for k in range(1, T):
        P[k] = P[k - 1] + R[k - 1].T @ (scale * step[k])
        R[k] = dR[k] @ R[k - 1]
    return R, P


def validate_actions(actions: np.ndarray) -> np.ndarray:
    """Check shape (T, 13), finiteness and non-negativity; return float64 actions. Raises ValueError naming the frame."""
    a = np.asarray(actions, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != NUM_ACTIONS:
        raise ValueError(f"actions must have shape (T, {NUM_ACTIONS}), got {a.shape}")
    bad = ~np.isfinite(a).all(axis=1)
    if bad.any():
        raise ValueError(f"frame {int(np.argmax(bad))}: action is NaN or infinite")
    neg = (a < 0).any(axis=1)
    if neg.any():
        raise ValueError(f"frame {int(np.argmax(neg))}: action magnitudes must be non-negative")
    return a
