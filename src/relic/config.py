"""Typed dataclass configs and presets (``relic-tiny``, ``wan2.1-1.3b``, ``wan2.1-14b``).

A config is plain data: it serializes to JSON (``config.json`` beside the safetensors weights) with
:func:`config_to_dict` and back with :func:`config_from_dict`. Presets are functions returning a fresh
:class:`RelicConfig`; :func:`get_preset` looks one up by name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from relic.errors import UserError

# The paper's memory compression schedule S (§4.3): per-axis spatial downsampling of latent i once it
# leaves the rolling window is S[i mod len(S)].
PAPER_MEMORY_SCHEDULE: tuple[int, ...] = (1, 4, 2, 4, 4, 4, 2, 4, 4, 2, 4, 4, 4, 2, 4, 4, 2, 4)


@dataclass
class DiTConfig:
    """Wan-2.1 DiT with RELIC's action and pose conditioning (§4.1)."""

    patch_size: tuple[int, int, int] = (1, 2, 2)
    in_channels: int = 16
    out_channels: int = 16
    dim: int = 1536
    ffn_dim: int = 8960
    freq_dim: int = 256
    text_dim: int = 4096
    num_heads: int = 12
    num_layers: int = 30
    qk_norm: bool = True
    cross_attn_norm: bool = True
    eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_max_seq_len: int = 1024
    # RoPE extension for horizons longer than pre-training: "none", "pi" (position interpolation) or "ntk".
    rope_scaling: Literal["none", "pi", "ntk"] = "none"
    rope_scale: float = 1.0
    # RELIC conditioning
    action_dim: int = 13
    temporal_compression: int = 4           # video frames per latent frame
    action_hidden: int = 256
    pose_hidden: int = 256
    # Spatially varying action offsets (not in the paper): a token at normalized image coordinates (u, v) in
    # [-1, 1]^2 gets A + u B + v C instead of A alone (B, C per block, zero-initialized), so a command can
    # express the radial image motion of a dolly and the tangential one of a roll. Without it the offset is the
    # same on every token of a frame, and a model with relative (RoPE) positions only learns the uniform
    # motions (pan, tilt, truck, pedestal); see docs/models.md.
    action_coords: bool = False
    # Per-token camera rays (not in the paper; CameraCtrl's Plücker embedding): each token gets its ray's direction
    # and moment under its frame's pose relative to the first frame, through zero-initialized per-block hidden and
    # query/key offsets (relic.models.conditioning.RayEncoder); ray_translation_scale multiplies P (units of d̄) in
    # the moment.
    camera_rays: bool = False
    ray_translation_scale: float = 0.0625
    # The first latent warped to each frame's pose (not in the paper; relic.models.conditioning.plane_warp: the
    # homography of a plane at warp_depth, units of d̄, in front of the first camera; exact for rotations), with its
    # validity mask, patchified through a zero-initialized linear layer and added to the input tokens (as Wan-I2V
    # adds its first frame by channels, here moved the way the command moves the camera).
    warp_condition: bool = False
    warp_depth: float = 128.0
    # the horizontal field of view the poses were rendered with (square pixels), for the rays and the warp
    camera_fov_deg: float = 90.0

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads


@dataclass
class VAEConfig:
    """A causal video autoencoder with Wan-2.1's latent contract (8x spatial, 4x temporal, z channels).

    ``arch`` picks the network (:func:`relic.models.autoencoder.build_vae`): ``"wan"`` is the Wan-2.1 VAE
    (every Wan preset; ``base_dim``, ``dim_mult``, ``num_res_blocks``, ``attn_scales``, ``temporal_downsample``
    and ``dropout`` size it); ``"pooled"`` is relic-tiny's colour-pooled autoencoder
    (:mod:`relic.models.pooled_vae`; ``base_dim`` sizes it), whose first channels are each frame's 8x
    area-pooled luma and the group's pooled chroma, and whose decoder adds a learned residual to their
    bicubic upsampling.
    """

    arch: Literal["wan", "pooled"] = "wan"
    z_dim: int = 16
    base_dim: int = 96
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    attn_scales: tuple[float, ...] = ()
    temporal_downsample: tuple[bool, ...] = (False, True, True)
    dropout: float = 0.0
    # per-channel latent normalization; None -> zeros / ones
    latents_mean: tuple[float, ...] | None = None
    latents_std: tuple[float, ...] | None = None


# Wan-2.1's per-channel latent statistics (official release): the DiT sees (mu - mean) / std.
WAN21_LATENTS_MEAN: tuple[float, ...] = (
    -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
    0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921)
