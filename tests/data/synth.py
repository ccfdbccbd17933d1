"""Synthetic clips for the data tests: an operator walking and panning through a textured panorama.

Frames are windows of a smooth random 360° panorama, shifted by the camera's yaw and pitch (90° horizontal
field of view), so pixel changes follow the poses the way a real render's would.
"""

from __future__ import annotations

import cv2
import numpy as np

from relic.camera import Trajectory, look_at

FPS = 16.0


def panorama(seed: int, height: int, width: int) -> np.ndarray:
    """Smooth random RGB texture uint8 (height, width*4, 3) covering 360°."""
    rng = np.random.default_rng(seed)
    W = width * 4
    img = np.zeros((height * 2, W, 3), np.float32)
    for scale, amp in ((4, 1.0), (12, 0.5), (32, 0.25)):
        small = rng.uniform(0, 1, size=(max(2, 2 * height // scale), max(2, W // scale), 3)).astype(np.float32)
        img += amp * cv2.resize(small, (W, height * 2), interpolation=cv2.INTER_CUBIC)
    img = (img - img.min()) / (img.max() - img.min())
    return (40 + 180 * img).astype(np.uint8)


def operator_path(T: int, seed: int = 0, speed: float = 1.2, pan_deg_s: float = 30.0, fps: float = FPS):
    """Walking-speed translation with a smooth pan that goes back and forth (tens of deg/s).

    Returns yaw, pitch (degrees, (T,)) and positions (T, 3).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(T) / fps
    period = rng.uniform(3.0, 5.0)
    yaw = pan_deg_s * period / (2 * np.pi) * np.sin(2 * np.pi * t / period) + rng.uniform(0, 360)
    pitch = 5.0 * np.sin(2 * np.pi * t / 6.0)
    heading = np.deg2rad(yaw[0])
    P = np.stack([np.cos(heading) * speed * t, np.sin(heading) * speed * t, np.full(T, 1.6)], -1)
    return yaw, pitch, P


def poses(yaw: np.ndarray, pitch: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Yaw/pitch in degrees (yaw counter-clockwise about +Z) -> world-to-camera R (T, 3, 3)."""
    y, p = np.deg2rad(yaw), np.deg2rad(pitch)
    fwd = np.stack([np.cos(p) * np.cos(y), np.cos(p) * np.sin(y), np.sin(p)], -1)
    return np.stack([look_at(P[i], P[i] + fwd[i]) for i in range(len(P))])


def render(pano: np.ndarray, yaw: np.ndarray, pitch: np.ndarray, height: int, width: int,
           P: np.ndarray | None = None) -> np.ndarray:
    """Windows of the panorama -> uint8 (f h w 3). Panning right (yaw decreasing) moves the window right;
    walking (distance travelled along P) magnifies the window by 10 % per metre, like dollying in."""
    ppd = width / 90.0
    Wp = pano.shape[1]
    dist = np.zeros(len(yaw)) if P is None else np.r_[0, np.cumsum(np.linalg.norm(np.diff(P, axis=0), axis=-1))]
    frames = []
    for yw, pt, d in zip(yaw, pitch, dist):
        x0 = -yw * ppd
        y0 = pano.shape[0] / 2 - height / 2 - pt * ppd
        s = 1.0 + 0.1 * d
        cx, cy = (x0 % Wp) + width / 2, y0 + height / 2   # window centre in the panorama
        M = np.float32([[s, 0, width / 2 - s * cx], [0, s, height / 2 - s * cy]])
        wide = np.concatenate([pano, pano[:, :width + 2]], axis=1)
        frames.append(cv2.warpAffine(wide, M, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
    return np.stack(frames)


def synth_clip(T: int = 49, height: int = 64, width: int = 96, seed: int = 0, **kw):
    """(frames uint8 (T h w 3), Trajectory, yaw, pitch) of a clean operator clip."""
    yaw, pitch, P = operator_path(T, seed, **kw)
    R = poses(yaw, pitch, P)
    f = width / 2.0
    traj = Trajectory(R, P, np.arange(T) / FPS, FPS, width, height, (f, f, width / 2.0, height / 2.0))
    return render(panorama(seed, height, width), yaw, pitch, height, width, P), traj, yaw, pitch


def retraj(traj: Trajectory, yaw: np.ndarray, pitch: np.ndarray, P: np.ndarray | None = None) -> Trajectory:
    P = traj.P if P is None else P
    return Trajectory(poses(yaw, pitch, P), P, traj.t, traj.fps, traj.width, traj.height, traj.intrinsics)
