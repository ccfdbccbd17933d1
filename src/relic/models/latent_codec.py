"""What both video autoencoders share (:class:`relic.models.vae.WanVAE`, :class:`relic.models.pooled_vae.PooledVAE`).

Per-channel latent normalization ``(mu - latents_mean) / latents_std`` (the space the DiT sees), whole-clip
``encode`` / ``decode`` through the subclass's streaming sessions (so a clip and its chunks take one code path),
and posterior sampling. Subclasses define ``stream_encoder()`` and ``stream_decoder(clamp)``.
"""

from __future__ import annotations

import torch

from relic.config import VAEConfig
from relic.errors import UserError


def check_latent_stats(cfg: VAEConfig, source: str = "vae config") -> None:
    """A UserError unless ``latents_mean`` / ``latents_std`` are None or z_dim values (std > 0)."""
    for name in ("latents_mean", "latents_std"):
        v = getattr(cfg, name)
        if v is not None and len(v) != cfg.z_dim:
            raise UserError(f"{name} needs z_dim={cfg.z_dim} values, got {len(v)}", source=source)
    if cfg.latents_std is not None and any(s <= 0 for s in cfg.latents_std):
        raise UserError("latents_std values must be > 0", source=source)


class LatentCodec:
    """Mixin for an ``nn.Module`` autoencoder built from a :class:`VAEConfig`."""

    def register_latent_stats(self, cfg: VAEConfig) -> None:
        """Buffers ``latents_mean`` / ``latents_std`` (1 z 1 1 1) from the config (None: zeros / ones)."""
        mean = torch.tensor(cfg.latents_mean if cfg.latents_mean is not None else [0.0] * cfg.z_dim)
        std = torch.tensor(cfg.latents_std if cfg.latents_std is not None else [1.0] * cfg.z_dim)
        self.register_buffer("latents_mean", mean.view(1, -1, 1, 1, 1), persistent=False)
        self.register_buffer("latents_std", std.view(1, -1, 1, 1, 1), persistent=False)

    def normalize(self, mu: torch.Tensor) -> torch.Tensor:
        return (mu - self.latents_mean.to(mu)) / self.latents_std.to(mu)

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.latents_std.to(z) + self.latents_mean.to(z)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames (b 3 1+4k h w) in [-1, 1] -> normalized posterior (mean, logvar), each (b z 1+k h/8 w/8)."""
        return self.stream_encoder().encode(x)

    def decode(self, z: torch.Tensor, clamp: bool = True) -> torch.Tensor:
        """Normalized latents (b z 1+k h w) -> frames (b 3 1+4k 8h 8w), clamped to [-1, 1] unless ``clamp=False``."""
        return self.stream_decoder(clamp=clamp).decode(z)

    def forward(self, x: torch.Tensor, sample_posterior: bool = False,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruct for training: frames (b 3 t h w) -> (unclamped reconstruction, mean, logvar)."""
        mean, logvar = self.encode(x)
        z = self.sample(mean, logvar, generator) if sample_posterior else mean
        return self.decode(z, clamp=False), mean, logvar

    @staticmethod
    def sample(mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw latents from the posterior N(mean, exp(logvar))."""
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + torch.exp(0.5 * logvar) * eps
