"""The block-causal few-step student around the DiT (paper §4.2, §4.4).

One block = ``frames_per_block`` latent frames. :meth:`Student.generate_block`:

1. asks the :class:`~relic.memory.KVCache` for the context (first frame + compressed memory + window),
2. denoises the block in the few-step schedule (:func:`relic.runtime.sampling.student_denoise`), every
   step attending to that context and bidirectionally inside the block,
3. runs one more forward of the clean block at noise level 0 (or ``context_noise``) with
   ``return_kv=True`` and pushes its per-layer K/V into the cache.

The first frame is written by :meth:`Student.write_first` (a clean latent at timestep 0, latent index 0).
Latent k's actions are video frames 4k-3 .. 4k (latent 0: frame 0) and its pose is that of video frame 4k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from relic.config import MemoryConfig, RelicConfig
from relic.memory import KVCache
from relic.models.dit import DiT, TextContext
from relic.runtime.sampling import add_noise, context_sigma, student_denoise


@dataclass
class BlockResult:
    """x0 (b c f h w) of the block; clean_out: the DiT output of the cache-writing pass (for tests)."""

    x0: torch.Tensor
    clean_out: torch.Tensor


class Student:
    """Block-causal generation with a KV cache.

    Args:
        dit: the DiT (any dtype); cfg: model config (sampler, memory, frames_per_block).
        memory: memory config override (default ``cfg.memory``).
        compute_dtype: dtype of the cached context handed to the DiT (float32, or bfloat16 under autocast).
    """

    def __init__(self, dit: DiT, cfg: RelicConfig, memory: MemoryConfig | None = None,
                 compute_dtype: torch.dtype = torch.float32):
        self.dit = dit
        self.cfg = cfg
        self.memory_cfg = memory if memory is not None else cfg.memory
        self.compute_dtype = compute_dtype

    @property
    def device(self) -> torch.device:
        return self.dit.head.modulation.device

    def token_grid(self, latent_hw: tuple[int, int]) -> tuple[int, int]:
        ph, pw = self.dit.cfg.patch_size[1:]
        return latent_hw[0] // ph, latent_hw[1] // pw

    def new_cache(self, latent_hw: tuple[int, int], batch: int = 1, capacity_latents: int = 64) -> KVCache:
        """An empty cache for latents of size (h, w).

        Under Ulysses sequence parallelism (:meth:`DiT.set_sequence_parallel`) each rank caches its head shard
        (``dit.local_heads`` heads of every token), compressed memory included.
        """
        c = self.dit.cfg
        heads = getattr(self.dit, "local_heads", c.num_heads)
        return KVCache(self.memory_cfg, num_layers=c.num_layers, heads=heads, head_dim=c.head_dim,
                       grid=self.token_grid(latent_hw), batch=batch, compute_dtype=self.compute_dtype,
                       device=self.device, capacity_latents=capacity_latents)

    def _poses(self, R: np.ndarray, P: np.ndarray, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        Rt = torch.as_tensor(np.asarray(R), dtype=torch.float32, device=self.device)
        Pt = torch.as_tensor(np.asarray(P), dtype=torch.float32, device=self.device)
        return Rt.expand(b, *Rt.shape), Pt.expand(b, *Pt.shape)

    def _actions(self, actions, b: int) -> torch.Tensor:
        a = torch.as_tensor(np.asarray(actions) if not torch.is_tensor(actions) else actions,
                            dtype=torch.float32, device=self.device)
        return a.expand(b, *a.shape) if a.ndim == 2 else a

    @torch.no_grad()
    def write_first(self, cache: KVCache, z0: torch.Tensor, text: TextContext, R0: np.ndarray | None = None,
                    P0: np.ndarray | None = None) -> torch.Tensor:
        """Write the clean first latent z0 (b c 1 h w) at timestep 0 (latent 0, static action, pose R0/P0)."""
        b = z0.shape[0]
        R0 = np.eye(3) if R0 is None else np.asarray(R0)
        P0 = np.zeros(3) if P0 is None else np.asarray(P0)
        Rt, Pt = self._poses(R0[None], P0[None], b)
        act = np.zeros((1, 13))
        act[0, -1] = 1.0
        t = torch.zeros(b, 1, device=self.device)
        out, kv = self.dit(z0, t, text, None, self._actions(act, b), Rt, Pt, frame_offset=0, return_kv=True)
        cache.push_block(kv, R0[None], P0[None])
        cache.first_latent = z0[:, :, 0]
        return out

    def rotated_context(self, cache: KVCache, R_cur: np.ndarray, P_cur: np.ndarray) -> list:
        """The block's context as the DiT's ``kv_context`` with keys RoPE-rotated once for all layers.

        The block's ``len(timesteps) + 1`` forwards all attend to the same context, so rotating it here
        (instead of inside each forward) saves all but one rotation; the keys are in ``compute_dtype``,
        the dtype the forward would rotate them in, so the result is the same (tests/runtime).
        """
        c = cache.context(R_cur, P_cur)
        k = self.dit.rotate_context(c.k, c.pos)
        return [(k[j], c.v[j], c.pos) for j in range(k.shape[0])]

    @torch.no_grad()
    def generate_block(self, cache: KVCache, noise: torch.Tensor, text: TextContext, actions, R: np.ndarray,
                       P: np.ndarray, generator: torch.Generator | None = None,
                       renoise: list[torch.Tensor] | None = None,
                       context_eps: torch.Tensor | None = None) -> BlockResult:
        """Denoise the next block and write it into the cache.

        Args:
            cache: the stream's cache (holds latents 0 .. i-1; the block starts at latent i).
            noise: (b c f h w) initial noise.
            text: prepared text context (:meth:`DiT.prepare_text`).
            actions: (4f, 13) or (b 4f 13) per-video-frame actions of the block.
            R, P: (f 3 3), (f 3) camera poses of the block's latents (host arrays, units of d̄).
            generator / renoise: noise for the re-noising steps; context_eps: noise for ``context_noise``.
        """
        b, f = noise.shape[0], noise.shape[2]
        i = cache.num_latents
        R = np.asarray(R, dtype=np.float64)
        P = np.asarray(P, dtype=np.float64)
        Rt, Pt = self._poses(R, P, b)
        act = self._actions(actions, b)
        ctx = self.rotated_context(cache, R[-1], P[-1])

        def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self.dit(x, t, text, None, act, Rt, Pt, frame_offset=i, kv_context=ctx, kv_context_rotated=True,
                            first_latent=cache.first_latent)

        x0 = student_denoise(velocity, noise, self.cfg.sampler, generator=generator, renoise=renoise)
        sc = context_sigma(self.cfg.sampler)
        xc = x0
        if sc > 0:
            eps = context_eps if context_eps is not None else torch.randn(
                x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
            xc = add_noise(x0, eps, sc)
        t = torch.full((b, f), sc * self.cfg.sampler.num_train_timesteps, device=self.device)
        out, kv = self.dit(xc, t, text, None, act, Rt, Pt, frame_offset=i, kv_context=ctx, return_kv=True,
                           kv_context_rotated=True, first_latent=cache.first_latent)
        cache.push_block(kv, R, P)
        return BlockResult(x0, out)
