"""Parity of our DiT with diffusers' WanTransformer3DModel (tiny random config, fp32, offline)."""

from __future__ import annotations

import json

import pytest
import torch

from relic.config import DiTConfig
from relic.models.dit import DiT
from relic.models.weights import (dit_config_from_json, dit_state_from_diffusers, dit_state_to_diffusers,
                                  save_pretrained)

diffusers = pytest.importorskip("diffusers")
from diffusers import WanTransformer3DModel  # noqa: E402

TOL = 1e-5


def _diffusers_model(seed: int = 0) -> WanTransformer3DModel:
    torch.manual_seed(seed)
    m = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=24, in_channels=4,
                              out_channels=4, text_dim=32, freq_dim=64, ffn_dim=80, num_layers=2,
                              cross_attn_norm=True, eps=1e-6, rope_max_seq_len=64).eval()
    with torch.no_grad():  # every parameter random (norm weights are ones, biases of some layers small)
        for p in m.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return m


def _ours_from(m: WanTransformer3DModel) -> DiT:
    cfg = dit_config_from_json(dict(m.config), "diffusers config")
    ours = DiT(cfg).eval()
    sd = dit_state_from_diffusers(m.state_dict())
    missing, unexpected = ours.load_state_dict(sd, strict=False)
    assert not unexpected
    assert all(k.startswith(("action_encoder.", "pose_encoder.")) for k in missing)
    return ours


def _inputs(seed: int = 1, b: int = 2, f: int = 3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, 4, f, 6, 8, generator=g)
    text = torch.randn(b, 5, 32, generator=g)
    return x, text


def test_config_translation():
    m = _diffusers_model()
    cfg = dit_config_from_json(dict(m.config))
    assert (cfg.dim, cfg.num_heads, cfg.num_layers, cfg.ffn_dim, cfg.text_dim, cfg.freq_dim) == (48, 2, 2, 80, 32, 64)


def test_parity_with_diffusers_bidirectional():
    m = _diffusers_model()
    ours = _ours_from(m)
    x, text = _inputs()
    t = torch.tensor([999.0, 321.5])
    with torch.no_grad():
        ref = m(x, t, text, return_dict=False)[0]
        out = ours(x, t, text)
    assert out.shape == ref.shape == x.shape
    assert (out - ref).abs().max().item() <= TOL
    assert ref.abs().mean().item() > 0.1  # a real signal, not a degenerate zero output


def test_parity_with_diffusers_per_frame_timesteps():
    """Per-frame timesteps (b f) equal diffusers' per-token timestep mode with each frame's value repeated."""
    m = _diffusers_model(seed=3)
    ours = _ours_from(m)
    x, text = _inputs(seed=4)
    b, _, f, H, W = x.shape
    t = torch.tensor([[0.0, 500.0, 980.0], [250.0, 250.0, 10.0]])
    tokens_per_frame = (H // 2) * (W // 2)
    t_tok = t.repeat_interleave(tokens_per_frame, dim=1)
    with torch.no_grad():
        ref = m(x, t_tok, text, return_dict=False)[0]
        out = ours(x, t, text)
    assert (out - ref).abs().max().item() <= TOL
    # and the frames really differ in their modulation: a constant timestep gives another result
    with torch.no_grad():
        other = ours(x, torch.full((b, f), 500.0), text)
    assert (other - out).abs().max().item() > 1e-3


def test_zero_init_encoders_keep_wan_output():
    m = _diffusers_model(seed=5)
    ours = _ours_from(m)
    x, text = _inputs(seed=6, f=2)
    g = torch.Generator().manual_seed(0)
    actions = torch.rand(2, 5, 13, generator=g)
    R = torch.linalg.qr(torch.randn(2, 2, 3, 3, generator=g)).Q
    P = torch.randn(2, 2, 3, generator=g)
    with torch.no_grad():
        ref = m(x, torch.tensor([500.0, 20.0]), text, return_dict=False)[0]
        plain = ours(x, torch.tensor([500.0, 20.0]), text)
        cond = ours(x, torch.tensor([500.0, 20.0]), text, None, actions, R, P)
    assert torch.equal(plain, cond)
    assert (cond - ref).abs().max().item() <= TOL


def test_diffusers_directory_loads_with_from_pretrained(tmp_path):
    m = _diffusers_model(seed=7)
    m.save_pretrained(tmp_path / "transformer")  # diffusers' own writer: config.json + safetensors
    ours = DiT.from_pretrained(tmp_path / "transformer")
    assert sorted({k.split(".")[0] for k in ours.load_report.new}) == ["action_encoder", "pose_encoder"]
    x, text = _inputs(seed=8)
    with torch.no_grad():
        assert (ours(x, 700.0, text) - m(x, torch.tensor([700.0, 700.0]), text, return_dict=False)[0]).abs().max() <= TOL


def test_diffusers_key_roundtrip_is_exact():
    """diffusers -> ours -> diffusers gives back every key and tensor, and the mapping covers all keys."""
    m = _diffusers_model(seed=9)
    sd = m.state_dict()
    back = dit_state_to_diffusers(dit_state_from_diffusers(sd))
    assert set(back) == set(sd)
    assert all(torch.equal(back[k], sd[k]) for k in sd)


def test_original_wan_format_roundtrip(tmp_path):
    """Ours -> an original-Wan directory (WanModel config.json, original key names) -> ours: same outputs."""
    cfg = DiTConfig(dim=48, ffn_dim=80, freq_dim=64, text_dim=32, num_heads=2, num_layers=2, in_channels=4,
                    out_channels=4)
    torch.manual_seed(0)
    ours = DiT(cfg).eval()
    wan_sd = {k: v for k, v in ours.state_dict().items() if not k.startswith(("action_encoder", "pose_encoder"))}
    save_pretrained(wan_sd, tmp_path, {"_class_name": "WanModel", "model_type": "t2v", "dim": 48, "ffn_dim": 80,
                                      "freq_dim": 64, "in_dim": 4, "out_dim": 4, "num_heads": 2, "num_layers": 2,
                                      "text_dim": 32, "eps": 1e-6, "text_len": 5},
                    filename="diffusion_pytorch_model.safetensors")
    assert "blocks.0.self_attn.q.weight" in wan_sd and "blocks.1.norm3.weight" in wan_sd
    loaded = DiT.from_pretrained(tmp_path)
    x, text = _inputs(seed=10)
    with torch.no_grad():
        assert torch.equal(loaded(x, 300.0, text), ours(x, 300.0, text))
    # and the diffusers model accepts our weights under its names, strictly
    m = _diffusers_model()
    m.load_state_dict(dit_state_to_diffusers(ours.state_dict()), strict=True)
    with torch.no_grad():
        assert (m(x, torch.tensor([300.0, 300.0]), text, return_dict=False)[0] - ours(x, 300.0, text)).abs().max() <= TOL
    json.loads((tmp_path / "config.json").read_text())
