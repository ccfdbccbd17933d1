"""Latent cache: encode every clip once with the VAE so that training never re-runs it.

One safetensors file per clip, ``CACHE/<clip name>.safetensors``, written atomically:

* ``latents``          (z 1+K h/s w/s): normalized posterior means of frames 0..4K (the clip's first
  1 + 4K frames, K = (T − 1) // 4). Latent 0 is frame 0; latent i ≥ 1 covers frames 4i−3..4i.
* ``latents_reversed`` (z 1+K h/s w/s): the same frames encoded in reverse time order (frame 4K first).
  Reversed latent L ≥ 1 covers frames 4K−4L..4K−4L+3 played backwards; the dataset uses them for the
  time-reversed half of palindrome samples (:mod:`relic.data.dataset`).
* ``first_latents``    (z 1+K h/s w/s): anchor frame 4j encoded ALONE, exactly as the runtime encodes a start
  image (:func:`relic.data.start_image.encode_start_image`, the very function
  :meth:`~relic.runtime.stream.StreamingSession.start` calls). A sample that starts at frame 4j takes this as
  its clean latent 0 (:mod:`relic.data.dataset`), so every stage trains on the first latent the runtime
  feeds. ``latents[:, j]`` is not that latent: for j ≥ 1 it encodes frames 4j−3..4j with the clip's causal
  history. An image latent has no time direction, so the reversed clip's start (frame 4K) is
  ``first_latents[:, K]``: one array serves both directions, and palindromes (which start forward) too.
* ``anchors``          uint8 (1+K h w c): frames 0, 4, 8, …, 4K; the "first frame" of any latent-aligned
  sample, so training never decodes video either.

The metadata records ``clip``, ``num_frames`` (1 + 4K), ``fps``, ``vae_id`` (a digest of the VAE's config and
weight files) and ``format``. A file whose ``vae_id`` and ``format`` match is skipped on the next run
(resumable); a file from another VAE or an older format is re-encoded. Reading a file of an older format
(``relic-latents-1``: no ``first_latents``) is a one-line error that says to re-run ``relic data encode``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from relic.data.start_image import encode_start_images
from relic.errors import UserError
from relic.fileio import atomic_path, write_json_atomic

FORMAT = "relic-latents-2"        # 2: + first_latents (single-image latents of the anchors)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def vae_id(directory: str | Path) -> str:
    """Digest of a VAE directory: its config.json and the size + first MiB of each safetensors file."""
    directory = Path(directory)
    h = hashlib.sha256()
    for p in sorted(directory.glob("*.json")) + sorted(directory.glob("*.safetensors")):
        h.update(p.name.encode())
        h.update(str(p.stat().st_size).encode())
        with open(p, "rb") as f:
            h.update(f.read(1 << 20))
    return h.hexdigest()[:16]


def cache_path(cache: str | Path, clip_name: str) -> Path:
    return Path(cache) / f"{clip_name}.safetensors"


def _to_video(frames: np.ndarray) -> torch.Tensor:
    """uint8 (f h w c) -> float32 (1 c f h w) in [-1, 1]."""
    x = torch.from_numpy(np.array(frames, copy=True)).float().div_(127.5).sub_(1.0)
    return rearrange(x, "f h w c -> 1 c f h w")


@torch.no_grad()
def encode_frames(vae, frames: np.ndarray, chunk_latents: int = 8) -> torch.Tensor:
    """Encode uint8 frames (1+4K h w c) chunk by chunk with a streaming encoder -> (z 1+K h/s w/s) float32.

    Chunks of ``chunk_latents`` latents bound the memory; the causal cache makes the result equal a
    single-call :meth:`WanVAE.encode` (within float tolerance).
    """
    tf = vae.temporal_factor
    enc = vae.stream_encoder()
    outs = [enc.encode(_to_video(frames[:1]))[0]]
    step = tf * chunk_latents
    for a in range(1, len(frames), step):
        outs.append(enc.encode(_to_video(frames[a:a + step]))[0])
    return torch.cat(outs, dim=2)[0].float()


def encode_clip(vae, clip, out: str | Path, vid: str, dtype: str = "float32", reverse: bool = True,
                chunk_latents: int = 8) -> Path:
    """Encode one :class:`relic.data.clips.Clip` into ``out`` (atomic)."""
    tf, sf = vae.temporal_factor, vae.spatial_factor
    K = (len(clip) - 1) // tf
    if K < 1:
        raise UserError(f"clip has {len(clip)} frames; the cache needs at least {1 + tf}", source=str(clip.path))
    frames = clip.frames(1 + tf * K)
    h, w = frames.shape[1:3]
    if h % sf or w % sf:
        raise UserError(f"frame size {w}x{h} is not a multiple of the VAE's {sf}", source=str(clip.path))
    tensors = {"latents": encode_frames(vae, frames, chunk_latents).to(DTYPES[dtype]).contiguous()}
    if reverse:
        tensors["latents_reversed"] = encode_frames(vae, frames[::-1].copy(), chunk_latents).to(DTYPES[dtype]).contiguous()
    anchors = np.ascontiguousarray(frames[::tf])
    tensors["first_latents"] = encode_start_images(vae, anchors).to(DTYPES[dtype]).contiguous()
    tensors["anchors"] = torch.from_numpy(anchors)
    meta = {"format": FORMAT, "clip": clip.name, "num_frames": str(1 + tf * K), "fps": str(clip.traj.fps),
            "vae_id": vid, "temporal_factor": str(tf), "spatial_factor": str(sf)}
    with atomic_path(out) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(out)


def read_metadata(path: str | Path) -> dict | None:
    """The metadata of a cache file, or None when it is missing or unreadable."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError):
        return None