WAN21_LATENTS_STD: tuple[float, ...] = (
    2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
    3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160)


def wan21_vae_config() -> VAEConfig:
    """The official Wan-2.1 VAE: z 16, dim 96, dim_mult (1, 2, 4, 4), 2 res blocks, its latent statistics."""
    return VAEConfig(latents_mean=WAN21_LATENTS_MEAN, latents_std=WAN21_LATENTS_STD)


@dataclass
class TinyDecoderConfig:
    """Small causal latent -> frame decoder (TAEHV-style). See relic.models.tiny_decoder.

    ``channels`` at the latent resolution; the width at each resolution level (latent res, 2x, 4x, ...)
    is ``channels // channel_div[level]``. ``mem_blocks`` memory blocks per level below full resolution.
    """

    z_dim: int = 16
    channels: int = 64
    temporal_upsample: int = 4
    spatial_upsample: int = 8
    channel_div: tuple[int, ...] = (1, 1, 2, 4)
    mem_blocks: int = 1
    # For the colour-pooled autoencoder (VAEConfig.arch "pooled"): the normalization mean / std of its 6 pooled
    # colour channels. When set, the decoder adds its output to their bicubic colour base, as the VAE decoder does.
    base_mean: tuple[float, ...] | None = None
    base_std: tuple[float, ...] | None = None


@dataclass
class MemoryConfig:
    """KV cache = rolling window + compressed long-horizon spatial memory (§4.3). See docs/runtime.md.

    ``window`` latents stay uncompressed (None = every latent stays in the window, no compression).
    A latent i that leaves the window is pooled by ``schedule[i % len(schedule)]`` per spatial axis
    (when ``compress``). ``token_budget`` (beyond the paper) caps the tokens attended per block
    (first frame + memory + window); memory latents are then chosen by view overlap with the current
    camera plus ``recency_weight`` * recency. ``archive_latents`` caps how many pooled memory latents
    are stored (None = all; they are small); the lowest-scoring one is dropped when it is exceeded.
    ``rope_horizon`` (beyond the paper, latents): once a block starts past it, the RoPE time positions of the
    context older than the window are compressed linearly so that the first frame sits ``rope_horizon``
    latents before the block, the time distances the model was trained on (:func:`relic.memory.retime`);
    None keeps absolute positions.
    """

    window: int | None = 6                           # latent frames kept uncompressed (None = infinite)
    schedule: tuple[int, ...] = PAPER_MEMORY_SCHEDULE
    compress: bool = True
    token_budget: int | None = None                  # max attended KV tokens (None = unbounded, as the paper)
    recency_weight: float = 0.1                      # selection score = view overlap + recency_weight * recency
    archive_latents: int | None = None               # max stored memory latents (None = unbounded)
    fov_deg: float = 90.0                            # horizontal field of view used for view overlap
    overlap_depths: tuple[float, ...] = (2.0, 8.0, 32.0)   # frustum sample depths, in units of d̄
    dtype: Literal["fp32", "bf16", "fp8"] = "bf16"
    rope_horizon: int | None = None                  # max RoPE time distance to the context (None = absolute)


@dataclass
class SamplerConfig:
    """Few-step flow-matching sampler of the student (§4.4)."""

    timesteps: tuple[float, ...] = (1000.0, 750.0, 500.0, 250.0)
    shift: float = 5.0
    num_train_timesteps: int = 1000
    context_noise: float = 0.0                       # noise level at which clean blocks are written to the cache


