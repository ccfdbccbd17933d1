"""The Wan-2.1 causal 3D VAE (paper §4.1.1): 8x spatial, 4x temporal compression, z = 16.

Video ``x (b 3 t h w)`` in [-1, 1] with ``t = 1 + 4k`` frames encodes to latents ``(b z 1+k h/8 w/8)``;
decoding inverts the shapes. Every temporal convolution is *causal*: it is padded on the left only, so a
frame never sees the future. That is what makes streaming possible: a causal conv needs only the last
``CACHE_T = 2`` frames of its input from the previous call. Those frames live in a :class:`FeatureCache`
(one slot per cached layer, visited in a fixed order) that is passed explicitly through every layer; there
is no hidden global state. :meth:`WanVAE.stream_encoder` / :meth:`WanVAE.stream_decoder` wrap a cache in a
session object, so that encoding 1 + 4 + 4 + ... frames, or decoding one latent block after another, across
calls gives the same result as one call on the whole clip (within float tolerance, tested).

Temporal resampling follows Wan: the first frame is special. On encode the first frame passes the
temporal stride-2 convolutions alone (1 frame -> 1 latent), every later group of 4 frames gives one
latent. On decode the first latent gives 1 frame and every later latent 4 frames.

Latents are normalized per channel, ``(mu - latents_mean) / latents_std``, as the DiT sees them;
:meth:`WanVAE.encode` returns normalized (mean, logvar) and :meth:`WanVAE.decode` takes normalized latents.

Module names: ``encoder.{conv_in, down.N, mid.{0,1,2}, norm_out, conv_out}``, ``quant_conv``,
``post_quant_conv``, ``decoder.{conv_in, mid.{0,1,2}, up.N, norm_out, conv_out}``; residual blocks have
``norm1 conv1 norm2 conv2 shortcut``, attention blocks ``norm to_qkv proj``, resample blocks ``conv``
(spatial) and ``time_conv``. :mod:`relic.models.vae_convert` maps the original Wan-2.1 and the diffusers
key formats onto these names.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from relic.config import VAEConfig
from relic.errors import UserError
from relic.models.latent_codec import LatentCodec, check_latent_stats
from relic.models.weights import PretrainedMixin

CACHE_T = 2                      # frames of history a causal 3x3x3 conv needs
LOGVAR_RANGE = (-30.0, 20.0)     # the posterior's log-variance is clamped to this range (as Wan)


# ------------------------------------------------------------------------------------------ the cache

class FeatureCache:
    """The causal feature cache of one stream.

    ``slots[i]`` holds the trailing input frames ``(b c <=2 h w)`` of the i-th cached layer (or None before
    the stream's first call). Layers take their slot with :meth:`take` in a fixed order, so every call
    through a model must start with :meth:`rewind`.
    """

    def __init__(self) -> None:
        self.slots: list[torch.Tensor | None] = []
        self.pos = 0

    def rewind(self) -> None:
        self.pos = 0

    def take(self) -> int:
        if self.pos == len(self.slots):
            self.slots.append(None)
        self.pos += 1
        return self.pos - 1

    @property
    def started(self) -> bool:
        return bool(self.slots)


def _tail(prev: torch.Tensor | None, x: torch.Tensor, n: int = CACHE_T) -> torch.Tensor:
    """The last ``n`` frames of ``cat(prev, x)`` along time, copied (so the big tensor can be freed)."""
    seq = x if prev is None else torch.cat([prev, x], dim=2)
    return seq[:, :, -n:].clone()


# --------------------------------------------------------------------------------------------- layers

class CausalConv3d(nn.Conv3d):
    """Conv3d with ``2 * padding_t`` zero frames on the left in time (none on the right).

    ``forward(x, prev)`` puts the cached frames ``prev`` in place of (some of) the zero frames, which is
    exactly what the conv would have seen had the previous chunk been part of this call.
    """

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int, int],
                 stride: int | tuple[int, int, int] = 1, padding: int | tuple[int, int, int] = 0):
        super().__init__(cin, cout, kernel, stride=stride, padding=padding)
        pt, ph, pw = self.padding
        self.causal_pad = 2 * pt
        self._space_pad = (pw, pw, ph, ph)
        self.padding = (0, 0, 0)

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        """x (b c t h w), prev (b c p h w) with p <= 2*padding_t -> (b c' t' h' w')."""
        pad_t = self.causal_pad
        if prev is not None and pad_t > 0:
            x = torch.cat([prev.to(x), x], dim=2)
            pad_t -= prev.shape[2]
        return super().forward(F.pad(x, (*self._space_pad, pad_t, 0)))


def cached_conv(conv: CausalConv3d, x: torch.Tensor, cache: FeatureCache | None) -> torch.Tensor:
    """Run a causal conv, reading and updating its cache slot (no cache: the start of a stream)."""
    if cache is None:
        return conv(x)
    i = cache.take()
    prev = cache.slots[i]
    y = conv(x, prev)
    cache.slots[i] = _tail(prev, x)
    return y


class RMSNorm(nn.Module):
    """Wan's channel RMS norm: ``x / ||x||_c * sqrt(c) * gamma`` (computed in fp32 for low precisions).

    ``images=False``: input (b c t h w), gamma (c 1 1 1); ``images=True``: (b c h w), gamma (c 1 1).
    """

    def __init__(self, dim: int, images: bool = False):
        super().__init__()
        self.scale = dim ** 0.5
        self.gamma = nn.Parameter(torch.ones(dim, *((1, 1) if images else (1, 1, 1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        return F.normalize(xf, dim=1).to(x.dtype) * self.scale * self.gamma


class ResBlock(nn.Module):
    """RMSNorm -> SiLU -> causal 3x3x3 conv, twice, plus a (1x1x1 conv) shortcut. (b c t h w) -> (b c' t h w)."""

    def __init__(self, cin: int, cout: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = RMSNorm(cin)
        self.conv1 = CausalConv3d(cin, cout, 3, padding=1)
        self.norm2 = RMSNorm(cout)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = CausalConv3d(cout, cout, 3, padding=1)
        self.shortcut = CausalConv3d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        h = self.shortcut(x)
        x = cached_conv(self.conv1, F.silu(self.norm1(x)), cache)
        x = cached_conv(self.conv2, self.dropout(F.silu(self.norm2(x))), cache)
        return x + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the pixels of each frame (no mixing across time). (b c t h w)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = RMSNorm(dim, images=True)
        self.to_qkv = nn.Conv2d(dim, dim * 3, 1)
        self.proj = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        b, c, t, h, w = x.shape
        y = self.to_qkv(self.norm(rearrange(x, "b c t h w -> (b t) c h w")))
        q, k, v = rearrange(y, "n (three c) h w -> three n 1 (h w) c", three=3)
        y = F.scaled_dot_product_attention(q, k, v)
        y = self.proj(rearrange(y, "n 1 (h w) c -> n c h w", h=h, w=w))
        return x + rearrange(y, "(b t) c h w -> b c t h w", b=b)


class Resample(nn.Module):
    """Spatial 2x up/down sampling, optionally with Wan's causal temporal 2x up/down sampling.

    Modes: ``upsample2d`` / ``upsample3d`` (nearest-exact 2x, conv to ``dim // 2`` channels; 3d first
    doubles time with a causal (3,1,1) conv to 2*dim channels, except for the stream's first frame) and
    ``downsample2d`` / ``downsample3d`` (stride-2 conv; 3d then halves time with a stride-2 (3,1,1) conv
    over [previous frame, frames], except for the stream's first frame).
    """

    def __init__(self, dim: int, mode: str):
        super().__init__()
        self.mode = mode
        if mode.startswith("upsample"):
            self.conv = nn.Conv2d(dim, dim // 2, 3, padding=1)
            if mode == "upsample3d":
                self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0))
        elif mode.startswith("downsample"):
            self.conv = nn.Conv2d(dim, dim, 3, stride=2)
            if mode == "downsample3d":
                self.time_conv = CausalConv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1))
        else:
            raise ValueError(f"unknown resample mode {mode!r}")

    def _spatial(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        x = rearrange(x, "b c t h w -> (b t) c h w")
        if self.mode.startswith("upsample"):
            x = F.interpolate(x.float(), scale_factor=2.0, mode="nearest-exact").to(x.dtype)
            x = self.conv(x)
        else:
            x = self.conv(F.pad(x, (0, 1, 0, 1)))
        return rearrange(x, "(b t) c h w -> b c t h w", b=b)

    def _time_up(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        i = cache.take()
        prev = cache.slots[i]
        if prev is None:               # stream start: the first frame is not doubled
            first, x = x[:, :, :1], x[:, :, 1:]
            prev = x[:, :, :0]         # later frames see zeros, never the first frame (as Wan)
        else:
            first = x[:, :, :0]
        cache.slots[i] = _tail(prev, x)
        if x.shape[2] == 0:
            return first
        y = rearrange(self.time_conv(x, prev), "b (two c) t h w -> b c (t two) h w", two=2)
        return torch.cat([first, y], dim=2)

    def _time_down(self, x: torch.Tensor, cache: FeatureCache) -> torch.Tensor:
        i = cache.take()
        prev = cache.slots[i]
        if prev is None:               # stream start: the first frame passes alone
            first, rest, prev = x[:, :, :1], x[:, :, 1:], x[:, :, :1]
        else:
            first, rest = x[:, :, :0], x
        if rest.shape[2] % 2:
            raise ValueError(f"temporal downsampling needs an even number of frames after the first, "
                             f"got {rest.shape[2]}")
        cache.slots[i] = x[:, :, -1:].clone()
        if rest.shape[2] == 0:
            return first
        return torch.cat([first, self.time_conv(torch.cat([prev[:, :, -1:], rest], dim=2))], dim=2)

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        """x (b c t h w) -> upsample: (b c/2 t' 2h 2w); downsample: (b c t' h/2 w/2)."""
        if self.mode.endswith("3d") and cache is None:
            cache = FeatureCache()
        if self.mode == "upsample3d":
            x = self._time_up(x, cache)
        x = self._spatial(x)
        if self.mode == "downsample3d":
            x = self._time_down(x, cache)
        return x


def _mid(dim: int, dropout: float) -> nn.ModuleList:
    return nn.ModuleList([ResBlock(dim, dim, dropout), AttnBlock(dim), ResBlock(dim, dim, dropout)])


def _run(layers: nn.ModuleList, x: torch.Tensor, cache: FeatureCache | None) -> torch.Tensor:
    for layer in layers:
        x = layer(x, cache)
    return x


class Encoder3d(nn.Module):
    """Frames (b 3 t h w) -> (b 2z t' h/8 w/8): conv_in, [res blocks (+attn), resample] per level, mid, head."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        dims = [cfg.base_dim * m for m in (1, *cfg.dim_mult)]
        self.conv_in = CausalConv3d(3, dims[0], 3, padding=1)
        layers: list[nn.Module] = []
        scale = 1.0
        for i, (cin, cout) in enumerate(zip(dims[:-1], dims[1:])):
            for _ in range(cfg.num_res_blocks):
                layers.append(ResBlock(cin, cout, cfg.dropout))
                if scale in cfg.attn_scales:
                    layers.append(AttnBlock(cout))
                cin = cout
            if i != len(cfg.dim_mult) - 1:
                layers.append(Resample(cout, "downsample3d" if cfg.temporal_downsample[i] else "downsample2d"))
                scale /= 2.0
        self.down = nn.ModuleList(layers)
        self.mid = _mid(dims[-1], cfg.dropout)
        self.norm_out = RMSNorm(dims[-1])
        self.conv_out = CausalConv3d(dims[-1], 2 * cfg.z_dim, 3, padding=1)

    def forward(self, x: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        x = cached_conv(self.conv_in, x, cache)
        x = _run(self.mid, _run(self.down, x, cache), cache)
        return cached_conv(self.conv_out, F.silu(self.norm_out(x)), cache)


class Decoder3d(nn.Module):
    """Latents (b z t h w) -> frames (b 3 t' 8h 8w): conv_in, mid, [res blocks (+attn), resample] per level, head."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        mult = tuple(cfg.dim_mult)
        dims = [cfg.base_dim * m for m in (mult[-1], *mult[::-1])]
        temporal_upsample = tuple(cfg.temporal_downsample)[::-1]
        self.conv_in = CausalConv3d(cfg.z_dim, dims[0], 3, padding=1)
        self.mid = _mid(dims[0], cfg.dropout)
        layers: list[nn.Module] = []
        scale = 1.0 / 2 ** (len(mult) - 2)
        for i, (cin, cout) in enumerate(zip(dims[:-1], dims[1:])):
            if i > 0:
                cin //= 2                      # the previous upsample halved the channels
            for _ in range(cfg.num_res_blocks + 1):
                layers.append(ResBlock(cin, cout, cfg.dropout))
                if scale in cfg.attn_scales:
                    layers.append(AttnBlock(cout))
                cin = cout
            if i != len(mult) - 1:
                layers.append(Resample(cout, "upsample3d" if temporal_upsample[i] else "upsample2d"))
                scale *= 2.0
        self.up = nn.ModuleList(layers)
        self.norm_out = RMSNorm(dims[-1])
        self.conv_out = CausalConv3d(dims[-1], 3, 3, padding=1)

    def forward(self, z: torch.Tensor, cache: FeatureCache | None = None) -> torch.Tensor:
        x = cached_conv(self.conv_in, z, cache)
        x = _run(self.up, _run(self.mid, x, cache), cache)
        return cached_conv(self.conv_out, F.silu(self.norm_out(x)), cache)


# ---------------------------------------------------------------------------------------------- the VAE

def check_vae_config(cfg: VAEConfig, source: str = "vae config") -> None:
    """Raise a UserError for a VAE config the architecture cannot build."""
    if cfg.arch != "wan":
        raise UserError(f"WanVAE builds arch 'wan', got {cfg.arch!r} (use relic.models.autoencoder.build_vae)",
                        source=source)
    n = len(cfg.dim_mult)
    if n < 2:
        raise UserError(f"dim_mult needs at least 2 levels, got {list(cfg.dim_mult)}", source=source)
    if len(cfg.temporal_downsample) != n - 1:
        raise UserError(f"temporal_downsample needs {n - 1} entries (one per downsampling level), got "
                        f"{len(cfg.temporal_downsample)}", source=source)
    check_latent_stats(cfg, source)


class WanVAE(LatentCodec, PretrainedMixin, nn.Module):
    """The Wan-2.1 causal video VAE.

    - :meth:`encode`: frames (b 3 1+4k h w) in [-1, 1] -> normalized (mean, logvar), each (b z 1+k h/s w/s)
    - :meth:`decode`: normalized latents (b z 1+k h w) -> frames (b 3 1+4k h*s w*s) in [-1, 1]
    - :meth:`stream_encoder` / :meth:`stream_decoder`: the same, chunk by chunk across calls.

    ``s`` is 2 ** (len(dim_mult) - 1) (8 for Wan) and the temporal factor 2 ** sum(temporal_downsample) (4).
    """

    config_class = VAEConfig

    def __init__(self, config: VAEConfig | None = None):
        super().__init__()
        cfg = config if config is not None else VAEConfig()
        check_vae_config(cfg)
        self.config = cfg
        self.encoder = Encoder3d(cfg)
        self.quant_conv = CausalConv3d(2 * cfg.z_dim, 2 * cfg.z_dim, 1)
        self.post_quant_conv = CausalConv3d(cfg.z_dim, cfg.z_dim, 1)
        self.decoder = Decoder3d(cfg)
        self.register_latent_stats(cfg)

    @property
    def spatial_factor(self) -> int:
        return 2 ** (len(self.config.dim_mult) - 1)

    @property
    def temporal_factor(self) -> int:
        return 2 ** sum(bool(t) for t in self.config.temporal_downsample)

    # raw passes (explicit cache) ----------------------------------------------------------------
    def encode_chunk(self, x: torch.Tensor, cache: FeatureCache) -> tuple[torch.Tensor, torch.Tensor]:
        """One chunk of a stream: frames (b 3 t h w) -> normalized (mean, logvar) (b z t' h/s w/s)."""
        cache.rewind()
        moments = self.quant_conv(self.encoder(x, cache))
        mu, logvar = moments.chunk(2, dim=1)
        logvar = logvar.clamp(*LOGVAR_RANGE)
        return self.normalize(mu), logvar - 2.0 * torch.log(self.latents_std.to(logvar))

    def decode_chunk(self, z: torch.Tensor, cache: FeatureCache, clamp: bool = True) -> torch.Tensor:
        """One chunk of a stream: normalized latents (b z t h w) -> frames (b 3 t' h*s w*s)."""
        cache.rewind()
        x = self.decoder(self.post_quant_conv(self.denormalize(z)), cache)
        return x.clamp(-1.0, 1.0) if clamp else x

    # whole clips (encode, decode, sample: LatentCodec) ------------------------------------------------
    @staticmethod
    def kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(N(mean, exp(logvar)) || N(0, 1)) summed over (c t h w), per sample (b)."""
        return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).flatten(1).sum(1)

    # streaming -------------------------------------------------------------------------------------
    def stream_encoder(self) -> "StreamEncoder":
        return StreamEncoder(self)

    def stream_decoder(self, clamp: bool = True) -> "StreamDecoder":
        return StreamDecoder(self, clamp=clamp)


class StreamEncoder:
    """Encode a video chunk by chunk with a persistent causal cache.

    The first call takes 1 + 4n frames (usually 1), every later call 4n frames; each call returns the
    normalized (mean, logvar) of the n (+1) new latents, (b z n h/8 w/8). Concatenating the outputs equals
    :meth:`WanVAE.encode` on the whole clip.
    """

    def __init__(self, vae: WanVAE):
        self.vae = vae
        self.cache = FeatureCache()
        self.frames_seen = 0

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """frames (b 3 t h w) -> (mean, logvar) (b z t' h/8 w/8)."""
        tf, sf = self.vae.temporal_factor, self.vae.spatial_factor
        t, (h, w) = x.shape[2], x.shape[3:]
        new = t - 1 if self.frames_seen == 0 else t
        if t == 0 or new % tf:
            want = f"1 + {tf}n" if self.frames_seen == 0 else f"{tf}n"
            raise ValueError(f"this chunk must have {want} frames, got {t}")
        if h % sf or w % sf:
            raise ValueError(f"frame size {h}x{w} must be a multiple of {sf}")
        out = self.vae.encode_chunk(x, self.cache)
        self.frames_seen += t
        return out


class StreamDecoder:
    """Decode latents chunk by chunk (e.g. one generated block at a time) with a persistent causal cache.

    Each call takes normalized latents (b z n h w) and returns their frames (b 3 f 8h 8w): the stream's
    first latent gives 1 frame, every other latent 4. Concatenating the outputs equals
    :meth:`WanVAE.decode` on all latents at once.
    """

    def __init__(self, vae: WanVAE, clamp: bool = True):
        self.vae = vae
        self.clamp = clamp
        self.cache = FeatureCache()
        self.latents_seen = 0

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """latents (b z n h w) -> frames (b 3 f 8h 8w)."""
        if z.shape[2] == 0:
            raise ValueError("empty latent chunk")
        out = self.vae.decode_chunk(z, self.cache, clamp=self.clamp)
        self.latents_seen += z.shape[2]
        return out


def vae_frames(num_latents: int, temporal_factor: int = 4) -> int:
    """Frames decoded from ``num_latents`` latents: 1 + 4 (n - 1)."""
    return 0 if num_latents <= 0 else 1 + temporal_factor * (num_latents - 1)


def vae_latents(num_frames: int, temporal_factor: int = 4) -> int:
    """Latents encoded from ``num_frames`` = 1 + 4k frames: 1 + k."""
    return 0 if num_frames <= 0 else 1 + math.ceil((num_frames - 1) / temporal_factor)
