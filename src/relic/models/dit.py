"""The Wan-2.1 diffusion transformer with RELIC's action and pose conditioning (paper §4.1).

Read top to bottom: :class:`SelfAttention`, :class:`CrossAttention`, :class:`Block`, :class:`Head`,
:class:`DiT`. Parameter names follow the ORIGINAL Wan-2.1 code (``blocks.N.self_attn.q``, ``norm3``,
``modulation``, ``head.head``, ...); :mod:`relic.models.weights` also reads diffusers' names.

Shapes (einops letters): b batch, c latent channels, f latent frames, h w patch-grid height/width,
n tokens = f*h*w in ``(f h w)`` order, L text tokens, d model dim, heads x hd attention heads.

Per-frame timesteps (b f): every latent frame's tokens get their own adaLN modulation, so blocks of a
sequence can sit at different noise levels (diffusion forcing, the causal student). Image-to-video is a
clean first latent at timestep 0.

Streaming contract (used by the runtime's KV cache): ``forward(..., frame_offset, attn_mask, kv_context,
return_kv)``. ``frame_offset`` is the absolute latent index of x's first frame (RoPE time position =
frame_offset + local frame index). ``kv_context`` holds one ``(k, v, pos)`` per layer of extra keys and
values the current tokens attend to (keys PRE-RoPE, already pose-conditioned and RMS-normalized; pos
(m, 3) float positions where they are rotated), placed BEFORE the current tokens. ``attn_mask`` is an
optional bool mask (b|1, 1, n, m + n) over [context, current] keys (True = attend). ``return_kv=True``
also returns the current tokens' ``(k, v, pos)`` per layer in the same form.

Ulysses sequence parallelism (paper §4.5, :mod:`relic.models.sequence_parallel`): after
:meth:`DiT.set_sequence_parallel` every rank of the group holds 1/P of each latent frame's tokens outside
attention; self-attention all-to-alls to head-parallel and back. Inputs and outputs stay global (x and the
prediction are the full tensors on every rank; ``attn_mask`` and positions are over the global tokens),
but ``kv_context`` and ``return_kv`` k/v are HEAD shards ``(b m heads/P hd)`` with all m tokens: the
layout of the KV cache on each rank. Training and inference share this path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

from relic.config import DiTConfig
from relic.errors import UserError
from relic.models.attention import Rope3D, RopeScaling, attention, token_positions
from relic.models.conditioning import (ActionEncoder, PoseEncoder, RayEncoder, WarpEncoder, camera_rays,
                                       group_actions, plane_warp, timestep_features, token_coords)
from relic.models.sequence_parallel import SequenceParallel, gather_frames, head_to_seq, seq_to_head, shard_frames
from relic.models.weights import (CONFIG_NAME, DIT_NEW_OK, WEIGHTS_NAME, dit_config_from_json, dit_key_format,
                                  dit_state_from_diffusers, load_checked, load_state, save_pretrained)

KV = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # k (b m heads hd), v (b m heads hd), pos (m 3)


def _layer_norm(x: torch.Tensor, eps: float) -> torch.Tensor:
    """LayerNorm without affine parameters, computed in float32."""
    return F.layer_norm(x.float(), x.shape[-1:], eps=eps)


def _rms(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Q/K RMSNorm computed in float32 with the weight cast to float32 (one fused kernel whatever the weight
    dtype: mixing fp32 input and bf16 weight would fall back to the unfused path), returned in x's dtype."""
    if isinstance(norm, nn.Identity):
        return x
    return F.rms_norm(x.float(), norm.normalized_shape, norm.weight.float(), norm.eps).to(x.dtype)


def _per_frame(x: torch.Tensor, f: int) -> torch.Tensor:
    """(b (f s) d) -> (b f s d) view."""
    return x.unflatten(1, (f, -1))


class _Attention(nn.Module):
    """The projections shared by self- and cross-attention: q, k, v, o (dim -> dim) and Q/K RMSNorm."""

    def __init__(self, dim: int, num_heads: int, qk_norm: bool = True, eps: float = 1e-6):
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = nn.RMSNorm(dim, eps=eps) if qk_norm else nn.Identity()
        self.norm_k = nn.RMSNorm(dim, eps=eps) if qk_norm else nn.Identity()


