"""KV cache = rolling window + compressed memory (relic.memory): pooling, the plan, cache vs build_context."""

import numpy as np
import pytest
import torch

from relic.camera.geometry import ypr_to_rotation
from relic.config import PAPER_MEMORY_SCHEDULE, MemoryConfig
from relic.memory import (KVCache, LatentKV, build_context, compression_factor, memory_plan, pool_tokens,
                          pooled_grid, retime, view_overlap)

L, B, H, D = 2, 1, 2, 8


def rand_latent(i, grid=(3, 5), gen=None):
    n = grid[0] * grid[1]
    g = gen or torch.Generator().manual_seed(i)
    hh, ww = torch.meshgrid(torch.arange(grid[0]).float(), torch.arange(grid[1]).float(), indexing="ij")
    pos = torch.stack([torch.full_like(hh, float(i)), hh, ww], -1).reshape(n, 3)
    return LatentKV(i, torch.randn(L, B, n, H, D, generator=g), torch.randn(L, B, n, H, D, generator=g), pos, grid)


def test_pool_ceil_mode_averages_existing_tokens():
    x = torch.arange(15.0).reshape(1, 15, 1)              # grid 3x5 with values = flat index
    y = pool_tokens(x, (3, 5), 2)
    assert y.shape == (1, 6, 1)                             # ceil(3/2) * ceil(5/2)
    expect = [np.mean([0, 1, 5, 6]), np.mean([2, 3, 7, 8]), np.mean([4, 9]),
              np.mean([10, 11]), np.mean([12, 13]), 14.0]
    assert torch.allclose(y[0, :, 0], torch.tensor(expect, dtype=torch.float32))
    assert pooled_grid((3, 5), 4) == (1, 2)


def test_pooled_positions_are_mean_of_positions():
    rec = rand_latent(7, (4, 6))
    p = rec.pooled(2)
    assert p.tokens == 6 and p.k.shape == (L, B, 6, H, D)
    # first pooled token summarizes grid cells (0,0),(0,1),(1,0),(1,1)
    assert torch.allclose(p.pos[0], torch.tensor([7.0, 0.5, 0.5]))
    k = rec.k.reshape(L, B, 4, 6, H, D)
    assert torch.allclose(p.k[:, :, 0], k[:, :, :2, :2].mean((2, 3)), atol=1e-6)


def test_plan_and_paper_schedule():
    cfg = MemoryConfig(window=3)
    plan = memory_plan(10, cfg)
    assert [i for i, _ in plan] == list(range(10))
    assert plan[0] == (0, 1) and all(s == 1 for _, s in plan[-3:])
    assert [s for _, s in plan[1:7]] == [PAPER_MEMORY_SCHEDULE[i] for i in range(1, 7)]
    assert compression_factor(18, cfg) == 1 and compression_factor(19, cfg) == 4
    assert memory_plan(10, MemoryConfig(window=None))[1:] == [(i, 1) for i in range(1, 10)]
    assert [i for i, _ in memory_plan(10, cfg, keep=[2, 5])] == [0, 2, 5, 7, 8, 9]


def test_paper_schedule_token_reduction_at_20s():
    """The paper's 120K -> 30K: relic-tiny's 8x14 grid, 81 latents (20 s), window 6."""
    cfg = MemoryConfig(window=6)
    T = 8 * 14
    plan = memory_plan(81, cfg)
    tokens = sum(np.prod(pooled_grid((8, 14), s)) for _, s in plan)
    assert 81 * T / tokens >= 4.0


@pytest.mark.parametrize("horizon", [None, 5])
@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp8"])
@pytest.mark.parametrize("window", [0, 2, None])
def test_cache_matches_build_context(dtype, window, horizon):
    cfg = MemoryConfig(window=window, schedule=(1, 4, 2), dtype=dtype, rope_horizon=horizon)
    grid = (3, 5)
    cache = KVCache(cfg, num_layers=L, heads=H, head_dim=D, grid=grid, capacity_latents=2)
    hist = []
    for i in range(12):
        rec = rand_latent(i, grid)
        hist.append(rec)
        cache.push(rec)
        ctx = cache.context()
        ref = build_context(hist, cfg)
        assert ctx.tokens == ref.tokens == cache.stats()["tokens"]
        assert torch.equal(ctx.pos, ref.pos)
        tol = {"fp32": 0.0, "bf16": 2e-2, "fp8": 0.15}[dtype]
        assert (ctx.k - ref.k).abs().max() <= tol * ref.k.abs().max() + 1e-7
        assert (ctx.v - ref.v).abs().max() <= tol * ref.v.abs().max() + 1e-7


def test_storage_bytes_fp8_about_half_of_bf16():
    per = {}
    for dt in ("bf16", "fp8"):
        cache = KVCache(MemoryConfig(window=2, dtype=dt), num_layers=L, heads=H, head_dim=64, grid=(3, 5))
        for i in range(6):
            r = rand_latent(i)
            cache.push(LatentKV(i, torch.randn(L, B, 15, H, 64), torch.randn(L, B, 15, H, 64), r.pos, (3, 5)))
        cache.context()
        per[dt] = cache.stats()["bytes"]
    assert 0.5 <= per["fp8"] / per["bf16"] <= 0.6


def pose_yaw(deg, pos=(0.0, 0.0, 0.0)):
    return ypr_to_rotation(np.array([[deg, 0.0, 0.0]]))[0], np.array(pos, dtype=np.float64)


