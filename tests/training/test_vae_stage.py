"""Stage 0 with relic-tiny's pooled autoencoder: it learns, the detail terms see blur, latent noise is relative."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from relic.config import VAEConfig
from relic.models.pooled_vae import PooledVAE
from relic.training.losses import detail_loss
from relic.training.vae import VAELossConfig, vae_loss


def _texture(t=9, h=32, w=32, seed=0) -> torch.Tensor:
    """A sharp coloured checker that drifts by a pixel per frame: (1 3 t h w) in [-1, 1]."""
    rng = np.random.default_rng(seed)
    colours = torch.from_numpy(rng.uniform(-1, 1, (3, 4, 4))).float()
    tile = colours.repeat_interleave(4, 1).repeat_interleave(4, 2).repeat(1, 2, 2)      # (3 32 32)
    return torch.stack([torch.roll(tile, i, dims=2) for i in range(t)], dim=1)[None]


def test_pooled_autoencoder_learns_detail_on_fixed_data():
    torch.manual_seed(0)
    vae = PooledVAE(VAEConfig(arch="pooled", z_dim=16, base_dim=8))
    x = _texture()
    cfg = VAELossConfig(kl=0.0, sample_posterior=False, edge=0.5, detail=1.0)
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    losses = []
    for _ in range(50):
        loss, _ = vae_loss(vae, x, cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0], losses[::10]


def test_detail_terms_are_zero_on_the_target_and_see_blur():
    x = _texture()
    blurred = F.avg_pool3d(x, (1, 3, 3), stride=1, padding=(0, 1, 1), count_include_pad=False)
    edge0, energy0 = detail_loss(x, x)
    assert float(edge0) == 0.0 and float(energy0) < 1e-6
    edge, energy = detail_loss(blurred, x)
    assert float(edge) > 0.05 and float(energy) > 0.05


def test_latent_noise_is_relative_to_the_latent_spread():
    """Scaling the learned channels by 100 scales the added noise with them: SNR-free robustness training."""
    torch.manual_seed(0)
    vae = PooledVAE(VAEConfig(arch="pooled", z_dim=16, base_dim=4)).eval()
    seen = []
    real_decode = vae.decode

    def spy(z, clamp=True):
        seen.append(z.detach().clone())
        return real_decode(z, clamp)

    vae.decode = spy
    x = _texture(seed=3)
    cfg = VAELossConfig(kl=0.0, sample_posterior=False, latent_noise=0.5)
    with torch.no_grad():
        clean, _ = vae.encode(x)
        vae_loss(vae, x, cfg, torch.Generator().manual_seed(1))
        vae.encoder.out.weight.mul_(100.0)
        vae.encoder.out.bias.mul_(100.0)
        big, _ = vae.encode(x)
        vae_loss(vae, x, cfg, torch.Generator().manual_seed(1))
    d_small, d_big = (seen[0] - clean)[:, 6:], (seen[1] - big)[:, 6:]
    assert float(d_small.abs().max()) > 0
    torch.testing.assert_close(d_big, 100.0 * d_small, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("frames", [9, 65])
def test_latent_statistics_use_stat_frames_windows(frames, monkeypatch):
    """eval.stat_frames sets the window length of the exported normalization statistics (>= 41 in the config)."""
    from relic.training.vae import VAEStageConfig, VAETask

    cfg = VAEStageConfig(model={"vae": {"arch": "pooled", "base_dim": 4}})
    cfg.eval.stat_frames = frames
    task = VAETask(cfg)
    drawn = []

    class Data:
        def draw(self, rng, batch, n, crop, multiple):
            drawn.append(n)
            return np.zeros((batch, n, 16, 16, 3), np.uint8)

    task.data = Data()
    vae = PooledVAE(VAEConfig(arch="pooled", z_dim=16, base_dim=4)).eval()
    mean, std = task.latent_stats(vae, 2, np.random.default_rng(0))
    assert drawn == [frames, frames] and len(mean) == len(std) == 16


def test_tiny_decoder_on_the_colour_base_learns_on_fixed_data():
    from relic.config import TinyDecoderConfig
    from relic.models.tiny_decoder import TinyDecoder
    from relic.training.losses import ssim

    torch.manual_seed(0)
    vae = PooledVAE(VAEConfig(arch="pooled", z_dim=16, base_dim=4)).eval()
    x = _texture()
    with torch.no_grad():
        z, _ = vae.encode(x)
    tiny = TinyDecoder(TinyDecoderConfig(z_dim=16, channels=16, base_mean=(0.0,) * 6, base_std=(1.0,) * 6))
    opt = torch.optim.Adam(tiny.parameters(), lr=3e-3)
    losses = []
    for _ in range(50):
        out = tiny(z, clamp=False)
        loss = (out - x).abs().mean() + 0.5 * (1 - ssim(out, x))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0], losses[::10]
