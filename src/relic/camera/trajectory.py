"""A camera trajectory: per-frame poses plus intrinsics and timing, and its validation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from relic.camera.geometry import is_rotation
from relic.errors import UserError

ROTATION_TOL = 1e-4


@dataclass
class Trajectory:
    """Camera poses of one clip in relic's convention (see :mod:`relic.camera.geometry`).

    Attributes:
        R: (T, 3, 3) world-to-camera rotations, float64.
        P: (T, 3) camera positions in world coordinates, float64.
        t: (T,) timestamps in seconds, strictly increasing.
        fps: frames per second.
        width, height: image size in pixels.
        intrinsics: (fx, fy, cx, cy) in pixels.
    """

    R: np.ndarray
    P: np.ndarray
    t: np.ndarray
    fps: float = 16.0
    width: int = 128
    height: int = 128
    intrinsics: tuple[float, float, float, float] = field(default=(64.0, 64.0, 64.0, 64.0))

    def __post_init__(self) -> None:
        self.R = np.asarray(self.R, dtype=np.float64)
        self.P = np.asarray(self.P, dtype=np.float64)
        self.t = np.asarray(self.t, dtype=np.float64)
        self.intrinsics = tuple(float(v) for v in self.intrinsics)

    def __len__(self) -> int:
        return int(self.R.shape[0])

    @property
    def K(self) -> np.ndarray:
        fx, fy, cx, cy = self.intrinsics
        return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])

    def slice(self, start: int, stop: int) -> "Trajectory":
        """Frames [start, stop) as a new trajectory."""
        return Trajectory(self.R[start:stop], self.P[start:stop], self.t[start:stop], self.fps, self.width,
                          self.height, self.intrinsics)

    def validate(self, source: str | None = None, min_frames: int = 2) -> "Trajectory":
        """Raise :class:`UserError` naming the first bad frame; return self when valid."""
        T = len(self)
        if self.R.shape != (T, 3, 3) or self.P.shape != (T, 3) or self.t.shape != (T,):
            raise UserError(f"mismatched lengths: {self.R.shape[0]} rotations, {self.P.shape[0]} positions, "
                            f"{self.t.shape[0]} timestamps", source=source)
        if T < min_frames:
            raise UserError(f"clip has {T} frame(s); at least {min_frames} are needed", source=source)
        for name, arr in (("rotation", self.R.reshape(T, -1)), ("position", self.P), ("timestamp", self.t[:, None])):
            bad = ~np.isfinite(arr).all(axis=1)
            if bad.any():
                raise UserError(f"frame {int(np.argmax(bad))}: {name} is NaN or infinite", source=source)
        ok = is_rotation(self.R, ROTATION_TOL)
        if not ok.all():
            raise UserError(f"frame {int(np.argmax(~ok))}: rotation is not orthonormal (tolerance {ROTATION_TOL})",
                            source=source)
        dt = np.diff(self.t)
        if (dt <= 0).any():
            i = int(np.argmax(dt <= 0)) + 1
            kind = "duplicate" if dt[i - 1] == 0 else "unsorted"
            raise UserError(f"frame {i}: {kind} timestamp {self.t[i]!r}", source=source)
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise UserError(f"fps must be positive, got {self.fps!r}", source=source)
        return self
