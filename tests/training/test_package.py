"""`relic train package`: stage exports -> one model directory that the runtime loads, exactly."""

import json

import numpy as np
import pytest
import torch

from relic.cli import main
from relic.config import get_preset
from relic.models.dit import DiT
from relic.models.tiny_decoder import TinyDecoder
from relic.models.vae import WanVAE
from relic.runtime.stream import StreamingSession, load_model_dir


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    torch.manual_seed(0)
    cfg = get_preset("relic-tiny")
    root = tmp_path_factory.mktemp("exports")
    DiT(cfg.dit).save_pretrained(root / "dit")
    WanVAE(cfg.vae).save_pretrained(root / "vae")
    TinyDecoder(cfg.tiny_decoder).save_pretrained(root / "tiny")
    return root


def test_package_writes_a_loadable_model_dir(exports, tmp_path, capsys):
    out = tmp_path / "model"
    assert main(["train", "package", "--dit", str(exports / "dit"), "--vae", str(exports / "vae"),
                 "--tiny-decoder", str(exports / "tiny"), "--memory", "archive_latents=16", "--out", str(out)]) == 0
    assert "package: wrote" in capsys.readouterr().out
    cfg, dit, vae, tiny = load_model_dir(out)
    assert cfg.memory.archive_latents == 16 and cfg.name == "relic-tiny"
    assert json.loads((out / "provenance.json").read_text())["dtype"] == "bf16"
    src = DiT.from_pretrained(exports / "dit").state_dict()
    for k, v in dit.state_dict().items():          # bf16 storage: the shipped weights are the rounded export
        torch.testing.assert_close(v, src[k].to(torch.bfloat16).to(v.dtype), rtol=0, atol=0)
    s = StreamingSession.from_pretrained(str(out))
    frame = s.start((np.random.default_rng(0).random((128, 224, 3)) * 255).astype(np.uint8), "a room")
    assert frame.shape == (1, 128, 224, 3)
    assert not list(tmp_path.glob(".model.*"))    # no temp dir left behind


def test_package_bad_input(exports, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["train", "package", "--dit", str(tmp_path / "nope"), "--vae", str(exports / "vae"),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a DiT directory" in err and len(err.splitlines()) == 1
    assert main(["train", "package", "--dit", str(exports / "dit"), "--vae", str(exports / "vae"),
                 "--memory", "archive_latents", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "must look like" in err and len(err.splitlines()) == 1
    assert not out.exists()
