"""Generic weights I/O: safetensors + config.json, key remapping, one clear error for mismatches."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from relic.config import DiTConfig, config_to_dict, relic_tiny
from relic.errors import UserError
from relic.models.dit import DiT
from relic.models.weights import (check_state_dict, load_checked, load_state, remap_state_dict,
                                  save_pretrained)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_save_and_load_roundtrip(tmp_path):
    net = _net()
    save_pretrained(net, tmp_path / "m", {"width": 4})
    sd, cfg = load_state(tmp_path / "m")
    assert cfg == {"width": 4}
    assert set(sd) == set(net.state_dict())
    assert all(torch.equal(sd[k], v) for k, v in net.state_dict().items())
    assert sorted(os.listdir(tmp_path / "m")) == ["config.json", "model.safetensors"]  # no temp files left


def test_failed_save_leaves_nothing(tmp_path):
    class Bad:
        pass

    with pytest.raises(TypeError):
        save_pretrained(_net(), tmp_path, {"x": Bad()})
    # the weights were written atomically; the config failed before replacing anything
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
    assert not (tmp_path / "config.json").exists()


def test_check_state_dict_lists_every_problem_in_one_error():
    net = _net()
    sd = dict(net.state_dict())
    del sd["0.bias"]
    sd["2.weight"] = torch.zeros(5, 4)
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(UserError) as err:
        check_state_dict(net, sd, "ckpt.safetensors")
    msg = str(err.value)
    assert msg.startswith("ckpt.safetensors: ")
    assert "1 missing key(s): 0.bias" in msg
    assert "1 unexpected key(s): extra.weight" in msg
    assert "2.weight (5, 4) vs model (2, 4)" in msg
    assert "\n" not in msg


def test_new_ok_keys_are_reported_not_missing():
    net = _net()
    sd = {k: v for k, v in net.state_dict().items() if not k.startswith("2.")}
    report = load_checked(_net(), sd, "x", new_ok=[r"2\."])
    assert report.new == ["2.weight", "2.bias"]
    assert "new, zero-init: 2.weight, 2.bias" in report.summary()


def test_remap_rules_first_match_drop_and_collision():
    sd = {"a.1": torch.zeros(1), "b.2": torch.ones(1), "drop.me": torch.zeros(1), "keep": torch.zeros(1)}
    out = remap_state_dict(sd, [(r"a\.(\d)", r"x.\1"), (r"b\.(\d)", r"y.\1"), (r"drop\..*", None)])
    assert sorted(out) == ["keep", "x.1", "y.2"]
    with pytest.raises(UserError, match="both map to"):
        remap_state_dict(sd, [(r"(a|b)\.\d", r"same")])


@pytest.mark.parametrize("name", ["model.bin", "model.pt", "model.ckpt"])
def test_pickle_checkpoints_are_refused(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(UserError, match="pickle"):
        load_state(tmp_path)
    with pytest.raises(UserError, match="pickle"):
        load_state(tmp_path / name)


def test_sharded_index_and_errors(tmp_path):
    save_file({"a": torch.zeros(2)}, str(tmp_path / "w-00001-of-00002.safetensors"))
    save_file({"b": torch.ones(3)}, str(tmp_path / "w-00002-of-00002.safetensors"))
    (tmp_path / "w.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"a": "w-00001-of-00002.safetensors", "b": "w-00002-of-00002.safetensors"}}))
    sd, cfg = load_state(tmp_path)
    assert sorted(sd) == ["a", "b"] and cfg is None
    sd, _ = load_state(tmp_path, "w.safetensors")
    assert sorted(sd) == ["a", "b"]
    with pytest.raises(UserError, match="no such file"):
        load_state(tmp_path / "nope")
    (tmp_path / "broken.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="broken.safetensors"):
        load_state(tmp_path / "broken.safetensors")


def test_dit_save_and_from_pretrained(tmp_path):
    cfg = DiTConfig(dim=48, ffn_dim=80, freq_dim=64, text_dim=32, num_heads=2, num_layers=2, in_channels=4,
                    out_channels=4, action_hidden=16, pose_hidden=16, rope_scaling="ntk", rope_scale=2.0)
    torch.manual_seed(0)
    m = DiT(cfg).eval()
    with torch.no_grad():
        for p in m.action_encoder.proj.parameters():
            p.normal_()
    m.save_pretrained(tmp_path)
    loaded = DiT.from_pretrained(tmp_path)
    assert loaded.cfg == cfg and loaded.load_report.new == []
    x, text, a = torch.randn(1, 4, 2, 4, 4), torch.randn(1, 3, 32), torch.rand(1, 5, 13)
    with torch.no_grad():
        assert torch.equal(loaded(x, 10.0, text, actions=a), m(x, 10.0, text, actions=a))


def test_dit_from_pretrained_reads_a_relic_config_and_reports_shape_errors(tmp_path):
    rc = relic_tiny()
    rc.dit = DiTConfig(dim=48, ffn_dim=80, freq_dim=64, text_dim=32, num_heads=2, num_layers=1, in_channels=4,
                       out_channels=4)
    m = DiT(rc.dit)
    save_pretrained(m, tmp_path, config_to_dict(rc))
    assert DiT.from_pretrained(tmp_path).cfg == rc.dit
    bad = dict(m.state_dict())
    bad["blocks.0.ffn.0.weight"] = torch.zeros(81, 48)
    del bad["head.modulation"]
    save_pretrained(bad, tmp_path, config_to_dict(rc))
    with pytest.raises(UserError) as err:
        DiT.from_pretrained(tmp_path)
    assert "missing key(s): head.modulation" in str(err.value) and "blocks.0.ffn.0.weight (81, 48)" in str(err.value)


def test_dit_bad_config_is_a_user_error(tmp_path):
    save_pretrained({}, tmp_path, {"dim": 48, "num_heads": 2, "num_layers": 1, "rope_scaling": "yarn"})
    with pytest.raises(UserError, match="config.json: bad DiT config: unknown rope_scaling 'yarn'"):
        DiT.from_pretrained(tmp_path)
