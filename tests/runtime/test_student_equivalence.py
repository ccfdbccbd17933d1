"""The issue's equivalence tests for the block-causal student with the KV cache (fp32, tiny random DiT)."""

import numpy as np
import pytest
import torch

from relic.config import MemoryConfig
from relic.memory import build_context, split_block_kv
from relic.runtime.sampling import add_noise, context_sigma, student_denoise
from relic.runtime.student import Student


def stream(student, cfg, z0, text, blocks):
    cache = student.new_cache(cfg.latent_hw, capacity_latents=2)
    tctx = student.dit.prepare_text(text)
    student.write_first(cache, z0, tctx)
    res = [student.generate_block(cache, b["noise"], tctx, b["actions"], b["R"], b["P"], renoise=b["renoise"],
                                  context_eps=b["ctx_eps"]) for b in blocks]
    return cache, res


@pytest.mark.parametrize("memory,fpb,ctx_noise", [
    (MemoryConfig(window=2, schedule=(1, 4, 2, 2), dtype="fp32"), 1, 0.0),
    (MemoryConfig(window=1, schedule=(2, 4), dtype="fp32"), 2, 0.0),
    (MemoryConfig(window=3, schedule=(4,), dtype="fp32"), 1, 50.0),
    (MemoryConfig(window=2, schedule=(1, 4, 2, 2), dtype="fp32", rope_horizon=3), 1, 0.0),
])
def test_cache_equals_recompute_from_scratch(tiny, memory, fpb, ctx_noise):
    """(1) Streaming with the cache == recomputing every block on [first + memory + window + block] from the
    recorded clean history, without a cache (build_context + a plain DiT call)."""
    cfg = tiny.cfg(memory, fpb, ctx_noise)
    dit = tiny.dit(cfg)
    z0, text, blocks, *_ = tiny.inputs(cfg, blocks=6)
    student = Student(dit, cfg)
    cache, res = stream(student, cfg, z0, text, blocks)
    assert cache.stats()["memory_latents"] > 0

    grid = student.token_grid(cfg.latent_hw)
    history = []
    tctx = dit.prepare_text(text)
    act0 = torch.zeros(1, 1, 13)
    act0[..., 12] = 1
    _, kv = dit(z0, torch.zeros(1, 1), tctx, None, act0, torch.eye(3)[None, None], torch.zeros(1, 1, 3),
                return_kv=True)
    history += split_block_kv(kv, grid, 0)
    sc = context_sigma(cfg.sampler)
    for b, r in zip(blocks, res):
        i = len(history)
        ctx = build_context(history, memory).layers()
        act = torch.as_tensor(b["actions"], dtype=torch.float32)[None]
        Rt = torch.as_tensor(b["R"], dtype=torch.float32)[None]
        Pt = torch.as_tensor(b["P"], dtype=torch.float32)[None]

        def v(x, t):
            return dit(x, t, tctx, None, act, Rt, Pt, frame_offset=i, kv_context=ctx)

        x0 = student_denoise(v, b["noise"], cfg.sampler, renoise=b["renoise"])
        assert (x0 - r.x0).abs().max() <= 1e-5
        xc = add_noise(x0, b["ctx_eps"], sc) if sc > 0 else x0
        f = xc.shape[2]
        _, kv = dit(xc, torch.full((1, f), sc * 1000), tctx, None, act, Rt, Pt, frame_offset=i,
                    kv_context=ctx, return_kv=True)
        history += split_block_kv(kv, grid, i)
    # the cache's final context is the reference's
    ref = build_context(history, memory)
    got = cache.context(blocks[-1]["R"][-1], blocks[-1]["P"][-1])
    assert torch.equal(got.pos, ref.pos)
    assert (got.k - ref.k).abs().max() <= 1e-5 and (got.v - ref.v).abs().max() <= 1e-5


