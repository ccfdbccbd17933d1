"""Random smooth 6-DoF trajectories (for tests, examples and property checks)."""

from __future__ import annotations

import numpy as np

from relic.camera.geometry import axis_angle_to_matrix


def smooth_trajectory(seed: int, T: int, translation_scale: float | None = None,
                      rotation_scale: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """A random smooth trajectory that mixes all six motions at once.

    Each of the 3 position and 3 rotation-vector components is a sum of 3 random sinusoids over [0, 1].

    Returns:
        R (T, 3, 3) world-to-camera rotations and P (T, 3) positions.
    """
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, T)
    freqs = rng.uniform(0.3, 2.0, size=(6, 3))
    phases = rng.uniform(0, 2 * np.pi, size=(6, 3))
    amps = rng.uniform(0.2, 2.0, size=(6, 3))
    sig = (amps[..., None] * np.sin(2 * np.pi * freqs[..., None] * t + phases[..., None])).sum(1)  # (6, T)
    scale = rng.uniform(0.5, 20) if translation_scale is None else translation_scale
    P = sig[:3].T * scale
    R = axis_angle_to_matrix(sig[3:].T * rotation_scale)
    return R, P
