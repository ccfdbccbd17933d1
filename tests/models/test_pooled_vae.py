"""relic-tiny's colour-pooled autoencoder: Wan's latent contract, exact streaming, causality, the colour base."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from einops import rearrange

from relic.config import TinyDecoderConfig, VAEConfig, relic_tiny
from relic.errors import UserError
from relic.models.autoencoder import build_vae, load_vae
from relic.models.pooled_vae import (N_FIXED, PooledVAE, colour_base, pool_bicubic, rgb_to_ycbcr,
                                     ycbcr_to_rgb)
from relic.models.tiny_decoder import TinyDecoder
from relic.models.vae import WanVAE


def _cfg(**over) -> VAEConfig:
    return VAEConfig(**{"arch": "pooled", "z_dim": 16, "base_dim": 4, **over})


def _video(t=9, h=32, w=48, seed=2, b=2) -> torch.Tensor:
    return torch.rand(b, 3, t, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture(scope="module")
def vae() -> PooledVAE:
    """Random non-trivial weights (the zero-initialized residual convs would hide mistakes) and statistics."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    cfg = _cfg(latents_mean=tuple(torch.randn(16, generator=g).tolist()),
               latents_std=tuple((torch.rand(16, generator=g) + 0.5).tolist()))
    v = PooledVAE(cfg).eval()
    with torch.no_grad():
        for p in v.parameters():
            p.normal_(0.0, 0.1)
    return v


def test_the_preset_uses_it_and_keeps_wans_contract():
    cfg = relic_tiny()
    assert cfg.vae.arch == "pooled" and cfg.vae.z_dim == cfg.dit.in_channels == 16
    v = build_vae(cfg.vae)
    assert isinstance(v, PooledVAE) and (v.spatial_factor, v.temporal_factor) == (8, 4)
    assert isinstance(build_vae(VAEConfig(base_dim=4, z_dim=4)), WanVAE)          # the Wan presets' arch


@torch.no_grad()
def test_shapes(vae):
    x = _video(t=13)
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (2, 16, 4, 4, 6)
    assert vae.decode(mu).shape == x.shape


@torch.no_grad()
def test_pooled_channels_are_the_frames_pooled_colour(vae):
    x = _video(t=5)
    raw = vae.denormalize(vae.encode(x)[0])
    ycc = rgb_to_ycbcr(torch.nn.functional.avg_pool2d(rearrange(x, "b c t h w -> (b t) c h w"), 8))
    ycc = rearrange(ycc, "(b t) c h w -> b c t h w", b=2)
    for k in range(4):                                   # latent 1: Y of frames 1..4, chroma averaged
        torch.testing.assert_close(raw[:, k, 1], ycc[:, 0, 1 + k], atol=1e-5, rtol=0)
        torch.testing.assert_close(raw[:, k, 0], ycc[:, 0, 0], atol=1e-5, rtol=0)   # latent 0: frame 0 x4
    torch.testing.assert_close(raw[:, 4:6, 1], ycc[:, 1:3, 1:5].mean(2), atol=1e-5, rtol=0)


def test_ycbcr_round_trip():
    x = torch.rand(5, 3, 4, 4) * 2 - 1
    torch.testing.assert_close(ycbcr_to_rgb(rgb_to_ycbcr(x)), x, atol=1e-6, rtol=0)


@torch.no_grad()
def test_chunked_encode_and_decode_equal_whole_clip(vae):
    x = _video(t=17)
    mu, _ = vae.encode(x)
    enc = vae.stream_encoder()
    parts = [enc.encode(x[:, :, :1])[0], enc.encode(x[:, :, 1:9])[0], enc.encode(x[:, :, 9:13])[0],
             enc.encode(x[:, :, 13:])[0]]
    torch.testing.assert_close(torch.cat(parts, 2), mu, atol=1e-5, rtol=0)
    whole = vae.decode(mu)
    dec = vae.stream_decoder()
    frames = [dec.decode(mu[:, :, i:i + 1]) for i in range(mu.shape[2])]
    assert [f.shape[2] for f in frames] == [1, 4, 4, 4, 4]
    torch.testing.assert_close(torch.cat(frames, 2), whole, atol=1e-6, rtol=0)


def test_stream_chunk_sizes_are_checked(vae):
    enc = vae.stream_encoder()
    with pytest.raises(ValueError, match="1 \\+ 4n"):
        enc.encode(_video(t=4))
    enc.encode(_video(t=1))
    with pytest.raises(ValueError, match="4n"):
        enc.encode(_video(t=3))
    with pytest.raises(ValueError, match="empty"):
        vae.stream_decoder().decode(torch.zeros(1, 16, 0, 4, 6))


@torch.no_grad()
def test_causal(vae):
    """Changing frames 5.. changes no latent before latent 2 and no decoded frame before frame 5."""
    x = _video(t=13)
    y = x.clone()
    y[:, :, 5:] = -y[:, :, 5:]
    mx, my = vae.encode(x)[0], vae.encode(y)[0]
    assert torch.equal(mx[:, :, :2], my[:, :, :2]) and not torch.equal(mx[:, :, 2:], my[:, :, 2:])
    fx, fy = vae.decode(mx), vae.decode(my)
    assert torch.equal(fx[:, :, :5], fy[:, :, :5])


