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

from dataclasses import dataclass, field
from pathlib import Path

import torch

from relic.errors import UserError


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


def latent_poses(R: torch.Tensor, P: torch.Tensor, temporal_factor: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-video-frame poses (b F 3 3), (b F 3) -> per-latent poses (frames 0, 4, 8, ...)."""
    return R[:, ::temporal_factor], P[:, ::temporal_factor]


class LatentSamples:
    """Deterministic batches from a latent cache with a short-to-long curriculum of sample durations."""

    def __init__(self, cfg: LatentDataConfig, text_encoder):
        from relic.data.clips import list_clips

        self.cfg = cfg
        self.text_encoder = text_encoder
        self.clips = list_clips(cfg.clips)
        if not self.clips:
            raise UserError("no complete clips found", source=cfg.clips)
        if not Path(cfg.latents).is_dir():
            raise UserError("latent cache not found (run `relic data encode`)", source=cfg.latents)
        self.segments = None
        if cfg.segments:
            from relic.data.dataset import load_segments
            self.segments = load_segments(cfg.segments)
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

            dcfg = DatasetConfig(seconds=seconds, palindrome_rate=self.cfg.palindrome_rate, seed=self.cfg.seed,
                                 latents=self.cfg.latents)
            self._datasets[seconds] = ClipDataset(self.clips, dcfg, self.segments)
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
