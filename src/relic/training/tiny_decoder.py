"""Stage 0b: distill the tiny decoder from the VAE decoder on latents (``relic train tiny-decoder``).

For each training window of frames, the frozen VAE gives the latents ``z`` (posterior mean, normalized as
the DiT produces them) and the teacher frames ``x_vae = VAE.decode(z)``; the tiny decoder
(:class:`relic.models.tiny_decoder.TinyDecoder`) learns ``z -> x_vae``:

    L = w_l1 · |x_tiny − x_vae|₁ + w_ssim · (1 − SSIM(x_tiny, x_vae))

Distilling onto the VAE decoder is what makes the tiny decoder a drop-in replacement for it at run time: it
sees the same latents the VAE decoder would. ``loss.target: gt`` puts the frames themselves in place of
``x_vae`` (same latents, same loss): the tiny decoder then learns to decode what the latents hold rather than
the VAE decoder's errors (e.g. its colour shifts), typically as a fine-tune (``init``) of a distilled one.
``eval/psnr_vs_vae`` and ``eval/psnr_vs_gt`` are reported on held-out clips (the VAE's own
``eval/psnr_vae_vs_gt`` for reference; ``eval/psnr_vs_gt_beyond_window`` over the frames past ``data.frames``
when ``eval.frames`` is longer). The export (``<out>/final``) is a ``TinyDecoder.from_pretrained``
directory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from relic.errors import UserError
from relic.training.config import LoopConfig, OptimConfig, model_config
from relic.training.frames import FrameWindows, to_uint8, to_video
from relic.training.loop import Task, Trainer
from relic.training.losses import detail_loss, ssim
from relic.training.vae import beyond_window, video_psnr


TARGETS = ("vae", "gt")


@dataclass
class TinyDataConfig:
    clips: str = "data/clips"
    holdout: int = 1
    frames: int = 41             # 1 + 4k; long windows, so the latents include steady-state ones (see vae.py)
    crop: tuple[int, int] | None = (64, 64)
    batch_size: int = 2
    size: tuple[int, int] | None = None
    max_clips: int | None = None


@dataclass
class TinyLossConfig:
    l1: float = 1.0
    ssim: float = 0.5
    target: str = "vae"          # "vae": the VAE decoder's frames (distillation); "gt": the frames themselves
    edge: float = 0.0            # Laplacian terms, as the VAE stage (relic.training.losses.detail_loss)
    detail: float = 0.0
    latent_noise: float = 0.0    # max relative noise on the latents it decodes (as the VAE stage)


@dataclass
class TinyEvalConfig:
    frames: int = 65


@dataclass
class TinyDecoderStageConfig:
    out: str = "runs/tiny/tiny_decoder"
    preset: str = "relic-tiny"
    model: dict = field(default_factory=dict)      # overrides of the preset, e.g. {"tiny_decoder": {"channels": 32}}
    vae: str = "runs/tiny/vae/final"               # the trained VAE (stage 0a export)
    init: str | None = None
    data: TinyDataConfig = field(default_factory=TinyDataConfig)
    loss: TinyLossConfig = field(default_factory=TinyLossConfig)
    eval: TinyEvalConfig = field(default_factory=TinyEvalConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, warmup_steps=50, weight_decay=0.0))
    loop: LoopConfig = field(default_factory=LoopConfig)


class TinyDecoderTask(Task):
    name = "tiny-decoder"

    def __init__(self, cfg: TinyDecoderStageConfig):
        if (cfg.data.frames - 1) % 4 or cfg.data.frames < 5:
            raise UserError(f"data.frames must be 1 + 4k with k >= 1, got {cfg.data.frames}")
        if cfg.loss.target not in TARGETS:
            raise UserError(f"loss.target must be one of {', '.join(TARGETS)}, got {cfg.loss.target!r}")
        self.cfg = cfg
        self.model_cfg = model_config(cfg.preset, cfg.model)

    def build(self, trainer: Trainer) -> None:
        from relic.models.tiny_decoder import TinyDecoder
        from relic.models.autoencoder import load_vae

        cfg = self.cfg
        self.vae = load_vae(cfg.vae).eval().requires_grad_(False)
        tcfg = self.model_cfg.tiny_decoder
        if tcfg.z_dim != self.vae.config.z_dim:
            raise UserError(f"tiny_decoder.z_dim={tcfg.z_dim} but the VAE has z_dim={self.vae.config.z_dim}")
        if getattr(self.vae.config, "arch", "wan") == "pooled" and tcfg.base_mean is None:
            # decode on the VAE's colour base: the pooled channels' normalization comes from the VAE
            from relic.models.pooled_vae import N_FIXED

            vc = self.vae.config
            mean = vc.latents_mean or (0.0,) * vc.z_dim
            std = vc.latents_std or (1.0,) * vc.z_dim
            tcfg = dataclasses.replace(tcfg, base_mean=tuple(mean[:N_FIXED]), base_std=tuple(std[:N_FIXED]))
        self.tiny = TinyDecoder.from_pretrained(cfg.init) if cfg.init else TinyDecoder(tcfg)
        sf = self.vae.spatial_factor
        self.data = FrameWindows(cfg.data.clips, cfg.data.holdout, cfg.data.size, cfg.data.max_clips, multiple=sf,
                                 min_frames=cfg.data.frames)
        trainer.add_unit("tiny_decoder", self.tiny, cfg.optim)

    def samples_per_step(self) -> int:
        return self.cfg.data.batch_size

    @torch.no_grad()
    def targets(self, frames: np.ndarray, trainer: Trainer, target: str = "vae") -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 windows (b f h w c) -> (latents (b z t h/8 w/8), reference frames (b 3 f h w) in [-1, 1]): the
        VAE-decoded frames for ``target="vae"``, the frames themselves for ``"gt"`` (no VAE decode then)."""
        x = to_video(frames)
        with trainer.autocast():
            z, _ = self.vae.encode(x)
            if target == "vae":
                x = self.vae.decode(z)
        return z.float(), x.float()

    def train_step(self, trainer: Trainer, step: int) -> dict[str, float]:
        d, lc = self.cfg.data, self.cfg.loss

        def loss_fn(micro: int):
            frames = self.data.draw(trainer.np_rng("data", micro), d.batch_size, d.frames, d.crop,
                                    self.vae.spatial_factor)
            z, target = self.targets(frames, trainer, lc.target)
            if lc.latent_noise > 0:
                g = trainer.generator("latent_noise", micro)
                spread = z.transpose(0, 1).flatten(1).std(dim=1).view(1, -1, 1, 1, 1)
                sigma = lc.latent_noise * torch.rand(z.shape[0], 1, 1, 1, 1, generator=g)
                z = z + sigma * spread * torch.randn(z.shape, generator=g)
            out = self.tiny(z, clamp=False).float()
            l1 = (out - target).abs().mean()
            s = ssim(out, target)
            loss = lc.l1 * l1 + lc.ssim * (1 - s)
            parts = {"l1": float(l1.detach()), "ssim": float(s.detach())}
            if lc.edge > 0 or lc.detail > 0:
                edge, detail = detail_loss(out, target)
                loss = loss + lc.edge * edge + lc.detail * detail
                parts.update(edge=float(edge.detach()), detail=float(detail.detach()))
            return loss, parts

        return trainer.standard_step(loss_fn)

    def _decoders(self, trainer: Trainer, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z, x_vae = self.targets(frames[None], trainer)
        tiny = trainer.units["tiny_decoder"].weights(ema=True)
        return to_uint8(tiny(z))[0], to_uint8(x_vae)[0]

    def evaluate(self, trainer: Trainer, step: int) -> dict[str, float]:
        held = self.data.held_out(self.cfg.eval.frames)
        if not held:
            return {}
        vs_vae, vs_gt, vae_gt, pairs = [], [], [], []
        for v in held:
            tiny, vae = self._decoders(trainer, v)
            vs_vae.append(video_psnr(tiny, vae))
            vs_gt.append(video_psnr(tiny, v))
            vae_gt.append(video_psnr(vae, v))
            pairs.append((tiny, v))
        out = {"psnr_vs_vae": float(np.mean(vs_vae)), "psnr_vs_gt": float(np.mean(vs_gt)),
               "psnr_vae_vs_gt": float(np.mean(vae_gt))}
        beyond = beyond_window(pairs, self.cfg.data.frames)
        if beyond is not None:
            out["psnr_vs_gt_beyond_window"] = beyond
        return out

    def sample(self, trainer: Trainer, step: int) -> None:
        from relic.video import write_mp4

        held = self.data.held_out(self.cfg.eval.frames) or [self.data.train[0][:self.cfg.eval.frames]]
        v = held[0]
        tiny, vae = self._decoders(trainer, v)
        side = np.concatenate([v, vae, tiny], axis=2)
        write_mp4(trainer.out / "samples" / f"step_{step:08d}.mp4", side, fps=self.data.fps)
        trainer.writer.add_images("samples/gt_vae_tiny", side[[0, len(side) // 2, -1]], step, dataformats="NHWC")

    def export(self, trainer: Trainer, directory: Path) -> None:
        trainer.units["tiny_decoder"].weights(ema=True).save_pretrained(directory)


def run(cfg: TinyDecoderStageConfig, config_dict: dict, resume: bool = False) -> Path:
    return Trainer(TinyDecoderTask(cfg), cfg.out, cfg.loop, config_dict).fit(resume=resume)
