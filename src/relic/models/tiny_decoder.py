"""A tiny causal latent -> frame decoder for real-time streaming (paper §4.5), in the spirit of TAEHV.

The paper decodes with the small VAE of MotionStream instead of the full Wan decoder. This module is a
decoder of that family: plain 2D convs per frame, and a small *temporal memory* in every memory block
(the block sees its input of the current and the previous frame, ``conv(cat(x_t, x_{t-1}))``). It
upsamples 8x in space (nearest 2x + conv per level) and 4x in time (``TGrow``: a 1x1 conv to k times the
channels, split into k frames). Like the Wan VAE, the stream's first latent gives 1 frame (only the last
of the k grown frames is kept) and every later latent 4 frames, so ``1 + k`` latents give ``1 + 4k`` frames.

State is explicit: :class:`TinyDecoderState` holds each memory block's previous input frame. Decoding one
latent at a time with :meth:`TinyDecoder.stream` equals decoding all latents at once (tested). Trained to
match the VAE decoder's frames (training issue); it is much cheaper: see :func:`benchmark_decoders`.

With ``base_mean`` / ``base_std`` set (the colour-pooled autoencoder, :mod:`relic.models.pooled_vae`), the
network's output is a residual on the latents' bicubic colour base, exactly as that VAE's own decoder, and its
last conv starts small (0.1x its default init): an untrained tiny decoder already shows the pooled colours.

Shapes: latents (b z t h w) (normalized, as the DiT produces them) -> frames (b 3 f 8h 8w) in [-1, 1].
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from relic.config import RelicConfig, TinyDecoderConfig
from relic.errors import UserError
from relic.models.pooled_vae import N_FIXED, colour_base
from relic.models.weights import PretrainedMixin


@dataclass
class TinyDecoderState:
    """Streaming state: the previous input frame (b c h w) of every memory block, and how many grown frames
    the stream has produced (0 = the next latent is the stream's first)."""

    past: list[torch.Tensor | None] = field(default_factory=list)
    latents_seen: int = 0


def _check(cfg: TinyDecoderConfig) -> tuple[int, int]:
    n_sp = int(round(math.log2(cfg.spatial_upsample))) if cfg.spatial_upsample > 0 else -1
    n_t = int(round(math.log2(cfg.temporal_upsample))) if cfg.temporal_upsample > 0 else -1
    if n_sp < 1 or 2 ** n_sp != cfg.spatial_upsample:
        raise UserError(f"tiny_decoder.spatial_upsample must be a power of 2 >= 2, got {cfg.spatial_upsample}")
    if n_t < 0 or 2 ** n_t != cfg.temporal_upsample or n_t > n_sp:
        raise UserError(f"tiny_decoder.temporal_upsample must be a power of 2 <= spatial_upsample, "
                        f"got {cfg.temporal_upsample}")
    if len(cfg.channel_div) != n_sp + 1:
        raise UserError(f"tiny_decoder.channel_div needs {n_sp + 1} entries (one per resolution level), "
                        f"got {len(cfg.channel_div)}")
    if any(d <= 0 or cfg.channels // d < 1 for d in cfg.channel_div):
        raise UserError("tiny_decoder.channel_div entries must be > 0 and <= channels")
    if (cfg.base_mean is None) != (cfg.base_std is None):
        raise UserError("tiny_decoder.base_mean and base_std are set together (or neither)")
    if cfg.base_mean is not None:
        if len(cfg.base_mean) != N_FIXED or len(cfg.base_std) != N_FIXED:
            raise UserError(f"tiny_decoder.base_mean / base_std need {N_FIXED} values (the pooled colour channels)")
        if cfg.spatial_upsample != 8 or cfg.temporal_upsample != 4 or cfg.z_dim <= N_FIXED:
            raise UserError("a colour base needs spatial_upsample 8, temporal_upsample 4 and z_dim > 6")
    return n_sp, n_t


class MemBlock(nn.Module):
    """``relu(conv(relu(conv(relu(conv(cat(x_t, x_{t-1})))))) + x_t)``: a residual block that remembers one frame.

    Input (b c t h w); ``past`` (b c h w) is the frame before ``x[:, :, 0]`` (None: zeros, stream start).
    Returns the output and the new past (the last input frame).
    """

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(2 * c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.conv3 = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor, past: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        b = x.shape[0]
        first = torch.zeros_like(x[:, :, :1]) if past is None else past.unsqueeze(2).to(x)
        prev = torch.cat([first, x[:, :, :-1]], dim=2)
        h = rearrange(torch.cat([x, prev], dim=1), "b c t h w -> (b t) c h w")
        h = self.conv3(F.relu(self.conv2(F.relu(self.conv1(h)))))
        out = F.relu(h + rearrange(x, "b c t h w -> (b t) c h w"))
        return rearrange(out, "(b t) c h w -> b c t h w", b=b), x[:, :, -1].clone()


class TGrow(nn.Module):
    """Grow time k-fold: a 1x1 conv to k*c channels, split into k frames. (b c t h w) -> (b c t*k h w)."""

    def __init__(self, c: int, k: int):
        super().__init__()
        self.k = k
        self.conv = nn.Conv2d(c, c * k, 1)

    def forward(self, x: torch.Tensor, first: bool) -> torch.Tensor:
        """``first``: x[:, :, 0] is the stream's first frame, which keeps only its last grown frame."""
        b = x.shape[0]
        y = self.conv(rearrange(x, "b c t h w -> (b t) c h w"))
        y = rearrange(y, "(b t) (k c) h w -> b c (t k) h w", b=b, k=self.k)
        return y[:, :, self.k - 1:] if first else y


class Level(nn.Module):
    """One resolution level: memory blocks, optional temporal growth, 2x nearest upsample + conv."""

    def __init__(self, cin: int, cout: int, mem_blocks: int, grow: int):
        super().__init__()
        self.mem = nn.ModuleList(MemBlock(cin) for _ in range(mem_blocks))
        self.grow = TGrow(cin, grow) if grow > 1 else None
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)


class TinyDecoder(PretrainedMixin, nn.Module):
    """Tiny causal decoder: latents (b z t h w) -> frames (b 3 f 8h 8w), f = 1 + 4 (t - 1) for a fresh stream."""

    config_class = TinyDecoderConfig

    def __init__(self, config: TinyDecoderConfig | None = None):
        super().__init__()
        cfg = config if config is not None else TinyDecoderConfig()
        n_sp, n_t = _check(cfg)
        self.config = cfg
        widths = [cfg.channels // d for d in cfg.channel_div]
        self.conv_in = nn.Conv2d(cfg.z_dim, widths[0], 3, padding=1)
        # temporal growth at the last n_t levels (fewer frames at the cheaper low resolutions)
        self.levels = nn.ModuleList(
            Level(widths[i], widths[i + 1], cfg.mem_blocks, 2 if i >= n_sp - n_t else 1) for i in range(n_sp))
        self.conv_out = nn.Conv2d(widths[-1], 3, 3, padding=1)
        self.has_base = cfg.base_mean is not None
        if self.has_base:                  # start near the colour base (small, not zero: see pooled_vae)
            self.conv_out.weight.data.mul_(0.1)
            nn.init.zeros_(self.conv_out.bias)
            self.register_buffer("base_mean", torch.tensor(cfg.base_mean).view(1, -1, 1, 1, 1), persistent=False)
            self.register_buffer("base_std", torch.tensor(cfg.base_std).view(1, -1, 1, 1, 1), persistent=False)

    def new_state(self) -> TinyDecoderState:
        return TinyDecoderState()

    def forward(self, z: torch.Tensor, state: TinyDecoderState | None = None, clamp: bool = True) -> torch.Tensor:
        """Decode latents (b z t h w) -> frames (b 3 f 8h 8w), continuing ``state`` (None: a fresh stream)."""
        state = state if state is not None else TinyDecoderState()
        first = state.latents_seen == 0
        if not state.past:
            state.past = [None] * sum(len(lv.mem) for lv in self.levels)
        b = z.shape[0]
        x = torch.tanh(z / 3.0) * 3.0                       # soft clamp of out-of-range latents (as TAEHV)
        x = F.relu(self.conv_in(rearrange(x, "b c t h w -> (b t) c h w")))
        x = rearrange(x, "(b t) c h w -> b c t h w", b=b)
        slot = 0
        for lv in self.levels:
            for mem in lv.mem:
                x, state.past[slot] = mem(x, state.past[slot])
                slot += 1
            if lv.grow is not None:
                x = lv.grow(x, first)
            y = F.interpolate(rearrange(x, "b c t h w -> (b t) c h w"), scale_factor=2.0, mode="nearest")
            x = rearrange(F.relu(lv.conv(y)), "(b t) c h w -> b c t h w", b=b)
        y = self.conv_out(rearrange(x, "b c t h w -> (b t) c h w"))
        state.latents_seen += z.shape[2]
        out = rearrange(y, "(b t) c h w -> b c t h w", b=b)
        if self.has_base:
            fixed = z[:, :N_FIXED].float() * self.base_std + self.base_mean
            base = rearrange(colour_base(fixed), "b n k c h w -> b c (n k) h w")
            out = (out.float() + (base[:, :, 3:] if first else base)).to(out.dtype)
        return out.clamp(-1.0, 1.0) if clamp else out

    def stream(self, clamp: bool = True) -> "TinyStreamDecoder":
        return TinyStreamDecoder(self, clamp)


class TinyStreamDecoder:
    """Decode latents chunk by chunk (typically one at a time) with the tiny decoder's own state."""

    def __init__(self, model: TinyDecoder, clamp: bool = True):
        self.model = model
        self.clamp = clamp
        self.state = model.new_state()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """latents (b z n h w) -> frames (b 3 f 8h 8w)."""
        if z.shape[2] == 0:
            raise ValueError("empty latent chunk")
        return self.model(z, self.state, clamp=self.clamp)


# ------------------------------------------------------------------------------------------ benchmark

def _flops_per_latent(decode, z: torch.Tensor) -> int:
    """FLOPs (torch's counter: 2 per multiply-add) to decode one non-first latent of a stream."""
    from torch.utils.flop_counter import FlopCounterMode

    decode(z[:, :, :1])
    with FlopCounterMode(display=False) as counter:
        decode(z[:, :, 1:2])
    return counter.get_total_flops()


@torch.no_grad()
def benchmark_decoders(cfg: RelicConfig, num_latents: int = 4, warmup: int = 1,
                       dtype: torch.dtype = torch.float32, seed: int = 0) -> dict:
    """Time per latent of the Wan VAE decoder and the tiny decoder, both streaming one latent at a time.

    Random weights (speed does not depend on them) at the config's resolution, batch 1. The first latent
    of a stream (1 frame) is excluded from the timing: it is decoded as warm-up; each of the following
    ``num_latents`` latents yields 4 frames. Returns a JSON-ready dict with seconds per latent for both,
    the speed-up and the frames per second each sustains.
    """
    from relic.models.autoencoder import build_vae

    torch.manual_seed(seed)
    h, w = cfg.latent_hw
    vae = build_vae(cfg.vae).eval().to(dtype)
    tiny = TinyDecoder(cfg.tiny_decoder).eval().to(dtype)
    z = torch.randn(1, cfg.vae.z_dim, 1 + warmup + num_latents, h, w, dtype=dtype)

    def run(decode) -> float:
        for i in range(1 + warmup):
            decode(z[:, :, i:i + 1])
        t0 = time.perf_counter()
        for i in range(1 + warmup, z.shape[2]):
            decode(z[:, :, i:i + 1])
        return (time.perf_counter() - t0) / num_latents

    vae_s = run(vae.stream_decoder().decode)
    tiny_s = run(tiny.stream().decode)
    vae_flops, tiny_flops = _flops_per_latent(vae.stream_decoder().decode, z), _flops_per_latent(tiny.stream().decode, z)
    frames = cfg.tiny_decoder.temporal_upsample
    return {
        "preset": cfg.name, "height": cfg.height, "width": cfg.width, "dtype": str(dtype).replace("torch.", ""),
        "threads": torch.get_num_threads(), "num_latents": num_latents,
        "vae_s_per_latent": vae_s, "tiny_s_per_latent": tiny_s, "speedup": vae_s / tiny_s,
        "vae_fps": frames / vae_s, "tiny_fps": frames / tiny_s,
        "vae_gflop_per_latent": vae_flops / 1e9, "tiny_gflop_per_latent": tiny_flops / 1e9,
        "flop_ratio": vae_flops / tiny_flops,
        "vae_params": sum(p.numel() for p in vae.decoder.parameters()) + sum(
            p.numel() for p in getattr(vae, "post_quant_conv", torch.nn.Identity()).parameters()),
        "tiny_params": sum(p.numel() for p in tiny.parameters()),
    }
