"""RELIC's camera conditioning (paper §4.1.2): a relative action encoder and an absolute pose encoder.

Both are zero-initialized where they touch the Wan network, so that a pretrained Wan-2.1 checkpoint
behaves exactly as before until fine-tuned.

**Relative actions.** Actions are per VIDEO frame, 13-D (:data:`relic.camera.ACTION_NAMES`; row 0 of a
clip is the prepended static action). The VAE compresses time 4x (latent 0 <-> video frame 0, latent
k >= 1 <-> video frames 4k-3..4k), so :func:`group_actions` gathers the 4 actions of each latent frame,
padding latent 0 in front with 3 static actions: (b F 13) -> (b f 4 13). The trunk MLP maps the
flattened 52 numbers to ``action_hidden`` features per latent frame; each DiT block owns a zero-initialized
linear layer (``ActionEncoder.proj[i]``) mapping them to ``dim``, added to the hidden states of that frame's
tokens right after the block's self-attention residual.

**Absolute pose.** Per latent frame, the pose relative to the first frame (R (b f 3 3) world-to-camera
rotation, P (b f 3) position in units of the clip's mean step d̄) is flattened to 12 numbers; the trunk MLP
maps it to ``pose_hidden`` features, and each block owns a zero-initialized linear layer
(``PoseEncoder.proj[i]``) giving a (dim) offset for the queries and one for the keys of its self-attention
(added to the projected q and k before their RMSNorm). Values never see the pose.

**Camera rays** (``DiTConfig.camera_rays``, not in the paper; CameraCtrl's Plücker embedding). Each token gets
the Plücker coordinates of the ray through its centre under its frame's pose relative to the first frame:
direction d (unit, first camera's axes) and moment m = o × d (o = the camera centre P, scaled by
``ray_translation_scale``), 6 numbers per token (:func:`camera_rays`). A shared MLP maps them to ``pose_hidden``
features, and each block owns a zero-initialized linear layer (``RayEncoder.proj[i]``) giving three (dim)
offsets per token: one added to the hidden state beside the action offset, one to the queries and one to the
keys. Unlike the per-frame action and pose offsets, they differ across the image in the way a camera move
displaces it: a dolly changes the moments radially, a roll turns the directions about the optical axis, and a
query can find the first frame's token that looks the same way by comparing directions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from relic.camera import NUM_ACTIONS, STATIC


def static_actions(*shape: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(*shape, 13) static actions (all zero but the ``static`` entry, which is 1)."""
    a = torch.zeros(*shape, NUM_ACTIONS, device=device, dtype=dtype)
    a[..., STATIC] = 1.0
    return a


def group_actions(actions: torch.Tensor, num_frames: int, frame_offset: int = 0,
                  temporal_compression: int = 4) -> torch.Tensor:
    """Group per-video-frame actions by latent frame.

    Args:
        actions: (b F 13) video-frame actions, or (b f 4 13) already grouped (returned as is).
            For a chunk that starts at latent 0 (``frame_offset == 0``), F = 4f - 3: video frames 0..4(f-1);
            latent 0 gets 3 static actions in front of video frame 0's action. For a chunk starting at a
            later latent k, F = 4f: video frames 4k-3 .. 4(k+f-1).
        num_frames: f, the number of latent frames.
    Returns:
        (b f 4 13)
    """
    c = temporal_compression
    if actions.ndim == 4:
        if actions.shape[1] != num_frames or actions.shape[2] != c:
            raise ValueError(f"grouped actions must be (b {num_frames} {c} {NUM_ACTIONS}), got "
                             f"{tuple(actions.shape)}")
        return actions
    expect = c * num_frames - (c - 1 if frame_offset == 0 else 0)
    if actions.ndim != 3 or actions.shape[1] != expect or actions.shape[2] != NUM_ACTIONS:
        raise ValueError(f"actions must be (b {expect} {NUM_ACTIONS}) for {num_frames} latent frame(s) at "
                         f"offset {frame_offset}, got {tuple(actions.shape)}")
    if frame_offset == 0:
        pad = static_actions(actions.shape[0], c - 1, device=actions.device, dtype=actions.dtype)
        actions = torch.cat([pad, actions], dim=1)
    return rearrange(actions, "b (f k) a -> b f k a", k=c)


