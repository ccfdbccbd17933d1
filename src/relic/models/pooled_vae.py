"""relic-tiny's colour-pooled causal autoencoder: Wan-2.1's latent contract, with colour where a small DiT finds it.

The Wan VAE (:mod:`relic.models.vae`) trained at relic-tiny's size lost colour (docs/training.md, "Why the
first relic-tiny autoencoder lost colour"). This network keeps the same contract -- ``z`` channels, 8x spatial,
4x temporal, causal, ``1 + 4k`` frames to ``1 + k`` latents, per-channel normalized latents, the same
streaming API -- but writes the picture's coarse colour into the latent by construction. Latent ``i`` covers
the frames ``G_0 = {0}`` and ``G_i = {4i-3, ..., 4i}``; its channels at each ``(h/8, w/8)`` position are

====  =========================================================================================
0..3  luma ``Y`` of each frame of the group, 8x8 area-pooled (the first latent repeats frame 0)
4..5  chroma ``Cb, Cr`` (BT.601), 8x8 area-pooled and averaged over the group's frames
6..   learned detail channels (the encoder network below)
====  =========================================================================================

The decoder's frames are the *colour base* -- each frame's pooled ``Y`` with the group's ``Cb, Cr``, upsampled
8x bicubically (:func:`colour_base`) -- plus a residual predicted by a conv net from the latent and the latent
before it. Its last layer starts small (0.1x a Kaiming init), so an untrained decoder is close to the "8x pool +
bicubic" baseline (with chroma averaged over 4 frames), and training adds detail. (Exactly zero does not train:
no gradient reaches the encoder, and around the colour base L1 has no consistent direction.) A static camera gives identical
latents from the first one on: the first latent is the encoder applied to frame 0 repeated 4 times.

Causality and streaming are exact by structure: the encoder sees only its group's frames, the decoder only
latents ``i`` and ``i - 1`` (the first latent stands in for its own predecessor). The streaming state is the
previous latent, so chunked encode and decode equal whole-clip calls (tested).

Shapes: frames ``(b 3 t h w)`` in [-1, 1]; latents ``(b z n h/8 w/8)``, normalized ``(mu - mean) / std``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from relic.config import VAEConfig
from relic.errors import UserError
from relic.models.latent_codec import LatentCodec, check_latent_stats
from relic.models.weights import PretrainedMixin

FACTOR_S, FACTOR_T = 8, 4        # spatial and temporal compression (Wan's)
OUT_INIT_SCALE = 0.1             # the residual's last conv starts small, not zero: a zero conv passes no gradient
                                 # to the encoder, and L1 around the colour base has no consistent direction, so
                                 # a zero-initialized model sat at the baseline for 600 steps (docs/training.md)
N_FIXED = 6                      # pooled channels: Y of 4 frames, Cb, Cr
DETERMINISTIC_LOGVAR = -30.0     # the encoder is deterministic: a (clamped) zero-variance posterior

# BT.601 (full range) on values in [-1, 1]
_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """(... 3 h w) RGB in [-1, 1] -> (... 3 h w) Y in [-1, 1], Cb and Cr in [-1, 1] (channel dim -3)."""
    r, g, b = x.unbind(-3)
    y = _KR * r + _KG * g + _KB * b
    return torch.stack([y, (b - y) / (2 * (1 - _KB)), (r - y) / (2 * (1 - _KR))], dim=-3)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr`: (... 3 h w) -> (... 3 h w)."""
    y, cb, cr = x.unbind(-3)
    r = y + 2 * (1 - _KR) * cr
    b = y + 2 * (1 - _KB) * cb
    g = (y - _KR * r - _KB * b) / _KG
    return torch.stack([r, g, b], dim=-3)


def group_frames(x: torch.Tensor, first: bool) -> torch.Tensor:
    """Frames (b c t h w) -> groups (b n 4 c h w); with ``first`` the first frame alone makes group 0 (repeated 4x)."""
    if first:
        head = x[:, :, :1].expand(-1, -1, FACTOR_T, -1, -1)
        x = torch.cat([head, x[:, :, 1:]], dim=2)
    return rearrange(x, "b c (n k) h w -> b n k c h w", k=FACTOR_T)