@torch.no_grad()
def test_single_image_latent_is_the_first_latent_and_a_still_video_repeats_it(vae):
    x = _video(t=9)
    img, _ = vae.encode(x[:, :, :1])
    torch.testing.assert_close(img[:, :, 0], vae.encode(x)[0][:, :, 0], atol=1e-5, rtol=0)
    still = x[:, :, :1].expand(-1, -1, 9, -1, -1)
    z = vae.encode(still)[0]
    for i in range(1, 3):
        torch.testing.assert_close(z[:, :, i], z[:, :, 0], atol=1e-5, rtol=0)


@torch.no_grad()
def test_with_a_zero_residual_the_decoder_is_the_colour_base():
    """The structure: with the residual's last conv at zero, a model decodes to the pooled colour upsampled
    (the "8x pool + bicubic" baseline), so flat colours are exact; a fresh model starts close to that."""
    v = PooledVAE(_cfg()).eval()
    flat = torch.tensor([40, 70, 200]).view(1, 3, 1, 1, 1).float().div(127.5).sub(1).expand(1, 3, 9, 32, 32)
    assert (v.decode(v.encode(flat)[0]) - flat).abs().max() < 0.25
    v.decoder.conv_out.weight.zero_()
    flat = torch.tensor([40, 70, 200]).view(1, 3, 1, 1, 1).float().div(127.5).sub(1).expand(1, 3, 9, 32, 32)
    torch.testing.assert_close(v.decode(v.encode(flat)[0]), flat, atol=1e-5, rtol=0)
    x = _video(t=1, b=1)
    torch.testing.assert_close(v.decode(v.encode(x)[0]), pool_bicubic(x), atol=1e-5, rtol=0)


@torch.no_grad()
def test_normalization_statistics_change_the_latents_not_the_reconstruction(vae):
    """The export writes statistics measured after training: they must not change what a model decodes."""
    plain = PooledVAE(dataclasses.replace(vae.config, latents_mean=None, latents_std=None)).eval()
    plain.load_state_dict(vae.state_dict())
    x = _video(t=9)
    zs, zp = vae.encode(x)[0], plain.encode(x)[0]
    assert not torch.allclose(zs, zp)
    torch.testing.assert_close(vae.denormalize(zs), zp, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(vae.decode(zs), plain.decode(zp), atol=1e-5, rtol=0)


def test_save_load_round_trip(vae, tmp_path):
    vae.save_pretrained(tmp_path / "v")
    back = load_vae(tmp_path / "v")
    assert isinstance(back, PooledVAE) and back.config == vae.config
    x = _video(t=5)
    with torch.no_grad():
        assert torch.equal(back.encode(x)[0], vae.encode(x)[0])


def test_bad_configs_are_one_line_errors():
    with pytest.raises(UserError, match="z_dim > 6"):
        PooledVAE(_cfg(z_dim=6))
    with pytest.raises(UserError, match="latents_std"):
        PooledVAE(_cfg(latents_mean=(0.0,) * 16, latents_std=(0.0,) * 16))
    with pytest.raises(UserError, match="unknown vae arch"):
        build_vae(dataclasses.replace(_cfg(), arch="nope"))


# --------------------------------------------------------------------------- the tiny decoder's colour base

def _tiny(vae: PooledVAE) -> TinyDecoder:
    c = vae.config
    return TinyDecoder(TinyDecoderConfig(z_dim=16, channels=8, base_mean=c.latents_mean[:N_FIXED],
                                         base_std=c.latents_std[:N_FIXED])).eval()


@torch.no_grad()
def test_tiny_decoder_decodes_onto_the_vae_colour_base(vae):
    z = vae.encode(_video(t=9))[0]
    raw = vae.denormalize(z)
    base = rearrange(colour_base(raw[:, :N_FIXED]), "b n k c h w -> b c (n k) h w")[:, :, 3:]
    tiny = _tiny(vae)
    tiny.conv_out.weight.zero_()
    torch.testing.assert_close(tiny(z, clamp=False), base, atol=1e-5, rtol=0)


@torch.no_grad()
def test_tiny_decoder_with_base_streams_exactly(vae):
    t = _tiny(vae)
    with torch.no_grad():
        for p in t.parameters():
            p.normal_(0.0, 0.1)
    z = vae.encode(_video(t=13))[0]
    s = t.stream()
    parts = [s.decode(z[:, :, i:i + 1]) for i in range(z.shape[2])]
    torch.testing.assert_close(torch.cat(parts, 2), t(z), atol=1e-5, rtol=0)


def test_tiny_decoder_base_config_errors():
    with pytest.raises(UserError, match="together"):
        TinyDecoder(TinyDecoderConfig(base_mean=(0.0,) * 6))
    with pytest.raises(UserError, match="6 values"):
        TinyDecoder(TinyDecoderConfig(base_mean=(0.0,) * 5, base_std=(1.0,) * 5))
