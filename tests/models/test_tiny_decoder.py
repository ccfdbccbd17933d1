"""Tiny causal decoder: frame counts, streaming == all-at-once, causality, weights I/O, benchmark."""

from __future__ import annotations

import pytest
import torch

from relic.config import TinyDecoderConfig, relic_tiny
from relic.errors import UserError
from relic.models.autoencoder import build_vae
from relic.models.tiny_decoder import TinyDecoder, benchmark_decoders
from relic.models.vae import vae_frames

CFG = TinyDecoderConfig(z_dim=4, channels=8, channel_div=(1, 1, 2, 4), mem_blocks=2)


def _model(seed: int = 0) -> TinyDecoder:
    torch.manual_seed(seed)
    return TinyDecoder(CFG).eval()


def _latents(t: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(2, 4, t, 3, 5, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_frame_count_matches_the_vae():
    m = _model()
    for t in (1, 2, 5):
        out = m(_latents(t))
        assert out.shape == (2, 3, vae_frames(t), 24, 40)
        assert out.abs().max() <= 1.0


@torch.no_grad()
def test_streaming_one_latent_at_a_time_equals_all_at_once():
    m = _model()
    z = _latents(6)
    full = m(z)
    s = m.stream()
    parts = [s.decode(z[:, :, i:i + 1]) for i in range(6)]
    assert [p.shape[2] for p in parts] == [1, 4, 4, 4, 4, 4]
    assert (torch.cat(parts, 2) - full).abs().max() <= 1e-5
    s = m.stream()                                   # uneven chunks too
    parts = [s.decode(z[:, :, :2]), s.decode(z[:, :, 2:5]), s.decode(z[:, :, 5:])]
    assert (torch.cat(parts, 2) - full).abs().max() <= 1e-5


@torch.no_grad()
def test_memory_carries_information_across_latents():
    """The memory blocks make frame t depend on earlier latents (and never on later ones)."""
    m = _model()
    z = _latents(3)
    z2 = z.clone()
    z2[:, :, 1] += 2.0
    a, b = m(z), m(z2)
    assert torch.equal(a[:, :, :1], b[:, :, :1])                 # the past is untouched
    assert (a[:, :, 5:] - b[:, :, 5:]).abs().max() > 1e-4      # latent 2's frames remember latent 1


def test_gradients_flow():
    m = TinyDecoder(CFG)
    m(_latents(2), clamp=False).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


@torch.no_grad()
def test_save_and_load(tmp_path):
    m = _model()
    m.save_pretrained(tmp_path / "tiny")
    back = TinyDecoder.from_pretrained(tmp_path / "tiny")
    assert back.config == m.config
    z = _latents(2)
    assert torch.equal(back(z), m(z))


def test_config_errors():
    with pytest.raises(UserError, match="spatial_upsample"):
        TinyDecoder(TinyDecoderConfig(spatial_upsample=6))
    with pytest.raises(UserError, match="channel_div"):
        TinyDecoder(TinyDecoderConfig(channel_div=(1, 2)))


@pytest.mark.slow
def test_benchmark_reports_both_decoders():
    cfg = relic_tiny()
    cfg.height, cfg.width = 32, 56
    r = benchmark_decoders(cfg, num_latents=1, warmup=0)
    assert r["vae_s_per_latent"] > 0 and r["tiny_s_per_latent"] > 0
    assert r["vae_gflop_per_latent"] > 5 * r["tiny_gflop_per_latent"]
    assert r["tiny_params"] < r["vae_params"]


def test_default_tiny_decoder_matches_vae_geometry():
    cfg = relic_tiny()
    assert cfg.tiny_decoder.z_dim == cfg.vae.z_dim
    tiny, vae = TinyDecoder(cfg.tiny_decoder), build_vae(cfg.vae)
    with torch.no_grad():
        z = torch.randn(1, cfg.vae.z_dim, 2, 2, 3)
        assert tiny(z).shape == vae.decode(z).shape
