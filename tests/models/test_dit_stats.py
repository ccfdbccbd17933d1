"""The param-count and FLOPs formulas of relic.models.stats against real tiny models."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from relic.config import DiTConfig, relic_tiny
from relic.models import attention as attention_mod
from relic.models.dit import DiT
from relic.models.stats import dit_flops, dit_param_count, markdown_table

CONFIGS = [
    DiTConfig(dim=48, ffn_dim=80, freq_dim=64, text_dim=32, num_heads=2, num_layers=2, in_channels=4,
              out_channels=4, action_hidden=16, pose_hidden=8),
    DiTConfig(dim=36, ffn_dim=50, freq_dim=32, text_dim=20, num_heads=3, num_layers=3, in_channels=5,
              out_channels=3, action_hidden=8, pose_hidden=12, cross_attn_norm=False),
]


@pytest.mark.parametrize("cfg", CONFIGS + [relic_tiny().dit])
def test_param_count_formula(cfg):
    m = DiT(cfg)
    counts = dit_param_count(cfg)
    assert counts["total"] == sum(p.numel() for p in m.parameters())
    assert counts["action"] == sum(p.numel() for p in m.action_encoder.parameters())
    assert counts["pose"] == sum(p.numel() for p in m.pose_encoder.parameters())


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("frames,context,prepared", [(1, 0, False), (2, 10, True), (3, 7, False)])
def test_flops_formula_matches_flop_counter(cfg, frames, context, prepared, monkeypatch):
    # FlopCounterMode does not count PyTorch's fused CPU attention kernel: use the explicit "math" backend
    monkeypatch.setattr(attention_mod, "_DEFAULT_BACKEND", "math")
    m = DiT(cfg).eval()
    hd = cfg.dim // cfg.num_heads
    x = torch.randn(1, cfg.in_channels, frames, 4, 6)
    text = torch.randn(1, 5, cfg.text_dim)
    ctx = None
    if context:
        pos = torch.rand(context, 3)
        ctx = [(torch.randn(1, context, cfg.num_heads, hd), torch.randn(1, context, cfg.num_heads, hd), pos)
               for _ in range(cfg.num_layers)]
    with torch.no_grad():
        text_in = m.prepare_text(text) if prepared else text
        with FlopCounterMode(display=False) as counter:
            m(x, 500.0, text_in, None, torch.rand(1, 4 * frames - 3, 13), torch.eye(3).expand(1, frames, 3, 3),
              torch.zeros(1, frames, 3), kv_context=ctx)
    assert counter.get_total_flops() == dit_flops(cfg, 6, frames, context, 5, prepared_text=prepared)


def test_markdown_table_has_the_three_presets():
    table = markdown_table()
    for name in ("relic-tiny", "wan2.1-1.3b", "wan2.1-14b"):
        assert f"| {name} |" in table


@pytest.mark.parametrize("preset", ["wan2.1-1.3b", "wan2.1-14b"])
def test_official_sizes_match_diffusers_and_our_model_on_meta(preset):
    """The Wan part of the formula equals diffusers' WanTransformer3DModel with the official config, and the
    total equals our DiT — both built on the meta device (no memory)."""
    diffusers = pytest.importorskip("diffusers")
    from relic.config import get_preset

    cfg = get_preset(preset).dit
    with torch.device("meta"):
        ref = diffusers.WanTransformer3DModel(num_attention_heads=cfg.num_heads, attention_head_dim=cfg.head_dim,
                                              ffn_dim=cfg.ffn_dim, num_layers=cfg.num_layers, text_dim=cfg.text_dim)
        ours = DiT(cfg)
    counts = dit_param_count(cfg)
    assert counts["wan"] == sum(p.numel() for p in ref.parameters())
    assert counts["total"] == sum(p.numel() for p in ours.parameters())
