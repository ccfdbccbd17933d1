"""StreamingSession (the engine API), model directories and `relic generate` on tiny random models."""

import dataclasses

import numpy as np
import pytest
import torch

import relic.precision
from relic.camera import integrate, parse_action_script
from relic.config import MemoryConfig, TinyDecoderConfig, VAEConfig
from relic.runtime.stream import StreamingSession, load_model_dir, save_model_dir


class FakeText:
    def __init__(self, dim):
        self.dim = dim

    def encode(self, prompts):
        g = torch.Generator().manual_seed(len(prompts[0]))
        return torch.randn(len(prompts), 4, self.dim, generator=g), torch.ones(len(prompts), 4, dtype=torch.bool)


@pytest.fixture
def small_cfg(tiny):
    cfg = tiny.cfg(MemoryConfig(window=2, schedule=(1, 2), dtype="bf16", token_budget=40))
    return dataclasses.replace(cfg, vae=VAEConfig(base_dim=8, dim_mult=(1, 2, 2, 2), num_res_blocks=1),
                               tiny_decoder=TinyDecoderConfig(channels=8))


def session(cfg, **kw):
    kw.setdefault("precision", "fp32")
    return StreamingSession.from_pretrained(cfg.name, config=cfg, text_encoder=FakeText(cfg.dit.text_dim), **kw)


def image():
    return (np.random.default_rng(0).random((50, 90, 3)) * 255).astype(np.uint8)


def test_start_step_state(small_cfg):
    s = session(small_cfg, gamma=2.0)
    first = s.start(image(), "a room", seed=1)
    assert first.shape == (1, 32, 48, 3) and first.dtype == np.uint8
    acts = parse_action_script("w*4")
    frames = s.step(acts)
    assert frames.shape == (4, 32, 48, 3) and frames.dtype == np.uint8
    frames = s.step({"left": True, "d": True})
    assert frames.shape == (4, 32, 48, 3)
    st = s.state
    assert st["frames"] == 9 and st["latents"] == 3
    assert st["R"].shape == (9, 3, 3) and st["P"].shape == (9, 3)
    # poses = eq. 3 on the actions with γ
    all_acts = np.concatenate([st["actions"][:1], acts, np.repeat(s.keymap.action_from_keys({"left": True, "d": True})[None], 4, 0)])
    R, P = integrate(all_acts, 1.0, 2.0)
    assert np.allclose(st["R"], R) and np.allclose(st["P"], P)
    assert st["P"][4, 2] == pytest.approx(8.0)                # 4 frames of dolly-in at γ = 2
    assert st["memory"]["tokens"] <= 40
    assert len(st["timings"]) == 3
    s.reset()
    assert s.state["frames"] == 0
    with pytest.raises(RuntimeError):
        s.step(acts)


def test_deterministic_and_memory_budget(small_cfg):
    a, b = session(small_cfg), session(small_cfg)
    a.start(image(), "x", seed=3)
    b.start(image(), "x", seed=3)
    for k in range(5):
        fa, fb = a.step({"right": True}), b.step({"right": True})
        assert np.array_equal(fa, fb)
        assert a.state["memory"]["tokens"] <= 40
    assert a.state["memory"]["memory_latents"] > 0


def test_bad_actions(small_cfg):
    s = session(small_cfg)
    s.start(image(), "x")
    with pytest.raises(ValueError, match="per-frame actions"):
        s.step(np.zeros((3, 13)))
    bad = np.zeros((4, 13))
    bad[1, 0] = -1
    with pytest.raises(ValueError, match="frame 1"):
        s.step(bad)
    with pytest.raises(ValueError, match="unknown key"):
        s.step({"k": True})
    with pytest.raises(ValueError):
        s.start(np.zeros((10, 10)), "x")


def test_bf16_session_close_to_fp32(small_cfg):
    """bf16 weights + bf16 cache vs fp32: same stream, frames close (a sanity bound, not equality)."""
    a, b = session(small_cfg, precision="fp32"), session(small_cfg, precision="bf16")
    a.start(image(), "x", seed=0)
    b.start(image(), "x", seed=0)
    fa, fb = a.step({"w": True}), b.step({"w": True})
    assert np.abs(fa.astype(int) - fb.astype(int)).mean() < 8


def test_model_dir_roundtrip_and_vae_decoder(small_cfg, tmp_path):
    s = session(small_cfg)
    save_model_dir(tmp_path / "m", s.cfg, s.dit, s.vae, s.tiny)
    cfg, dit, vae, tiny = load_model_dir(tmp_path / "m")
    assert cfg == s.cfg
    for (k, v), (k2, v2) in zip(s.dit.state_dict().items(), dit.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    s2 = StreamingSession.from_pretrained(tmp_path / "m", decoder="vae", precision="fp32",
                                          text_encoder=FakeText(cfg.dit.text_dim))
    s2.start(image(), "x")
    assert s2.step({"w": True}).shape == (4, 32, 48, 3)


def test_memory_config_is_public_and_resets_the_stream():
    import dataclasses

    from relic.config import relic_tiny
    from relic.runtime.stream import StreamingSession

    cfg = relic_tiny()
    cfg = dataclasses.replace(cfg, dit=dataclasses.replace(cfg.dit, num_layers=1, dim=64, ffn_dim=128, num_heads=2))
    s = StreamingSession.from_pretrained("relic-tiny", config=cfg, precision="fp32")
    assert s.memory == cfg.memory
    off = dataclasses.replace(s.memory, archive_latents=0)
    s.memory = off
    assert s.student.memory_cfg is off and s.cache is None
    with pytest.raises(TypeError):
        s.memory = {"window": 2}


@pytest.mark.parametrize("native,expect,dtype", [(True, "bf16", torch.bfloat16), (False, "fp32", torch.float32)])
def test_default_precision_auto_is_resolved(monkeypatch, small_cfg, native, expect, dtype):
    """The session's default precision is auto: it reports the resolved one and stores the DiT accordingly."""
    monkeypatch.setattr(relic.precision, "cpu_bf16_kernels", lambda: native)
    s = StreamingSession.from_pretrained(small_cfg.name, config=small_cfg, text_encoder=FakeText(small_cfg.dit.text_dim))
    assert s.precision == expect
    s.start(image(), "x", seed=0)
    assert s.state["precision"] == expect
    assert next(s.dit.parameters()).dtype == dtype
