"""Run under torchrun (2 ranks, gloo): Ulysses attention equals single-process attention, fwd and bwd.

Exits non-zero (AssertionError) on any mismatch. Launched by test_ulysses.py.
"""

import os

import torch
import torch.distributed as dist
import torch.nn.functional as F

from relic.models.sequence_parallel import SequenceParallel, ulysses_attention
from relic.training.distributed import exit_process


def sdpa(q, k, v, mask=None):
    """Reference attention on (b, n, h, d)."""
    o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask)
    return o.transpose(1, 2)


def block_causal_mask(n_ctx: int, blocks: int, block: int) -> torch.Tensor:
    """Queries of block i see all context tokens and blocks 0..i. (nq, n_ctx + nq) bool."""
    nq = blocks * block
    qb = torch.arange(nq) // block
    kb = torch.cat([torch.full((n_ctx,), -1), torch.arange(nq) // block])
    return kb[None, :] <= qb[:, None]


def main():
    dist.init_process_group("gloo")
    torch.manual_seed(0)
    sp = SequenceParallel()
    b, h, d, n_ctx, blocks, block = 2, 4, 8, 6, 3, 4
    nq = blocks * block
    q = torch.randn(b, nq, h, d, dtype=torch.float64)
    ctx_k, ctx_v = torch.randn(b, n_ctx, h, d, dtype=torch.float64), torch.randn(b, n_ctx, h, d, dtype=torch.float64)
    cur_k, cur_v = torch.randn(b, nq, h, d, dtype=torch.float64), torch.randn(b, nq, h, d, dtype=torch.float64)
    g = torch.randn(b, nq, h, d, dtype=torch.float64)
    mask = block_causal_mask(n_ctx, blocks, block)

    # single process reference (every rank computes it on the same seeded tensors)
    leaves = [t.clone().requires_grad_(True) for t in (q, ctx_k, ctx_v, cur_k, cur_v)]
    ref = sdpa(leaves[0], torch.cat([leaves[1], leaves[3]], 1), torch.cat([leaves[2], leaves[4]], 1), mask)
    (ref * g).sum().backward()

    # Ulysses: every tensor sharded along its token axis (context and current separately, as the cache does).
    # Global key order is [ctx shards..., cur shards...] = [ctx, cur] because each part is sharded contiguously
    # and gathered in rank order within its part.
    loc = [sp.shard(t).clone().requires_grad_(True) for t in (q, ctx_k, ctx_v, cur_k, cur_v)]
    from relic.models.sequence_parallel import head_to_seq, seq_to_head
    k_heads = torch.cat([seq_to_head(loc[1], sp), seq_to_head(loc[3], sp)], 1)
    v_heads = torch.cat([seq_to_head(loc[2], sp), seq_to_head(loc[4], sp)], 1)
    out = head_to_seq(sdpa(seq_to_head(loc[0], sp), k_heads, v_heads, mask), sp)
    # the convenience wrapper gives the same result when keys are one sharded sequence
    out2 = ulysses_attention(loc[0], loc[3], loc[4], sp, sdpa, mask=block_causal_mask(0, blocks, block))
    ref2 = sdpa(q, cur_k, cur_v, block_causal_mask(0, blocks, block))
    (out * sp.shard(g)).sum().backward()

    err = (out - sp.shard(ref)).abs().max().item()
    err2 = (out2 - sp.shard(ref2)).abs().max().item()
    gerr = max((l.grad - sp.shard(r.grad)).abs().max().item() for l, r in zip(loc, leaves))
    # the differentiable gather reassembles the global sequence
    gathered = sp.gather(loc[0])
    assert torch.equal(gathered, q)
    print(f"rank {dist.get_rank()}: fwd {err:.2e} wrapper {err2:.2e} grad {gerr:.2e}", flush=True)
    assert err <= 1e-10 and err2 <= 1e-10 and gerr <= 1e-10


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
    exit_process(0)
