"""Wan-2.1 causal VAE: parity with diffusers, key formats, streaming == all-at-once, causality, weights I/O."""

from __future__ import annotations

import pytest
import torch

from relic.config import VAEConfig
from relic.errors import UserError
from relic.models.vae import WanVAE, vae_frames, vae_latents
from relic.models.vae_convert import convert_state_dict, key_maps, load_wan_vae, vae_config_from_diffusers

diffusers = pytest.importorskip("diffusers")
from diffusers import AutoencoderKLWan  # noqa: E402
from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers  # noqa: E402

Z = 4
# Wan-2.1's exact structure (dim_mult 1 2 4 4, 2 res blocks, temporal down at levels 2 and 3), tiny widths.
TINY = dict(base_dim=4, z_dim=Z, dim_mult=[1, 2, 4, 4], num_res_blocks=2, temperal_downsample=[False, True, True])


def _stats(seed: int = 1) -> tuple[list[float], list[float]]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(Z, generator=g).tolist(), (torch.rand(Z, generator=g) + 0.5).tolist()


def _our_config(mean, std, **over) -> VAEConfig:
    return VAEConfig(z_dim=Z, base_dim=4, dim_mult=(1, 2, 4, 4), num_res_blocks=2,
                     temporal_downsample=(False, True, True), latents_mean=tuple(mean),
                     latents_std=tuple(std), **over)


@pytest.fixture(scope="module")
def pair():
    """(diffusers model, our model with converted weights, mean, std): random non-trivial weights."""
    torch.manual_seed(0)
    mean, std = _stats()
    ref = AutoencoderKLWan(**TINY, latents_mean=mean, latents_std=std).eval()
    with torch.no_grad():
        for p in ref.parameters():           # RMS gammas = 1 and zero biases would hide mapping mistakes
            p.normal_(0.0, 0.2)
    ours = WanVAE(_our_config(mean, std)).eval()
    ours.load_state_dict(convert_state_dict(ref.state_dict(), ours), strict=True)
    return ref, ours, torch.tensor(mean).view(1, -1, 1, 1, 1), torch.tensor(std).view(1, -1, 1, 1, 1)


