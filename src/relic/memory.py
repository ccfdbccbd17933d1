"""The KV cache: rolling window + compressed long-horizon spatial memory (paper §4.3, §4.5).

Vocabulary (see docs/runtime.md for the full picture):

* A **latent** is one latent frame; its tokens form a patch grid ``(gh gw)``. Every clean latent leaves,
  per DiT layer, keys K and values V of shape ``(b n h d)`` with ``n = gh*gw``, plus float token positions
  ``(n 3)`` = (t, h, w). Keys are stored **before RoPE** (with the absolute-pose embedding already added);
  the DiT rotates every context key at its stored float position, so pooling and RoPE compose as in
  FramePack: pool first, rotate at the pooled (averaged) position.
* The **first frame** (latent 0) is always kept uncompressed.
* The **rolling window** holds the last ``window`` latents (index ≥ 1) uncompressed.
* A latent ``i`` that leaves the window enters the **memory**, spatially average-pooled by
  ``s_i = schedule[i % len(schedule)]`` per axis (s = 1 keeps it as is). Grids not divisible by s are
  pooled in ceil mode: edge cells average only the tokens that exist (``avg_pool2d(ceil_mode=True)``),
  and positions are pooled by the very same operator, so a pooled token sits at the mean position of
  the tokens it summarizes.
* The **context** attended by the current block is ``[first, memory (ascending index), window
  (ascending index)]``. :func:`memory_plan` decides it and :func:`build_context` materializes it from
  clean per-latent K/V; the streaming :class:`KVCache` follows the same plan, so training (ODE init, DMD
  replay) and inference build the same token sequence for the same history.
* **Token budget** (beyond the paper): with ``MemoryConfig.token_budget`` the context is capped; memory
  latents are chosen greedily by :func:`selection_scores` = frustum overlap of their recorded camera with
  the current camera + ``recency_weight`` × recency. Pooled memory latents stay stored (they are small;
  ``archive_latents`` caps them), so a latent evicted from the context comes back when the camera
  revisits its view.
* **RoPE horizon** (beyond the paper): with ``MemoryConfig.rope_horizon`` = H, a block that starts at latent
  i > H sees its context at compressed time positions (:func:`retime`): the window keeps its exact
  distances, older tokens are moved linearly so that the first frame sits H latents back. Positions stay
  absolute in storage; only the context handed to the DiT is retimed.
* **Storage dtype** fp32, bf16 or fp8 (``float8_e4m3fn`` with one fp32 scale per token and head).
  The context handed to the DiT is dequantized into a working buffer of the compute dtype.

No ``.item()`` and no host syncs: every offset is a Python int derived from shapes and the schedule, and
the camera poses used for selection live on the host already.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from relic.config import MemoryConfig

STORAGE_DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16,
                                          "fp8": torch.float8_e4m3fn}
FP8_MAX = 448.0  # largest finite float8_e4m3fn


# ------------------------------------------------------------------------------------ pooling

def compression_factor(index: int, cfg: MemoryConfig) -> int:
    """Per-axis pooling factor of memory latent ``index``: 1 for the first frame or without compression."""
    if index == 0 or not cfg.compress or not cfg.schedule:
        return 1
    return int(cfg.schedule[index % len(cfg.schedule)])


def pooled_grid(grid: tuple[int, int], s: int) -> tuple[int, int]:
    """Patch grid (gh, gw) after ceil-mode pooling by s per axis."""
    return -(-grid[0] // s), -(-grid[1] // s)


def pool_tokens(x: torch.Tensor, grid: tuple[int, int], s: int) -> torch.Tensor:
    """Average-pool tokens of one latent over its patch grid.

    Args:
        x: (... n c) with n = gh*gw tokens in (gh gw) order (K/V use c = h*d after a rearrange; positions c = 3).
        grid: (gh, gw); s: per-axis factor (ceil mode: edge windows average the tokens that exist).
    Returns:
        (... m c), m = ceil(gh/s) * ceil(gw/s), in the dtype of x (pooled in float32).
    """
    if s == 1:
        return x
    gh, gw = grid
    lead = x.shape[:-2]
    y = rearrange(x.float().reshape(-1, *x.shape[-2:]), "B (gh gw) c -> B c gh gw", gh=gh, gw=gw)
    y = F.avg_pool2d(y, kernel_size=s, stride=s, ceil_mode=True)
    y = rearrange(y, "B c gh gw -> B (gh gw) c")
    return y.reshape(*lead, *y.shape[-2:]).to(x.dtype)


@dataclass
class LatentKV:
    """Clean keys/values of one latent frame, all layers stacked.

    Attributes:
        index: latent index in the stream (0 = first frame).
        k, v: (l b n h d) pre-RoPE keys (with the pose embedding) and values.
        pos: (n 3) float token positions (t, h, w).
        grid: patch grid (gh, gw) with gh*gw = n.
    """

    index: int
    k: torch.Tensor
    v: torch.Tensor
    pos: torch.Tensor
    grid: tuple[int, int]

    @property
    def tokens(self) -> int:
        return int(self.pos.shape[0])

    def pooled(self, s: int) -> "LatentKV":
        """This latent pooled by s per axis (K, V and positions by the same operator)."""
        if s == 1:
            return self
        l_, b, n, h, d = self.k.shape
        k = rearrange(pool_tokens(rearrange(self.k, "l b n h d -> l b n (h d)"), self.grid, s),
                      "l b n (h d) -> l b n h d", h=h)
        v = rearrange(pool_tokens(rearrange(self.v, "l b n h d -> l b n (h d)"), self.grid, s),
                      "l b n (h d) -> l b n h d", h=h)
        return LatentKV(self.index, k, v, pool_tokens(self.pos, self.grid, s), pooled_grid(self.grid, s))


def split_block_kv(kv: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], grid: tuple[int, int],
                   first_index: int) -> list[LatentKV]:
    """DiT ``return_kv`` output of a block -> one :class:`LatentKV` per latent.

    Args:
        kv: per layer (k (b n h d), v (b n h d), pos (n 3)) with n = f*gh*gw in (f gh gw) order.
        grid: (gh, gw); first_index: latent index of the block's first latent.
    """
    k = torch.stack([t[0] for t in kv])
    v = torch.stack([t[1] for t in kv])
    pos = kv[0][2]
    n_lat = gh_gw = grid[0] * grid[1]
    f = pos.shape[0] // n_lat
    out = []
    for j in range(f):
        sl = slice(j * gh_gw, (j + 1) * gh_gw)
        out.append(LatentKV(first_index + j, k[:, :, sl], v[:, :, sl], pos[sl], grid))
    return out


# ------------------------------------------------------------------------------------ the plan

def memory_plan(num_latents: int, cfg: MemoryConfig, keep: Sequence[int] | None = None) -> list[tuple[int, int]]:
    """Which history latents the next block attends to, and their pooling factors.

    History = latents 0 .. num_latents-1 (all clean). Returns [(index, s)] in context order: the first
    frame (s = 1), memory latents in ascending index (s from the schedule; only those in ``keep`` when
    given), then the window latents (s = 1).
    """
    if num_latents <= 0:
        return []
    w = cfg.window
    n_win = (num_latents - 1) if w is None else min(w, num_latents - 1)
    win_start = num_latents - n_win
    keep_set = None if keep is None else set(int(i) for i in keep)
    plan = [(0, 1)]
    for i in range(1, win_start):
        if keep_set is None or i in keep_set:
            plan.append((i, compression_factor(i, cfg)))
    plan.extend((i, 1) for i in range(win_start, num_latents))
    return plan


def check_rope_horizon(cfg: MemoryConfig) -> None:
    """A one-line ValueError unless ``rope_horizon`` is None or longer than the window."""
    h = cfg.rope_horizon
    if h is not None and (h < 1 or h <= (cfg.window or 0)):
        raise ValueError(f"memory rope_horizon must be None or a latent count > the window "
                         f"({cfg.window}), got {h}")


def retime(pos: torch.Tensor, query_index: int, cfg: MemoryConfig) -> torch.Tensor:
    """Context positions (n 3) as a block starting at latent ``query_index`` = i sees them under ``rope_horizon``.

    With H = ``cfg.rope_horizon`` and w = the window (0 when None): for i ≤ H (or H None) ``pos`` itself.
    Past H, a token at time t has distance d = i − t; d ≤ w is kept, a larger d becomes
    ``w + (d − w) · (H − w) / (i − w)``, so the first frame (d = i) lands at distance H, the order of the
    context is kept, and the mapping is continuous in i (the identity at i = H). RoPE depends only on
    query-key differences, so the queries keep their absolute positions. h and w positions are untouched.
    Returns a new tensor (the input is not modified).
    """
    h = cfg.rope_horizon
    if h is None or query_index <= h:
        return pos
    w = cfg.window or 0
    d = query_index - pos[:, 0]
    far = w + (d - w) * ((h - w) / (query_index - w))
    out = pos.clone()
    out[:, 0] = query_index - torch.where(d <= w, d, far)
    return out


@dataclass
class Context:
    """Context tokens for one block: k, v (l b n h d), pos (n 3)."""

    k: torch.Tensor
    v: torch.Tensor
    pos: torch.Tensor

    @property
    def tokens(self) -> int:
        return int(self.pos.shape[0])

    def layers(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The DiT's ``kv_context`` format: per layer (k (b n h d), v (b n h d), pos (n 3))."""
        return [(self.k[i], self.v[i], self.pos) for i in range(self.k.shape[0])]


