"""The autoencoder gate (``relic autoencoder eval``): does stage 0 keep the world, and does it beat doing nothing?

An autoencoder is measured on held-out clips (scene seeds >= 2**32, both scene families, rendered by the
simulated operator) beside two baselines on the same frames:

* ``pool_bicubic`` -- every frame 8x area-pooled, then bicubically upsampled: a code that learns nothing.
* the previous autoencoder (e.g. the shipped model directory's VAE and tiny decoder), when given.

For each decoder it reports PSNR and SSIM over the clips, the **flat-colour error** (the largest per-channel
error, in levels, of flat patches of the six primaries and the world's material palette pushed through the
codec), the **saturation ratio** (mean HSV saturation, reconstruction / ground truth), the **sharpness ratio**
(variance of the Laplacian, reconstruction / ground truth), and for the latent decoders the PSNR with
N(0, 0.1²) added to the normalized latents (a DiT's latents are never exact). Encode time of a 20 s clip
(321 frames) is timed once per encoder.

Every codec is a pair of callables on uint8 video (f h w 3): :class:`Codec`. The engine here does no file I/O;
:mod:`relic.commands.autoencoder` renders, writes the JSON and the strip image.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from relic.eval.metrics import psnr, saturation, sharpness, ssim

#: The six primaries (RGB, 0-255).
PRIMARIES: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255),
    "cyan": (0, 255, 255), "magenta": (255, 0, 255), "yellow": (255, 255, 0)}

#: The colours the issue measured the old autoencoder on.
ISSUE_COLOURS: dict[str, tuple[int, int, int]] = {
    "issue_blue": (40, 70, 200), "issue_orange": (230, 120, 20), "issue_green": (60, 140, 60),
    "issue_magenta": (220, 20, 160)}

FLAT_TOLERANCE = 12          # levels per channel a flat colour may move through the codec
NOISE_STD = 0.1              # noise on normalized latents for the robustness figure


def material_palette() -> dict[str, tuple[int, int, int]]:
    """The procedural world's base colours (walls, landmarks, wood) as 0-255 RGB."""
    from relic.world.scenes import LANDMARK_COLORS, WALL_COLORS, WOOD_COLORS

    out: dict[str, tuple[int, int, int]] = {}
    for prefix, table in (("wall", WALL_COLORS), ("landmark", LANDMARK_COLORS)):
        for name, c in table.items():
            out[f"{prefix}_{name}"] = tuple(int(round(255 * v)) for v in c)
    for name, pair in WOOD_COLORS.items():
        for i, c in enumerate(pair):
            out[f"wood_{name}_{i}"] = tuple(int(round(255 * v)) for v in c)
    return out


def flat_colours() -> dict[str, tuple[int, int, int]]:
    """Primaries, the issue's colours and the material palette."""
    return {**PRIMARIES, **ISSUE_COLOURS, **material_palette()}


def flat_video(rgb: tuple[int, int, int], frames: int = 9, size: tuple[int, int] = (64, 64)) -> np.ndarray:
    """A flat uint8 video (f h w 3) of one colour."""
    return np.broadcast_to(np.asarray(rgb, np.uint8), (frames, *size, 3)).copy()


def mean_saturation(video: np.ndarray) -> float:
    """Mean HSV saturation (0-1) of uint8 frames (f h w 3) or one frame (h w 3) (:func:`relic.eval.metrics.saturation`)."""
    return saturation(video)


# ----------------------------------------------------------------------------------------------- codecs

@dataclass
class Codec:
    """A named reconstruction path: ``run(video) -> video`` on uint8 (f h w 3), f = 1 + 4k.

    ``run_noisy(video, std, seed)`` decodes the latents with N(0, std²) added (None for codecs without latents);
    ``encode_only(video)`` encodes without decoding (None: no encoder to time).
    """

    name: str
    run: Callable[[np.ndarray], np.ndarray]
    run_noisy: Callable[[np.ndarray, float, int], np.ndarray] | None = None
    encode_only: Callable[[np.ndarray], object] | None = None


def _to_video(frames: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(frames)).float().div(127.5).sub(1.0)
    return x.permute(3, 0, 1, 2).unsqueeze(0)                      # (1 3 f h w)


