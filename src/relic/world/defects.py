"""Defect injection: the faults the data filters (paper §3.2) must catch, applied on request.

Pose defects change the operator's states (and so the recorded cameras) before rendering; image defects
change the rendered frames afterwards. Each injection returns a record for ``meta.json``:
``{"kind", "frames": [first, last], ...parameters}`` (frames inclusive).

* ``jitter``: high-frequency shake, ±1.5-3 cm and ±1-2° per frame, over 1-3 s.
* ``abrupt_rotation``: the view snaps by 40-90° in one frame, and snaps back a few frames later.
* ``fast_pan``: a full 360° pan in 0.8-1.4 s (250-450 °/s), far faster than any operator.
* ``overexposure`` / ``underexposure``: a gain of 2.5-4 or 0.12-0.3 over at least half the clip.
* ``frozen``: the video repeats one frame for 0.5-1.5 s while the camera keeps moving.
"""

from __future__ import annotations

import numpy as np

POSE_DEFECTS = ("jitter", "abrupt_rotation", "fast_pan")
IMAGE_DEFECTS = ("overexposure", "underexposure", "frozen")
DEFECTS = POSE_DEFECTS + IMAGE_DEFECTS


def check_defects(defects) -> tuple[str, ...]:
    """Validate a sequence of defect names -> tuple; raises ValueError naming an unknown one."""
    out = tuple(defects or ())
    for d in out:
        if d not in DEFECTS:
            raise ValueError(f"unknown defect {d!r}; choose from {', '.join(DEFECTS)}")
    return out


def _window(rng: np.random.Generator, n: int, length: int) -> tuple[int, int]:
    length = max(2, min(length, n - 2))
    a = int(rng.integers(1, max(2, n - length)))
    return a, min(n - 1, a + length - 1)


def apply_pose_defect(kind: str, states: np.ndarray, fps: float, rng: np.random.Generator,
                      scene_clearance=None) -> dict:
    """Modify operator states (t 6) in place; returns the meta record."""
    n = len(states)
    if kind == "jitter":
        a, b = _window(rng, n, int(rng.uniform(1, 3) * fps))
        amp_m, amp_deg = rng.uniform(0.015, 0.03), rng.uniform(1.0, 2.0)
        k = b - a + 1
        dp = rng.uniform(-amp_m, amp_m, (k, 3))
        if scene_clearance is not None:   # never shake into geometry
            ok = scene_clearance(states[a:b + 1, :3] + dp) > 0.05
            dp[~ok] = 0.0
        states[a:b + 1, :3] += dp
        states[a:b + 1, 3:5] += rng.uniform(-amp_deg, amp_deg, (k, 2))
        states[a:b + 1, 5] += rng.uniform(-amp_deg / 2, amp_deg / 2, k)
        return {"kind": kind, "frames": [a, b], "amplitude_m": float(amp_m), "amplitude_deg": float(amp_deg)}
    if kind == "abrupt_rotation":
        a, b = _window(rng, n, int(rng.integers(3, 9)))
        angle = float(rng.uniform(40, 90) * rng.choice([-1, 1]))
        states[a:b + 1, 3] += angle
        return {"kind": kind, "frames": [a, b], "angle_deg": angle}
    if kind == "fast_pan":
        k = max(3, int(rng.uniform(0.8, 1.4) * fps))
        a, b = _window(rng, n, k)
        k = b - a + 1
        sign = float(rng.choice([-1, 1]))
        offset = sign * 360.0 * (np.arange(1, k + 1) / k)
        states[a:b + 1, 3] += offset
        states[b + 1:, 3] += sign * 360.0
        return {"kind": kind, "frames": [a, b], "speed_deg_s": float(360.0 * fps / k)}
    raise ValueError(f"not a pose defect: {kind!r}")


def apply_image_defect(kind: str, frames: np.ndarray, fps: float, rng: np.random.Generator) -> dict:
    """Modify uint8 frames (f h w c) in place; returns the meta record."""
    n = len(frames)
    if kind in ("overexposure", "underexposure"):
        a, b = _window(rng, n, int(rng.uniform(0.5, 0.9) * n))
        gain = float(rng.uniform(2.5, 4.0) if kind == "overexposure" else rng.uniform(0.12, 0.3))
        seg = frames[a:b + 1].astype(np.float32) * gain
        frames[a:b + 1] = np.clip(seg + 0.5, 0, 255).astype(np.uint8)
        return {"kind": kind, "frames": [a, b], "gain": gain}
    if kind == "frozen":
        a, b = _window(rng, n, int(rng.uniform(0.5, 1.5) * fps))
        frames[a + 1:b + 1] = frames[a]
        return {"kind": kind, "frames": [a, b]}
    raise ValueError(f"not an image defect: {kind!r}")
