"""StreamingSession: the one engine API (paper §4.2–§4.5).

::

    session = StreamingSession.from_pretrained("relic-tiny")        # a preset = random weights
    first = session.start(image, "a sunny courtyard", seed=0)        # (1 h w 3) uint8
    frames = session.step(actions)                                   # (4*frames_per_block h w 3) uint8
    session.state                                                    # poses, memory stats, timings

``actions`` for a block: per-video-frame actions ``(4*frames_per_block, 13)`` or a key-state dict
(``{"w": True, "left": True, "mouse_dx": 3.0}``, see :class:`relic.camera.KeyMap`) held for the whole block.
The speed coefficient γ scales the action magnitudes fed to the model and the integrated poses alike
(eq. 3). Poses given to the DiT are relative to the first frame, in units of d̄.

The session does no I/O: clients (the web app, ``relic generate``, eval suites, benchmarks) feed it arrays.

Model directory (``from_pretrained(dir)``): ``config.json`` (a :class:`~relic.config.RelicConfig`) plus
``dit.safetensors``, ``vae.safetensors`` and (for the default decoder) ``tiny_decoder.safetensors``;
:func:`save_model_dir` writes it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from relic.camera import KeyMap, integrate, validate_actions
from relic.config import RelicConfig, config_from_dict, config_to_dict, get_preset, PRESETS
from relic.data.start_image import encode_start_image, preprocess_image  # noqa: F401 (preprocess_image: public here too)
from relic.errors import UserError
from relic.models.dit import DiT
from relic.models.tiny_decoder import TinyDecoder
from relic.models.autoencoder import build_vae
from relic.models.vae import WanVAE
from relic.precision import resolve_precision
from relic.runtime.student import Student

Decoder = Literal["tiny", "vae"]
DIT_FILE, VAE_FILE, TINY_FILE = "dit.safetensors", "vae.safetensors", "tiny_decoder.safetensors"


def save_model_dir(directory: str | os.PathLike, cfg: RelicConfig, dit: DiT, vae: WanVAE,
                   tiny: TinyDecoder | None = None) -> None:
    """Write a model directory: config.json + dit/vae/tiny_decoder safetensors (atomic per file)."""
    from safetensors.torch import save_file

    from relic.fileio import atomic_path, write_json_atomic

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for name, module in ((DIT_FILE, dit), (VAE_FILE, vae), (TINY_FILE, tiny)):
        if module is None:
            continue
        sd = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
        with atomic_path(d / name) as tmp:
            save_file(sd, str(tmp))
    write_json_atomic(d / "config.json", config_to_dict(cfg))


def load_model_dir(directory: str | os.PathLike, need_tiny: bool = True) -> tuple[RelicConfig, DiT, WanVAE,
                                                                                 TinyDecoder | None]:
    """Read a model directory written by :func:`save_model_dir` (safetensors only, strict shapes)."""
    from relic.models.weights import load_checked, load_state

    d = Path(directory)
    cfg_path = d / "config.json"
    if not cfg_path.is_file():
        raise UserError("not a model directory (no config.json)", source=str(d))
    try:
        raw = json.loads(cfg_path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise UserError(f"invalid JSON: {e}", source=str(cfg_path)) from None
    cfg = config_from_dict(RelicConfig, raw, source=str(cfg_path))
    dit = DiT.from_pretrained(d, config=cfg.dit, filename=DIT_FILE)
    vae = build_vae(cfg.vae)
    sd, _ = load_state(d, VAE_FILE)
    load_checked(vae, sd, source=str(d / VAE_FILE))
    tiny = None
    if (d / TINY_FILE).is_file():
        tiny = TinyDecoder(cfg.tiny_decoder)
        sd, _ = load_state(d, TINY_FILE)
        load_checked(tiny, sd, source=str(d / TINY_FILE))
    elif need_tiny:
        raise UserError(f"no {TINY_FILE} in the model directory (use decoder='vae')", source=str(d))
    return cfg, dit, vae, tiny


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(b 3 f h w) in [-1, 1] -> (f h w 3) uint8 of batch item 0."""
    x = ((frames[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 3, 0).contiguous().numpy()


class StreamingSession:
    """Real-time generation from one image + prompt, steered by actions. See the module docstring.

    Args:
        cfg: model config; dit, vae, tiny: the models (tiny may be None with ``decoder="vae"``).
        text_encoder: object with ``encode(prompts) -> (emb (b n d), mask (b n))`` (default: built from
            ``cfg.text_encoder``).
        decoder: "tiny" (default, fast) or "vae" (the full Wan decoder).
        gamma: speed coefficient γ.
        precision: "auto" (default: bf16 where the device has native bf16 kernels, else fp32;
            :func:`relic.precision.resolve_precision`), "bf16" (bfloat16 weights and autocast: ~5x faster
            matmuls on a CPU with AVX-512 BF16, several times slower on an AVX2-only CPU) or "fp32".
            ``self.precision`` is the resolved one.
        compile: wrap the DiT in ``torch.compile`` (inductor).
        keymap: magnitudes for key-state actions.
        sp: a Ulysses sequence-parallel group (:class:`relic.models.sequence_parallel.SequenceParallel`):
            every rank of the group runs the session with the same inputs; each holds 1/P of the tokens
            outside attention and its head shard of the KV cache (compressed memory included); every rank
            returns the same frames as one process.
        quantize: "int8" or "fp8" weight-only quantization of the DiT blocks' linear layers
            (:func:`relic.models.quantize.quantize_linears`), None = off.
    """

    def __init__(self, cfg: RelicConfig, dit: DiT, vae: WanVAE, tiny: TinyDecoder | None = None, *,
                 text_encoder=None, decoder: Decoder = "tiny", gamma: float = 1.0,
                 precision: Literal["auto", "bf16", "fp32"] = "auto", device: str | torch.device = "cpu",
                 compile: bool = False, keymap: KeyMap | None = None, sp=None, quantize: str | None = None):
        if decoder not in ("tiny", "vae"):
            raise ValueError(f"decoder must be 'tiny' or 'vae', got {decoder!r}")
        if decoder == "tiny" and tiny is None:
            raise ValueError("decoder='tiny' needs a tiny decoder")
        self.cfg = cfg
        self.device = torch.device(device)
        precision = resolve_precision(precision, self.device)
        self.dit = dit.eval().to(self.device)
        self.vae = vae.eval().to(self.device)
        self.tiny = tiny.eval().to(self.device) if tiny is not None else None
        self.decoder_kind = decoder
        self.precision = precision
        self.keymap = keymap or KeyMap()
        self._text_encoder = text_encoder
        self.gamma = gamma
        compute = torch.bfloat16 if precision == "bf16" else torch.float32
        if quantize is not None:
            from relic.models.quantize import quantize_linears

            quantize_linears(self.dit, quantize)
        if precision == "bf16":
            # bf16 weights (buffers such as RoPE tables stay as they are): no per-call autocast weight casts
            for p in self.dit.parameters():
                p.data = p.data.to(torch.bfloat16)
        self.dit.set_sequence_parallel(sp)
        model = torch.compile(self.dit, dynamic=True) if compile else self.dit
        self.student = Student(model, cfg, compute_dtype=compute)
        self.student.dit = model
        self._dit_cfg = dit.cfg
        self.reset()

    # ------------------------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, dir_or_preset: str | os.PathLike, *, decoder: Decoder = "tiny", seed: int = 0,
                        config: RelicConfig | None = None, **kwargs) -> "StreamingSession":
        """A model directory, or a preset name (``relic-tiny``…) with random weights (seeded by ``seed``).

        ``config`` overrides the preset's config (random weights only). Other keyword arguments go to the
        constructor (text_encoder, gamma, precision, device, compile, keymap).
        """
        name = str(dir_or_preset)
        if config is not None or name in PRESETS:
            cfg = config if config is not None else get_preset(name)
            torch.manual_seed(seed)
            dit, vae, tiny = DiT(cfg.dit), build_vae(cfg.vae), TinyDecoder(cfg.tiny_decoder)
        elif Path(name).is_dir():
            cfg, dit, vae, tiny = load_model_dir(name, need_tiny=decoder == "tiny")
        else:
            raise UserError(f"{name!r} is neither a model directory nor a preset ({', '.join(PRESETS)})")
        return cls(cfg, dit, vae, tiny, decoder=decoder, **kwargs)

    @property
    def text_encoder(self):
        if self._text_encoder is None:
            from relic.models.text import build_text_encoder
            self._text_encoder = build_text_encoder(self.cfg.text_encoder, self.cfg.text_len)
        return self._text_encoder

    @property
    def gamma(self) -> float:
        return self._gamma

    @gamma.setter
    def gamma(self, value: float) -> None:
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"gamma must be a positive number, got {value}")
        self._gamma = float(value)

    @property
    def memory(self):
        """The KV-cache memory config in use (:class:`relic.config.MemoryConfig`).

        Assigning a new config (e.g. ``dataclasses.replace(session.memory, archive_latents=0)`` for a
        window-only student, or another ``token_budget``) forgets the current stream: call :meth:`start`.
        """
        return self.student.memory_cfg

    @memory.setter
    def memory(self, cfg) -> None:
        from relic.config import MemoryConfig

        if not isinstance(cfg, MemoryConfig):
            raise TypeError(f"memory must be a MemoryConfig, got {type(cfg).__name__}")
        self.student.memory_cfg = cfg
        self.reset()

    @property
    def frames_per_step(self) -> int:
        return self._dit_cfg.temporal_compression * self.cfg.frames_per_block

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # ------------------------------------------------------------------------------------ stream
    def reset(self) -> None:
        """Forget the stream (call :meth:`start` again)."""
        self.cache = None
        self._text = None
        self._gen = None
        self._decoder = None
        self._R = np.zeros((0, 3, 3))
        self._P = np.zeros((0, 3))
        self._actions = np.zeros((0, 13))
        self._timings: list[dict] = []
        self.frames_out = 0

    @torch.no_grad()
    def start(self, image: np.ndarray, prompt: str, seed: int = 0) -> np.ndarray:
        """Begin a stream at ``image`` (uint8 (h w 3)) with ``prompt``; returns the decoded first frame (1 h w 3)."""
        self.reset()
        t0 = time.perf_counter()
        preprocess_image(image, self.cfg.height, self.cfg.width)          # bad images fail before any work
        emb, mask = self.text_encoder.encode([prompt])
        self._gen = torch.Generator(device=self.device).manual_seed(int(seed))
        with self._autocast():
            # the one start-image path, shared with the latent cache (training's latent 0) and the evals
            z0 = encode_start_image(self.vae, image, self.cfg.height, self.cfg.width, self.device)
            self._text = self.dit.prepare_text(emb.to(self.device), mask.to(self.device))
            self.cache = self.student.new_cache(z0.shape[-2:], capacity_latents=64)
            self.student.write_first(self.cache, z0, self._text)
            self._decoder = self.tiny.stream() if self.decoder_kind == "tiny" else self.vae.stream_decoder()
            frames = self._decoder.decode(z0)
        self._latent_hw = tuple(z0.shape[-2:])
        self._R = np.eye(3)[None]
        self._P = np.zeros((1, 3))
        static = np.zeros((1, 13))
        static[0, 12] = 1.0
        self._actions = static
        out = to_uint8(frames)
        self.frames_out = out.shape[0]
        self._timings.append({"block_ms": (time.perf_counter() - t0) * 1e3, "decode_ms": 0.0, "kind": "start"})
        return out

    def _parse_actions(self, actions) -> np.ndarray:
        n = self.frames_per_step
        if isinstance(actions, dict):
            held = {k: v for k, v in actions.items() if k not in ("mouse_dx", "mouse_dy")}
            a = self.keymap.action_from_keys(held, float(actions.get("mouse_dx", 0.0)),
                                             float(actions.get("mouse_dy", 0.0)))
            return np.repeat(a[None], n, 0)
        a = validate_actions(actions)
        if a.shape[0] != n:
            raise ValueError(f"a step takes {n} per-frame actions (4 x frames_per_block), got {a.shape[0]}")
        return a

    @torch.no_grad()
    def step(self, actions) -> np.ndarray:
        """Generate the next block: actions ((4f, 13) array or key-state dict) -> uint8 frames (4f h w 3)."""
        if self.cache is None:
            raise RuntimeError("call start(image, prompt) first")
        t0 = time.perf_counter()
        a = self._parse_actions(actions)
        scaled = a.copy()
        scaled[:, :12] *= self.gamma
        R, P = integrate(np.concatenate([self._actions[-1:], scaled]), 1.0, 1.0, self._R[-1], self._P[-1])
        R, P = R[1:], P[1:]
        f = self.cfg.frames_per_block
        c = self._dit_cfg.temporal_compression
        lat = np.arange(1, f + 1) * c - 1                       # last video frame of each latent
        noise = torch.randn(1, self._dit_cfg.in_channels, f, *self._latent_hw, generator=self._gen,
                            device=self.device)
        with self._autocast():
            res = self.student.generate_block(self.cache, noise, self._text, scaled, R[lat], P[lat],
                                              generator=self._gen)
            t1 = time.perf_counter()
            frames = self._decoder.decode(res.x0.float() if self.precision == "fp32" else res.x0)
        out = to_uint8(frames)
        t2 = time.perf_counter()
        self._R = np.concatenate([self._R, R])
        self._P = np.concatenate([self._P, P])
        self._actions = np.concatenate([self._actions, scaled])
        self.frames_out += out.shape[0]
        self._timings.append({"block_ms": (t1 - t0) * 1e3, "decode_ms": (t2 - t1) * 1e3, "kind": "step"})
        return out

    @property
    def state(self) -> dict:
        """poses so far (R (T 3 3), P (T 3) per video frame, units of d̄), actions (T 13) as fed (γ applied),
        memory stats, timings (per call: block_ms, decode_ms), frames, gamma."""
        mem = self.cache.stats() if self.cache is not None else {}
        return {"R": self._R.copy(), "P": self._P.copy(), "actions": self._actions.copy(), "frames": self.frames_out,
                "latents": mem.get("latents", 0), "memory": mem, "timings": list(self._timings),
                "gamma": self.gamma, "decoder": self.decoder_kind, "precision": self.precision}