class SelfAttention(_Attention):
    """Self-attention with Q/K RMSNorm over the full dim, pose offsets on q/k, and 3D RoPE."""

    def forward(self, x: torch.Tensor, f: int, rope: Rope3D, freqs: torch.Tensor,
                pos: torch.Tensor, pose_qk: torch.Tensor | None = None, ctx: KV | None = None,
                ctx_freqs: torch.Tensor | None = None, attn_mask: torch.Tensor | None = None,
                sp: SequenceParallel | None = None) -> tuple[torch.Tensor, KV]:
        """x (b n d) -> (b n d) and the current tokens' (k pre-RoPE, v, pos).

        pose_qk: (b f 1|s 2 d) query/key offsets per frame or per token; ctx: extra (k, v, pos) attended before
        x's tokens.
        With ``sp``, x is this rank's (b f*s/P d) token shard; q/k/v go head-parallel for attention (all n
        tokens, heads/P), ctx and the returned k, v are head shards, pos/freqs/attn_mask are global.
        """
        q, k, v = self.q(x), self.k(x), self.v(x)
        if pose_qk is not None:
            q = (_per_frame(q, f) + pose_qk[:, :, :, 0].to(q.dtype)).flatten(1, 2)
            k = (_per_frame(k, f) + pose_qk[:, :, :, 1].to(k.dtype)).flatten(1, 2)
        q, k = _rms(self.norm_q, q), _rms(self.norm_k, k)
        q, k, v = (rearrange(t, "b n (h d) -> b n h d", h=self.num_heads) for t in (q, k, v))
        if sp is not None:
            q, k, v = (seq_to_head(t, sp, f) for t in (q, k, v))
        kv = (k, v, pos)
        qr, kr = rope.rotate(q, freqs), rope.rotate(k, freqs)
        if ctx is not None:
            ck, cv, _ = ctx
            ck = ck.to(kr.dtype)                  # ctx_freqs None: the keys come RoPE-rotated already
            kr = torch.cat([ck if ctx_freqs is None else rope.rotate(ck, ctx_freqs), kr], dim=1)
            v = torch.cat([cv.to(v.dtype), v], dim=1)
        out = attention(qr, kr, v, mask=attn_mask)
        if sp is not None:
            out = head_to_seq(out, sp, f)
        return self.o(rearrange(out, "b n h d -> b n (h d)")), kv


