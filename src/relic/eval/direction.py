"""Does the estimated camera motion go in the commanded direction? (paper §5.3, action accuracy)

The gate "for each of the 12 motions alone, the estimated direction matches the command in ≥ 90 % of scripts"
needs a per-script yes/no. For one script we compare the **summed** signed motion over its frames:

* Commanded: :func:`relic.camera.signed_motion` of the script's actions gives per frame the camera-frame step
  (x right, y down, z forward; units of d̄) and the (yaw, pitch, roll) degrees; we sum them over frames.
* Estimated: the pose estimator's per-pair rotations ΔR_k (decomposed like the actions with
  :func:`relic.camera.rotation_to_ypr`) summed over the valid pairs, and its unit step directions summed over
  the pairs with measurable parallax.

A rotation command (tilt / pan / roll) matches when the estimated summed rotation has the commanded sign on the
commanded axis **and** that axis dominates the other two. A translation command (dolly / truck / pedestal)
matches when the summed estimated step direction has the commanded sign on the commanded camera axis and that
axis dominates. Estimated translation is compared only for translation commands and rotation only for rotation
commands: a monocular estimate cannot compare degrees with (scale-free) distances. When nothing was measured
(no valid pair, or no pair with parallax for a translation) the answer is ``None`` — unknown, not a miss and not
a match; :func:`direction_accuracy` counts unknowns as failures of the gate but reports them separately.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from relic.camera.actions import ACTION_NAMES, OPPOSITE, STATIC, signed_motion
from relic.camera.geometry import rotation_to_ypr

#: action name -> ("translation" | "rotation", axis index, sign). Translation axes are camera x, y, z;
#: rotation axes are yaw, pitch, roll (as in :func:`relic.camera.signed_motion`).
MOTION_AXES: dict[str, tuple[str, int, int]] = {
    "dolly_in": ("translation", 2, +1), "dolly_out": ("translation", 2, -1),
    "truck_left": ("translation", 0, -1), "truck_right": ("translation", 0, +1),
    "pedestal_up": ("translation", 1, -1), "pedestal_down": ("translation", 1, +1),
    "tilt_up": ("rotation", 1, +1), "tilt_down": ("rotation", 1, -1),
    "pan_left": ("rotation", 0, -1), "pan_right": ("rotation", 0, +1),
    "roll_cw": ("rotation", 2, +1), "roll_ccw": ("rotation", 2, -1),
}
MOTIONS: tuple[str, ...] = ACTION_NAMES[:STATIC]


def opposite(motion: str) -> str:
    """The motion along the same axis the other way (``dolly_in`` -> ``dolly_out``): :data:`relic.camera.OPPOSITE`."""
    if motion not in MOTION_AXES:
        raise ValueError(f"unknown motion {motion!r}; expected one of {', '.join(MOTIONS)}")
    return ACTION_NAMES[OPPOSITE[ACTION_NAMES.index(motion)]]


@dataclass
class MotionSummary:
    """Summed signed motion of a clip.

    Attributes:
        step: (3,) summed camera-frame step (x, y, z); commanded: units of d̄, estimated: sum of unit directions.
            NaN when no translation was measured.
        ypr: (3,) summed (yaw, pitch, roll) degrees; NaN when no rotation was measured.
        n_rot, n_trans: number of frame pairs that contributed.
    """

    step: np.ndarray
    ypr: np.ndarray
    n_rot: int
    n_trans: int


def commanded_motion(actions: np.ndarray) -> MotionSummary:
    """(T, 13) actions -> their summed signed motion (row 0, the prepended static action, adds nothing)."""
    step, ypr = signed_motion(actions)
    T = len(step)
    return MotionSummary(step.sum(0), ypr.sum(0), T - 1, T - 1)


def estimated_motion(rel_R: np.ndarray, rel_dir: np.ndarray, pair_valid: np.ndarray) -> MotionSummary:
    """Pair rotations (T−1, 3, 3), unit step directions (T−1, 3) and validity (T−1,) -> summed motion.

    Takes the fields of the same names of :class:`relic.eval.pose_estimation.PoseEstimate`.
    """
    valid = np.asarray(pair_valid, bool)
    trans_ok = valid & np.isfinite(rel_dir).all(axis=1)
    ypr = rotation_to_ypr(np.asarray(rel_R)[valid]).sum(0) if valid.any() else np.full(3, np.nan)
    step = np.asarray(rel_dir)[trans_ok].sum(0) if trans_ok.any() else np.full(3, np.nan)
    return MotionSummary(step, ypr, int(valid.sum()), int(trans_ok.sum()))


def dominant_command(actions: np.ndarray) -> str:
    """Name of the single motion a script commands (the largest summed |magnitude| among the 12 motions)."""
    a = np.asarray(actions, np.float64)
    return MOTIONS[int(np.argmax(a[:, :STATIC].sum(0)))]


def direction_matches(command: str, estimate: MotionSummary) -> bool | None:
    """Whether ``estimate`` moves in the direction of the single-motion ``command``; None when unmeasured."""
    if command not in MOTION_AXES:
        raise ValueError(f"unknown motion {command!r}; expected one of {', '.join(MOTIONS)}")
    kind, axis, sign = MOTION_AXES[command]
    v = estimate.step if kind == "translation" else estimate.ypr
    if not np.isfinite(v).all():
        return None
    mag = np.abs(v)
    return bool(sign * v[axis] > 0 and mag[axis] >= mag.max())


def direction_accuracy(results: list[tuple[str, bool | None]]) -> dict[str, dict]:
    """Per-motion accuracy of (command, match) results.

    Returns ``{motion: {"n": scripts, "matched": k, "unknown": u, "accuracy": k / n}}`` for every motion present;
    unknown results count as not matched.
    """
    out: dict[str, dict] = {}
    for cmd, ok in results:
        d = out.setdefault(cmd, {"n": 0, "matched": 0, "unknown": 0})
        d["n"] += 1
        d["matched"] += int(ok is True)
        d["unknown"] += int(ok is None)
    for d in out.values():
        d["accuracy"] = d["matched"] / d["n"]
    return out


__all__ = ["MOTIONS", "MOTION_AXES", "MotionSummary", "commanded_motion", "direction_accuracy",
           "direction_matches", "dominant_command", "estimated_motion", "opposite"]