class ActionEncoder(nn.Module):
    """(b f 4 13) grouped actions -> per-block (b f dim) offsets, zero at initialization.

    With ``coords`` each block also has ``coord_proj`` (hidden -> 2 dim, zero-initialized): the offset of a token
    at normalized image coordinates (u, v) becomes ``proj(a) + u B(a) + v C(a)`` (:meth:`offset`), an affine
    field over the image like the motion of a dolly (radial) or a roll (tangential).
    """

    def __init__(self, dim: int, num_layers: int, hidden: int = 256, action_dim: int = NUM_ACTIONS,
                 temporal_compression: int = 4, coords: bool = False):
        super().__init__()
        self.temporal_compression = temporal_compression
        self.mlp = nn.Sequential(nn.Linear(action_dim * temporal_compression, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden), nn.SiLU())
        self.proj = nn.ModuleList(nn.Linear(hidden, dim) for _ in range(num_layers))
        self.coord_proj = nn.ModuleList(nn.Linear(hidden, 2 * dim) for _ in range(num_layers)) if coords else None
        self.reset_zero()

    def reset_zero(self) -> None:
        """Zero the per-block output layers (the Wan-preserving initialization)."""
        for p in [*self.proj, *(self.coord_proj or [])]:
            nn.init.zeros_(p.weight)
            nn.init.zeros_(p.bias)

    def features(self, grouped: torch.Tensor) -> torch.Tensor:
        """(b f 4 13) -> (b f hidden) shared features."""
        return self.mlp(rearrange(grouped, "b f k a -> b f (k a)"))

    def offset(self, i: int, feats: torch.Tensor, coords: torch.Tensor | None = None) -> torch.Tensor:
        """Block ``i``'s offset from features (b f hidden): (b f 1 dim), or with ``coord_proj`` and ``coords``
        (s 2) the tokens' (u, v), (b f s dim) = proj + u B + v C."""
        out = self.proj[i](feats).unsqueeze(2)
        if self.coord_proj is None:
            return out
        bc = rearrange(self.coord_proj[i](feats), "b f (two d) -> b f two d", two=2)
        return out + torch.einsum("sk,bfkd->bfsd", coords.to(bc.dtype), bc)


def token_coords(h: int, w: int, device=None) -> torch.Tensor:
    """Normalized image coordinates (u, v) of an (h, w) token grid in (h w) order: (h*w, 2), each in [-1, 1]
    (token centres; u grows to the right, v downwards)."""
    v = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h * 2 - 1
    u = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w * 2 - 1
    return torch.stack(torch.meshgrid(u, v, indexing="xy"), dim=-1).reshape(h * w, 2)


