"""Latent training batches for the DiT stages (teacher, ODE pairs, DMD): dataset samples -> tensors.

A :class:`LatentBatch` holds, for ``b`` samples of ``f`` latent frames (``F = 1 + 4(f − 1)`` video frames):

* ``latents``  (b c f h w): normalized VAE latents (latent 0 is the clean image-to-video frame);
* ``actions``  (b F 13): per-video-frame actions (row 0 = the prepended static action);
* ``R``, ``P``  (b f 3 3), (b f 3): the pose of each latent = the pose of its last video frame, 4k (the
  runtime's convention, :mod:`relic.runtime.student`);
* ``text``, ``text_mask`` (b L d), (b L): text-encoder states of the motion-free captions.

Samples come from :class:`relic.data.dataset.ClipDataset` (latent mode). Sample ``j`` of micro-batch ``m``
of step ``s`` is the dataset item ``g = (s · accum + m) · b + j`` of epoch ``g // len``, so a step's batch is a
pure function of the step and exact resume needs no iterator state.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import torch

from relic.errors import UserError


EXTRA_SEED_STRIDE = 1_000_003          # a prime: data.extra sources never share a draw seed with the main one


@dataclass
class LatentDataConfig:
    clips: str = "data/clips"               # clip directories (poses, captions)
    latents: str = "data/latents"           # latent cache of `relic data encode`
    seconds: float = 5.0                    # sample duration (before the curriculum)
    curriculum: list = field(default_factory=list)   # [[start_step, seconds], ...]: short -> long context
    palindrome_rate: float = 0.5
    batch_size: int = 1
    segments: str | None = None             # `relic data filter --json` verdicts (clean segments), optional
    seed: int = 0
    # further datasets mixed in, each {clips: DIR, latents: DIR, segments: JSON or null}; a sample is drawn from
    # the union of every source's windows (each source counts as many samples per epoch as it has windows)
    extra: list = field(default_factory=list)


@dataclass
class LatentBatch:
    latents: torch.Tensor
    actions: torch.Tensor
    R: torch.Tensor
    P: torch.Tensor
    text: torch.Tensor
    text_mask: torch.Tensor
    captions: list[str]

    @property
    def num_latents(self) -> int:
        return int(self.latents.shape[2])

    def select(self, stop: int) -> "LatentBatch":
        """The first ``stop`` latents (and their video frames)."""
        F = 1 + 4 * (stop - 1)
        return LatentBatch(self.latents[:, :, :stop], self.actions[:, :F], self.R[:, :stop], self.P[:, :stop],
                           self.text, self.text_mask, self.captions)


def _source(clips_dir: str, latents: str, segments: str | None, name: str) -> tuple[list, str, dict | None]:
    """One data source -> (clips, latent cache directory, clean segments or None); UserError when missing."""
    from relic.data.clips import list_clips

    clips = list_clips(clips_dir)
    if not clips:
        raise UserError(f"{name}: no complete clips found", source=clips_dir)
    if not Path(latents).is_dir():
        raise UserError(f"{name}: latent cache not found (run `relic data encode`)", source=latents)
    if segments:
        from relic.data.dataset import load_segments
        return clips, latents, load_segments(segments)
    return clips, latents, None


class MixedDataset(torch.utils.data.Dataset):
    """Several :class:`relic.data.dataset.ClipDataset` as one: item ``g`` is item ``g − offset`` of the part whose
    range holds it, and :meth:`set_epoch` reaches every part. Shapes are each part's (same seconds, latents)."""

    def __init__(self, parts: list):
        self.parts = parts
        self._ends = list(itertools.accumulate(len(p) for p in parts))

    def __len__(self) -> int:
        return self._ends[-1]

    def set_epoch(self, epoch: int) -> None:
        for part in self.parts:
            part.set_epoch(epoch)

    def __getitem__(self, g: int) -> dict:
        k = bisect.bisect_right(self._ends, g)
        return self.parts[k][g - (self._ends[k - 1] if k else 0)]


def latent_poses(R: torch.Tensor, P: torch.Tensor, temporal_factor: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-video-frame poses (b F 3 3), (b F 3) -> per-latent poses (frames 0, 4, 8, ...)."""
    return R[:, ::temporal_factor], P[:, ::temporal_factor]


class LatentSamples:
    """Deterministic batches from a latent cache with a short-to-long curriculum of sample durations."""

    def __init__(self, cfg: LatentDataConfig, text_encoder):
        self.cfg = cfg
        self.text_encoder = text_encoder
        # (clips, latent cache, segments) per source: the main dataset first, then data.extra
        self.sources = [_source(cfg.clips, cfg.latents, cfg.segments, "data")]
        for i, extra in enumerate(cfg.extra):
            if not (isinstance(extra, dict) and {"clips", "latents"} <= set(extra)
                    and set(extra) <= {"clips", "latents", "segments"}):
                raise UserError(f"data.extra[{i}] must be {{clips: DIR, latents: DIR, segments: JSON}}, "
                                f"got {extra!r}")
            self.sources.append(_source(extra["clips"], extra["latents"], extra.get("segments"),
                                        f"data.extra[{i}]"))
        self.clips = [c for clips, _, _ in self.sources for c in clips]
        self._datasets: dict[float, object] = {}
        for pair in cfg.curriculum:
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
                raise UserError(f"data.curriculum entries must be [start_step, seconds], got {pair!r}")

    def seconds_at(self, step: int) -> float:
        sec = float(self.cfg.seconds)
        for start, s in sorted((int(a), float(b)) for a, b in self.cfg.curriculum):
            if step >= start:
                sec = s
        return sec

    def dataset(self, seconds: float):
        if seconds not in self._datasets:
            from relic.data.dataset import ClipDataset, DatasetConfig

            # source k draws from seed + k·EXTRA_SEED_STRIDE: the main source (k = 0) keeps its own draws
            parts = [ClipDataset(clips, DatasetConfig(seconds=seconds, palindrome_rate=self.cfg.palindrome_rate,
                                                      seed=self.cfg.seed + EXTRA_SEED_STRIDE * k, latents=latents),
                                 segments)
                     for k, (clips, latents, segments) in enumerate(self.sources)]
            self._datasets[seconds] = parts[0] if len(parts) == 1 else MixedDataset(parts)
        return self._datasets[seconds]

    def batch(self, step: int, micro: int, accum: int) -> LatentBatch:
        from relic.training.distributed import data_shard

        ds = self.dataset(self.seconds_at(step))
        b = self.cfg.batch_size
        rank, world = data_shard()            # under torchrun: this data-parallel rank's slice of the global batch
        samples = []
        for j in range(b):
            g = (((step * accum + micro) * world + rank) * b + j)
            ds.set_epoch(g // len(ds))
            samples.append(ds[g % len(ds)])
        return self.collate(samples)

    def collate(self, samples: list[dict]) -> LatentBatch:
        latents = torch.stack([s["latents"] for s in samples])
        actions = torch.stack([s["actions"] for s in samples])
        R, P = latent_poses(torch.stack([s["R"] for s in samples]), torch.stack([s["P"] for s in samples]))
        captions = [s["caption"] for s in samples]
        text, mask = self.text_encoder.encode(captions)
        return LatentBatch(latents, actions, R, P, text, mask, captions)


def empty_text(text_encoder, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The unconditional (empty prompt) text states for classifier-free guidance."""
    return text_encoder.empty(batch)