def pooled_channels(groups: torch.Tensor) -> torch.Tensor:
    """Groups (b n 4 3 h w) RGB -> the fixed latent channels (b 6 n h/8 w/8): Y of 4 frames, mean Cb, Cr."""
    b, n = groups.shape[:2]
    ycc = rgb_to_ycbcr(F.avg_pool2d(rearrange(groups, "b n k c h w -> (b n k) c h w").float(), FACTOR_S))
    ycc = rearrange(ycc, "(b n k) c h w -> b n k c h w", b=b, n=n)
    fixed = torch.cat([ycc[:, :, :, 0], ycc[:, :, :, 1:].mean(dim=2)], dim=2)     # (b n 6 h w)
    return rearrange(fixed, "b n c h w -> b c n h w")


def colour_base(fixed: torch.Tensor) -> torch.Tensor:
    """Raw (denormalized) fixed channels (b 6 n h w) -> the bicubic colour base (b n 4 3 8h 8w) in RGB."""
    b, _, n = fixed.shape[:3]
    y = rearrange(fixed[:, :FACTOR_T], "b k n h w -> b n k 1 h w")
    c = rearrange(fixed[:, FACTOR_T:N_FIXED], "b c n h w -> b n 1 c h w").expand(-1, -1, FACTOR_T, -1, -1, -1)
    rgb = ycbcr_to_rgb(torch.cat([y, c], dim=3).float())
    up = F.interpolate(rearrange(rgb, "b n k c h w -> (b n k) c h w"), scale_factor=FACTOR_S, mode="bicubic",
                       align_corners=False)
    return rearrange(up, "(b n k) c h w -> b n k c h w", b=b, n=n)


def init_weights(module: nn.Module) -> None:
    """Variance-preserving init for the SiLU conv nets here (there are no norms): Kaiming-normal (fan-in, ReLU
    gain) weights and zero biases for every conv not marked ``zero_init``. PyTorch's default conv init shrinks a
    signal ~3x per layer; eight layers deep, the decoder's residual then starts ~1e-4 small and barely learns.
    A conv with an ``out_scale`` attribute gets that factor on its Kaiming weights."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and not getattr(m, "zero_init", False):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            m.weight.data.mul_(getattr(m, "out_scale", 1.0))
            nn.init.zeros_(m.bias)


def _zero(conv: nn.Conv2d) -> nn.Conv2d:
    """Zero a conv's weights and bias and mark it so :func:`init_weights` leaves it at zero."""
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    conv.zero_init = True
    return conv