class PoseEncoder(nn.Module):
    """Absolute pose (R (b f 3 3), P (b f 3)) -> per-block query/key offsets (b f dim) x 2, zero at init."""

    def __init__(self, dim: int, num_layers: int, hidden: int = 256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(12, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.proj = nn.ModuleList(nn.Linear(hidden, 2 * dim) for _ in range(num_layers))
        self.reset_zero()

    def reset_zero(self) -> None:
        for p in self.proj:
            nn.init.zeros_(p.weight)
            nn.init.zeros_(p.bias)

    def features(self, R: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
        """R (b f 3 3), P (b f 3) -> (b f hidden)."""
        x = torch.cat([rearrange(R, "b f i j -> b f (i j)"), P], dim=-1)
        return self.mlp(x)


def camera_rays(R: torch.Tensor, P: torch.Tensor, h: int, w: int, fov_deg: float = 90.0,
                translation_scale: float = 1.0) -> torch.Tensor:
    """Plücker coordinates of the rays through the token centres of an (h, w) token grid.

    Args:
        R: (b f 3 3) world-to-camera rotations (relic's convention, :mod:`relic.camera.geometry`: OpenCV camera
            axes, a world point X is at R (X - P) in camera coordinates), here relative to the first frame.
        P: (b f 3) camera centres.
        h, w: the token grid; pixels are square and ``fov_deg`` is the horizontal field of view, so a token at
            normalized coordinates (u, v) (:func:`token_coords`) looks along (u t, v t h / w, 1) in camera
            coordinates, t = tan(fov / 2).
        translation_scale: multiplies P before the moment is taken (keeps the moments O(1) over a window).
    Returns:
        (b f h*w 6) float32: the unit direction d in world coordinates, then the moment (s P) × d. Every point X
        of the token's ray satisfies X_s × d = m with X_s = s X.
    """
    t = math.tan(math.radians(fov_deg) / 2)
    with torch.autocast(R.device.type, enabled=False):                 # geometry in float32 under bf16 autocast
        uv = token_coords(h, w, R.device)
        cam = torch.cat([uv[:, :1] * t, uv[:, 1:] * t * h / w, torch.ones_like(uv[:, :1])], dim=-1)   # (s 3)
        cam = cam / cam.norm(dim=-1, keepdim=True)
        d = torch.einsum("bfji,sj->bfsi", R.float(), cam)               # R^T cam: camera -> world axes
        o = (P.float() * translation_scale).unsqueeze(2).expand_as(d)
        return torch.cat([d, torch.linalg.cross(o, d, dim=-1)], dim=-1)


class RayEncoder(nn.Module):
    """(b f s 6) token rays -> per-block (b f s dim) hidden offsets and (b f s 2 dim) query/key offsets, zero at
    initialization."""

    def __init__(self, dim: int, num_layers: int, hidden: int = 256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(6, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.proj = nn.ModuleList(nn.Linear(hidden, 3 * dim) for _ in range(num_layers))
        self.reset_zero()

    def reset_zero(self) -> None:
        for p in self.proj:
            nn.init.zeros_(p.weight)
            nn.init.zeros_(p.bias)

    def features(self, rays: torch.Tensor) -> torch.Tensor:
        """(b f s 6) -> (b f s hidden)."""
        return self.mlp(rays.to(self.mlp[0].weight.dtype))

    def offsets(self, i: int, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Block ``i``: (b f s hidden) -> hidden-state offset (b f s dim), query/key offsets (b f s 2 dim)."""
        out = rearrange(self.proj[i](feats), "b f s (three d) -> b f s three d", three=3)
        return out[:, :, :, 0], out[:, :, :, 1:]


def plane_warp(z0: torch.Tensor, R: torch.Tensor, P: torch.Tensor, depth: float, fov_deg: float = 90.0
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """The first latent as each pose would see it if the scene were one fronto-parallel plane.

    The plane lies at ``depth`` (units of P) in front of the first camera; a pixel x_0 of the first frame appears
    at x_k ~ K R (I − P e3ᵀ / depth) K⁻¹ x_0 under the pose (R, P) relative to it (:mod:`relic.camera.geometry`
    conventions: OpenCV axes, R world-to-camera, P the camera centre in the first camera's axes). Exact for pure
    rotations whatever the depth; for translations a one-depth guess (a dolly becomes a zoom about the centre).
    Sampled backwards, bilinearly, at the latent pixels' centres (square pixels, horizontal field of view
    ``fov_deg``); computed in float32/float64 even under autocast.

    Args:
        z0: (b c h w) the first latent.
        R, P: (b f 3 3), (b f 3) the poses relative to the first frame.
    Returns:
        warped (b c f h w), zero where the source falls outside the first frame (or behind it), and the mask
        (b 1 f h w) of the valid pixels (1.0 / 0.0).
    """
    b, c, h, w = z0.shape
    f = R.shape[1]
    with torch.autocast(z0.device.type, enabled=False):
        fx = (w / 2) / math.tan(math.radians(fov_deg) / 2)
        K = torch.tensor([[fx, 0, w / 2], [0, fx, h / 2], [0, 0, 1.0]], dtype=torch.float64, device=z0.device)
        e3 = torch.tensor([0, 0, 1.0], dtype=torch.float64, device=z0.device)
        M = torch.eye(3, dtype=torch.float64, device=z0.device) - P.double()[..., :, None] * e3 / depth
        Hinv = torch.linalg.inv(K @ R.double() @ M @ torch.linalg.inv(K))               # (b f 3 3): k -> 0
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64, device=z0.device) + 0.5,
                                torch.arange(w, dtype=torch.float64, device=z0.device) + 0.5, indexing="ij")
        pix = torch.stack([xs, ys, torch.ones_like(xs)], -1).reshape(-1, 3)              # (hw 3)
        src = torch.einsum("bfij,nj->bfni", Hinv, pix)
        zs = src[..., 2]
        sx, sy = src[..., 0] / zs.clamp(min=1e-9), src[..., 1] / zs.clamp(min=1e-9)
        valid = (zs > 1e-9) & (sx >= 0) & (sx <= w) & (sy >= 0) & (sy <= h)              # (b f hw)
        grid = torch.stack([sx / w * 2 - 1, sy / h * 2 - 1], -1).clamp(-2, 2).float()     # outside: masked
        grid = rearrange(grid, "b f (h w) two -> (b f) h w two", h=h)
        src_lat = z0.float().repeat_interleave(f, dim=0)                                 # (b f) c h w
        out = F.grid_sample(src_lat, grid, mode="bilinear", padding_mode="border", align_corners=False)
        mask = rearrange(valid.float(), "b f (h w) -> b 1 f h w", h=h)
        return rearrange(out, "(b f) c h w -> b c f h w", b=b) * mask, mask


class WarpEncoder(nn.Module):
    """(b c+1 f H W) warped first latent and mask -> (b f*h*w dim) input-token offsets, zero at initialization.

    Patchified like the noisy latents (``patch_size``) and added to their patch embedding: where the warp is
    valid each token is told what the first frame shows there under the commanded pose (Wan-I2V feeds its first
    frame by channels the same way, unwarped).
    """

    def __init__(self, dim: int, channels: int, patch_size: tuple[int, int, int]):
        super().__init__()
        self.patch_size = tuple(patch_size)
        self.proj = nn.Linear((channels + 1) * math.prod(patch_size), dim)
        self.reset_zero()

    def reset_zero(self) -> None:
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, warped: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """warped (b c F H W), mask (b 1 F H W) -> (b (f h w) dim) in the (f h w) token order."""
        pt, ph, pw = self.patch_size
        x = torch.cat([warped, mask], dim=1)
        x = rearrange(x, "b c (f pt) (h ph) (w pw) -> b (f h w) (c pt ph pw)", pt=pt, ph=ph, pw=pw)
        return self.proj(x.to(self.proj.weight.dtype))


def timestep_features(t: torch.Tensor, dim: int = 256) -> torch.Tensor:
    """Wan's sinusoidal timestep features: [cos(t w_i), sin(t w_i)], w_i = 10000^(-i/(dim/2)).

    t: any shape (...) -> (..., dim) float32.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[..., None] * freqs
    return torch.cat([args.cos(), args.sin()], dim=-1)
