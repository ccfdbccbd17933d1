"""Decoder fine-tunes: the VAE's decoder alone (``decoder_only``) and the tiny decoder against the frames."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from relic.cli import main

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke"


def _vae(tmp_path):
    """A toy VAE directory with a non-trivial latent normalization."""
    from relic.config import VAEConfig
    from relic.models.vae import WanVAE

    torch.manual_seed(0)
    cfg = VAEConfig(z_dim=4, base_dim=8, dim_mult=(1, 2, 2, 2), num_res_blocks=1,
                    latents_mean=(0.1, -0.2, 0.3, 0.0), latents_std=(0.5, 1.5, 2.0, 1.0))
    vae = WanVAE(cfg)
    vae.save_pretrained(tmp_path / "vae0")
    return tmp_path / "vae0"


def _common(clips, out):
    return [f"data.clips={clips}", "data.holdout=1", "data.frames=5", "data.crop=[32,32]", "data.batch_size=2",
            "eval.frames=5", "optim.lr=1e-2", "optim.warmup_steps=0", "loop.steps=3", "loop.ema_decay=null",
            "loop.progress=false", "loop.ckpt_every=3", f"out={out}"]


@pytest.mark.slow
def test_vae_decoder_only_keeps_the_latent_space(tmp_path, synthetic_clips):
    from relic.models.vae import WanVAE

    init = _vae(tmp_path)
    out = tmp_path / "ft"
    assert main(["train", "vae", "--config", str(SMOKE / "vae.yaml"), *_common(synthetic_clips, out),
                 f"init={init}", "decoder_only=true", "model={}"]) == 0
    a, b = WanVAE.from_pretrained(init), WanVAE.from_pretrained(out / "final")
    assert b.config.latents_mean == a.config.latents_mean and b.config.latents_std == a.config.latents_std
    sa, sb = a.state_dict(), b.state_dict()
    frozen = [k for k in sa if k.split(".")[0] in ("encoder", "quant_conv")]
    trained = [k for k in sa if k.split(".")[0] in ("decoder", "post_quant_conv")]
    assert frozen and all(torch.equal(sa[k], sb[k]) for k in frozen)
    assert any(not torch.equal(sa[k], sb[k]) for k in trained)
    x = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(a.encode(x)[0], b.encode(x)[0])              # same normalized latents


def test_vae_decoder_only_needs_an_init(tmp_path, capsys):
    assert main(["train", "vae", "--config", str(SMOKE / "vae.yaml"), "decoder_only=true",
                 f"out={tmp_path / 'x'}"]) != 0
    assert "init" in capsys.readouterr().err


def test_tiny_decoder_target_is_checked(tmp_path, capsys):
    assert main(["train", "tiny-decoder", "--config", str(SMOKE / "tiny_decoder.yaml"), "loss.target=frames",
                 f"out={tmp_path / 'x'}"]) != 0
    assert "loss.target" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["vae", "gt"])
def test_tiny_decoder_learns_its_target(tmp_path, synthetic_clips, target, monkeypatch):
    """One step's loss is measured against the VAE decoder's frames or the frames themselves."""
    from relic.training import tiny_decoder as td
    from relic.training.frames import to_video

    seen = {}
    real_ssim = td.ssim

    def spy(out, ref):
        seen.setdefault("ref", ref.detach().clone())                  # the first training step
        return real_ssim(out, ref)

    monkeypatch.setattr(td, "ssim", spy)
    drawn = {}
    real_targets = td.TinyDecoderTask.targets

    def targets(self, frames, trainer, target="vae"):
        z, ref = real_targets(self, frames, trainer, target)
        if "frames" not in drawn:                                     # the first training step (not the eval)
            with trainer.autocast():
                vae = self.vae.decode(self.vae.encode(to_video(frames))[0]).float()
            drawn.update(frames=frames, vae=vae, target=target)
        return z, ref

    monkeypatch.setattr(td.TinyDecoderTask, "targets", targets)
    init = _vae(tmp_path)
    out = tmp_path / "tiny"
    assert main(["train", "tiny-decoder", "--config", str(SMOKE / "tiny_decoder.yaml"),
                 *_common(synthetic_clips, out), f"vae={init}", f"loss.target={target}", "loop.steps=1",
                 "model={tiny_decoder: {channels: 8, z_dim: 4}}"]) == 0
    assert drawn["target"] == target
    want = to_video(drawn["frames"]).float() if target == "gt" else drawn["vae"]
    assert torch.equal(seen["ref"], want)
    assert not torch.equal(drawn["vae"], to_video(drawn["frames"]).float())     # the two cases differ


def test_beyond_window_scores_only_the_frames_past_the_window():
    import numpy as np

    from relic.training.vae import beyond_window, video_psnr

    rng = np.random.default_rng(0)
    ref = rng.integers(0, 256, size=(9, 8, 8, 3), dtype=np.uint8)
    dec = ref.copy()
    dec[5:] = np.clip(dec[5:].astype(int) + 10, 0, 255).astype(np.uint8)     # only the late frames are off
    assert np.isinf(video_psnr(dec[:5], ref[:5]))
    got = beyond_window([(dec, ref)], 5)
    assert got == pytest.approx(video_psnr(dec[5:], ref[5:])) and np.isfinite(got)
    short = (ref[:5], ref[:5])                                         # no frame past the window: left out
    assert beyond_window([(dec, ref), short], 5) == pytest.approx(got)
    assert beyond_window([short], 5) is None


@pytest.mark.slow
@pytest.mark.parametrize("eval_frames", [5, 9])
def test_vae_eval_reports_the_frames_past_the_training_window(tmp_path, synthetic_clips, eval_frames):
    import json

    out = tmp_path / "vae"
    assert main(["train", "vae", "--config", str(SMOKE / "vae.yaml"), *_common(synthetic_clips, out),
                 "loop.steps=1", f"eval.frames={eval_frames}"]) == 0
    scores = json.loads((out / "eval.json").read_text())
    assert ("psnr_beyond_window" in scores) == (eval_frames > 5)
