"""Ulysses sequence parallelism (paper §4.5): sequence-sharded layers, head-parallel attention.

Outside attention every rank of a sequence-parallel group holds a contiguous shard of the token sequence
(all heads). For attention, one all-to-all turns that into *all* tokens for a shard of the heads; attention
runs locally per head; a second all-to-all turns the result back into sequence shards. The same function
serves training (the all-to-all is differentiable) and streaming inference (each rank keeps its shard of
the KV cache, compressed memory included, and the context keys/values are gathered the same way).

Shapes (einops letters): b batch, n tokens, h heads, d head dim, P group size.
Local inputs are (b, n/P, h, d); the global sequence is the concatenation of the ranks' shards in rank order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.distributed as dist
from einops import rearrange


@dataclass
class SequenceParallel:
    """A sequence-parallel group. ``group=None`` means the default (world) group."""

    group: object | None = None

    @property
    def size(self) -> int:
        return dist.get_world_size(self.group)

    @property
    def rank(self) -> int:
        return dist.get_rank(self.group)

    def shard(self, x: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """This rank's contiguous shard of ``x`` along ``dim`` (the length must divide by the group size)."""
        n = x.shape[dim]
        if n % self.size:
            raise ValueError(f"sequence length {n} is not divisible by the sequence-parallel size {self.size}")
        return x.narrow(dim, self.rank * (n // self.size), n // self.size)

    def gather(self, x: torch.Tensor, dim: int = 1) -> torch.Tensor:
        """All ranks' shards concatenated along ``dim`` (differentiable)."""
        from torch.distributed import _functional_collectives as fc

        x = x.movedim(dim, 0).contiguous()
        out = fc.wait_tensor(fc.all_gather_tensor_autograd(x, 0, self.group or dist.group.WORLD))
        return out.movedim(0, dim)


def _all_to_all(x: torch.Tensor, group) -> torch.Tensor:
    """Differentiable, compile-friendly all-to-all: chunk p of dim 0 goes to rank p, chunk p of the result
    comes from rank p."""
    from torch.distributed import _functional_collectives as fc

    out = fc.all_to_all_single_autograd(x.contiguous(), None, None, group or dist.group.WORLD)
    return fc.wait_tensor(out)


def seq_to_head(x: torch.Tensor, sp: SequenceParallel) -> torch.Tensor:
    """(b, n/P, h, d) sequence shard -> (b, n, h/P, d) head shard."""
    P = sp.size
    if x.shape[2] % P:
        raise ValueError(f"{x.shape[2]} heads are not divisible by the sequence-parallel size {P}")
    x = rearrange(x, "b n (p h) d -> p b n h d", p=P)          # chunk p of the heads goes to rank p
    x = _all_to_all(x, sp.group)                               # now chunk p holds rank p's tokens
    return rearrange(x, "p b n h d -> b (p n) h d")


def head_to_seq(x: torch.Tensor, sp: SequenceParallel) -> torch.Tensor:
    """(b, n, h/P, d) head shard -> (b, n/P, h, d) sequence shard (inverse of :func:`seq_to_head`)."""
    P = sp.size
    x = rearrange(x, "b (p n) h d -> p b n h d", p=P)          # token chunk p goes back to rank p
    x = _all_to_all(x, sp.group)                               # chunk p now holds rank p's heads
    return rearrange(x, "p b n h d -> b n (p h) d")


def ulysses_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, sp: SequenceParallel,
                      attn: Callable[..., torch.Tensor], mask: torch.Tensor | None = None) -> torch.Tensor:
    """Attention over the global sequence from sequence shards.

    Args:
        q: (b, nq/P, h, d) local query shard; k, v: (b, nk/P, h, d) local key/value shards (context tokens
            included, sharded like the rest). RoPE and pose embeddings are applied before this call.
        attn: the single-process attention function, ``attn(q, k, v, mask=...)`` on (b, n, h, d).
        mask: optional bool mask over the GLOBAL (nq, nk) token grid, broadcastable to (b, h, nq, nk).
    Returns:
        (b, nq/P, h, d) local output shard; equal to slicing single-process attention's output.
    """
    out = attn(seq_to_head(q, sp), seq_to_head(k, sp), seq_to_head(v, sp), mask=mask)
    return head_to_seq(out, sp)
