"""The training dataset: segments of clips with actions, poses and captions (paper §3.3–3.4).

Each sample is a segment of ``n = 1 + 4k`` frames (so that it maps to 1 + k VAE latents), drawn uniformly
over every valid start in every clip (inside the clean segments of a filter verdict when one is given),
and turned into a palindrome (:mod:`relic.data.palindrome`) with probability ``palindrome_rate``.

A sample (dict) holds:

* ``frames``      uint8 (f h w c), f = n  — pixel mode; or
* ``latents``     float32 (z 1+k h/8 w/8) — latent mode, read from the cache of ``relic data encode``;
  latent 0 is the single-image latent of ``first_frame`` (see below);
* ``actions``     float32 (f 13): Algorithm 1 on the sample's own poses, in units of the clip's d̄;
  row 0 is the prepended static action;
* ``R``, ``P``    float32 (f 3 3), (f 3): the absolute poses *as the model sees them*: eq. 3 integrated from
  ``actions`` starting at the identity and the origin, so R is relative to the first frame and P is in units
  of d̄ in the first camera's world (R_k' = R_k R_0ᵀ, P_k' = R_0 (P_k − P_0) / d̄ for the true poses);
* ``caption``     str: the clip's caption with camera motion removed (:mod:`relic.data.captions`);
* ``first_frame`` uint8 (h w c): frame 0 of the sample;
* ``frame_index`` int64 (f,): the source frame of each sample frame; ``pivot`` (t*, or 0 without palindrome);
  ``clip`` (name), ``mean_displacement`` (d̄, float).

Latent mode keeps samples latent-aligned: a sample starts at a frame s = 4j, so that its latent i ≥ 1 is the
clip's latent j + i (frames s+4i−3..s+4i). Latent 0 ↔ frame s is the cache's ``first_latents[:, j]``: frame s
encoded alone, exactly as :meth:`relic.runtime.stream.StreamingSession.start` encodes a start image
(:func:`relic.data.start_image.encode_start_image`). It is NOT the clip's video latent j, which covers frames
s−3..s with the clip's causal history and differs from a single-image latent a lot (cosine similarity
−0.01..0.58 on relic-tiny): every stage (teacher, ODE pairs, ODE init, DMD) thus trains on the first latent
the runtime feeds (tests/training/test_train_infer_parity.py). Palindrome pivots are latent-aligned too
(t* = 4q + 1); a palindrome starts forward, so its latent 0 is the same single-image latent, and the reversed
half takes its latents from ``latents_reversed``, which hold exactly the reversed frame groups (see
:mod:`relic.data.latents`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from relic.camera.actions import annotate, integrate
from relic.data.captions import suppress_motion
from relic.data.clips import Clip
from relic.data.palindrome import actions_in_units, palindrome_indices, sample_pivot
from relic.errors import UserError

MAX_SECONDS = 20.0   # the paper's teacher horizon


@dataclass
class DatasetConfig:
    """How samples are drawn.

    Attributes:
        seconds: segment duration; the sample has the largest 1 + 4k frames ≤ seconds · fps (≤ 20 s).
        palindrome_rate: probability that a sample is a palindrome.
        samples_per_epoch: dataset length (None: one sample per non-overlapping segment position).
        seed: base seed; sample i of epoch e is drawn from ``default_rng([seed, e, i])``.
        latents: a latent cache directory (``relic data encode``) -> latent mode; None -> pixel mode.
        size: (height, width) to resize pixel frames to (OpenCV INTER_AREA), or None to keep them.
        temporal_factor: frames per latent (4 for Wan).
    """

    seconds: float = 5.0
    palindrome_rate: float = 0.5
    samples_per_epoch: int | None = None
    seed: int = 0
    latents: str | None = None
    size: tuple[int, int] | None = None
    temporal_factor: int = 4

    def __post_init__(self) -> None:
        if not (0 < self.seconds <= MAX_SECONDS):
            raise UserError(f"segment duration must be in (0, {MAX_SECONDS:g}] seconds, got {self.seconds}")
        if not (0.0 <= self.palindrome_rate <= 1.0):
            raise UserError(f"palindrome_rate must be in [0, 1], got {self.palindrome_rate}")


def segment_frames(seconds: float, fps: float, temporal_factor: int = 4) -> int:
    """Largest 1 + 4k ≤ seconds · fps (at least 1 + 4)."""
    k = max(1, int(math.floor((seconds * fps + 1e-6 - 1) / temporal_factor)))
    return 1 + temporal_factor * k


def load_segments(path: str | Path) -> dict[str, list[tuple[int, int]]]:
    """Clean segments per clip from the JSON written by ``relic data filter --json`` (rejected clips: [])."""
    import json

    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
        return {v["name"]: [tuple(s) for s in v["segments"]] for v in obj["clips"]}
    except FileNotFoundError:
        raise UserError("file not found", source=str(path)) from None
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise UserError(f"not a filter verdict file ({e.__class__.__name__})", source=str(path)) from None


class ClipDataset(torch.utils.data.Dataset):
    """Training samples from clips (see the module docstring).

    Args:
        clips: clips to draw from (:func:`relic.data.clips.list_clips`).
        config: sampling options.
        segments: optional clean segments per clip name ([start, stop) frame ranges); clips missing from it
            are used whole, clips mapped to [] are skipped.
    """

    def __init__(self, clips: list[Clip], config: DatasetConfig = DatasetConfig(),
                 segments: dict[str, list[tuple[int, int]]] | None = None):
        self.config = config
        self.epoch = 0
        self.clips: list[Clip] = []
        self.d_bar: list[float] = []
        self.latent_files: list = []
        self.windows: list[np.ndarray] = []   # per clip: valid start frames
        tf = config.temporal_factor
        fps = {c.traj.fps for c in clips}
        if len(fps) > 1:
            raise UserError(f"clips have different frame rates {sorted(fps)}; resample them first")
        self.num_frames = segment_frames(config.seconds, fps.pop() if fps else 16.0, tf)
        n = self.num_frames
        for clip in clips:
            usable = len(clip)
            lf = None
            if config.latents is not None:
                from relic.data.latents import LatentFile, cache_path

                p = cache_path(config.latents, clip.name)
                if not p.exists():
                    raise UserError(f"clip {clip.name!r} is not in the latent cache (run `relic data encode`)",
                                    source=str(p))
                lf = LatentFile(p)
                usable = min(usable, lf.num_frames)
            segs = segments.get(clip.name, [(0, len(clip))]) if segments is not None else [(0, len(clip))]
            starts = []
            for a, b in segs:
                b = min(b, usable)
                s = np.arange(a, b - n + 1)
                if lf is not None:
                    s = s[s % tf == 0]
                starts.append(s)
            starts = np.concatenate(starts) if starts else np.zeros(0, np.int64)
            if len(starts) == 0:
                continue
            self.clips.append(clip)
            self.latent_files.append(lf)
            self.windows.append(starts.astype(np.int64))
            self.d_bar.append(annotate(clip.traj.R, clip.traj.P)[1])
        if not self.clips:
            raise UserError(f"no clip has a clean segment of {n} frames ({config.seconds:g} s)")
        counts = np.array([len(w) for w in self.windows])
        self._cum = np.cumsum(counts)
        self._len = config.samples_per_epoch or int(sum(max(1, c // n) for c in counts))

    def set_epoch(self, epoch: int) -> None:
        """Draw a different set of samples for ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self._len

    # ----------------------------------------------------------------------------------------------
    def _draw(self, rng: np.random.Generator) -> tuple[int, int, int]:
        """-> (clip index, start frame, pivot t* or 0)."""
        w = int(rng.integers(self._cum[-1]))
        ci = int(np.searchsorted(self._cum, w, side="right"))
        start = int(self.windows[ci][w - (self._cum[ci - 1] if ci else 0)])
        pivot = 0
        if rng.random() < self.config.palindrome_rate:
            n, tf = self.num_frames, self.config.temporal_factor
            if self.latent_files[ci] is None:
                pivot = sample_pivot(n, rng)
            else:
                k = (n - 1) // tf
                if k >= 2:
                    pivot = tf * int(rng.integers(math.ceil(k / 2), k)) + 1
        return ci, start, pivot

    def sample(self, ci: int, start: int, pivot: int = 0) -> dict:
        """The sample of clip ``ci`` starting at ``start`` (palindrome around t* = ``pivot`` when > 0)."""
        clip, n = self.clips[ci], self.num_frames
        rel = palindrome_indices(n, pivot) if pivot else np.arange(n)
        idx = start + rel
        actions, d_bar = actions_in_units(clip.traj.R[idx], clip.traj.P[idx], self.d_bar[ci])
        R, P = integrate(actions, 1.0)
        out = {
            "actions": torch.from_numpy(actions.astype(np.float32)),
            "R": torch.from_numpy(R.astype(np.float32)),
            "P": torch.from_numpy(P.astype(np.float32)),
            "caption": suppress_motion(clip.caption),
            "frame_index": torch.from_numpy(idx),
            "pivot": pivot,
            "clip": clip.name,
            "mean_displacement": float(d_bar),
        }
        lf = self.latent_files[ci]
        if lf is None:
            frames = clip.frames(int(idx.max()) + 1)[idx]
            if self.config.size is not None:
                frames = _resize(frames, self.config.size)
            out["frames"] = torch.from_numpy(np.ascontiguousarray(frames))
            out["first_frame"] = out["frames"][0].clone()
        else:
            out["latents"] = self._latents(lf, start, pivot)
            out["first_frame"] = torch.from_numpy(lf.anchor(start // self.config.temporal_factor).copy())
        return out

    def _latents(self, lf, start: int, pivot: int) -> torch.Tensor:
        tf = self.config.temporal_factor
        j, k = start // tf, (self.num_frames - 1) // tf
        if not pivot:                  # latent 0: the start image's latent, as the runtime encodes it
            return torch.cat([lf.first_latent(j), lf.latents(np.arange(j + 1, j + k + 1))], dim=1)
        q = (pivot - 1) // tf
        K = lf.num_latents - 1
        fwd = lf.latents(np.arange(j + 1, j + q + 1)) if q else None
        back = lf.latents(K - j - 2 * q + np.arange(q + 1, k + 1), reversed_=True)
        return torch.cat([lf.first_latent(j), *([fwd] if fwd is not None else []), back], dim=1)

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        rng = np.random.default_rng([self.config.seed, self.epoch, i])
        return self.sample(*self._draw(rng))


def _resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    h, w = size
    if frames.shape[1:3] == (h, w):
        return frames
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
