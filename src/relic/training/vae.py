"""Stage 0a: train the Wan-architecture causal VAE on rendered clips (``relic train vae``).

Loss per window ``x (b 3 1+4k h w)`` in [-1, 1], reconstruction ``x̂`` from a posterior sample:

    L = w_l1 · |x − x̂|₁ + w_ssim · (1 − SSIM(x, x̂)) + w_kl · KL(q(z|x) ‖ N(0, I)) / (numel of x)
        + w_edge · |∇²x − ∇²x̂|₁ + w_detail · |rms₈(∇²x) − rms₈(∇²x̂)|₁

SSIM is the weight-free structural term (:func:`relic.training.losses.ssim`); the two Laplacian terms
(:func:`relic.training.losses.detail_loss`) ask for edges and for as much fine detail as the frames have,
where the pixel losses alone settle on blur. ``loss.latent_noise = s`` decodes ``z + σ·std_c·ε`` with
σ ~ U(0, s) per sample and ``std_c`` the batch's per-channel latent spread, so that the decoder tolerates the
imperfect latents a DiT produces (N(0, 0.1²) on normalized latents costs it little). Temporal causality is kept by
construction: the model is :class:`relic.models.vae.WanVAE`, whose every temporal convolution is causal, and
training windows start anywhere in a clip, so the first-frame path (1 frame -> 1 latent) sees varied content.
Training runs on random crops (``data.crop``) of ``data.frames`` frames; the convolutional VAE then runs at
any size. Held-out clips (the last ``data.holdout`` by name) give the reconstruction PSNR (``eval/psnr``) and,
when ``eval.frames`` exceeds ``data.frames``, the PSNR of the frames past the training window
(``eval/psnr_beyond_window``): keep the windows long (the temporal receptive field is ~80 frames), or the
latents of long streams land where the decoder was never trained.

The export (``<out>/final``) is a ``WanVAE.from_pretrained`` directory with the EMA weights and the latent
normalization (per-channel mean / std of the posterior means over ``export.stat_windows`` training windows)
written into its config, so that the DiT sees roughly unit-variance latents.

``decoder_only: true`` (with ``init``) fine-tunes the decoder of a trained VAE against the frames while its
encoder (``encoder``, ``quant_conv``) stays frozen and the export keeps the init's latent normalization: the
latent space is unchanged, so latent caches, teachers and students trained on it stay valid, and only the
pictures they decode to get better. The loss is the same (the KL term is then a constant).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from relic.errors import UserError
from relic.training.config import LoopConfig, OptimConfig, model_config
from relic.training.frames import FrameWindows, to_uint8, to_video
from relic.training.loop import Task, Trainer
from relic.training.losses import detail_loss, psnr, ssim


ENCODER_MODULES = ("encoder", "quant_conv")     # the modules that map frames to the posterior (those present)


@dataclass
class VAEDataConfig:
    clips: str = "data/clips"               # a directory of clip directories (`relic world render --out`)
    holdout: int = 1                        # last N clips (by name) held out for PSNR
    frames: int = 41                        # frames per training window (1 + 4k); long enough to reach the
                                            # steady state of the ~80-frame temporal receptive field. From
                                            # scratch, start with short windows (docs/training.md, stage 0)
    crop: tuple[int, int] | None = (64, 64)  # random (h, w) crop of each window (None: full frames)
    batch_size: int = 2
    size: tuple[int, int] | None = None     # resize clips to (h, w) first (None: keep)
    max_clips: int | None = None


@dataclass
class VAELossConfig:
    l1: float = 1.0
    ssim: float = 0.5
    kl: float = 1e-4                        # per-element KL weight (KL summed over latents / numel of x)
    sample_posterior: bool = True
    edge: float = 0.0                       # |laplacian(x) - laplacian(x̂)|₁
    detail: float = 0.0                     # |local RMS of laplacian(x) - of laplacian(x̂)|₁ over 8x8 cells
    latent_noise: float = 0.0               # max relative noise on the decoded latents (0: none)


@dataclass
class VAEEvalConfig:
    frames: int = 65                        # frames of each held-out clip reconstructed for PSNR (1 + 4k)
    stat_windows: int = 16                  # training windows used for the exported latent mean / std
    stat_frames: int | None = None          # frames per statistics window (None: data.frames); >= 41 keeps
                                            # a causal encoder's steady state in the statistics


@dataclass
class VAEStageConfig:
    out: str = "runs/tiny/vae"
    preset: str = "relic-tiny"
    model: dict = field(default_factory=dict)   # overrides of the preset, e.g. {"vae": {"base_dim": 16}}
    init: str | None = None                     # start from this VAE directory (from_pretrained)
    decoder_only: bool = False                  # freeze the encoder (needs init): the latent space stays the same
    data: VAEDataConfig = field(default_factory=VAEDataConfig)
    loss: VAELossConfig = field(default_factory=VAELossConfig)
    eval: VAEEvalConfig = field(default_factory=VAEEvalConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=3e-4, warmup_steps=50, weight_decay=0.0))
    loop: LoopConfig = field(default_factory=LoopConfig)


def vae_loss(vae, x: torch.Tensor, cfg: VAELossConfig, generator: torch.Generator | None = None
             ) -> tuple[torch.Tensor, dict[str, float]]:
    """The stage-0 loss of frames ``x (b 3 1+4k h w)`` -> (loss, parts)."""
    mean, logvar = vae.encode(x)
    z = vae.sample(mean, logvar, generator) if cfg.sample_posterior else mean
    if cfg.latent_noise > 0:
        b = z.shape[0]
        spread = z.detach().float().transpose(0, 1).flatten(1).std(dim=1).view(1, -1, 1, 1, 1)
        sigma = cfg.latent_noise * torch.rand(b, 1, 1, 1, 1, generator=generator)
        eps = torch.randn(z.shape, generator=generator)
        z = z + (sigma * spread * eps).to(z)
    recon = vae.decode(z, clamp=False).float()
    l1 = (recon - x).abs().mean()
    s = ssim(recon, x)
    kl = vae.kl(mean.float(), logvar.float()).sum() / x.numel()
    loss = cfg.l1 * l1 + cfg.ssim * (1.0 - s) + cfg.kl * kl
    parts = {"l1": float(l1.detach()), "ssim": float(s.detach()), "kl": float(kl.detach())}
    if cfg.edge > 0 or cfg.detail > 0:
        edge, detail = detail_loss(recon, x)
        loss = loss + cfg.edge * edge + cfg.detail * detail
        parts.update(edge=float(edge.detach()), detail=float(detail.detach()))
    return loss, parts


@torch.no_grad()
def reconstruct(vae, frames: np.ndarray) -> np.ndarray:
    """uint8 frames (f h w c) -> reconstruction uint8 (f h w c) through the posterior mean."""
    x = to_video(frames[None])
    mean, _ = vae.encode(x)
    return to_uint8(vae.decode(mean))[0]


def video_psnr(a: np.ndarray, b: np.ndarray) -> float:
    return psnr(torch.from_numpy(a).float() / 127.5 - 1, torch.from_numpy(b).float() / 127.5 - 1)


def beyond_window(pairs: list[tuple[np.ndarray, np.ndarray]], window: int) -> float | None:
    """Mean PSNR of (decoded, reference) uint8 videos ``(f h w c)`` over their frames from ``window`` on.

    A causal video autoencoder trained on ``window``-frame windows never sees the steady state that long
    streams live in (its temporal receptive field is much longer than a short window): this is the number
    that shows it. None when no video is longer than the window."""
    scores = [video_psnr(a[window:], b[window:]) for a, b in pairs if len(a) > window]
    return float(np.mean(scores)) if scores else None


class VAETask(Task):
    name = "vae"

    def __init__(self, cfg: VAEStageConfig):
        if (cfg.data.frames - 1) % 4 or cfg.data.frames < 1:
            raise UserError(f"data.frames must be 1 + 4k, got {cfg.data.frames}")
        if cfg.decoder_only and not cfg.init:
            raise UserError("decoder_only fine-tunes a trained VAE's decoder: set init to its directory")
        self.cfg = cfg
        self.model_cfg = model_config(cfg.preset, cfg.model)

    def build(self, trainer: Trainer) -> None:
        from relic.models.autoencoder import build_vae, load_vae

        cfg = self.cfg
        self.vae = load_vae(cfg.init) if cfg.init else build_vae(self.model_cfg.vae)
        if cfg.decoder_only:
            for module in ENCODER_MODULES:
                if hasattr(self.vae, module):
                    getattr(self.vae, module).requires_grad_(False)
        sf = self.vae.spatial_factor
        if cfg.data.crop is not None and (cfg.data.crop[0] % sf or cfg.data.crop[1] % sf):
            raise UserError(f"data.crop must be multiples of {sf}, got {list(cfg.data.crop)}")
        self.data = FrameWindows(cfg.data.clips, cfg.data.holdout, cfg.data.size, cfg.data.max_clips, multiple=sf,
                                 min_frames=cfg.data.frames)
        trainer.add_unit("vae", self.vae, cfg.optim)

    def samples_per_step(self) -> int:
        return self.cfg.data.batch_size

    def train_step(self, trainer: Trainer, step: int) -> dict[str, float]:
        d = self.cfg.data

        def loss_fn(micro: int):
            rng = trainer.np_rng("data", micro)
            x = to_video(self.data.draw(rng, d.batch_size, d.frames, d.crop, self.vae.spatial_factor))
            return vae_loss(self.vae, x, self.cfg.loss, trainer.generator("posterior", micro))

        return trainer.standard_step(loss_fn)

    def _eval_model(self, trainer: Trainer):
        return trainer.units["vae"].weights(ema=True)

    def evaluate(self, trainer: Trainer, step: int) -> dict[str, float]:
        vae = self._eval_model(trainer)
        held = self.data.held_out(self.cfg.eval.frames)
        if not held:
            return {}
        recs = [(reconstruct(vae, v), v) for v in held]
        scores = [video_psnr(r, v) for r, v in recs]
        out = {"psnr": float(np.mean(scores)), "psnr_min": float(np.min(scores))}
        beyond = beyond_window(recs, self.cfg.data.frames)
        if beyond is not None:
            out["psnr_beyond_window"] = beyond
        return out

    def sample(self, trainer: Trainer, step: int) -> None:
        from relic.video import write_mp4

        held = self.data.held_out(self.cfg.eval.frames) or [self.data.train[0][:self.cfg.eval.frames]]
        v = held[0]
        rec = reconstruct(self._eval_model(trainer), v)
        side = np.concatenate([v, rec], axis=2)
        write_mp4(trainer.out / "samples" / f"step_{step:08d}.mp4", side, fps=self.data.fps)
        trainer.writer.add_images("samples/original_vs_reconstruction", side[[0, len(side) // 2, -1]], step,
                                  dataformats="NHWC")

    @torch.no_grad()
    def latent_stats(self, vae, windows: int, generator_rng: np.random.Generator) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the (unnormalized) posterior means over training windows."""
        d = self.cfg.data
        frames = self.cfg.eval.stat_frames or d.frames
        mus = []
        for _ in range(max(1, windows)):
            x = to_video(self.data.draw(generator_rng, 1, frames, None, vae.spatial_factor))
            mean, _ = vae.encode(x)
            mus.append(vae.denormalize(mean).float())
        z = torch.cat([m.transpose(0, 1).flatten(1) for m in mus], dim=1)   # (c n)
        std = z.std(dim=1).clamp_min(1e-4)
        return [float(v) for v in z.mean(dim=1)], [float(v) for v in std]

    def export(self, trainer: Trainer, directory: Path) -> None:
        import dataclasses

        from relic.models.autoencoder import build_vae

        vae = self._eval_model(trainer)
        if self.cfg.decoder_only:                     # same encoder: keep the init's latent normalization
            cfg = vae.config
        else:
            mean, std = self.latent_stats(vae, self.cfg.eval.stat_windows, np.random.default_rng(self.cfg.loop.seed))
            cfg = dataclasses.replace(vae.config, latents_mean=tuple(mean), latents_std=tuple(std))
        out = build_vae(cfg)
        out.load_state_dict(vae.state_dict())
        out.save_pretrained(directory)


def run(cfg: VAEStageConfig, config_dict: dict, resume: bool = False) -> Path:
    trainer = Trainer(VAETask(cfg), cfg.out, cfg.loop, config_dict)
    return trainer.fit(resume=resume)