def is_done(path: str | Path, vid: str) -> bool:
    meta = read_metadata(path)
    return meta is not None and meta.get("format") == FORMAT and meta.get("vae_id") == vid


class LatentFile:
    """Read access to one clip's cache file (tensors are loaded lazily, by slice)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        meta = read_metadata(self.path)
        fmt = None if meta is None else meta.get("format")
        if fmt != FORMAT and isinstance(fmt, str) and fmt.startswith("relic-latents-"):
            raise UserError(f"latent cache format {fmt} is out of date (no single-image first latents); re-run "
                            f"`relic data encode` with the same --out to re-encode it", source=str(self.path))
        if fmt != FORMAT:
            raise UserError("not a relic latent cache file (run `relic data encode`)", source=str(self.path))
        self.meta = meta
        self.num_frames = int(meta["num_frames"])
        self.temporal_factor = int(meta.get("temporal_factor", 4))
        with safe_open(str(self.path), framework="pt") as f:
            self.has_reversed = "latents_reversed" in f.keys()

    @property
    def num_latents(self) -> int:
        return 1 + (self.num_frames - 1) // self.temporal_factor

    def latents(self, index: np.ndarray, reversed_: bool = False) -> torch.Tensor:
        """Latents at ``index`` (n,) -> (z n h w) float32."""
        key = "latents_reversed" if reversed_ else "latents"
        with safe_open(str(self.path), framework="pt") as f:
            if key not in f.keys():
                raise UserError(f"cache file has no '{key}' (re-encode with reversed latents)", source=str(self.path))
            t = f.get_slice(key)
            lo, hi = int(np.min(index)), int(np.max(index)) + 1
            block = t[:, lo:hi]
        return block[:, torch.as_tensor(np.asarray(index) - lo)].float()

    def first_latent(self, latent_index: int) -> torch.Tensor:
        """Anchor frame 4·latent_index encoded alone, as the runtime encodes a start image -> (z 1 h w) float32."""
        with safe_open(str(self.path), framework="pt") as f:
            return f.get_slice("first_latents")[:, latent_index:latent_index + 1].float()

    def anchor(self, latent_index: int) -> np.ndarray:
        """Frame 4·latent_index, uint8 (h w c)."""
        with safe_open(str(self.path), framework="pt") as f:
            return f.get_slice("anchors")[latent_index:latent_index + 1][0].numpy()


def encode_dataset(clips: list, vae_dir: str | Path, cache: str | Path, dtype: str = "float32",
                   reverse: bool = True, chunk_latents: int = 8, progress: bool = True,
                   precision: str = "fp32") -> tuple[int, int]:
    """Encode every clip not already in ``cache`` -> (encoded, skipped). Shows a tqdm bar.

    ``precision="bf16"`` runs the encoder under CPU/CUDA bf16 autocast: about 2x faster on a CPU with bf16
    matmuls, and the same arithmetic as :class:`relic.runtime.stream.StreamingSession` uses to encode the
    start frame at run time when it runs in bf16 (latent differences are at the bf16 rounding level).
    The ``first_latents`` are bitwise the runtime's start latents when the precision and the storage dtype
    match the session's (fp32 + float32, or bf16 on both sides).
    """
    import contextlib

    from tqdm import tqdm

    from relic.models.autoencoder import load_vae

    if dtype not in DTYPES:
        raise UserError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    vae_dir = Path(vae_dir)
    if not (vae_dir / "config.json").is_file():
        raise UserError("not a VAE directory (no config.json)", source=str(vae_dir))
    if precision not in ("fp32", "bf16"):
        raise UserError(f"--precision must be fp32 or bf16, got {precision!r}")
    vid = vae_id(vae_dir)
    todo = [c for c in clips if not is_done(cache_path(cache, c.name), vid)]
    if not todo:
        return 0, len(clips)
    vae = load_vae(vae_dir).eval()
    Path(cache).mkdir(parents=True, exist_ok=True)
    amp = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
    with amp:
        for clip in tqdm(todo, desc="encode", unit="clip", disable=not progress):
            encode_clip(vae, clip, cache_path(cache, clip.name), vid, dtype, reverse, chunk_latents)
    manifest = {"vae_id": vid, "vae": str(vae_dir), "dtype": dtype, "precision": precision, "format": FORMAT}
    write_json_atomic(Path(cache) / "cache.json", manifest)
    return len(todo), len(clips) - len(todo)