def build_context(history: Sequence[LatentKV], cfg: MemoryConfig, keep: Sequence[int] | None = None,
                  dtype: torch.dtype | None = None) -> Context:
    """THE function that turns clean history K/V into the context tokens (first + memory + window).

    Used by the training code (ODE init, DMD replay) and as the reference for :class:`KVCache`.

    Args:
        history: clean latents 0 .. i-1 in index order (``history[j].index == j``).
        cfg: window, schedule, compression.
        keep: memory latent indices to keep (the budget selection; None = all).
        dtype: output dtype (default: that of the history).
    """
    for j, rec in enumerate(history):
        if rec.index != j:
            raise ValueError(f"history[{j}] has index {rec.index}; pass latents 0..i-1 in order")
    check_rope_horizon(cfg)
    parts = [history[i].pooled(s) for i, s in memory_plan(len(history), cfg, keep)]
    dtype = dtype or history[0].k.dtype
    pos = retime(torch.cat([p.pos for p in parts], 0).float(), len(history), cfg)
    return Context(torch.cat([p.k for p in parts], 2).to(dtype), torch.cat([p.v for p in parts], 2).to(dtype),
                   pos)


# ------------------------------------------------------------------------------------ selection

def view_overlap(R_mem: np.ndarray, P_mem: np.ndarray, R_cur: np.ndarray, P_cur: np.ndarray, fov_deg: float,
                 aspect: float, depths: Sequence[float], samples: int = 5) -> np.ndarray:
    """Frustum overlap of recorded views with the current view, in [0, 1].

    Points on a ``samples``×``samples`` pixel grid of the current camera at each depth in ``depths``
    (units of d̄, like the positions) are projected into every recorded camera; the score is the
    fraction that lands inside its frustum (in front of it, within the field of view).

    Args:
        R_mem: (m 3 3) world-to-camera rotations; P_mem: (m 3) positions; R_cur (3 3), P_cur (3,).
        fov_deg: horizontal field of view; aspect: width / height.
    """
    tx = math.tan(math.radians(fov_deg) / 2)
    ty = tx / aspect
    u = np.linspace(-tx, tx, samples)
    v = np.linspace(-ty, ty, samples)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    rays = np.stack([uu.ravel(), vv.ravel(), np.ones(uu.size)], -1)                   # (k 3), z = 1
    pts_cam = np.concatenate([rays * d for d in depths], 0)                           # (K 3)
    pts = pts_cam @ np.asarray(R_cur) + np.asarray(P_cur)                            # R^T x + P, row form
    rel = pts[None] - np.asarray(P_mem)[:, None]                                      # (m K 3)
    xc = np.einsum("mij,mkj->mki", np.asarray(R_mem), rel)
    z = xc[..., 2]
    zs = np.where(z > 1e-6, z, 1.0)
    inside = (z > 1e-6) & (np.abs(xc[..., 0] / zs) <= tx + 1e-9) & (np.abs(xc[..., 1] / zs) <= ty + 1e-9)
    return inside.mean(-1)


