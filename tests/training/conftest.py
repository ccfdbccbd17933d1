"""Fixtures for the training tests: tiny synthetic clips written in the project's clip format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_synthetic_clips(root: Path, n: int = 3, frames: int = 17, height: int = 32, width: int = 32,
                          seed: int = 0) -> Path:
    """``n`` clips of a smooth random texture panned and zoomed by a moving camera (uint8, 16 fps)."""
    import cv2

    from relic.camera import Trajectory, look_at
    from relic.data.clips import write_clip

    rng = np.random.default_rng(seed)
    for c in range(n):
        small = rng.uniform(0, 1, size=(6, 6, 3)).astype(np.float32)
        tex = cv2.resize(small, (width * 3, height * 3), interpolation=cv2.INTER_CUBIC)
        tex = (30 + 200 * (tex - tex.min()) / (np.ptp(tex) + 1e-6)).astype(np.uint8)
        dx, dy = rng.uniform(-1.5, 1.5, size=2)
        imgs, Rs, Ps = [], [], []
        for t in range(frames):
            x0, y0 = int(width + dx * t), int(height + dy * t)
            imgs.append(tex[y0:y0 + height, x0:x0 + width])
            P = np.array([0.1 * t, 0.05 * c * t, 1.6])
            yaw = 0.02 * t * (1 + c)
            Ps.append(P)
            Rs.append(look_at(P, P + np.array([np.cos(yaw), np.sin(yaw), 0.0])))
        f = width / 2.0
        traj = Trajectory(np.stack(Rs), np.stack(Ps), np.arange(frames) / 16.0, 16.0, width, height,
                          (f, f, width / 2.0, height / 2.0))
        write_clip(root / f"clip_{c:03d}", np.stack(imgs), traj, caption="a textured wall",
                   meta={"seed": seed, "family": "synthetic"})
    return root


@pytest.fixture
def synthetic_clips(tmp_path: Path) -> Path:
    return write_synthetic_clips(tmp_path / "clips")
