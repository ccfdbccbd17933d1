"""Run under torchrun (2 gloo ranks): the DiT with Ulysses sequence parallelism equals one process.

Forward and backward, with per-frame timesteps, actions, poses, a block-causal mask and a kv_context built
from compressed memory (pooled latents at fractional positions) by :func:`relic.memory.build_context`.
Every rank also runs the single-process reference on the same seeded tensors. Exits non-zero on a mismatch.
"""

import os

import torch
import torch.distributed as dist

from relic.config import DiTConfig, MemoryConfig
from relic.memory import LatentKV, build_context
from relic.models.dit import DiT
from relic.models.sequence_parallel import SequenceParallel
from relic.training.distributed import exit_process

TOL = 1e-5


def tiny_dit() -> DiT:
    torch.manual_seed(0)
    cfg = DiTConfig(dim=48, ffn_dim=64, freq_dim=32, text_dim=16, num_heads=4, num_layers=2,
                    action_hidden=16, pose_hidden=16, action_coords=True,   # per-token offsets: sharded too
                    camera_rays=True, warp_condition=True, warp_depth=4.0)
    model = DiT(cfg)
    with torch.no_grad():                       # the zero-initialized conditioning would hide bugs
        for p in [*model.action_encoder.proj.parameters(), *model.pose_encoder.proj.parameters(),
                  *model.action_encoder.coord_proj.parameters(), *model.ray_encoder.proj.parameters(),
                  *model.warp_encoder.proj.parameters()]:
            p.normal_(0, 0.1)
    return model


def close(a: torch.Tensor, b: torch.Tensor, what: str) -> float:
    a, b = a.detach(), b.detach()
    err = float((a - b).abs().max())
    scale = max(1.0, float(b.abs().max()))
    assert err <= TOL * scale, f"{what}: max error {err:.3e} (scale {scale:.2f})"
    return err / scale


def inputs(model: DiT):
    g = torch.Generator().manual_seed(1)
    b, f, H, W = 2, 2, 8, 8
    cfg = model.cfg
    grid = (H // 2, W // 2)
    n = f * grid[0] * grid[1]
    x = torch.randn(b, cfg.in_channels, f, H, W, generator=g)
    t = torch.rand(b, f, generator=g) * 1000
    text = torch.randn(b, 5, cfg.text_dim, generator=g)
    text_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    actions = torch.rand(b, 4 * f, 13, generator=g)
    R = torch.linalg.qr(torch.randn(b, f, 3, 3, generator=g))[0]
    P = torch.randn(b, f, 3, generator=g)
    # history: 6 clean latents -> first frame + pooled memory (schedule 1, 2, 4 on a 4x4 grid) + window 2
    hist = []
    for i in range(6):
        k = torch.randn(cfg.num_layers, b, grid[0] * grid[1], cfg.num_heads, cfg.head_dim, generator=g)
        v = torch.randn_like(k)
        hh, ww = torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing="ij")
        pos = torch.stack([torch.full_like(hh, i), hh, ww], -1).reshape(-1, 3).float()
        hist.append(LatentKV(i, k, v, pos, grid))
    mem = MemoryConfig(window=2, schedule=(1, 2, 4), compress=True, dtype="fp32")
    # block-causal mask over [context, current]: frame j sees the context and frames <= j
    m = build_context(hist, mem).tokens
    qf = torch.arange(n) // (grid[0] * grid[1])
    kf = torch.cat([torch.full((m,), -1), qf])
    mask = (kf[None, :] <= qf[:, None])[None, None]
    z0 = torch.randn(b, cfg.in_channels, H, W, generator=g)          # the first latent, for the warp condition
    return dict(x=x, t=t, text=text, text_mask=text_mask, actions=actions, R=R, P=P, hist=hist, mem=mem,
                mask=mask, frame_offset=6, z0=z0)


def run(model: DiT, d: dict, hist, g_out: torch.Tensor):
    """Forward with the context built from ``hist`` (leaves requiring grad); loss = <out, g_out>."""
    ctx = build_context(hist, d["mem"])
    out, kv = model(d["x"], d["t"], d["text"], d["text_mask"], d["actions"], d["R"], d["P"],
                    frame_offset=d["frame_offset"], attn_mask=d["mask"], kv_context=ctx.layers(), return_kv=True,
                    first_latent=d["z0"])
    (out * g_out).sum().backward()
    return out, kv, ctx


def main():
    dist.init_process_group("gloo")
    rank, P = dist.get_rank(), dist.get_world_size()
    sp = SequenceParallel()
    ref_model, sp_model = tiny_dit(), tiny_dit()
    sp_model.set_sequence_parallel(sp)
    assert sp_model.local_heads == ref_model.cfg.num_heads // P
    d = inputs(ref_model)
    g_out = torch.randn(d["x"].shape, generator=torch.Generator().manual_seed(2))

    def leaves(hist, heads=None):
        out = []
        for rec in hist:
            k, v = rec.k, rec.v
            if heads is not None:
                k, v = k[..., heads, :], v[..., heads, :]
            out.append(LatentKV(rec.index, k.clone().requires_grad_(True), v.clone().requires_grad_(True),
                                rec.pos, rec.grid))
        return out

    h_loc = ref_model.cfg.num_heads // P
    heads = slice(rank * h_loc, (rank + 1) * h_loc)
    ref_hist, sp_hist = leaves(d["hist"]), leaves(d["hist"], heads)
    ref_out, ref_kv, ref_ctx = run(ref_model, d, ref_hist, g_out)
    sp_out, sp_kv, sp_ctx = run(sp_model, d, sp_hist, g_out)

    errs = {"out": close(sp_out, ref_out, "output")}
    # the memory built from this rank's head shard is the head slice of the full memory
    errs["ctx"] = close(sp_ctx.k, ref_ctx.k[..., heads, :], "context keys")
    for i, ((k, v, pos), (rk, rv, rpos)) in enumerate(zip(sp_kv, ref_kv)):
        errs[f"k{i}"] = close(k, rk[..., heads, :], f"returned k layer {i}")
        errs[f"v{i}"] = close(v, rv[..., heads, :], f"returned v layer {i}")
        assert torch.equal(pos, rpos)
    # parameter gradients: each rank holds P x its share; the mean over the group is exact
    gerr = 0.0
    for (name, p_ref), (_, p_sp) in zip(ref_model.named_parameters(), sp_model.named_parameters()):
        g = p_sp.grad.clone()
        dist.all_reduce(g)
        gerr = max(gerr, close(g / P, p_ref.grad, f"grad {name}"))
    # gradients of the (head-sharded) history K/V: P x the single-process ones
    herr = 0.0
    for a, r in zip(sp_hist, ref_hist):
        herr = max(herr, close(a.k.grad / P, r.k.grad[..., heads, :], f"grad history k {a.index}"),
                   close(a.v.grad / P, r.v.grad[..., heads, :], f"grad history v {a.index}"))
    print(f"rank {rank}: fwd {errs['out']:.2e} kv {max(errs.values()):.2e} param-grad {gerr:.2e} "
          f"history-grad {herr:.2e} OK", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    main()
    exit_process(0)