class ResBlock2d(nn.Module):
    """``x + conv(silu(conv(silu(x))))`` (3x3 convs, the second zero-initialized). (n c h w) -> (n c h w)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = _zero(nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class GroupEncoder(nn.Module):
    """Frame groups (b n 4 3 h w) -> learned detail channels (b n c h/8 w/8).

    Per frame, a stride-2 conv stem (widths d, 2d, 4d) beside the lossless 8x8 space-to-depth of the pixels;
    then the group's 4 frames are stacked on channels and mixed by 1x1 and residual 3x3 convs at 1/8 scale.
    """

    def __init__(self, d: int, n_learned: int):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, d, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(d, 2 * d, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(2 * d, 4 * d, 3, stride=2, padding=1), nn.SiLU())
        self.frame_mix = nn.Conv2d(4 * d + 3 * FACTOR_S ** 2, 4 * d, 1)
        self.group_in = nn.Conv2d(FACTOR_T * 4 * d, 8 * d, 1)
        self.blocks = nn.Sequential(ResBlock2d(8 * d), ResBlock2d(8 * d))
        self.out = nn.Conv2d(8 * d, n_learned, 1)

    def forward(self, groups: torch.Tensor) -> torch.Tensor:
        b, n = groups.shape[:2]
        f = rearrange(groups, "b n k c h w -> (b n k) c h w")
        f = F.silu(self.frame_mix(torch.cat([self.stem(f), F.pixel_unshuffle(f, FACTOR_S)], dim=1)))
        g = rearrange(f, "(b n k) c h w -> (b n) (k c) h w", b=b, n=n)
        g = self.out(F.silu(self.blocks(self.group_in(g))))
        return rearrange(g, "(b n) c h w -> b n c h w", b=b)


class ResidualDecoder(nn.Module):
    """Latents and their predecessors (b n 2z h w) -> RGB residuals (b n 4 3 8h 8w).

    At 1/8 scale: 3x3 conv to 8d channels and two residual blocks; a 1x1 conv grows 4 frames of 4d channels;
    then per frame three levels of (nearest 2x, 3x3 conv, residual block) at widths 4d, 2d, d and a
    zero-initialized 3x3 conv to RGB.
    """

    def __init__(self, z_dim: int, d: int):
        super().__init__()
        self.conv_in = nn.Conv2d(2 * z_dim, 8 * d, 3, padding=1)
        self.mid = nn.Sequential(ResBlock2d(8 * d), ResBlock2d(8 * d))
        self.grow = nn.Conv2d(8 * d, FACTOR_T * 4 * d, 1)
        widths = [4 * d, 4 * d, 2 * d, d]
        self.ups = nn.ModuleList(nn.Conv2d(widths[i], widths[i + 1], 3, padding=1) for i in range(3))
        self.blocks = nn.ModuleList(ResBlock2d(widths[i + 1]) for i in range(3))
        self.conv_out = nn.Conv2d(d, 3, 3, padding=1)
        self.conv_out.out_scale = OUT_INIT_SCALE

    def forward(self, zz: torch.Tensor) -> torch.Tensor:
        b, n = zz.shape[:2]
        x = self.mid(F.silu(self.conv_in(rearrange(zz, "b n c h w -> (b n) c h w"))))
        x = rearrange(self.grow(F.silu(x)), "bn (k c) h w -> (bn k) c h w", k=FACTOR_T)
        for up, block in zip(self.ups, self.blocks):
            x = block(F.silu(up(F.interpolate(F.silu(x), scale_factor=2.0, mode="nearest"))))
        y = self.conv_out(F.silu(x))
        return rearrange(y, "(b n k) c h w -> b n k c h w", b=b, n=n)


def check_pooled_config(cfg: VAEConfig, source: str = "vae config") -> None:
    """Raise a UserError for a config this architecture cannot build."""
    if cfg.z_dim <= N_FIXED:
        raise UserError(f"the pooled autoencoder needs z_dim > {N_FIXED} (6 pooled colour channels), got "
                        f"{cfg.z_dim}", source=source)
    if cfg.base_dim < 1:
        raise UserError(f"base_dim must be >= 1, got {cfg.base_dim}", source=source)
    check_latent_stats(cfg, source)


class PooledVAE(LatentCodec, PretrainedMixin, nn.Module):
    """The colour-pooled causal autoencoder (``VAEConfig.arch == "pooled"``); the API of :class:`WanVAE`.

    - :meth:`encode`: frames (b 3 1+4k h w) in [-1, 1] -> normalized (mean, logvar), each (b z 1+k h/8 w/8)
    - :meth:`decode`: normalized latents (b z 1+k h w) -> frames (b 3 1+4k 8h 8w) in [-1, 1]
    - :meth:`stream_encoder` / :meth:`stream_decoder`: the same, chunk by chunk across calls (exactly equal).
    """

    config_class = VAEConfig

    def __init__(self, config: VAEConfig | None = None):
        super().__init__()
        cfg = config if config is not None else VAEConfig(arch="pooled", base_dim=16)
        check_pooled_config(cfg)
        self.config = cfg
        self.encoder = GroupEncoder(cfg.base_dim, cfg.z_dim - N_FIXED)
        self.decoder = ResidualDecoder(cfg.z_dim, cfg.base_dim)
        init_weights(self)
        self.register_latent_stats(cfg)

    spatial_factor = FACTOR_S
    temporal_factor = FACTOR_T

    # chunks --------------------------------------------------------------------------------------
    def encode_groups(self, x: torch.Tensor, first: bool) -> torch.Tensor:
        """Frames (b 3 t h w) (t = 1 + 4n with ``first``, else 4n) -> normalized latents (b z n' h/8 w/8)."""
        groups = group_frames(x, first)
        fixed = pooled_channels(groups)
        learned = rearrange(self.encoder(groups), "b n c h w -> b c n h w")
        return self.normalize(torch.cat([fixed.to(learned.dtype), learned], dim=1))

    def decode_latents(self, z: torch.Tensor, prev: torch.Tensor | None, clamp: bool = True) -> torch.Tensor:
        """Normalized latents (b z n h w) after ``prev`` (b z 1 h w; None: the stream's start) -> frames.

        Returns (b 3 f 8h 8w): 4 frames per latent, but 1 for the stream's first latent.
        """
        first = prev is None
        before = torch.cat([z[:, :, :1] if first else prev.to(z), z[:, :, :-1]], dim=2)
        raw, raw_before = self.denormalize(z), self.denormalize(before)
        # the networks work on raw latents (training runs before the normalization statistics exist), so the
        # exported statistics change what the DiT sees and nothing else
        zz = rearrange(torch.cat([raw, raw_before], dim=1), "b c n h w -> b n c h w")
        out = colour_base(raw[:, :N_FIXED]) + self.decoder(zz).float()
        out = rearrange(out, "b n k c h w -> b c (n k) h w")
        if first:
            out = out[:, :, FACTOR_T - 1:]
        out = out.to(z.dtype)
        return out.clamp(-1.0, 1.0) if clamp else out

    # whole clips (encode, decode, sample: LatentCodec; the posterior is a point, up to exp(-15)) --------
    @staticmethod
    def kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Zero per sample (b): the encoder is deterministic, so no KL term trains it."""
        return mean.new_zeros(mean.shape[0])

    def stream_encoder(self) -> "PooledStreamEncoder":
        return PooledStreamEncoder(self)

    def stream_decoder(self, clamp: bool = True) -> "PooledStreamDecoder":
        return PooledStreamDecoder(self, clamp=clamp)


class PooledStreamEncoder:
    """Encode a video chunk by chunk: the first call takes 1 + 4n frames, every later call 4n; each returns the
    normalized (mean, logvar) (b z n' h/8 w/8) of its new latents. Concatenated, they equal :meth:`PooledVAE.encode`."""

    def __init__(self, vae: PooledVAE):
        self.vae = vae
        self.frames_seen = 0

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t, (h, w) = x.shape[2], x.shape[3:]
        first = self.frames_seen == 0
        new = t - 1 if first else t
        if t == 0 or new % FACTOR_T:
            raise ValueError(f"this chunk must have {'1 + 4n' if first else '4n'} frames, got {t}")
        if h % FACTOR_S or w % FACTOR_S:
            raise ValueError(f"frame size {h}x{w} must be a multiple of {FACTOR_S}")
        mean = self.vae.encode_groups(x, first)
        self.frames_seen += t
        return mean, torch.full_like(mean, DETERMINISTIC_LOGVAR)


class PooledStreamDecoder:
    """Decode normalized latents chunk by chunk (b z n h w) -> frames (b 3 f 8h 8w); the state is the last latent.
    Concatenated outputs equal :meth:`PooledVAE.decode` on all latents at once."""

    def __init__(self, vae: PooledVAE, clamp: bool = True):
        self.vae = vae
        self.clamp = clamp
        self.prev: torch.Tensor | None = None
        self.latents_seen = 0

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if z.shape[2] == 0:
            raise ValueError("empty latent chunk")
        out = self.vae.decode_latents(z, self.prev, clamp=self.clamp)
        self.prev = z[:, :, -1:].detach().clone()
        self.latents_seen += z.shape[2]
        return out


def pool_bicubic(frames: torch.Tensor) -> torch.Tensor:
    """The trivial baseline: every frame (b 3 t h w) 8x area-pooled, then bicubically upsampled, clamped."""
    b = frames.shape[0]
    f = rearrange(frames.float(), "b c t h w -> (b t) c h w")
    up = F.interpolate(F.avg_pool2d(f, FACTOR_S), scale_factor=FACTOR_S, mode="bicubic", align_corners=False)
    return rearrange(up.clamp(-1, 1), "(b t) c h w -> b c t h w", b=b)