class CrossAttention(_Attention):
    """Attention from video tokens to text tokens (no RoPE); the text keys/values can be precomputed."""

    def text_kv(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embedded text (b L d) -> k, v (b L heads hd)."""
        k, v = self.k(text), self.v(text)
        k = _rms(self.norm_k, k)
        return (rearrange(k, "b l (h d) -> b l h d", h=self.num_heads),
                rearrange(v, "b l (h d) -> b l h d", h=self.num_heads))

    def forward(self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor],
                mask: torch.Tensor | None) -> torch.Tensor:
        """x (b n d), text k/v (b L heads hd), mask (b 1 1 L) bool or None -> (b n d)."""
        q = self.q(x)
        q = rearrange(_rms(self.norm_q, q), "b n (h d) -> b n h d", h=self.num_heads)
        k, v = kv
        out = attention(q, k.to(q.dtype), v.to(q.dtype), mask=mask)
        return self.o(rearrange(out, "b n h d -> b n (h d)"))


class Block(nn.Module):
    """One Wan block: adaLN self-attention (+ action offset after it), cross-attention, adaLN FFN."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        d = cfg.dim
        self.eps = cfg.eps
        self.self_attn = SelfAttention(d, cfg.num_heads, cfg.qk_norm, cfg.eps)
        self.norm3 = nn.LayerNorm(d, eps=cfg.eps) if cfg.cross_attn_norm else nn.Identity()
        self.cross_attn = CrossAttention(d, cfg.num_heads, cfg.qk_norm, cfg.eps)
        self.ffn = nn.Sequential(nn.Linear(d, cfg.ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(cfg.ffn_dim, d))
        self.modulation = nn.Parameter(torch.randn(1, 6, d) / d ** 0.5)

    def text_kv(self, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embedded text (b L d) -> this block's cross-attention k, v (b L heads hd)."""
        return self.cross_attn.text_kv(text)

    def forward(self, x: torch.Tensor, e: torch.Tensor, text_kv, text_mask, rope, freqs, pos,
                act: torch.Tensor | None, pose_qk: torch.Tensor | None, ctx: KV | None, ctx_freqs,
                attn_mask: torch.Tensor | None, sp: SequenceParallel | None = None) -> tuple[torch.Tensor, KV]:
        """x (b n d) float32 residual stream, e (b f 6 d) time projection, act (b f 1|s d) the action offset
        (one per frame, or per token with ``action_coords`` / ``camera_rays``), pose_qk (b f 1|s 2 d) the query/key
        offsets (per token with ``camera_rays``).

        text_kv: this block's precomputed (k, v), or the embedded text (b L d) to compute them from here.
        """
        f = e.shape[1]
        if isinstance(text_kv, torch.Tensor):     # not self.text_kv: FSDP wraps that as a separate forward
            text_kv = self.cross_attn.text_kv(text_kv)
        mod = (self.modulation.float() + e.float()).unsqueeze(3)  # (b f 6 1 d): broadcast over a frame's tokens
        shift_sa, scale_sa, gate_sa, shift_ff, scale_ff, gate_ff = mod.unbind(2)
        wdt = self.self_attn.q.weight.dtype

        xn = (_per_frame(_layer_norm(x, self.eps), f) * (1 + scale_sa) + shift_sa).flatten(1, 2)
        y, kv = self.self_attn(xn.to(wdt), f, rope, freqs, pos, pose_qk, ctx, ctx_freqs, attn_mask, sp)
        x = (_per_frame(x, f) + y.float().unflatten(1, (f, -1)) * gate_sa)
        if act is not None:
            x = x + act.float()
        x = x.flatten(1, 2)

        xn = self.norm3(x) if isinstance(self.norm3, nn.Identity) else F.layer_norm(
            x, x.shape[-1:], self.norm3.weight.float(), self.norm3.bias.float(), self.eps)
        x = x + self.cross_attn(xn.to(wdt), text_kv, text_mask).float()

        xn = (_per_frame(_layer_norm(x, self.eps), f) * (1 + scale_ff) + shift_ff).flatten(1, 2)
        y = self.ffn(xn.to(wdt)).float()
        x = (_per_frame(x, f) + y.unflatten(1, (f, -1)) * gate_ff).flatten(1, 2)
        return x, kv


class Head(nn.Module):
    """Final adaLN (its own (1, 2, d) table, modulated by the time embedding) and the patch projection."""

    def __init__(self, dim: int, out_features: int, eps: float):
        super().__init__()
        self.eps = eps
        self.head = nn.Linear(dim, out_features)
        self.modulation = nn.Parameter(torch.randn(1, 2, dim) / dim ** 0.5)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """x (b n d), temb (b f d) -> (b n out_features)."""
        f = temb.shape[1]
        shift, scale = (self.modulation.float() + temb.float().unsqueeze(2)).unsqueeze(3).unbind(2)
        xn = (_per_frame(_layer_norm(x, self.eps), f) * (1 + scale) + shift).flatten(1, 2)
        return self.head(xn.to(self.head.weight.dtype))


@dataclass
class TextContext:
    """Precomputed cross-attention keys/values of a prompt: reuse it across denoising steps and blocks.

    kv: one (k, v) per layer, each (b L heads hd); mask: (b 1 1 L) bool or None (attend to every token).
    """

    kv: list[tuple[torch.Tensor, torch.Tensor]]
    mask: torch.Tensor | None


class DiT(nn.Module):
    """Wan-2.1 DiT + RELIC action/pose conditioning (+ per-token camera rays with ``cfg.camera_rays``). See the
    module docstring for shapes and streaming."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        if d % cfg.num_heads:
            raise ValueError(f"dim {d} is not divisible by num_heads {cfg.num_heads}")
        self.patch_embedding = nn.Conv3d(cfg.in_channels, d, kernel_size=cfg.patch_size, stride=cfg.patch_size)
        self.text_embedding = nn.Sequential(nn.Linear(cfg.text_dim, d), nn.GELU(approximate="tanh"),
                                            nn.Linear(d, d))
        self.time_embedding = nn.Sequential(nn.Linear(cfg.freq_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.head = Head(d, cfg.out_channels * math.prod(cfg.patch_size), cfg.eps)
        self.action_encoder = ActionEncoder(d, cfg.num_layers, cfg.action_hidden, cfg.action_dim,
                                            cfg.temporal_compression, coords=cfg.action_coords)
        self.pose_encoder = PoseEncoder(d, cfg.num_layers, cfg.pose_hidden)
        self.ray_encoder = RayEncoder(d, cfg.num_layers, cfg.pose_hidden) if cfg.camera_rays else None
        if cfg.warp_condition and cfg.patch_size[0] != 1:
            raise ValueError("warp_condition needs a temporal patch size of 1 (one pose per latent frame)")
        self.warp_encoder = WarpEncoder(d, cfg.in_channels, cfg.patch_size) if cfg.warp_condition else None
        self.rope = Rope3D(cfg.dim // cfg.num_heads, cfg.rope_theta, RopeScaling(cfg.rope_scaling, cfg.rope_scale))
        self.gradient_checkpointing = False
        self.sequence_parallel: SequenceParallel | None = None

    def set_sequence_parallel(self, sp: SequenceParallel | None) -> None:
        """Run forwards Ulysses-parallel over ``sp``'s ranks (None or a group of one: single process).

        Every rank of the group must call forward with the same inputs. Needs ``num_heads`` and the tokens
        per latent frame to be divisible by the group size.
        """
        if sp is not None and sp.size > 1:
            if self.cfg.num_heads % sp.size:
                raise ValueError(f"{self.cfg.num_heads} heads are not divisible by the sequence-parallel size "
                                 f"{sp.size}")
            self.sequence_parallel = sp
        else:
            self.sequence_parallel = None

    @property
    def local_heads(self) -> int:
        """Attention heads held per rank in k/v caches (all heads without sequence parallelism)."""
        sp = self.sequence_parallel
        return self.cfg.num_heads // (sp.size if sp is not None else 1)

    # ------------------------------------------------------------------------------------ pieces

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(b c F H W) latents -> (b (f h w) d) tokens (the Conv3d patch embedding as one matmul)."""
        pt, ph, pw = self.cfg.patch_size
        patches = rearrange(x, "b c (f pt) (h ph) (w pw) -> b (f h w) (c pt ph pw)", pt=pt, ph=ph, pw=pw)
        w = self.patch_embedding.weight
        return F.linear(patches.to(w.dtype), w.flatten(1), self.patch_embedding.bias)

    def unpatchify(self, y: torch.Tensor, f: int, h: int, w: int) -> torch.Tensor:
        """(b (f h w) (pt ph pw c)) -> (b c (f pt) (h ph) (w pw))."""
        pt, ph, pw = self.cfg.patch_size
        return rearrange(y, "b (f h w) (pt ph pw c) -> b c (f pt) (h ph) (w pw)",
                         f=f, h=h, w=w, pt=pt, ph=ph, pw=pw)

    def time_embed(self, timesteps: torch.Tensor, b: int, f: int) -> tuple[torch.Tensor, torch.Tensor]:
        """timesteps (), (b) or (b f) -> temb (b f d) and the block modulation input e (b f 6 d)."""
        t = torch.as_tensor(timesteps, device=self.head.modulation.device)
        if t.ndim == 0:
            t = t.expand(b)
        if t.ndim == 1:
            t = t[:, None].expand(-1, f)
        if tuple(t.shape) != (b, f):
            raise ValueError(f"timesteps must be (), ({b},) or ({b}, {f}); got {tuple(t.shape)}")
        feats = timestep_features(t, self.cfg.freq_dim)
        temb = self.time_embedding(feats.to(self.time_embedding[0].weight.dtype))
        e = rearrange(self.time_projection(temb), "b f (six d) -> b f six d", six=6)
        return temb, e

    def prepare_text(self, text: torch.Tensor, text_mask: torch.Tensor | None = None) -> TextContext:
        """Text encoder states (b L text_dim) and mask (b L) bool -> per-layer cross-attention k/v."""
        emb, mask = self._embed_text(text, text_mask)
        return TextContext([blk.text_kv(emb) for blk in self.blocks], mask)

    def _embed_text(self, text: torch.Tensor, text_mask: torch.Tensor | None
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(b L text_dim), (b L) -> embedded text (b L d) and the attention mask (b 1 1 L) or None."""
        emb = self.text_embedding(text.to(self.text_embedding[0].weight.dtype))
        return emb, None if text_mask is None else rearrange(text_mask.bool(), "b l -> b 1 1 l")

    def rotate_context(self, k: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Pre-RoPE context keys k (... m heads hd), e.g. all layers (l b m heads hd), rotated at pos (m 3).

        For ``forward(..., kv_context_rotated=True)``; rotates exactly as the forward would (float32 rotation,
        result in k's dtype, so pass k in the forward's compute dtype).
        """
        flat = k.reshape(-1, *k.shape[-3:])
        return self.rope.rotate(flat, self.rope.freqs(pos)).reshape(k.shape)

    # ------------------------------------------------------------------------------------ forward

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, text: torch.Tensor | TextContext,
                text_mask: torch.Tensor | None = None, actions: torch.Tensor | None = None,
                R: torch.Tensor | None = None, P: torch.Tensor | None = None, *, frame_offset: int = 0,
                attn_mask: torch.Tensor | None = None, kv_context: Sequence[KV] | None = None,
                return_kv: bool = False, kv_context_rotated: bool = False,
                command_keep: torch.Tensor | None = None, first_latent: torch.Tensor | None = None):
        """Predict the flow-matching velocity of latents x.

        Args:
            x: (b c f H W) noisy latents of the current frames (H, W divisible by the patch size).
            timesteps: (b f) per-frame timesteps in [0, 1000] (or (b) / a scalar, broadcast).
            text: (b L text_dim) text encoder states, or a :class:`TextContext` from :meth:`prepare_text`.
            text_mask: (b L) bool, True for real tokens; None = attend to all (as Wan's zero padding).
            actions: per-video-frame actions (b F 13) or grouped (b f 4 13); see
                :func:`relic.models.conditioning.group_actions`. None skips the action encoder.
            R, P: (b f 3 3), (b f 3) absolute poses relative to the first frame; None skips the pose encoder
                (and, with ``camera_rays``, the ray encoder, whose per-token rays come from them).
            frame_offset: absolute latent index of x's first frame (RoPE time position).
            attn_mask: bool (b|1, 1, n, m + n) over [kv_context keys, current keys]; None = attend to all.
            kv_context: per layer (k (b m heads hd) pre-RoPE, v (b m heads hd), pos (m 3)), or None.
                Under sequence parallelism heads is :attr:`local_heads` (this rank's head shard).
            return_kv: also return the current tokens' (k, v, pos) per layer (head shards under SP).
            kv_context_rotated: the kv_context keys are already RoPE-rotated at their pos (as
                :meth:`rotate_context` returns them): skip rotating them here. The streaming student rotates
                a block's context once instead of in each of its forwards; the result is bitwise the same
                when the keys come in the compute dtype of this forward.
            command_keep: (b,) bool; where False, that sample's action and pose offsets (and the ray and warp
                offsets made from the poses) are zeroed, which is exactly the forward without ``actions`` and
                ``R, P`` for it (the "no command" branch that
                command dropout trains and command guidance samples). None keeps every sample's command.
            first_latent: (b c H W) the clean first latent, for ``warp_condition`` (warped to R, P). None takes
                x's frame 0, which must then be the clean latent 0 (``frame_offset`` 0 and its timesteps 0, as in
                every image-to-video forward of the teacher); a later chunk must pass it.
        Returns:
            (b c f H W) prediction, and with ``return_kv`` a list of per-layer (k, v, pos).
        """
        cfg = self.cfg
        b, _, F_in, H, W = x.shape
        pt, ph, pw = cfg.patch_size
        f, h, w = F_in // pt, H // ph, W // pw
        if f * pt != F_in or h * ph != H or w * pw != W:
            raise ValueError(f"latent size {(F_in, H, W)} is not divisible by the patch size {cfg.patch_size}")
        if kv_context is not None and len(kv_context) != len(self.blocks):
            raise ValueError(f"kv_context needs one entry per layer ({len(self.blocks)}), got {len(kv_context)}")

        sp = self.sequence_parallel
        tokens = self.patchify(x).float()
        keep = None
        if command_keep is not None:
            if command_keep.shape != (b,):
                raise ValueError(f"command_keep must be ({b},), got {tuple(command_keep.shape)}")
            keep = command_keep.to(tokens.device, torch.bool).view(b, 1, 1)
        if self.warp_encoder is not None and R is not None and P is not None:
            tokens = tokens + self._warp_tokens(x, timesteps, R, P, frame_offset, first_latent, keep)
        if sp is not None:
            tokens = shard_frames(tokens, sp, f)                    # (b f*s/P d): this rank's tokens
        temb, e = self.time_embed(timesteps, b, f)
        if isinstance(text, TextContext):
            text_kv, text_attn_mask = text.kv, text.mask
        else:    # each block computes its own text k/v inside its forward (one parameter gather under FSDP)
            emb, text_attn_mask = self._embed_text(text, text_mask)
            text_kv = [emb] * len(self.blocks)
        act = None
        if actions is not None:
            grouped = group_actions(actions, f, frame_offset, cfg.temporal_compression)
            act = self.action_encoder.features(grouped.to(tokens.device, self.action_encoder.mlp[0].weight.dtype))
        pose = None
        if R is not None or P is not None:
            if R is None or P is None:
                raise ValueError("the pose encoder needs both R and P")
            wdt = self.pose_encoder.mlp[0].weight.dtype
            pose = self.pose_encoder.features(R.to(tokens.device, wdt), P.to(tokens.device, wdt))

        coords = None
        if act is not None and self.action_encoder.coord_proj is not None:
            coords = token_coords(h, w, tokens.device)                          # (s 2)
            if sp is not None:                                                  # this rank's chunk of each frame
                coords = coords.narrow(0, sp.rank * (h * w // sp.size), h * w // sp.size)
        rays = None
        if pose is not None and self.ray_encoder is not None:
            r = camera_rays(R.to(tokens.device), P.to(tokens.device), h, w, cfg.camera_fov_deg,
                            cfg.ray_translation_scale)                          # (b f s 6)
            if sp is not None:
                r = r.narrow(2, sp.rank * (h * w // sp.size), h * w // sp.size)
            rays = self.ray_encoder.features(r)                                 # (b f s hidden)
        pos = token_positions(f, h, w, frame_offset, device=tokens.device)
        freqs = self.rope.freqs(pos)
        kv_out: list[KV] = []
        last_ctx_pos, ctx_freqs = None, None
        for i, blk in enumerate(self.blocks):
            act_i = None if act is None else self.action_encoder.offset(i, act, coords)   # (b f 1|s d)
            pose_i = None if pose is None else rearrange(self.pose_encoder.proj[i](pose),
                                                         "b f (two d) -> b f 1 two d", two=2)
            if rays is not None:                                                # per-token: (b f s d), (b f s 2 d)
                ray_act, ray_qk = self.ray_encoder.offsets(i, rays)
                act_i = ray_act if act_i is None else act_i + ray_act
                pose_i = pose_i + ray_qk
            if keep is not None:     # select, not multiply: a zero offset adds exactly nothing
                act_i = None if act_i is None else torch.where(keep[..., None], act_i, torch.zeros_like(act_i))
                pose_i = None if pose_i is None else torch.where(keep[..., None, None], pose_i,
                                                                 torch.zeros_like(pose_i))
            ctx = None if kv_context is None else kv_context[i]
            if ctx is not None and not kv_context_rotated and ctx[2] is not last_ctx_pos:
                last_ctx_pos, ctx_freqs = ctx[2], self.rope.freqs(ctx[2])
            args = (tokens, e, text_kv[i], text_attn_mask, self.rope, freqs, pos, act_i, pose_i, ctx,
                    ctx_freqs, attn_mask, sp)
            if self.gradient_checkpointing and torch.is_grad_enabled():
                tokens, kv = checkpoint(blk, *args, use_reentrant=False)
            else:
                tokens, kv = blk(*args)
            if return_kv:
                kv_out.append(kv)
        y = self.head(tokens, temb)
        if sp is not None:
            y = gather_frames(y, sp, f)                             # (b n out): every rank, global order
        out = self.unpatchify(y, f, h, w)
        return (out, kv_out) if return_kv else out

    def _warp_tokens(self, x: torch.Tensor, timesteps, R: torch.Tensor, P: torch.Tensor, frame_offset: int,
                     first_latent: torch.Tensor | None, keep: torch.Tensor | None) -> torch.Tensor:
        """The warp condition's (b n d) float32 token offsets (zero where ``keep`` is False)."""
        b, c, f, H, W = x.shape
        if first_latent is None:
            t = torch.as_tensor(timesteps)
            t0 = t if t.ndim < 2 else t[:, 0]
            if frame_offset != 0 or bool((t0 != 0).any()):
                raise ValueError("warp_condition: pass first_latent (x's frame 0 is not the clean latent 0 here)")
            first_latent = x[:, :, 0]
        if tuple(first_latent.shape) != (b, c, H, W):
            raise ValueError(f"first_latent must be ({b}, {c}, {H}, {W}), got {tuple(first_latent.shape)}")
        dev = x.device
        warped, mask = plane_warp(first_latent.to(dev), R.to(dev), P.to(dev), self.cfg.warp_depth,
                                  self.cfg.camera_fov_deg)
        if warped.shape[2] != f:
            raise ValueError(f"warp_condition needs one pose per latent frame ({f}), got {warped.shape[2]}")
        out = self.warp_encoder(warped, mask).float()
        return out if keep is None else torch.where(keep, out, torch.zeros_like(out))

    # ------------------------------------------------------------------------------------ weights

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, config: DiTConfig | None = None,
                        filename: str | None = None, dtype: torch.dtype | None = None) -> "DiT":
        """Load a DiT from a directory (or a .safetensors file) in RELIC, original Wan or diffusers format.

        The config comes from ``config`` or the directory's config.json (a DiTConfig, a RelicConfig with a
        ``dit`` entry, diffusers' WanTransformer3DModel config or original Wan's WanModel config). RELIC's
        action/pose encoders, absent from Wan checkpoints, stay zero-initialized (``model.load_report``).
        """
        path = Path(path)
        directory = path if path.is_dir() else path.parent
        if filename is None and path.is_dir() and (path / WEIGHTS_NAME).is_file():
            filename = WEIGHTS_NAME
        sd, cfg_json = load_state(path, filename)
        if config is None:
            if cfg_json is None:
                raise UserError("no config.json (pass a DiTConfig)", source=str(directory))
            config = dit_config_from_json(cfg_json, str(directory / CONFIG_NAME))
        if dit_key_format(sd) == "diffusers":
            sd = dit_state_from_diffusers(sd, source=str(path))
        try:
            model = cls(config)
        except ValueError as e:
            raise UserError(f"bad DiT config: {e}", source=str(directory / CONFIG_NAME)) from None
        model.load_report = load_checked(model, sd, str(path), new_ok=DIT_NEW_OK)
        if dtype is not None:
            model = model.to(dtype)
        return model

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write ``model.safetensors`` and ``config.json`` (this DiTConfig) to ``directory``."""
        save_pretrained(self, directory, self.cfg)