def test_view_overlap():
    R0, P0 = pose_yaw(0)
    R1, P1 = pose_yaw(180)
    R2, P2 = pose_yaw(20)
    ov = view_overlap(np.stack([R0, R1, R2]), np.stack([P0, P1, P2]), R0, P0, 90.0, 16 / 9, (2.0, 8.0))
    assert ov[0] == 1.0 and ov[1] == 0.0 and 0.3 < ov[2] < 1.0


def test_budget_never_exceeded_and_revisit_retrieves_recorded_view():
    grid = (4, 4)
    T = 16
    cfg = MemoryConfig(window=2, schedule=(1,), token_budget=T * 5, recency_weight=0.05)
    cache = KVCache(cfg, num_layers=L, heads=H, head_dim=D, grid=grid)
    # pan 30° per latent for a full turn and more, then turn back to look at yaw 60 again
    yaws = [30.0 * i for i in range(16)] + [420.0 - 30.0 * j for j in range(1, 4)]
    hist_yaw = {}
    for i, yaw in enumerate(yaws):
        R, P = pose_yaw(yaw)
        cache.push(rand_latent(i, grid), R, P)
        hist_yaw[i] = yaw % 360
        ctx = cache.context(R, P)
        assert ctx.tokens <= cfg.token_budget
        assert cache.stats()["tokens"] == ctx.tokens
    # Before the revisit (looking at yaw 150..), latent 2 (yaw 60) is not in the context ...
    R, P = pose_yaw(90.0)
    sel_far = cache.memory_selection(*pose_yaw(240.0))
    assert 2 not in sel_far
    # ... at the revisited view it is retrieved (latent 2 and 14 were both recorded at yaw 60).
    sel = cache.memory_selection(*pose_yaw(60.0))
    assert {2, 14} & set(sel)
    assert all(min(abs(hist_yaw[i] - 60), 360 - abs(hist_yaw[i] - 60)) <= 60 for i in sel)
    ctx = cache.context(*pose_yaw(60.0))
    assert ctx.tokens <= cfg.token_budget


def test_archive_cap_and_reset():
    cfg = MemoryConfig(window=1, schedule=(2,), archive_latents=3)
    cache = KVCache(cfg, num_layers=L, heads=H, head_dim=D, grid=(3, 5))
    for i in range(10):
        cache.push(rand_latent(i), *pose_yaw(10.0 * i))
        cache.context()
    st = cache.stats()
    assert st["memory_latents"] == 3 and st["window_latents"] == 1
    cache.reset()
    with pytest.raises(RuntimeError):
        cache.context()
    cache.push(rand_latent(0))
    assert cache.context().tokens == 15


def test_budget_below_window_rejected():
    with pytest.raises(ValueError, match="token_budget"):
        KVCache(MemoryConfig(window=4, token_budget=10), num_layers=1, heads=1, head_dim=8, grid=(2, 2))


def times(cfg, i):
    """The retimed time coordinate of the context of a block at latent i (history 0 .. i-1)."""
    ctx = build_context([rand_latent(j, (1, 1)) for j in range(i)], cfg)
    return ctx.pos[:, 0]


def test_retime_is_identity_within_the_horizon():
    cfg = MemoryConfig(window=4, schedule=(1,), rope_horizon=20)
    for i in (1, 5, 20):
        assert torch.equal(times(cfg, i), torch.arange(i, dtype=torch.float32))
    assert torch.equal(times(MemoryConfig(window=4, schedule=(1,)), 300), torch.arange(300, dtype=torch.float32))


def test_retime_keeps_the_window_and_puts_the_first_frame_at_the_horizon():
    cfg = MemoryConfig(window=4, schedule=(1,), rope_horizon=20)
    for i in (21, 37, 1200):
        t = times(cfg, i)
        d = i - t                                            # distance of every context latent to the block
        assert torch.allclose(d[-4:], torch.tensor([4.0, 3.0, 2.0, 1.0]))    # the window: exact
        assert abs(float(d[0]) - 20.0) < 1e-3                                # the first frame: H back
        assert bool((t[1:] > t[:-1]).all())                                  # order kept
        assert float(d.max()) <= 20.0 + 1e-3
        # linear in between: equal spacing of the memory latents
        gaps = t[1:-4] - t[:-5]
        assert torch.allclose(gaps, gaps.mean().expand_as(gaps), atol=1e-3)
    # continuous across the horizon: at block 21 no distance shrinks by more than the one latent it grew by
    shrink = (21 - torch.arange(21.0)) - (21 - times(cfg, 21))
    assert float(shrink.min()) >= 0.0 and float(shrink.max()) <= 1.0 + 1e-6


def test_retime_leaves_spatial_positions_and_its_input_alone():
    pos = torch.tensor([[0.0, 0.5, 1.5], [7.0, 2.0, 3.0], [9.0, 0.0, 0.0]])
    before = pos.clone()
    out = retime(pos, 40, MemoryConfig(window=2, rope_horizon=10))
    assert torch.equal(pos, before) and torch.equal(out[:, 1:], pos[:, 1:])
    assert torch.allclose(40 - out[:, 0], torch.tensor([10.0, 2 + 31 * 8 / 38, 2 + 29 * 8 / 38]))


@pytest.mark.parametrize("horizon", [0, 2, 3])
def test_rope_horizon_not_longer_than_window_rejected(horizon):
    cfg = MemoryConfig(window=3, rope_horizon=horizon)
    with pytest.raises(ValueError, match="rope_horizon"):
        KVCache(cfg, num_layers=L, heads=H, head_dim=D, grid=(3, 5))
    with pytest.raises(ValueError, match="rope_horizon"):
        build_context([rand_latent(0)], cfg)
