"""Pixel windows for the VAE and tiny-decoder stages: clips decoded once, windows drawn deterministically.

:class:`FrameWindows` decodes each clip once (optionally resized with OpenCV INTER_AREA) and keeps the
uint8 frames in memory; :meth:`FrameWindows.draw` picks ``batch`` windows of ``frames`` consecutive frames
(random clip, random start, random crop) from a NumPy generator, so a step's batch is a pure function of the
generator the trainer hands out for that step (exact resume needs no extra data position).
Clips are split by name: the last ``holdout`` clips are held out for evaluation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from einops import rearrange

from relic.errors import UserError


def to_video(frames: np.ndarray) -> torch.Tensor:
    """uint8 (b f h w c) -> float32 (b c f h w) in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float().div_(127.5).sub_(1.0)
    return rearrange(x, "b f h w c -> b c f h w")


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """float (b c f h w) in [-1, 1] -> uint8 (b f h w c)."""
    x = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return rearrange(x, "b c f h w -> b f h w c").numpy()


def _resize(frames: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or frames.shape[1:3] == tuple(size):
        return frames
    import cv2

    h, w = size
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])


class FrameWindows:
    """Clips under ``root`` held in memory as uint8 (f h w c) arrays, split into train / held-out.

    Args:
        root: a clip directory or a directory of clips (:func:`relic.data.clips.list_clips`).
        holdout: the last ``holdout`` clips (sorted by name) are held out (kept only if at least one remains).
        size: (h, w) to resize frames to, or None to keep them.
        max_clips: read at most this many training clips (None: all).
        multiple: frame sizes must be multiples of this (the VAE's spatial factor).
    """

    def __init__(self, root: str | Path, holdout: int = 1, size: tuple[int, int] | None = None,
                 max_clips: int | None = None, multiple: int = 8, min_frames: int = 5):
        from relic.data.clips import list_clips

        clips = list_clips(root)
        if not clips:
            raise UserError("no complete clips found (render some with `relic world render`)", source=str(root))
        if holdout >= len(clips):
            raise UserError(f"data.holdout={holdout} leaves no training clip ({len(clips)} clips)", source=str(root))
        train, held = clips[:len(clips) - holdout] if holdout else clips, clips[len(clips) - holdout:] if holdout else []
        if max_clips is not None:
            train = train[:max_clips]
        self.names = [c.name for c in train]
        self.held_names = [c.name for c in held]
        self.train = [_resize(c.frames(), size) for c in train]
        self.held = [_resize(c.frames(), size) for c in held]
        for name, arr in zip(self.names + self.held_names, self.train + self.held):
            h, w = arr.shape[1:3]
            if h % multiple or w % multiple:
                raise UserError(f"frames are {w}x{h}; width and height must be multiples of {multiple} "
                                f"(set data.size)", source=f"{root}/{name}")
            if len(arr) < min_frames:
                raise UserError(f"clip has {len(arr)} frames, need at least {min_frames}", source=f"{root}/{name}")
        self.fps = float(clips[0].traj.fps)

    def draw(self, rng: np.random.Generator, batch: int, frames: int, crop: tuple[int, int] | None,
             multiple: int = 8) -> np.ndarray:
        """``batch`` windows uint8 (b f h w c): random clip, start and (``multiple``-aligned) crop."""
        out = []
        for _ in range(batch):
            arr = self.train[int(rng.integers(len(self.train)))]
            n = min(frames, len(arr))
            s = int(rng.integers(len(arr) - n + 1))
            win = arr[s:s + n]
            if crop is not None:
                ch, cw = min(crop[0], win.shape[1]), min(crop[1], win.shape[2])
                y = int(rng.integers((win.shape[1] - ch) // multiple + 1)) * multiple
                x = int(rng.integers((win.shape[2] - cw) // multiple + 1)) * multiple
                win = win[:, y:y + ch, x:x + cw]
            out.append(win)
        if len({w.shape for w in out}) > 1:
            raise UserError("training clips differ in size or length; set data.size and data.frames so they match")
        return np.stack(out)

    def held_out(self, frames: int) -> list[np.ndarray]:
        """The first ``frames`` (rounded down to 1 + 4k) frames of each held-out clip, uint8 (f h w c)."""
        out = []
        for arr in self.held:
            n = min(frames, len(arr))
            n = 1 + 4 * ((n - 1) // 4)
            out.append(arr[:n])
        return out