def _to_uint8(video: torch.Tensor) -> np.ndarray:
    x = ((video[0].float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 3, 0).numpy()                            # (f h w 3)


def pool_bicubic_codec() -> Codec:
    """The "8x area pool, bicubic upsample" baseline."""
    from relic.models.pooled_vae import pool_bicubic

    return Codec("pool_bicubic", lambda v: _to_uint8(pool_bicubic(_to_video(v))))


def latent_codec(name: str, vae, decoder=None, dtype: torch.dtype = torch.float32) -> Codec:
    """Encode with ``vae`` and decode with ``decoder`` (a module called as ``decoder(z)``; None: the VAE's own).

    ``dtype`` bf16 runs under CPU autocast (as the runtime does on AVX-512 machines).
    """
    vae = vae.eval()
    dec = decoder.eval() if decoder is not None else None

    def ctx():
        return torch.autocast("cpu", dtype=torch.bfloat16) if dtype == torch.bfloat16 else torch.autocast(
            "cpu", enabled=False)

    @torch.no_grad()
    def encode(v: np.ndarray) -> torch.Tensor:
        with ctx():
            return vae.encode(_to_video(v))[0].float()

    @torch.no_grad()
    def decode(z: torch.Tensor) -> np.ndarray:
        with ctx():
            return _to_uint8(vae.decode(z) if dec is None else dec(z))

    def noisy(v: np.ndarray, std: float, seed: int) -> np.ndarray:
        z = encode(v)
        g = torch.Generator().manual_seed(seed)
        return decode(z + std * torch.randn(z.shape, generator=g))

    return Codec(name, lambda v: decode(encode(v)), noisy, encode)


# ---------------------------------------------------------------------------------------------- metrics

def flat_colour_report(codec: Codec, colours: dict[str, tuple[int, int, int]] | None = None) -> dict:
    """Each flat colour through ``codec`` -> {"worst": max per-channel error (levels), "colours": {name: ...}}.

    The output colour is the mean of the centre 32x32 of the last frame (borders see the convs' padding).
    """
    colours = colours or flat_colours()
    per = {}
    for name, rgb in colours.items():
        out = codec.run(flat_video(rgb))[-1, 16:48, 16:48].reshape(-1, 3).mean(0)
        err = float(np.abs(out - np.asarray(rgb, np.float64)).max())
        per[name] = {"in": list(rgb), "out": [round(float(c), 1) for c in out], "max_err": round(err, 1)}
    worst = max(per.values(), key=lambda d: d["max_err"])
    return {"worst": worst["max_err"], "within_tolerance": sum(d["max_err"] <= FLAT_TOLERANCE for d in per.values()),
            "count": len(per), "colours": per}


def clip_metrics(gt: np.ndarray, rec: np.ndarray) -> dict:
    """uint8 videos (f h w 3) -> PSNR, SSIM (mean over frames), saturation and sharpness ratios."""
    return {"psnr": psnr(rec, gt),
            "ssim": float(np.mean([ssim(a, b) for a, b in zip(rec, gt)])),
            "saturation_ratio": mean_saturation(rec) / max(mean_saturation(gt), 1e-6),
            "sharpness_ratio": sharpness(rec) / max(sharpness(gt), 1e-6)}


def time_encode(codec: Codec, size: tuple[int, int], frames: int = 321, seed: int = 0) -> float | None:
    """Seconds to encode one ``frames``-frame clip of noise at ``size`` (h, w) (one warm-up call first)."""
    if codec.encode_only is None:
        return None
    rng = np.random.default_rng(seed)
    v = rng.integers(0, 256, (frames, *size, 3), dtype=np.uint8)
    codec.encode_only(v[:5])
    t0 = time.perf_counter()
    codec.encode_only(v)
    return time.perf_counter() - t0


def evaluate(clips: list[np.ndarray], codecs: list[Codec], noise_std: float = NOISE_STD,
             time_encoders: bool = True, log=lambda m: None) -> tuple[dict, dict[str, list[np.ndarray]]]:
    """Run every codec on every clip -> (report dict, {codec name: reconstructions, in clip order}).

    Report: per codec the mean and per-clip PSNR/SSIM/ratios, the flat-colour report, the noisy-latent PSNR
    and its drop, and the 20 s encode time.
    """
    report: dict = {"clips": len(clips), "frames": [int(len(c)) for c in clips], "noise_std": noise_std,
                    "flat_tolerance": FLAT_TOLERANCE, "codecs": {}}
    recs: dict[str, list[np.ndarray]] = {}
    for codec in codecs:
        log(f"autoencoder eval: {codec.name}")
        per_clip, outs, noisy = [], [], []
        for i, gt in enumerate(clips):
            rec = codec.run(gt)
            outs.append(rec)
            per_clip.append(clip_metrics(gt, rec))
            if codec.run_noisy is not None:
                noisy.append(psnr(codec.run_noisy(gt, noise_std, i), gt))
        recs[codec.name] = outs
        entry = {k: float(np.mean([m[k] for m in per_clip])) for k in per_clip[0]}
        entry["per_clip"] = per_clip
        entry["flat"] = flat_colour_report(codec)
        if noisy:
            entry["psnr_noisy"] = float(np.mean(noisy))
            entry["noise_cost_db"] = entry["psnr"] - entry["psnr_noisy"]
        if time_encoders:
            entry["encode_s_20s"] = time_encode(codec, clips[0].shape[1:3])
        report["codecs"][codec.name] = entry
    return report, recs


def strip(clips: list[np.ndarray], recs: dict[str, list[np.ndarray]], columns: list[str],
          frames: tuple[int, ...] = (0, 32, 64), label_height: int = 14) -> np.ndarray:
    """One uint8 image: a row per (clip, frame), columns ground truth | ``columns`` ..., a label bar on top."""
    rows = []
    for ci, gt in enumerate(clips):
        for f in frames:
            f = min(f, len(gt) - 1)
            rows.append(np.concatenate([gt[f]] + [recs[c][ci][f] for c in columns], axis=1))
    img = np.concatenate(rows, axis=0)
    w = gt.shape[2]
    bar = np.full((label_height, img.shape[1], 3), 255, np.uint8)
    for i, name in enumerate(["ground truth", *columns]):
        cv2.putText(bar, name, (i * w + 3, label_height - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return np.concatenate([bar, img], axis=0)


def summary_table(report: dict) -> str:
    """A markdown table of the report's headline numbers."""
    lines = ["| codec | PSNR (dB) | SSIM | flat colour worst (levels) | within 12 | saturation ratio | "
             "sharpness ratio | PSNR drop, N(0,0.1²) on latents (dB) | encode 20 s clip (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, e in report["codecs"].items():
        drop = f"{e['noise_cost_db']:.2f}" if "noise_cost_db" in e else "–"
        enc = f"{e['encode_s_20s']:.2f}" if e.get("encode_s_20s") is not None else "–"
        lines.append(f"| {name} | {e['psnr']:.2f} | {e['ssim']:.3f} | {e['flat']['worst']:.1f} | "
                     f"{e['flat']['within_tolerance']}/{e['flat']['count']} | {e['saturation_ratio']:.3f} | "
                     f"{e['sharpness_ratio']:.3f} | {drop} | {enc} |")
    return "\n".join(lines)
