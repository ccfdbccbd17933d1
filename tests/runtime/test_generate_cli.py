"""`relic generate`: a real run on a tiny random model directory, and one-line errors (exit 2)."""

import dataclasses

import cv2
import numpy as np
import pytest

from relic.cli import main
from relic.config import DiTConfig, MemoryConfig, TinyDecoderConfig, VAEConfig
from relic.models.dit import DiT
from relic.models.tiny_decoder import TinyDecoder
from relic.models.vae import WanVAE
from relic.runtime.stream import save_model_dir
from relic.video import read_video


@pytest.fixture
def model_dir(tiny, tmp_path):
    cfg = tiny.cfg(MemoryConfig(window=2, dtype="bf16"))
    cfg = dataclasses.replace(cfg, dit=dataclasses.replace(cfg.dit, text_dim=384), text_len=8,
                              vae=VAEConfig(base_dim=8, dim_mult=(1, 2, 2, 2), num_res_blocks=1),
                              tiny_decoder=TinyDecoderConfig(channels=8))
    save_model_dir(tmp_path / "model", cfg, DiT(cfg.dit), WanVAE(cfg.vae), TinyDecoder(cfg.tiny_decoder))
    return tmp_path / "model"


@pytest.mark.slow
def test_generate_writes_mp4(model_dir, tmp_path, capsys):
    img = tmp_path / "in.png"
    cv2.imwrite(str(img), (np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8))
    out = tmp_path / "out.mp4"
    rc = main(["generate", "--image", str(img), "--prompt", "a hall", "--actions", "w*6 left*2",
               "--out", str(out), "--model", str(model_dir)])
    assert rc == 0
    video = read_video(out)
    assert video.shape == (1 + 8, 32, 48, 3)
    assert "FPS" in capsys.readouterr().out


def test_generate_bad_inputs(model_dir, tmp_path, capsys):
    img = tmp_path / "in.png"
    cv2.imwrite(str(img), np.zeros((20, 20, 3), np.uint8))
    base = ["generate", "--prompt", "x", "--out", str(tmp_path / "o.mp4"), "--model", str(model_dir)]
    assert main(base + ["--image", str(tmp_path / "missing.png"), "--actions", "w"]) == 2
    (tmp_path / "junk.png").write_bytes(b"not an image")
    assert main(base + ["--image", str(tmp_path / "junk.png"), "--actions", "w"]) == 2
    assert main(base + ["--image", str(img), "--actions", "w*4 jump"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("relic: error:") for line in err)
    assert "jump" in err[-1]
    assert not (tmp_path / "o.mp4").exists()
