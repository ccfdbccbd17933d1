"""Attention and 3D rotary position embedding (RoPE) for the Wan-2.1 DiT.

Token layout: a latent video (f h w) of patch-grid size is flattened as einops ``(f h w)`` (time slowest,
width fastest). Each token has a float position ``(t, h, w)``; :func:`token_positions` builds the grid ones.
Positions may be ANY float: the runtime's compressed memory pools keys spatially and rotates them at the
pooled (averaged) positions.

RoPE follows Wan: each head of size d is split into a time part of ``d - 4*(d//6)`` channels and height
and width parts of ``2*(d//6)`` each (44/42/42 at d=128); channels are rotated in interleaved pairs
(2i, 2i+1) by angle ``pos * theta**(-2i/d_axis)``. Two extensions for horizons longer than pre-training
act on the time axis only (:class:`RopeScaling`):

- ``"pi"`` (position interpolation): time positions are divided by ``scale``;
- ``"ntk"``: the time axis base becomes ``theta * scale**(d_t / (d_t - 2))``.

:func:`attention` is the one attention entry point, with a swappable backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from einops import rearrange

Backend = Literal["auto", "sdpa", "flash", "math"]

_DEFAULT_BACKEND: Backend = "auto"


def set_attention_backend(backend: Backend) -> None:
    """Choose the process-wide default backend for :func:`attention` (``"auto"`` = flash if usable, else SDPA)."""
    global _DEFAULT_BACKEND
    if backend not in ("auto", "sdpa", "flash", "math"):
        raise ValueError(f"unknown attention backend {backend!r}")
    _DEFAULT_BACKEND = backend


def _load_flash():
    """flash-attn's ``flash_attn_func``: FlashAttention 3 (``flash_attn_interface``, Hopper) when installed
    and the GPU is sm90, else FlashAttention 2 (``flash_attn``), else None. Resolved once at import, so
    that :func:`attention` stays traceable by torch.compile (fullgraph)."""
    try:
        if torch.cuda.is_available() and torch.cuda.get_device_capability()[0] == 9:
            from flash_attn_interface import flash_attn_func as fa3  # type: ignore[import-not-found]

            def fa3_func(q, k, v):
                out = fa3(q, k, v)
                return out[0] if isinstance(out, tuple) else out   # some FA3 versions also return the LSE

            return fa3_func
    except ImportError:
        pass
    try:
        from flash_attn import flash_attn_func  # type: ignore[import-not-found]
    except ImportError:
        return None
    return flash_attn_func


_FLASH = _load_flash()


def _flash_attn_func():
    return _FLASH


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None,
              backend: Backend | None = None) -> torch.Tensor:
    """Scaled dot-product attention.

    Args:
        q: (b n h d) queries; k, v: (b m h d) keys and values.
        mask: optional bool mask broadcastable to (b h n m); True = may attend. Every query row must
            keep at least one key.
        backend: "sdpa" (PyTorch scaled_dot_product_attention), "flash" (flash-attn; CUDA, fp16/bf16,
            no mask), "math" (explicit softmax, a reference), or "auto" / None = the default
            (:func:`set_attention_backend`): flash when installed, on CUDA, half precision and no mask;
            SDPA otherwise.
    Returns:
        (b n h d)
    """
    backend = backend or _DEFAULT_BACKEND
    if backend in ("auto", "flash"):
        fn = _flash_attn_func()
        usable = (fn is not None and q.is_cuda and mask is None and q.dtype in (torch.float16, torch.bfloat16))
        if usable:
            return fn(q, k, v)
        if backend == "flash":
            raise RuntimeError("flash-attn backend needs the flash_attn package, CUDA, fp16/bf16 and no mask")
    qt, kt, vt = (rearrange(t, "b n h d -> b h n d") for t in (q, k, v))
    if backend == "math":
        scores = torch.einsum("bhnd,bhmd->bhnm", qt.float(), kt.float()) / math.sqrt(q.shape[-1])
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        out = torch.einsum("bhnm,bhmd->bhnd", scores.softmax(-1), vt.float()).to(q.dtype)
    else:
        out = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=mask)
    return rearrange(out, "b h n d -> b n h d")


# ----------------------------------------------------------------------------------------------- RoPE

def rope_split(head_dim: int) -> tuple[int, int, int]:
    """Channels per axis (t, h, w) of one head, as Wan: (d - 4*(d//6), 2*(d//6), 2*(d//6))."""
    hw = 2 * (head_dim // 6)
    return head_dim - 2 * hw, hw, hw


def token_positions(f: int, h: int, w: int, frame_offset: int | float = 0,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """Grid positions of f*h*w tokens in ``(f h w)`` order: (f*h*w, 3) float32 rows (t, h, w).

    ``t = frame_offset + frame index``; h and w are patch-grid indices.
    """
    t = torch.arange(f, dtype=torch.float32, device=device) + frame_offset
    hh = torch.arange(h, dtype=torch.float32, device=device)
    ww = torch.arange(w, dtype=torch.float32, device=device)
    grid = torch.stack(torch.meshgrid(t, hh, ww, indexing="ij"), dim=-1)
    return rearrange(grid, "f h w c -> (f h w) c")


@dataclass(frozen=True)
class RopeScaling:
    """RoPE extension on the time axis: ``mode`` "none", "pi" or "ntk" with factor ``scale``."""

    mode: Literal["none", "pi", "ntk"] = "none"
    scale: float = 1.0


class Rope3D(torch.nn.Module):
    """Wan's 3D RoPE evaluated at arbitrary float positions.

    ``angles(pos)`` gives (n, d/2) rotation angles, ``freqs(pos)`` the matching complex rotations, and
    :meth:`rotate` applies them to (b n h d) tensors. Angles are computed in float64 (as diffusers' Wan
    tables), the rotation in float32.
    """

    def __init__(self, head_dim: int, theta: float = 10000.0, scaling: RopeScaling = RopeScaling()):
        super().__init__()
        if head_dim % 2 or head_dim < 6:
            raise ValueError(f"RoPE needs an even head_dim >= 6, got {head_dim}")
        if scaling.mode not in ("none", "pi", "ntk"):
            raise ValueError(f"unknown rope_scaling {scaling.mode!r}")
        if scaling.scale <= 0:
            raise ValueError(f"rope_scale must be positive, got {scaling.scale}")
        self.head_dim = head_dim
        self.split = rope_split(head_dim)
        self.scaling = scaling
        freqs = []
        for axis, d in enumerate(self.split):
            base = theta
            if axis == 0 and scaling.mode == "ntk":
                base = theta * scaling.scale ** (d / (d - 2))
            freqs.append(1.0 / base ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
        # (3, d/2) frequency per channel pair, zero outside the axis' own channels
        table = torch.zeros(3, head_dim // 2, dtype=torch.float64)
        start = 0
        for axis, fr in enumerate(freqs):
            table[axis, start:start + fr.numel()] = fr
            start += fr.numel()
        pos_scale = torch.ones(3, dtype=torch.float64)
        if scaling.mode == "pi":
            pos_scale[0] = 1.0 / scaling.scale
        self.register_buffer("freq_table", table * pos_scale[:, None], persistent=False)

    def _apply(self, fn, recurse=True):
        """Module dtype casts (``.to(torch.bfloat16)``, ``.half()``) move the table but keep it float64:
        angles are position x frequency products that bf16 would round to useless precision."""
        table = self.freq_table
        super()._apply(fn, recurse)
        if self.freq_table.dtype != torch.float64:
            self.freq_table = table.to(self.freq_table.device)   # the float64 original, on the new device
        return self

    def angles(self, pos: torch.Tensor) -> torch.Tensor:
        """(n, 3) float positions (t, h, w) -> (n, d/2) float64 angles."""
        return pos.to(torch.float64) @ self.freq_table.to(pos.device)

    def freqs(self, pos: torch.Tensor) -> torch.Tensor:
        """(n, 3) positions -> (n, d/2) complex64 rotations exp(i * angle)."""
        a = self.angles(pos)
        return torch.polar(torch.ones_like(a), a).to(torch.complex64)

    @staticmethod
    def rotate(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
        """Rotate interleaved channel pairs of x (b n h d) by per-token rotations ``freqs`` (n, d/2) complex.

        The pair (x[2i], x[2i+1]) is the complex number x[2i] + i x[2i+1]; computed in float32.
        """
        xc = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)))
        out = torch.view_as_real(xc * freqs[None, :, None, :]).flatten(-2)
        return out.to(x.dtype)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """x (b n h d) rotated at positions pos (n, 3)."""
        return self.rotate(x, self.freqs(pos))
