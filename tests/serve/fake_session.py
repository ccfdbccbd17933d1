"""A tiny deterministic stand-in for StreamingSession, for testing server mechanics only (tests only).

It has the StreamingSession API (``cfg``, ``frames_per_step``, ``gamma``, ``start`` -> (1 h w 3),
``step`` -> (f h w 3), ``reset``, ``state`` dict with R, P and memory stats). Poses are integrated from
the actions (eq. 3) from the identity, as the real session does. The main browser test runs on the real
:class:`relic.runtime.stream.StreamingSession`.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from relic.camera import integrate
from relic.config import relic_tiny


class FakeSession:
    """Frames are a flat colour derived from the pose, so motion is visible; ``delay`` seconds per step."""

    frames_per_step = 4

    def __init__(self, width: int = 64, height: int = 32, fps: int = 16, delay: float = 0.0,
                 fail_after: int | None = None):
        cfg = relic_tiny()
        cfg.width, cfg.height, cfg.fps = width, height, fps
        self.cfg = cfg
        self.delay = delay
        self.fail_after = fail_after
        self.gamma = 1.0
        self.steps = 0
        self.concurrent = 0          # how many threads are inside step() (must stay <= 1)
        self.max_concurrent = 0
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        self.started = False
        self._R = np.zeros((0, 3, 3))
        self._P = np.zeros((0, 3))
        self.blocks = 0

    def start(self, image, prompt, seed=0):
        assert image.dtype == np.uint8 and image.ndim == 3
        self.reset()
        self.prompt, self.seed = prompt, seed
        self.started = True
        self._R, self._P = np.eye(3)[None], np.zeros((1, 3))
        h, w = self.cfg.height, self.cfg.width
        return np.asarray(image[None, :h, :w]).copy()

    @property
    def state(self):
        return {"R": self._R.copy(), "P": self._P.copy(), "memory": {"tokens": min(64 * self.blocks, 512)}}

    def step(self, actions):
        with self._lock:
            self.concurrent += 1
            self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            assert self.started, "step before start"
            actions = np.asarray(actions)
            assert actions.shape == (self.frames_per_step, 13)
            self.steps += 1
            if self.fail_after is not None and self.steps > self.fail_after:
                raise RuntimeError("fake engine exploded")
            if self.delay:
                time.sleep(self.delay)
            a = np.concatenate([np.zeros((1, 13)), actions])
            R, P = integrate(a, 0.1, self.gamma, self._R[-1], self._P[-1])
            self._R, self._P = np.concatenate([self._R, R[1:]]), np.concatenate([self._P, P[1:]])
            self.blocks += 1
            h, w = self.cfg.height, self.cfg.width
            frames = np.empty((len(actions), h, w, 3), np.uint8)
            for i, (Ri, Pi) in enumerate(zip(R[1:], P[1:])):
                fwd = Ri.T @ np.array([0.0, 0.0, 1.0])
                frames[i] = (int(128 + 100 * np.tanh(Pi[2])), int(128 + 100 * fwd[0]), (self.steps * 37) % 256)
            return frames
        finally:
            with self._lock:
                self.concurrent -= 1
