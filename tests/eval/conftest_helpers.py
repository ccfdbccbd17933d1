"""Synthetic views for the pose-estimator tests: textured planes rendered exactly by homographies."""

from __future__ import annotations

import cv2
import numpy as np


from relic.camera.geometry import intrinsics_matrix, look_at

SIZE = 128
K = intrinsics_matrix(64.0, 64.0, 64.0, 64.0)   # 90° field of view


def _texture(rng: np.random.Generator, n: int = 512) -> np.ndarray:
    """Multi-scale random texture (n n 3) uint8 with plenty of corners."""
    tex = np.zeros((n, n, 3))
    for cell in (4, 16, 64):
        small = rng.uniform(0, 1, size=(max(1, n // cell), max(1, n // cell), 3))
        tex += cv2.resize(small, (n, n), interpolation=cv2.INTER_NEAREST if cell == 16 else cv2.INTER_LINEAR)
    tex = cv2.GaussianBlur(tex / 3.0, (0, 0), 0.8)
    return np.clip(tex * 255, 0, 255).astype(np.uint8)


class PlaneScene:
    """Fronto-parallel-ish textured planes in front of a camera near the origin looking along world +X.

    Each plane is (origin O, axis a, axis b) in world metres; texture pixel (u, v) sits at O + u a + v b.
    Planes are drawn far to near, so nearer ones occlude.
    """

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.planes = []
        # A back wall and a few nearer panels at different depths (parallax for translation).
        for depth, half, yc, zc in ((9.0, 14.0, 0.0, 0.0), (6.0, 2.5, -3.0, 1.0), (5.0, 2.0, 3.0, -1.5),
                                    (4.0, 1.2, 0.5, 2.0), (7.0, 3.0, 2.0, 3.0)):
            yaw = rng.uniform(-0.3, 0.3)
            n = 512
            a = np.array([np.sin(yaw), -np.cos(yaw), 0.0]) * (2 * half / n)   # texture u -> world (towards -Y)
            b = np.array([0.0, 0.0, -1.0]) * (2 * half / n)                   # texture v -> world down
            O = np.array([depth, yc, zc]) - a * n / 2 - b * n / 2
            self.planes.append((O, a, b, _texture(rng, n)))

    def render(self, R: np.ndarray, P: np.ndarray) -> np.ndarray:
        """One (h w 3) uint8 frame from the w2c rotation R and position P."""
        img = np.zeros((SIZE, SIZE, 3), np.uint8)
        order = sorted(self.planes, key=lambda p: -np.linalg.norm(p[0] + p[1] * 256 + p[2] * 256 - P))
        for O, a, b, tex in order:
            H = K @ R @ np.c_[a, b, O - P]
            H = H / H[2, 2]
            warped = cv2.warpPerspective(tex, H, (SIZE, SIZE), flags=cv2.INTER_LINEAR)
            mask = cv2.warpPerspective(np.full(tex.shape[:2], 255, np.uint8), H, (SIZE, SIZE),
                                       flags=cv2.INTER_NEAREST)
            img[mask > 0] = warped[mask > 0]
        return img

    def render_clip(self, R: np.ndarray, P: np.ndarray) -> np.ndarray:
        """(f h w 3) uint8 frames of poses R (f, 3, 3), P (f, 3)."""
        return np.stack([self.render(r, p) for r, p in zip(R, P)])


def base_rotation() -> np.ndarray:
    """Camera looking along world +X, level, Z up."""
    return look_at(np.zeros(3), np.array([1.0, 0.0, 0.0]))


