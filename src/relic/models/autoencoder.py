"""One door to the video autoencoders: build or load whichever network a :class:`VAEConfig` names.

Both networks keep Wan-2.1's latent contract and share one API, so the runtime, the data cache and the
training stages never ask which one they hold:

- ``encode(x)``: frames (b 3 1+4k h w) in [-1, 1] -> normalized (mean, logvar), each (b z 1+k h/8 w/8)
- ``decode(z, clamp=True)``: normalized latents (b z 1+k h w) -> frames (b 3 1+4k 8h 8w)
- ``stream_encoder()`` / ``stream_decoder()``: the same chunk by chunk, equal to the whole-clip calls
- ``normalize`` / ``denormalize``, ``spatial_factor``, ``temporal_factor``, ``config``, ``save_pretrained``

``arch="wan"`` is :class:`relic.models.vae.WanVAE`; ``arch="pooled"`` is
:class:`relic.models.pooled_vae.PooledVAE`.
"""

from __future__ import annotations

import os

from torch import nn

from relic.config import VAEConfig, config_from_dict
from relic.errors import UserError


def vae_class(cfg: VAEConfig) -> type:
    """The module class for ``cfg.arch``."""
    if cfg.arch == "wan":
        from relic.models.vae import WanVAE
        return WanVAE
    if cfg.arch == "pooled":
        from relic.models.pooled_vae import PooledVAE
        return PooledVAE
    raise UserError(f"unknown vae arch {cfg.arch!r} (expected 'wan' or 'pooled')")


def build_vae(cfg: VAEConfig) -> nn.Module:
    """A fresh autoencoder for ``cfg`` (random weights)."""
    return vae_class(cfg)(cfg)


def load_vae(directory: str | os.PathLike) -> nn.Module:
    """Load a directory written by ``save_pretrained`` (``model.safetensors`` + ``config.json``), any arch."""
    from relic.models.weights import load_checked, load_state

    sd, raw = load_state(directory)
    if raw is None:
        raise UserError("no config.json beside the weights", source=str(directory))
    cfg = config_from_dict(VAEConfig, raw, source=f"{directory}/config.json")
    model = build_vae(cfg)
    load_checked(model, sd, source=str(directory))
    return model
