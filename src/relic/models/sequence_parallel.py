"""Ulysses sequence parallelism (paper §4.5): sequence-sharded layers, head-parallel attention.

Outside attention every rank of a sequence-parallel group holds a contiguous shard of the token sequence
(all heads). For attention, one all-to-all turns that into *all* tokens for a shard of the heads; attention
runs locally per head; a second all-to-all turns the result back into sequence shards. The same function
serves training (the all-to-all is differentiable) and streaming inference.

In the DiT (:mod:`relic.models.dit`) the tokens of every latent frame are split across the ranks
(:func:`shard_frames`), so per-frame modulation stays local. Keys and values that outlive a forward
(``return_kv``, the KV cache and its compressed memory, ``kv_context``) are kept in the HEAD-parallel
layout: rank p holds heads ``p*h/P .. (p+1)*h/P`` of every token. That is the layout attention needs, so
the cache costs 1/P of the memory per rank and context tokens need no communication at all; pooling the
memory works per head, exactly as in one process.

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
        out = fc.wait_tensor(fc.all_gather_single_autograd(x, 0, self.group or dist.group.WORLD))
        return out.movedim(0, dim)


def _all_to_all(x: torch.Tensor, group) -> torch.Tensor:
    """Differentiable, compile-friendly all-to-all: chunk p of dim 0 goes to rank p, chunk p of the result
    comes from rank p."""
    from torch.distributed import _functional_collectives as fc

    out = fc.all_to_all_single_autograd(x.contiguous(), None, None, group or dist.group.WORLD)
    return fc.wait_tensor(out)


def seq_to_head(x: torch.Tensor, sp: SequenceParallel, frames: int = 1) -> torch.Tensor:
    """(b, n/P, h, d) sequence shard -> (b, n, h/P, d) head shard.

    ``frames`` > 1: the shard is :func:`shard_frames`' layout (rank p holds chunk p of EVERY frame's tokens,
    ``(f s/P)``); the result is then in the original ``(f s)`` token order.
    """
    P = sp.size
    if x.shape[2] % P:
        raise ValueError(f"{x.shape[2]} heads are not divisible by the sequence-parallel size {P}")
    x = rearrange(x, "b n (p h) d -> p b n h d", p=P)          # chunk p of the heads goes to rank p
    x = _all_to_all(x, sp.group)                               # now chunk p holds rank p's tokens
    return rearrange(x, "p b (f n) h d -> b (f p n) h d", f=frames)


def head_to_seq(x: torch.Tensor, sp: SequenceParallel, frames: int = 1) -> torch.Tensor:
    """(b, n, h/P, d) head shard -> (b, n/P, h, d) sequence shard (inverse of :func:`seq_to_head`)."""
    P = sp.size
    x = rearrange(x, "b (f p n) h d -> p b (f n) h d", p=P, f=frames)   # token chunk p goes back to rank p
    x = _all_to_all(x, sp.group)                               # chunk p now holds rank p's heads
    return rearrange(x, "p b n h d -> b n (p h) d")


def shard_frames(x: torch.Tensor, sp: SequenceParallel, frames: int) -> torch.Tensor:
    """(b, (f s), ...) -> (b, (f s/P), ...): this rank's contiguous chunk of every frame's s tokens.

    Sharding each frame (rather than the whole sequence) keeps per-frame quantities (adaLN modulation,
    action and pose offsets) valid on every shard, whatever the number of frames.
    """
    P = sp.size
    s = x.shape[1] // frames
    if s * frames != x.shape[1] or s % P:
        raise ValueError(f"{s} tokens per latent frame are not divisible by the sequence-parallel size {P}")
    return x.unflatten(1, (frames, s)).narrow(2, sp.rank * (s // P), s // P).flatten(1, 2)


def gather_frames(x: torch.Tensor, sp: SequenceParallel, frames: int) -> torch.Tensor:
    """Inverse of :func:`shard_frames`: (b, (f s/P), c) shards -> (b, (f s), c) on every rank.

    Differentiable; the backward SUMS the gradients of all ranks (a reduce-scatter). When every rank of
    the group computes the same loss from the gathered output, each rank's gradients are therefore P
    times its share, and the MEAN over the group (what FSDP's gradient reduction does) is exact.
    """
    from torch.distributed import _functional_collectives as fc

    out = fc.wait_tensor(fc.all_gather_single_autograd(x.contiguous(), 0, sp.group or dist.group.WORLD))
    return rearrange(out, "(p b) (f n) c -> b (f p n) c", p=sp.size, f=frames)


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