def selection_scores(indices: np.ndarray, R_mem: np.ndarray, P_mem: np.ndarray, R_cur: np.ndarray,
                     P_cur: np.ndarray, current_index: int, cfg: MemoryConfig, aspect: float) -> np.ndarray:
    """Score = view overlap + ``recency_weight`` * index / current_index (higher = keep)."""
    ov = view_overlap(R_mem, P_mem, R_cur, P_cur, cfg.fov_deg, aspect, cfg.overlap_depths)
    rec = np.asarray(indices, dtype=np.float64) / max(current_index, 1)
    return ov + cfg.recency_weight * rec


def select_memory(indices: Sequence[int], tokens: Sequence[int], scores: np.ndarray, room: int) -> list[int]:
    """Greedy: best score first (ties: newer first), add while the token room allows. Returns sorted indices."""
    order = sorted(range(len(indices)), key=lambda j: (-float(scores[j]), -int(indices[j])))
    chosen, used = [], 0
    for j in order:
        if used + tokens[j] <= room:
            chosen.append(int(indices[j]))
            used += tokens[j]
    return sorted(chosen)


# ------------------------------------------------------------------------------------ storage

class _Store:
    """Token storage in the storage dtype: k, v (l b cap h d) [+ fp8 scales (l b cap h)], pos (cap 3)."""

    def __init__(self, shape: tuple[int, int, int, int], capacity: int, dtype: str, device):
        self.l, self.b, self.h, self.d = shape
        self.dtype = dtype
        self.device = device
        self._alloc(capacity)

    def _alloc(self, cap: int) -> None:
        sd = STORAGE_DTYPES[self.dtype]
        self.cap = cap
        self.k = torch.empty(self.l, self.b, cap, self.h, self.d, dtype=sd, device=self.device)
        self.v = torch.empty_like(self.k)
        self.pos = torch.empty(cap, 3, dtype=torch.float32, device=self.device)
        if self.dtype == "fp8":
            self.ks = torch.empty(self.l, self.b, cap, self.h, dtype=torch.float32, device=self.device)
            self.vs = torch.empty_like(self.ks)

    def ensure(self, cap: int, used: int) -> None:
        """Grow (doubling) to hold ``cap`` tokens, keeping the first ``used``."""
        if cap <= self.cap:
            return
        old = (self.k, self.v, self.pos, getattr(self, "ks", None), getattr(self, "vs", None))
        self._alloc(max(cap, 2 * self.cap))
        self.k[:, :, :used] = old[0][:, :, :used]
        self.v[:, :, :used] = old[1][:, :, :used]
        self.pos[:used] = old[2][:used]
        if self.dtype == "fp8":
            self.ks[:, :, :used] = old[3][:, :, :used]
            self.vs[:, :, :used] = old[4][:, :, :used]

    def write(self, off: int, k: torch.Tensor, v: torch.Tensor, pos: torch.Tensor) -> None:
        """Store compute-dtype k, v (l b n h d) and pos (n 3) at token offset ``off``."""
        n = pos.shape[0]
        if self.dtype == "fp8":
            for src, dst, sc in ((k, self.k, self.ks), (v, self.v, self.vs)):
                scale = src.float().abs().amax(-1).clamp_min(1e-12) / FP8_MAX          # (l b n h)
                sc[:, :, off:off + n] = scale
                dst[:, :, off:off + n] = (src.float() / scale[..., None]).to(torch.float8_e4m3fn)
        else:
            self.k[:, :, off:off + n] = k
            self.v[:, :, off:off + n] = v
        self.pos[off:off + n] = pos

    def read(self, off: int, n: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tokens [off, off+n) dequantized to ``dtype``: k, v (l b n h d), pos (n 3)."""
        k, v = self.k[:, :, off:off + n], self.v[:, :, off:off + n]
        if self.dtype == "fp8":
            k = (k.float() * self.ks[:, :, off:off + n, :, None]).to(dtype)
            v = (v.float() * self.vs[:, :, off:off + n, :, None]).to(dtype)
        else:
            k, v = k.to(dtype), v.to(dtype)
        return k, v, self.pos[off:off + n]

    def copy_raw(self, dst: int, src: int, n: int) -> None:
        """Move tokens [src, src+n) to dst (overlap-safe)."""
        for t in (self.k, self.v) + ((self.ks, self.vs) if self.dtype == "fp8" else ()):
            t[:, :, dst:dst + n] = t[:, :, src:src + n].clone()
        self.pos[dst:dst + n] = self.pos[src:src + n].clone()

    def bytes_per_token(self) -> int:
        elem = torch.empty((), dtype=STORAGE_DTYPES[self.dtype]).element_size()
        per = 2 * self.l * self.b * self.h * self.d * elem + 3 * 4
        if self.dtype == "fp8":
            per += 2 * self.l * self.b * self.h * 4
        return per


@dataclass
class _Entry:
    index: int
    offset: int
    tokens: int
    s: int
    R: np.ndarray
    P: np.ndarray


class KVCache:
    """Streaming KV cache: first frame + compressed memory + rolling window, following :func:`memory_plan`.

    Usage per block: ``ctx = cache.context(R_cur, P_cur)`` (the DiT's ``kv_context`` is ``ctx.layers()``),
    denoise, then ``cache.push(latent_kv, R, P)`` for every clean latent of the block (latent 0 first).

    Args:
        cfg: memory config (window, schedule, budget, storage dtype).
        num_layers, heads, head_dim: DiT sizes; grid: patch grid (gh, gw) of one latent; batch: b.
        compute_dtype: dtype of the returned context; device: where the buffers live.
        capacity_latents: initial storage capacity hint in latents (buffers grow by doubling past it).
    """

    def __init__(self, cfg: MemoryConfig, *, num_layers: int, heads: int, head_dim: int, grid: tuple[int, int],
                 batch: int = 1, compute_dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
                 capacity_latents: int = 64):
        if cfg.dtype not in STORAGE_DTYPES:
            raise ValueError(f"memory dtype must be one of {sorted(STORAGE_DTYPES)}, got {cfg.dtype!r}")
        if cfg.window is not None and cfg.window < 0:
            raise ValueError(f"memory window must be >= 0 or None, got {cfg.window}")
        check_rope_horizon(cfg)
        self.cfg = cfg
        self.grid = (int(grid[0]), int(grid[1]))
        self.T = self.grid[0] * self.grid[1]
        # the stream's clean first latent (b c h w), kept for DiTs with ``warp_condition`` (set by the student's
        # ``write_first``); the cache itself never reads it
        self.first_latent: torch.Tensor | None = None
        self.compute_dtype = compute_dtype
        self.device = torch.device(device)
        shape = (num_layers, batch, heads, head_dim)
        fixed = self.T * (1 + (cfg.window if cfg.window is not None else 0))
        if cfg.token_budget is not None and cfg.token_budget < fixed:
            raise ValueError(f"memory token_budget {cfg.token_budget} is below the first frame + window "
                             f"({fixed} tokens at {self.grid[0]}x{self.grid[1]} tokens per latent)")
        self._archive = _Store(shape, self.T * max(capacity_latents // 4, 2), cfg.dtype, self.device)
        n_slots = cfg.window if cfg.window is not None else capacity_latents
        self._window = _Store(shape, self.T * max(n_slots, 1), cfg.dtype, self.device)
        ctx_cap = cfg.token_budget or self.T * (1 + max(n_slots, 1) + capacity_latents // 4)
        self._ctx_k = torch.empty(num_layers, batch, ctx_cap, heads, head_dim, dtype=compute_dtype, device=self.device)
        self._ctx_v = torch.empty_like(self._ctx_k)
        self._ctx_pos = torch.empty(ctx_cap, 3, dtype=torch.float32, device=self.device)
        self.reset()

    # -- state
    def reset(self) -> None:
        """Forget everything (buffers are kept)."""
        self._entries: list[_Entry] = []          # archive: first frame + pooled memory latents
        self._arch_used = 0
        self._win: list[tuple[int, np.ndarray, np.ndarray]] = []   # (index, R, P), oldest first
        self._win_slot: dict[int, int] = {}       # latent index -> window slot
        self._ctx_segments: list[tuple[int, int]] = []  # what the working buffer holds: (index, s)
        self._ctx_tokens = 0
        self.num_latents = 0
        self.last_plan: list[tuple[int, int]] = []

    @property
    def aspect(self) -> float:
        return self.grid[1] / self.grid[0]

    # -- writing
    def push(self, rec: LatentKV, R: np.ndarray | None = None, P: np.ndarray | None = None) -> None:
        """Add the next clean latent (its index must be ``num_latents``) with its camera pose (R, P)."""
        if rec.index != self.num_latents:
            raise ValueError(f"expected latent {self.num_latents}, got {rec.index}")
        if rec.grid != self.grid:
            raise ValueError(f"latent grid {rec.grid} != cache grid {self.grid}")
        R = np.eye(3) if R is None else np.asarray(R, dtype=np.float64)
        P = np.zeros(3) if P is None else np.asarray(P, dtype=np.float64)
        k, v = rec.k.to(self.compute_dtype), rec.v.to(self.compute_dtype)
        if rec.index == 0:
            self._archive_append(LatentKV(0, k, v, rec.pos, rec.grid), 1, R, P)
        else:
            w = self.cfg.window
            if w is not None and w > 0 and len(self._win) == w:
                self._retire_oldest(R, P)
            if w == 0:
                self._archive_append(LatentKV(rec.index, k, v, rec.pos, rec.grid),
                                     compression_factor(rec.index, self.cfg), R, P, pool=True)
            else:
                slot = self._free_slot()
                self._window.ensure((slot + 1) * self.T, self._window.cap)
                self._window.write(slot * self.T, k, v, rec.pos)
                self._win.append((rec.index, R, P))
                self._win_slot[rec.index] = slot
        self.num_latents += 1

    def push_block(self, kv: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], R: np.ndarray,
                   P: np.ndarray) -> None:
        """Push the DiT ``return_kv`` of a clean block (latents num_latents ..) with poses R (f 3 3), P (f 3)."""
        for j, rec in enumerate(split_block_kv(kv, self.grid, self.num_latents)):
            self.push(rec, R[j], P[j])

    def _free_slot(self) -> int:
        used = set(self._win_slot.values())
        slot = 0
        while slot in used:
            slot += 1
        return slot

    def _retire_oldest(self, R_cur: np.ndarray, P_cur: np.ndarray) -> None:
        index, R, P = self._win.pop(0)
        slot = self._win_slot.pop(index)
        s = compression_factor(index, self.cfg)
        if s == 1 and self.cfg.dtype == "fp8":
            # copy the quantized tokens as they are (no second rounding)
            off = self._reserve(self.T)
            for name in ("k", "v", "ks", "vs"):
                getattr(self._archive, name)[:, :, off:off + self.T] = \
                    getattr(self._window, name)[:, :, slot * self.T:(slot + 1) * self.T]
            self._archive.pos[off:off + self.T] = self._window.pos[slot * self.T:(slot + 1) * self.T]
            self._entries.append(_Entry(index, off, self.T, 1, R, P))
        else:
            k, v, pos = self._window.read(slot * self.T, self.T, self.compute_dtype)
            self._archive_append(LatentKV(index, k, v, pos, self.grid), s, R, P, pool=True)
        self._enforce_archive_cap(R_cur, P_cur)

    def _reserve(self, n: int) -> int:
        off = self._arch_used
        self._archive.ensure(off + n, self._arch_used)
        self._arch_used += n
        return off

    def _archive_append(self, rec: LatentKV, s: int, R, P, pool: bool = False) -> None:
        p = rec.pooled(s) if pool else rec
        off = self._reserve(p.tokens)
        self._archive.write(off, p.k, p.v, p.pos)
        self._entries.append(_Entry(rec.index, off, p.tokens, s, R, P))

    def _enforce_archive_cap(self, R_cur, P_cur) -> None:
        cap = self.cfg.archive_latents
        while cap is not None and len(self._entries) - 1 > cap:
            mem = self._entries[1:]
            sc = self._scores(mem, R_cur, P_cur)
            drop = mem[int(np.argmin(sc))]
            self._drop(drop)

    def _drop(self, e: _Entry) -> None:
        i = self._entries.index(e)
        tail = self._arch_used - (e.offset + e.tokens)
        if tail:
            self._archive.copy_raw(e.offset, e.offset + e.tokens, tail)
        for later in self._entries[i + 1:]:
            later.offset -= e.tokens
        self._entries.pop(i)
        self._arch_used -= e.tokens
        self._ctx_segments = []                    # offsets moved: rebuild the working buffer next time
        self._ctx_tokens = 0

    def _scores(self, mem: list[_Entry], R_cur, P_cur) -> np.ndarray:
        if not mem:
            return np.zeros(0)
        return selection_scores(np.array([e.index for e in mem]), np.stack([e.R for e in mem]),
                                np.stack([e.P for e in mem]), R_cur, P_cur, self.num_latents, self.cfg, self.aspect)

    # -- reading
    def memory_selection(self, R_cur: np.ndarray | None = None, P_cur: np.ndarray | None = None) -> list[int] | None:
        """Memory latent indices the next block attends to (None = all: no budget and no archive cap)."""
        if self.cfg.token_budget is None:
            return None if self.cfg.archive_latents is None else [e.index for e in self._entries[1:]]
        if R_cur is None:
            R_cur, P_cur = self._latest_pose()
        mem = self._entries[1:]
        room = self.cfg.token_budget - self.T * (1 + len(self._win))
        if sum(e.tokens for e in mem) <= room:
            return [e.index for e in mem]
        sc = self._scores(mem, np.asarray(R_cur, dtype=np.float64), np.asarray(P_cur, dtype=np.float64))
        return select_memory([e.index for e in mem], [e.tokens for e in mem], sc, room)

    def _latest_pose(self) -> tuple[np.ndarray, np.ndarray]:
        if self._win:
            return self._win[-1][1], self._win[-1][2]
        return self._entries[-1].R, self._entries[-1].P

    def plan(self, R_cur: np.ndarray | None = None, P_cur: np.ndarray | None = None) -> list[tuple[int, int]]:
        """The (index, s) segments of the next context; equals :func:`memory_plan` with the same selection."""
        keep = self.memory_selection(R_cur, P_cur)
        return memory_plan(self.num_latents, self.cfg, keep)

    def context(self, R_cur: np.ndarray | None = None, P_cur: np.ndarray | None = None) -> Context:
        """Context tokens for the next block (views into the working buffer, valid until the next call).

        (R_cur, P_cur): the camera of the block about to be generated (selection under a token budget;
        default: the newest pushed latent's pose).
        """
        if self.num_latents == 0:
            raise RuntimeError("the cache is empty: push the first-frame latent first")
        plan = self.plan(R_cur, P_cur)
        self.last_plan = plan
        keep = 0
        for a, b in zip(plan, self._ctx_segments):
            if a != b or a[0] in self._win_slot:
                break
            keep += 1
        off = sum(self._seg_tokens(seg) for seg in plan[:keep])
        total = off + sum(self._seg_tokens(seg) for seg in plan[keep:])
        self._ensure_ctx(total, off)
        entries = {e.index: e for e in self._entries}
        for index, s in plan[keep:]:
            if index in self._win_slot and (index != 0):
                k, v, pos = self._window.read(self._win_slot[index] * self.T, self.T, self.compute_dtype)
            else:
                e = entries[index]
                k, v, pos = self._archive.read(e.offset, e.tokens, self.compute_dtype)
            n = pos.shape[0]
            self._ctx_k[:, :, off:off + n] = k
            self._ctx_v[:, :, off:off + n] = v
            self._ctx_pos[off:off + n] = pos
            off += n
        self._ctx_segments = plan
        self._ctx_tokens = total
        return Context(self._ctx_k[:, :, :total], self._ctx_v[:, :, :total],
                       retime(self._ctx_pos[:total], self.num_latents, self.cfg))

    def _seg_tokens(self, seg: tuple[int, int]) -> int:
        index, s = seg
        if index in self._win_slot:
            return self.T
        gh, gw = pooled_grid(self.grid, s)
        return gh * gw

    def _ensure_ctx(self, total: int, keep: int) -> None:
        cap = self._ctx_k.shape[2]
        if total <= cap:
            return
        new_cap = max(total, 2 * cap)
        k = torch.empty(*self._ctx_k.shape[:2], new_cap, *self._ctx_k.shape[3:], dtype=self.compute_dtype,
                        device=self.device)
        v = torch.empty_like(k)
        pos = torch.empty(new_cap, 3, dtype=torch.float32, device=self.device)
        k[:, :, :keep] = self._ctx_k[:, :, :keep]
        v[:, :, :keep] = self._ctx_v[:, :, :keep]
        pos[:keep] = self._ctx_pos[:keep]
        self._ctx_k, self._ctx_v, self._ctx_pos = k, v, pos

    # -- stats
    def stats(self) -> dict:
        """tokens: context tokens of the last plan; bytes: stored K/V bytes (storage dtype, incl. scales and
        positions); context_bytes: the working buffer's used bytes; latents, memory_latents."""
        bpt = self._archive.bytes_per_token()
        stored = self._arch_used + self.T * len(self._win)
        ctx_tokens = sum(self._seg_tokens(s) for s in self.last_plan) if self.last_plan else 0
        elem = torch.empty((), dtype=self.compute_dtype).element_size()
        l_, b, _, h, d = self._ctx_k.shape
        return {"latents": self.num_latents, "memory_latents": max(len(self._entries) - 1, 0),
                "window_latents": len(self._win), "tokens": ctx_tokens, "stored_tokens": stored,
                "bytes": stored * bpt, "context_bytes": ctx_tokens * (2 * l_ * b * h * d * elem + 12)}
