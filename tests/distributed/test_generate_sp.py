"""`relic generate` under torchrun (2 gloo ranks, one Ulysses group): rank 0 writes the video, every rank
reports success and leaves the process group cleanly (exit status 0, no abort at exit)."""

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from torchrun import run_torchrun  # noqa: E402


def tiny_model_dir(out: Path) -> Path:
    from relic.config import DiTConfig, MemoryConfig, RelicConfig, TinyDecoderConfig, VAEConfig
    from relic.models.autoencoder import build_vae
    from relic.models.dit import DiT
    from relic.models.tiny_decoder import TinyDecoder
    from relic.runtime.stream import save_model_dir

    cfg = RelicConfig(name="sp-test", height=32, width=48, frames_per_block=1, text_len=8,
                      dit=DiTConfig(dim=32, ffn_dim=64, text_dim=384, num_heads=2, num_layers=2, freq_dim=32,
                                    action_hidden=16, pose_hidden=16),
                      memory=MemoryConfig(window=2, dtype="fp32"),
                      vae=VAEConfig(base_dim=8, dim_mult=(1, 2, 2, 2), num_res_blocks=1),
                      tiny_decoder=TinyDecoderConfig(channels=8))
    save_model_dir(out, cfg, DiT(cfg.dit), build_vae(cfg.vae), TinyDecoder(cfg.tiny_decoder))
    return out


@pytest.mark.slow
def test_generate_under_torchrun_writes_once_and_exits_cleanly(tmp_path):
    from relic.video import read_video

    model = tiny_model_dir(tmp_path / "model")
    image = tmp_path / "in.png"
    cv2.imwrite(str(image), (np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8))
    out = tmp_path / "out.mp4"
    relic = Path(sys.executable).with_name("relic")
    stdout = run_torchrun(relic, "generate", "--model", str(model), "--image", str(image), "--prompt", "a hall",
                          "--actions", "w*0.5s", "--out", str(out), "--precision", "fp32", no_python=True,
                          timeout=600)
    assert stdout.count("wrote 9 frames") == 1                 # rank 0 only
    assert read_video(out).shape == (9, 32, 48, 3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.mp4")]   # no temporary left
