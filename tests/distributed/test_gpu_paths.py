"""The CPU-testable parts of the GPU paths: weight-only int8/fp8, per-block torch.compile (fullgraph: no host
syncs in a streaming step), attention backend selection, and the scale-out estimates."""

import json

import pytest
import torch

from relic.config import DiTConfig, MemoryConfig, get_preset, relic_tiny
from relic.models.attention import attention
from relic.models.dit import DiT
from relic.models.quantize import QuantLinear, compile_blocks, quantize_linears, weight_bytes
from relic.training import estimate


def tiny_dit(seed: int = 0) -> DiT:
    torch.manual_seed(seed)
    return DiT(DiTConfig(dim=64, ffn_dim=128, freq_dim=16, text_dim=8, num_heads=4, num_layers=2,
                         action_hidden=8, pose_hidden=8)).eval()


def inputs():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 16, 2, 4, 4, generator=g)
    ctx = [(torch.randn(1, 8, 4, 16, generator=g), torch.randn(1, 8, 4, 16, generator=g),
            torch.rand(8, 3, generator=g) * 3) for _ in range(2)]
    return x, torch.full((1, 2), 500.0), torch.randn(1, 3, 8, generator=g), ctx


@pytest.mark.parametrize("mode,tol", [("int8", 0.02), ("fp8", 0.08)])
def test_weight_only_quantization_is_close_and_smaller(mode, tol):
    model = tiny_dit()
    x, t, text, ctx = inputs()
    with torch.no_grad():
        ref = model(x, t, text, kv_context=ctx, frame_offset=3)
        before = weight_bytes(model.blocks)
        n = quantize_linears(model, mode)
        out = model(x, t, text, kv_context=ctx, frame_offset=3)
    assert n == 2 * 10                                   # (q k v o) x 2 attentions + 2 ffn linears, per block
    assert all(not isinstance(m, torch.nn.Linear) for m in model.blocks.modules())
    rel = float((out - ref).norm() / ref.norm())
    assert 0 < rel < tol, rel
    assert weight_bytes(model.blocks) < 0.3 * before      # 1 byte per weight instead of 4 (+ scales, biases)


def test_quant_linear_is_exact_for_weights_on_its_per_channel_grid():
    g = torch.Generator().manual_seed(0)
    ints = torch.randint(-127, 128, (3, 6), generator=g).float()
    ints[:, 0] = 127                                       # row max -> the scale is exactly the row factor
    lin = torch.nn.Linear(6, 3)
    with torch.no_grad():
        lin.weight.copy_(ints * torch.tensor([[0.5], [0.03125], [2.0]]))
    q = QuantLinear(lin, "int8")
    assert q.qweight.dtype == torch.int8 and torch.equal(q.qweight.float(), ints)
    x = torch.randn(5, 6, generator=g)
    torch.testing.assert_close(q(x), lin(x), rtol=1e-6, atol=1e-6)
    assert QuantLinear(lin, "fp8").qweight.dtype == torch.float8_e4m3fn
    with pytest.raises(ValueError):
        QuantLinear(lin, "int4")


@pytest.mark.slow
def test_compiled_blocks_fullgraph_equal_eager_with_kv_context():
    """fullgraph=True fails on any graph break: no .item(), no host sync, no data-dependent Python branch."""
    model = tiny_dit()
    x, t, text, ctx = inputs()
    mask = torch.ones(1, 1, 8, 8 + 8, dtype=torch.bool)  # 8 context keys, 2 frames of 4 tokens
    mask[..., 8 + 4:] = torch.arange(8)[:, None] >= 4    # block-causal: frame 1 sees frame 0, not vice versa
    with torch.no_grad():
        ref = model(x, t, text, kv_context=ctx, frame_offset=3, attn_mask=mask)
        compile_blocks(model, backend="eager", fullgraph=True)
        out = model(x, t, text, kv_context=ctx, frame_offset=3, attn_mask=mask)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)


def test_attention_auto_backend_falls_back_to_sdpa_on_cpu():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 5, 2, 8, generator=g) for _ in range(3))
    torch.testing.assert_close(attention(q, k, v, backend="auto"), attention(q, k, v, backend="math"),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match="flash-attn"):
        attention(q, k, v, backend="flash")             # CPU: flash-attn is never usable here


def test_estimate_counts_parameters_exactly_and_memory_matches_paper():
    cfg = relic_tiny()
    assert estimate.dit_params(cfg)["total"] == sum(p.numel() for p in DiT(cfg.dit).parameters())
    wan = get_preset("wan2.1-1.3b")
    lat = estimate.sample_latents(wan, 20.0)
    n = lat * estimate.tokens_per_latent(wan)
    assert lat == 81 and 120_000 < n < 130_000                # paper: 20 s = 120K tokens at 480x832
    ctx = estimate.context_tokens(wan, lat)
    assert 0.2 < ctx / n < 0.3                                # paper: compressed to ~30K
    # the KV estimate halves per doubling of the Ulysses group, and fp8 storage about halves bf16
    a, b = estimate.infer(wan, 1, 20.0, estimate.Hardware()), estimate.infer(wan, 2, 20.0, estimate.Hardware())
    assert b["kv_gib"] == pytest.approx(a["kv_gib"] / 2)
    f8 = estimate.infer(wan, 1, 20.0, estimate.Hardware(), kv="fp8")
    assert 0.45 < f8["kv_gib"] / a["kv_gib"] < 0.6
    # sequence parallelism divides the activations, FSDP the states
    m1, m2 = (estimate.train_memory(wan, "teacher", 8, sp, 20.0) for sp in (1, 2))
    assert m2["activations"] == pytest.approx(m1["activations"] / 2, rel=1e-4)
    m16 = estimate.train_memory(wan, "teacher", 16, 1, 20.0)
    assert m16["adamw_fp32_shard"] == pytest.approx(m1["adamw_fp32_shard"] / 2)


def test_bench_scale_writes_json_markdown_and_plot(tmp_path):
    res = estimate.run(tmp_path, seconds=5.0)
    assert (tmp_path / "scale.png").stat().st_size > 0
    data = json.loads((tmp_path / "scale.json").read_text())
    assert set(data["presets"]) == {"wan2.1-1.3b", "wan2.1-14b"} == set(res["presets"])
    assert "| teacher | 8 | 1 |" in (tmp_path / "scale.md").read_text()
    assert MemoryConfig().window == 6                          # the estimates use the presets' memory config


@pytest.mark.parametrize("preset", ["wan2.1-1.3b", "wan2.1-14b"])
def test_scale_configs_parse_and_fit_their_parallel_layout(preset):
    """The configs behind the torchrun commands of docs/scaling.md are valid stage configs."""
    import importlib
    from pathlib import Path

    from relic.commands.train import STAGES
    from relic.training.config import load_stage_config, model_config

    root = Path(__file__).parents[2] / "configs" / preset
    for stage in ("teacher", "ode-pairs", "ode-init", "dmd"):
        module, cls, _ = STAGES[stage]
        cfg = load_stage_config(getattr(importlib.import_module(module), cls), root / f"{stage.replace('-', '_')}.yaml")
        assert cfg.preset == preset
        mc = model_config(cfg.preset, cfg.model)
        assert mc.text_encoder.startswith("umt5:")
        dist_cfg = getattr(cfg, "dist", None)
        if dist_cfg is not None:                          # Ulysses needs heads and tokens per latent divisible
            assert estimate.valid_sp(mc, dist_cfg.sp_size) and dist_cfg.activation_checkpointing
