"""The streaming fast paths: context keys RoPE-rotated once per block, and bf16 casts of the DiT."""

import torch

from relic.config import MemoryConfig
from relic.models.attention import token_positions


def _context(cfg, layers: int, m: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    heads, hd = cfg.dit.num_heads, cfg.dit.head_dim
    k = torch.randn(layers, 1, m, heads, hd, generator=g)
    v = torch.randn(layers, 1, m, heads, hd, generator=g)
    pos = torch.rand(m, 3, generator=g) * torch.tensor([5.0, 4.0, 6.0])   # float (pooled-like) positions
    return k, v, pos


@torch.no_grad()
def test_prerotated_context_equals_rotation_inside_forward(tiny):
    cfg = tiny.cfg(MemoryConfig(window=2))
    dit = tiny.dit(cfg)
    h, w = cfg.latent_hw
    k, v, pos = _context(cfg, cfg.dit.num_layers, 30)
    x = torch.randn(1, 16, 1, h, w)
    t = torch.full((1, 1), 400.0)
    text = torch.randn(1, 4, cfg.dit.text_dim)
    ctx = [(k[i], v[i], pos) for i in range(k.shape[0])]
    ref, kv_ref = dit(x, t, text, frame_offset=6, kv_context=ctx, return_kv=True)
    kr = dit.rotate_context(k, pos)
    assert not torch.equal(kr, k)                       # the rotation did something
    rot = [(kr[i], v[i], pos) for i in range(k.shape[0])]
    out, kv = dit(x, t, text, frame_offset=6, kv_context=rot, return_kv=True, kv_context_rotated=True)
    assert torch.equal(out, ref)
    for a, b in zip(kv, kv_ref):                        # returned K/V stay pre-RoPE, as the cache needs
        assert all(torch.equal(p, q) for p, q in zip(a, b))
    # and without the flag, the pre-rotated keys would be rotated twice: a different result
    wrong = dit(x, t, text, frame_offset=6, kv_context=rot)
    assert (wrong - ref).abs().max() > 1e-3


@torch.no_grad()
def test_bf16_dit_keeps_float64_rope_table_and_runs(tiny):
    cfg = tiny.cfg(MemoryConfig(window=2))
    dit = tiny.dit(cfg)
    table = dit.rope.freq_table.clone()
    pos = token_positions(2, 3, 4, frame_offset=7)
    ref = dit.rope.angles(pos)
    dit = dit.to(torch.bfloat16)
    assert dit.rope.freq_table.dtype == torch.float64
    assert torch.equal(dit.rope.freq_table, table)      # not a bf16 round trip
    assert torch.equal(dit.rope.angles(pos), ref)
    h, w = cfg.latent_hw
    out = dit(torch.randn(1, 16, 1, h, w, dtype=torch.bfloat16), torch.zeros(1, 1),
              torch.randn(1, 4, cfg.dit.text_dim, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()