def _video(b=2, t=9, h=32, w=48, seed=2) -> torch.Tensor:
    return torch.rand(b, 3, t, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@torch.no_grad()
def test_encode_parity_with_diffusers(pair):
    ref, ours, mean, std = pair
    x = _video()
    post = ref.encode(x).latent_dist
    mu, logvar = ours.encode(x)
    assert mu.shape == (2, Z, 3, 4, 6)
    assert (mu - (post.mean - mean) / std).abs().max() <= 1e-5
    assert (logvar - (post.logvar - 2 * std.log())).abs().max() <= 1e-5


@torch.no_grad()
def test_decode_parity_with_diffusers(pair):
    ref, ours, mean, std = pair
    z = torch.randn(2, Z, 3, 4, 6, generator=torch.Generator().manual_seed(3))
    expect = ref.decode(z * std + mean).sample
    got = ours.decode(z)
    assert got.shape == (2, 3, 9, 32, 48)
    assert expect.std() > 0.05                      # not a degenerate (all-clamped / constant) output
    assert (got - expect).abs().max() <= 1e-5


@torch.no_grad()
def test_original_wan_keys_match_diffusers_converter(pair):
    """Our original-format names, fed through diffusers' own original->diffusers converter, load strictly
    into AutoencoderKLWan and reproduce our outputs (so both key maps agree with diffusers)."""
    _, ours, mean, std = pair
    orig_map, _ = key_maps(ours)
    assert sorted(orig_map.values()) == sorted(ours.state_dict())
    inverse = {v: k for k, v in orig_map.items()}
    original_sd = {inverse[k]: t for k, t in ours.state_dict().items()}
    ref = AutoencoderKLWan(**TINY).eval()
    ref.load_state_dict(convert_wan_vae_to_diffusers(original_sd), strict=True)
    z = torch.randn(1, Z, 2, 4, 6, generator=torch.Generator().manual_seed(4))
    assert (ours.decode(z) - ref.decode(z * std + mean).sample).abs().max() <= 1e-5
    # and our loader reads the original format back
    again = WanVAE(ours.config)
    again.load_state_dict(convert_state_dict(original_sd, again), strict=True)
    assert torch.equal(again.decode(z), ours.decode(z))


def test_bad_checkpoint_lists_every_problem(pair):
    ref, ours, _, _ = pair
    sd = dict(ref.state_dict())
    del sd["decoder.up_blocks.1.resnets.0.conv_shortcut.weight"]
    sd["encoder.down_blocks.0.conv1.weight"] = torch.zeros(1, 2, 3, 3, 3)
    sd["decoder.bogus.weight"] = torch.zeros(1)
    with pytest.raises(UserError) as e:
        convert_state_dict(sd, WanVAE(ours.config), source="ckpt.safetensors")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("ckpt.safetensors:")
    assert "decoder.up.4.shortcut.weight" in msg            # missing (named in our format)
    assert "decoder.bogus.weight" in msg                     # unexpected
    assert "encoder.down.0.conv1.weight (1, 2, 3, 3, 3)" in msg   # wrong shape


@torch.no_grad()
def test_stream_decode_equals_full(pair):
    _, ours, _, _ = pair
    z = torch.randn(1, Z, 7, 4, 6, generator=torch.Generator().manual_seed(5))
    full = ours.decode(z)
    assert full.shape[2] == vae_frames(7) == 25
    for split in ([1, 2, 1, 3], [3, 4], [1] * 7):
        s = ours.stream_decoder()
        parts, i = [], 0
        for n in split:
            parts.append(s.decode(z[:, :, i:i + n]))
            i += n
        assert [p.shape[2] for p in parts] == [(1 + 4 * (n - 1)) if k == 0 else 4 * n for k, n in enumerate(split)]
        assert (torch.cat(parts, 2) - full).abs().max() <= 1e-5


@torch.no_grad()
def test_stream_encode_equals_full(pair):
    _, ours, _, _ = pair
    x = _video(b=1, t=21, h=16, w=24, seed=6)
    mu, logvar = ours.encode(x)
    assert mu.shape[2] == vae_latents(21) == 6
    for split in ([1, 4, 4, 4, 4, 4], [1, 8, 12], [5, 16]):
        s = ours.stream_encoder()
        mus, lvs, i = [], [], 0
        for n in split:
            m, lv = s.encode(x[:, :, i:i + n])
            mus.append(m)
            lvs.append(lv)
            i += n
        assert (torch.cat(mus, 2) - mu).abs().max() <= 1e-5
        assert (torch.cat(lvs, 2) - logvar).abs().max() <= 1e-5


@torch.no_grad()
def test_stream_rejects_misaligned_chunks(pair):
    _, ours, _, _ = pair
    s = ours.stream_encoder()
    with pytest.raises(ValueError, match="1 \\+ 4n"):
        s.encode(_video(b=1, t=4))
    s.encode(_video(b=1, t=1))
    with pytest.raises(ValueError, match="4n"):
        s.encode(_video(b=1, t=3))


@torch.no_grad()
def test_causal_future_frames_do_not_change_past(pair):
    _, ours, _, _ = pair
    x = _video(b=1, t=9, seed=7)
    y = x.clone()
    y[:, :, 5:] = -y[:, :, 5:]                       # change the last latent's 4 frames only
    a, _ = ours.encode(x)
    b, _ = ours.encode(y)
    assert torch.equal(a[:, :, :2], b[:, :, :2])
    assert (a[:, :, 2] - b[:, :, 2]).abs().max() > 1e-3
    z = torch.randn(1, Z, 3, 4, 6)
    z2 = z.clone()
    z2[:, :, 2] += 1.0
    fa, fb = ours.decode(z), ours.decode(z2)
    assert torch.equal(fa[:, :, :5], fb[:, :, :5]) and not torch.equal(fa[:, :, 5:], fb[:, :, 5:])


def test_forward_trains(pair):
    _, ours, _, _ = pair
    model = WanVAE(ours.config)
    model.load_state_dict(ours.state_dict())
    recon, mu, logvar = model(_video(b=1, t=5), sample_posterior=True, generator=torch.Generator().manual_seed(0))
    loss = recon.square().mean() + 1e-3 * WanVAE.kl(mu, logvar).mean()
    loss.backward()
    assert recon.shape == (1, 3, 5, 32, 48)
    assert all(p.grad is not None for p in model.decoder.parameters())


@torch.no_grad()
def test_save_and_load_pretrained(pair, tmp_path):
    _, ours, _, _ = pair
    ours.save_pretrained(tmp_path / "vae")
    back = WanVAE.from_pretrained(tmp_path / "vae")
    assert back.config == ours.config
    z = torch.randn(1, Z, 2, 4, 6)
    assert torch.equal(back.decode(z), ours.decode(z))
    assert torch.equal(load_wan_vae(tmp_path / "vae").decode(z), ours.decode(z))


@torch.no_grad()
def test_load_diffusers_directory_and_original_pth(pair, tmp_path):
    ref, ours, _, _ = pair
    ref.save_pretrained(tmp_path / "diffusers_vae")          # config.json + diffusion_pytorch_model.safetensors
    loaded = load_wan_vae(tmp_path / "diffusers_vae")
    assert loaded.config == ours.config
    z = torch.randn(1, Z, 2, 4, 6)
    assert torch.equal(loaded.decode(z), ours.decode(z))
    orig_map, _ = key_maps(ours)
    inverse = {v: k for k, v in orig_map.items()}
    torch.save({inverse[k]: t for k, t in ours.state_dict().items()}, tmp_path / "Wan2.1_VAE.pth")
    from_pth = load_wan_vae(tmp_path / "Wan2.1_VAE.pth", config=ours.config)
    assert torch.equal(from_pth.decode(z), ours.decode(z))


def test_config_errors(tmp_path):
    with pytest.raises(UserError, match="temporal_downsample"):
        WanVAE(VAEConfig(dim_mult=(1, 2), temporal_downsample=(True, True)))
    with pytest.raises(UserError, match="Wan-2.2"):
        vae_config_from_diffusers({"is_residual": True})
    with pytest.raises(UserError, match="no such file"):
        load_wan_vae(tmp_path / "nope")


def test_relic_tiny_vae_shapes():
    from relic.config import relic_tiny, wan21_1_3b
    cfg = relic_tiny()
    with pytest.raises(UserError, match="arch 'wan'"):       # relic-tiny's is the pooled autoencoder
        WanVAE(cfg.vae)
    vae = WanVAE(wan21_1_3b().vae)
    assert vae.spatial_factor == 8 and vae.temporal_factor == 4
    assert cfg.height % 8 == 0 and cfg.width % 8 == 0
    assert wan21_1_3b().vae.latents_std is not None and len(wan21_1_3b().vae.latents_std) == 16
