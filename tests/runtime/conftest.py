"""Tiny random DiT configs for the runtime tests (fp32, CPU)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from relic.camera import integrate
from relic.config import DiTConfig, MemoryConfig, RelicConfig, SamplerConfig
from relic.models.autoencoder import build_vae
from relic.models.dit import DiT


def tiny_cfg(memory: MemoryConfig, frames_per_block: int = 1, context_noise: float = 0.0) -> RelicConfig:
    return RelicConfig(
        name="test", height=32, width=48, frames_per_block=frames_per_block,
        dit=DiTConfig(dim=32, ffn_dim=64, text_dim=16, num_heads=2, num_layers=2, freq_dim=32,
                      action_hidden=16, pose_hidden=16),
        memory=memory, sampler=SamplerConfig(context_noise=context_noise), text_len=4)


def random_dit(cfg: RelicConfig, seed: int = 0) -> DiT:
    """A DiT with EVERY parameter random (the action/pose encoders are zero at init otherwise)."""
    torch.manual_seed(seed)
    dit = DiT(cfg.dit).eval()
    with torch.no_grad():
        for p in dit.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
    return dit


def stream_inputs(cfg: RelicConfig, blocks: int, seed: int = 0):
    """Noises, re-noises, per-block actions and poses for a deterministic rollout."""
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    f = cfg.frames_per_block
    h, w = cfg.latent_hw
    frames = 1 + 4 * f * blocks
    acts = np.zeros((frames, 13))
    acts[np.arange(frames), rng.integers(0, 12, frames)] = rng.uniform(0.5, 2.0, frames)
    acts[0] = 0
    acts[0, 12] = 1
    R, P = integrate(acts)
    steps = len(cfg.sampler.timesteps)
    out = []
    for k in range(blocks):
        lat = np.arange(1 + k * f, 1 + (k + 1) * f)            # latent indices of the block
        vid = slice(4 * lat[0] - 3, 4 * lat[-1] + 1)
        out.append(dict(noise=torch.randn(1, 16, f, h, w, generator=g),
                        renoise=[torch.randn(1, 16, f, h, w, generator=g) for _ in range(steps - 1)],
                        ctx_eps=torch.randn(1, 16, f, h, w, generator=g),
                        actions=acts[vid], R=R[4 * lat], P=P[4 * lat]))
    z0 = torch.randn(1, 16, 1, h, w, generator=g)
    text = torch.randn(1, 4, cfg.dit.text_dim, generator=g)
    return z0, text, out, acts, R, P


@pytest.fixture
def tiny():
    """Helpers: tiny.cfg(memory, frames_per_block, context_noise), tiny.dit(cfg, seed), tiny.inputs(cfg, blocks, seed)."""
    return SimpleNamespace(cfg=tiny_cfg, dit=random_dit, inputs=stream_inputs)


@pytest.fixture
def model_dir(tiny, tmp_path):
    """A tiny random model directory (config.json + safetensors) with the offline MiniLM text width."""
    import dataclasses

    from relic.config import TinyDecoderConfig, VAEConfig
    from relic.models.tiny_decoder import TinyDecoder
    from relic.runtime.stream import save_model_dir

    cfg = tiny.cfg(MemoryConfig(window=2, dtype="bf16"))
    cfg = dataclasses.replace(cfg, dit=dataclasses.replace(cfg.dit, text_dim=384), text_len=8,
                              vae=VAEConfig(base_dim=8, dim_mult=(1, 2, 2, 2), num_res_blocks=1),
                              tiny_decoder=TinyDecoderConfig(channels=8))
    save_model_dir(tmp_path / "model", cfg, DiT(cfg.dit), build_vae(cfg.vae), TinyDecoder(cfg.tiny_decoder))
    return tmp_path / "model"
