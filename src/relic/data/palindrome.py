"""Palindrome augmentation (paper §3.4): a segment that returns to where it came from.

For a segment of T frames f_1..f_T, pick a pivot t* ~ U(T/2, T) and build f_1..f_{t*} followed by the
time-reversed frames f_{t*−1}, f_{t*−2}, …, f_{2t*−T}. The pivot frame is not repeated (a repeated frame
would be a frozen frame), so the result has exactly T frames again and its second half revisits the poses
of its first half. In 0-based indices with p = t*: ``[0, 1, …, p−1, p−2, …, 2p−T−1]``, valid for
⌈(T+1)/2⌉ ≤ p ≤ T; we sample p from ⌈(T+1)/2⌉..T−1 so at least one frame is reversed.

The actions of the augmented sequence are **recomputed** with Algorithm 1
(:func:`relic.camera.annotate`) from the augmented poses: reversing a motion inverts each relative pose
(ΔR → ΔR^T, and the step is re-expressed in the other camera's frame), which is not the same as negating
the action vector. They are expressed in units of the source clip's d̄ so that a palindrome sample and a
plain sample of the same clip share one scale.
"""

from __future__ import annotations

import math

import numpy as np

from relic.camera.actions import STATIC, AnnotateConfig, annotate


def palindrome_indices(T: int, pivot: int) -> np.ndarray:
    """Source frame index of each of the T output frames (int64, (T,)); ``pivot`` = t* (1-based count)."""
    if not (math.ceil((T + 1) / 2) <= pivot <= T):
        raise ValueError(f"pivot must be in [{math.ceil((T + 1) / 2)}, {T}] for T = {T}, got {pivot}")
    fwd = np.arange(pivot)
    back = np.arange(pivot - 2, 2 * pivot - T - 2, -1)
    return np.concatenate([fwd, back]).astype(np.int64)


def sample_pivot(T: int, rng: np.random.Generator) -> int:
    """t* uniform over ⌈(T+1)/2⌉..T−1 (T itself when T < 3)."""
    lo = math.ceil((T + 1) / 2)
    if T < 3:
        return T
    return int(rng.integers(lo, T))          # high is exclusive: lo..T-1


def actions_in_units(R: np.ndarray, P: np.ndarray, mean_displacement: float | None = None,
                     config: AnnotateConfig = AnnotateConfig()) -> tuple[np.ndarray, float]:
    """Algorithm 1 on (R, P), with translations expressed in units of ``mean_displacement`` when given.

    Returns:
        actions (T, 13) and the d̄ they are expressed in.
    """
    actions, d_bar = annotate(R, P, config)
    if mean_displacement is None:
        return actions, d_bar
    actions[:, :6] *= d_bar / mean_displacement
    actions[:, STATIC] = (actions[:, :STATIC] == 0).all(axis=1)
    return actions, float(mean_displacement)


def palindrome(R: np.ndarray, P: np.ndarray, pivot: int, mean_displacement: float | None = None
               ) -> tuple[np.ndarray, np.ndarray, float]:
    """Palindrome a pose sequence and recompute its actions.

    Args:
        R: (T, 3, 3) world-to-camera rotations; P: (T, 3) positions.
        pivot: t*, see :func:`palindrome_indices`.
        mean_displacement: the d̄ the actions should be expressed in (default: the augmented sequence's own).
    Returns:
        indices (T,) into the source frames, actions (T, 13) of the augmented sequence, and d̄.
    """
    idx = palindrome_indices(len(R), pivot)
    actions, d_bar = actions_in_units(np.asarray(R)[idx], np.asarray(P)[idx], mean_displacement)
    return idx, actions, d_bar