@dataclass
class RelicConfig:
    """Everything a model directory needs: sizes, resolution, memory and sampling."""

    name: str = "relic-tiny"
    height: int = 128
    width: int = 224
    fps: int = 16
    frames_per_block: int = 1                        # latent frames per generated block
    dit: DiTConfig = field(default_factory=DiTConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    tiny_decoder: TinyDecoderConfig = field(default_factory=TinyDecoderConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    text_encoder: str = "minilm"                     # "minilm" (offline default) or "umt5:<local dir>"
    text_len: int = 32

    @property
    def latent_hw(self) -> tuple[int, int]:
        return self.height // 8, self.width // 8

    @property
    def tokens_per_latent(self) -> int:
        ph, pw = self.dit.patch_size[1:]
        h, w = self.latent_hw
        return (h // ph) * (w // pw)


def relic_tiny() -> RelicConfig:
    """The CPU default, trained here. Sized by `relic bench stream` to stream in real time on 2 cores."""
    return RelicConfig(
        name="relic-tiny", height=128, width=224, fps=16,
        # 4 layers: sized by `relic bench stream` (docs/benchmarks.md) to stream at >= 24 FPS decode included
        # on ONE core of this CPU (6 layers: 16 FPS); 4 denoising steps as the paper.
        dit=DiTConfig(dim=256, ffn_dim=768, text_dim=384, num_heads=4, num_layers=4, freq_dim=256,
                      action_hidden=128, pose_hidden=128),
        # the colour-pooled autoencoder (relic.models.pooled_vae): 6 of the 16 channels are pooled colour, and the
        # decoder adds a learned residual to their bicubic upsampling (the Wan VAE at this size lost colour)
        vae=VAEConfig(arch="pooled", z_dim=16, base_dim=16),
        # channels 32: 17 ms per latent in bf16 on one core (48: 30 ms), ~19x faster than the VAE decoder
        tiny_decoder=TinyDecoderConfig(z_dim=16, channels=32),
        # token_budget: attention over the context dominates a block on CPU (~2.5 us per context token per
        # layer and forward); 896 tokens = first frame + 4-latent window (560) + 336 tokens of selected
        # compressed memory, ~10x fewer than the full cache at 20 s; keeps block time flat with the horizon.
        # archive_latents: 240 stored memory latents = the last ~60 s (3x the paper's 20 s horizon) at ~75 KB
        # each, so a stream of any length holds at most ~18 MB of K/V (the lowest-scoring latent is dropped).
        memory=MemoryConfig(window=4, dtype="bf16", token_budget=896, archive_latents=240),
        # shift 2, not Wan's 5: a latent frame here has 112 tokens, 14x fewer than Wan's 480p, so noise destroys
        # the picture at lower σ; the round-6 teacher pilot (docs/training.md) trained better at 2 than at 5.
        # σ of the 4 student steps: 1, 0.857, 0.667, 0.4 (shift 5: 1, 0.9375, 0.833, 0.625).
        sampler=SamplerConfig(shift=2.0),
        text_encoder="minilm", text_len=32,
    )


def wan21_1_3b() -> RelicConfig:
    """Official Wan-2.1 T2V-1.3B dimensions at 480x832."""
    return RelicConfig(
        name="wan2.1-1.3b", height=480, width=832, fps=16,
        dit=DiTConfig(dim=1536, ffn_dim=8960, num_heads=12, num_layers=30),
        vae=wan21_vae_config(), tiny_decoder=TinyDecoderConfig(channels=64),
        memory=MemoryConfig(window=6, dtype="bf16"), text_encoder="umt5", text_len=512)


def wan21_14b() -> RelicConfig:
    """Official Wan-2.1 14B dimensions at 480x832."""
    return RelicConfig(
        name="wan2.1-14b", height=480, width=832, fps=16,
        dit=DiTConfig(dim=5120, ffn_dim=13824, num_heads=40, num_layers=40),
        vae=wan21_vae_config(), tiny_decoder=TinyDecoderConfig(channels=64),
        memory=MemoryConfig(window=6, dtype="bf16"), text_encoder="umt5", text_len=512)


PRESETS = {"relic-tiny": relic_tiny, "wan2.1-1.3b": wan21_1_3b, "wan2.1-14b": wan21_14b}


def get_preset(name: str) -> RelicConfig:
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    return PRESETS[name]()


def config_to_dict(cfg: Any) -> dict:
    """Dataclass -> JSON-ready dict (tuples become lists)."""
    return dataclasses.asdict(cfg)


def config_from_dict(cls: type, d: dict, source: str = "config") -> Any:
    """Dict -> dataclass ``cls``, recursively; unknown keys give a UserError naming them."""
    if not isinstance(d, dict):
        raise UserError(f"{source}: expected an object for {cls.__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise UserError(f"{source}: unknown field(s) for {cls.__name__}: {', '.join(unknown)}")
    kwargs = {}
    hints = {f.name: f.type for f in dataclasses.fields(cls)}
    for k, v in d.items():
        default = getattr(cls(), k) if _constructible(cls) else None
        if dataclasses.is_dataclass(default):
            kwargs[k] = config_from_dict(type(default), v, f"{source}.{k}")
        elif isinstance(default, tuple) or (isinstance(v, list) and "tuple" in str(hints[k])):
            kwargs[k] = tuple(v) if v is not None else None
        else:
            kwargs[k] = v
    return cls(**kwargs)


def _constructible(cls: type) -> bool:
    try:
        cls()
        return True
    except TypeError:
        return False
