"""`relic train package`: stage exports -> one model directory that the runtime loads, exactly."""

import json

import numpy as np
import pytest
import torch

from relic.cli import main
from relic.config import get_preset
from relic.models.dit import DiT
from relic.models.tiny_decoder import TinyDecoder
from relic.models.autoencoder import build_vae
from relic.runtime.stream import StreamingSession, load_model_dir


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    torch.manual_seed(0)
    cfg = get_preset("relic-tiny")
    root = tmp_path_factory.mktemp("exports")
    DiT(cfg.dit).save_pretrained(root / "dit")
    build_vae(cfg.vae).save_pretrained(root / "vae")
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


def test_package_carries_the_students_sampler_settings(exports, tmp_path, capsys):
    """--sampler: the runtime samples as the student was trained (e.g. its context noise); bad keys: one line."""
    out = tmp_path / "cn"
    assert main(["train", "package", "--dit", str(exports / "dit"), "--vae", str(exports / "vae"),
                 "--sampler", "context_noise=50", "--out", str(out)]) == 0
    cfg = load_model_dir(out, need_tiny=False)[0]
    assert cfg.sampler.context_noise == 50 and cfg.sampler.shift == get_preset("relic-tiny").sampler.shift
    assert json.loads((out / "provenance.json").read_text())["sampler"] == {"context_noise": 50}
    capsys.readouterr()
    assert main(["train", "package", "--dit", str(exports / "dit"), "--vae", str(exports / "vae"),
                 "--sampler", "no_such_field=1", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no_such_field" in err and len(err.splitlines()) == 1 and not (tmp_path / "bad").exists()


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


def test_package_takes_networks_from_a_model_dir(exports, tmp_path):
    """A new student shipped with the decoders of an existing model directory: those come over unchanged."""
    first = tmp_path / "first"
    assert main(["train", "package", "--dit", str(exports / "dit"), "--vae", str(exports / "vae"),
                 "--tiny-decoder", str(exports / "tiny"), "--out", str(first)]) == 0
    torch.manual_seed(1)
    DiT(get_preset("relic-tiny").dit).save_pretrained(tmp_path / "student")
    second = tmp_path / "second"
    assert main(["train", "package", "--dit", str(tmp_path / "student"), "--vae", str(first),
                 "--tiny-decoder", str(first), "--out", str(second)]) == 0
    _, dit1, vae1, tiny1 = load_model_dir(first)
    _, dit2, vae2, tiny2 = load_model_dir(second)
    for a, b in ((vae1, vae2), (tiny1, tiny2)):
        for k, v in a.state_dict().items():
            torch.testing.assert_close(b.state_dict()[k], v, rtol=0, atol=0)
    new = DiT.from_pretrained(tmp_path / "student").state_dict()
    for k, v in dit2.state_dict().items():
        torch.testing.assert_close(v, new[k].to(torch.bfloat16).to(v.dtype), rtol=0, atol=0)
    assert not torch.equal(dit1.state_dict()["head.head.weight"], dit2.state_dict()["head.head.weight"])
    third = tmp_path / "third"                     # the DiT can come from a model directory as well
    assert main(["train", "package", "--dit", str(second), "--vae", str(first), "--out", str(third)]) == 0
    _, dit3, _, _ = load_model_dir(third, need_tiny=False)
    for k, v in dit2.state_dict().items():
        torch.testing.assert_close(dit3.state_dict()[k], v, rtol=0, atol=0)


def test_package_model_dir_without_tiny_decoder(exports, tmp_path, capsys):
    model = tmp_path / "model"
    assert main(["train", "package", "--dit", str(exports / "dit"), "--vae", str(exports / "vae"),
                 "--out", str(model)]) == 0
    capsys.readouterr()
    assert main(["train", "package", "--dit", str(exports / "dit"), "--vae", str(model),
                 "--tiny-decoder", str(model), "--out", str(tmp_path / "m2")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no tiny_decoder.safetensors" in err and len(err.splitlines()) == 1