@pytest.mark.parametrize("fpb", [1, 2])
def test_uncompressed_infinite_window_equals_block_causal_full_forward(tiny, fpb):
    """(2) Compression off + infinite window: the cached student == one full forward with a block-causal mask
    (the cache-writing passes' outputs and K/V, and the last block's first denoising step)."""
    memory = MemoryConfig(window=None, compress=False, dtype="fp32")
    cfg = tiny.cfg(memory, fpb)
    dit = tiny.dit(cfg, seed=1)
    z0, text, blocks, acts, R, P = tiny.inputs(cfg, blocks=4, seed=3)
    student = Student(dit, cfg)
    cache, res = stream(student, cfg, z0, text, blocks)

    x = torch.cat([z0] + [r.x0 for r in res], 2)                          # (1 c F h w) all clean latents
    F_ = x.shape[2]
    grid = student.token_grid(cfg.latent_hw)
    T = grid[0] * grid[1]
    lat_block = torch.tensor([0] + [1 + (k - 1) // fpb for k in range(1, F_)])   # block id per latent
    tok_block = lat_block.repeat_interleave(T)
    mask = (tok_block[None, :] <= tok_block[:, None])[None, None]
    lat = np.arange(F_)
    Rl, Pl = torch.as_tensor(R[4 * lat], dtype=torch.float32)[None], torch.as_tensor(P[4 * lat], dtype=torch.float32)[None]
    tctx = dit.prepare_text(text)
    out, kv = dit(x, torch.zeros(1, F_), tctx, None, torch.as_tensor(acts[:4 * (F_ - 1) + 1], dtype=torch.float32)[None],
                  Rl, Pl, attn_mask=mask, return_kv=True)
    clean = torch.cat([r.clean_out for r in res], 2)
    assert (out[:, :, 1:] - clean).abs().max() <= 1e-5
    ctx = cache.context()
    for layer in range(cfg.dit.num_layers):
        assert (kv[layer][0] - ctx.k[layer]).abs().max() <= 1e-5
        assert (kv[layer][1] - ctx.v[layer]).abs().max() <= 1e-5
    assert torch.equal(kv[0][2], ctx.pos)

    # the last block's first denoising step against a masked forward over [clean history, noisy block]
    b = blocks[-1]
    xs = torch.cat([x[:, :, :-fpb], b["noise"]], 2)
    t = torch.zeros(1, F_)
    t[:, -fpb:] = 1000.0 * cfg.sampler.shift / (1 + (cfg.sampler.shift - 1))    # shifted σ=1 -> t=1000
    full = dit(xs, t, tctx, None, torch.as_tensor(acts[:4 * (F_ - 1) + 1], dtype=torch.float32)[None], Rl, Pl,
               attn_mask=mask)[:, :, -fpb:]
    cache2 = student.new_cache(cfg.latent_hw)
    student.write_first(cache2, z0, tctx)
    for bb, r in zip(blocks[:-1], res[:-1]):
        Rt = torch.as_tensor(bb["R"], dtype=torch.float32)[None]
        Pt = torch.as_tensor(bb["P"], dtype=torch.float32)[None]
        i = cache2.num_latents
        _, kvb = dit(r.x0, torch.zeros(1, fpb), tctx, None, torch.as_tensor(bb["actions"], dtype=torch.float32)[None],
                     Rt, Pt, frame_offset=i, kv_context=cache2.context().layers(), return_kv=True)
        cache2.push_block(kvb, bb["R"], bb["P"])
    step = dit(b["noise"], t[:, -fpb:], tctx, None, torch.as_tensor(b["actions"], dtype=torch.float32)[None],
               torch.as_tensor(b["R"], dtype=torch.float32)[None], torch.as_tensor(b["P"], dtype=torch.float32)[None],
               frame_offset=cache2.num_latents, kv_context=cache2.context().layers())
    assert (full - step).abs().max() <= 1e-5


def test_cache_changes_output(tiny):
    """Sanity: the memory matters (a different history gives a different block), so the tests above can fail."""
    memory = MemoryConfig(window=2, schedule=(1, 4), dtype="fp32")
    cfg = tiny.cfg(memory)
    dit = tiny.dit(cfg)
    z0, text, blocks, *_ = tiny.inputs(cfg, blocks=3)
    student = Student(dit, cfg)
    _, res_a = stream(student, cfg, z0, text, blocks)
    _, res_b = stream(student, cfg, z0 + 0.5, text, blocks)
    assert (res_a[-1].x0 - res_b[-1].x0).abs().max() > 1e-3


def test_rope_horizon_changes_only_blocks_past_it(tiny):
    """Blocks starting at latent i <= rope_horizon are bitwise those of absolute positions; later ones differ
    (so the retimed equivalence case above is not the absolute case in disguise)."""
    base = MemoryConfig(window=2, schedule=(1, 4, 2, 2), dtype="fp32")
    cfg = tiny.cfg(base)
    dit = tiny.dit(cfg)
    z0, text, blocks, *_ = tiny.inputs(cfg, blocks=6)
    _, absolute = stream(Student(dit, cfg), cfg, z0, text, blocks)
    _, retimed = stream(Student(dit, cfg, memory=MemoryConfig(window=2, schedule=(1, 4, 2, 2), dtype="fp32",
                                                              rope_horizon=3)), cfg, z0, text, blocks)
    for i, (a, r) in enumerate(zip(absolute, retimed), start=1):      # block i starts at latent i
        if i <= 3:
            assert torch.equal(a.x0, r.x0)
        else:
            assert (a.x0 - r.x0).abs().max() > 1e-4
