"""Weight-free image and video quality metrics (paper §5.3).

All functions take uint8 RGB frames: an image is (h w c), a video is (f h w c). Floats in [0, 1] are accepted
too and scaled to [0, 255]; every metric is computed in float64 on the 0–255 scale.

* :func:`psnr` — ``10 log10(255² / MSE)`` in dB; ``inf`` for identical images.
* :func:`ssim` — Wang et al. 2004: Gaussian window σ = 1.5 (11×11, truncated at 3.5 σ), K1 = 0.01, K2 = 0.03,
  L = 255, population (co)variances, computed per channel and averaged over the channels and over the
  pixels whose window lies inside the image (a 5-pixel border is cropped). Matches
  ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=255, channel_axis=-1)``.
* :func:`temporal_flicker` — VBench's temporal-flickering score: the mean absolute difference of consecutive
  frames averaged over pairs, mapped to ``(255 − MAE) / 255`` (1 = no change at all). Meant for clips with a
  static camera, as in VBench.
* :func:`motion_smoothness` — a flow-based proxy of VBench's motion smoothness, which drops the odd frames,
  re-creates them by frame interpolation and scores the reconstruction. Here the interpolator is OpenCV's
  Farnebäck flow with the linear-motion approximation of Super SloMo (Jiang et al. 2018) at t = ½ instead of the
  AMT network: ``F_{t→0} = −¼ F_{0→1} + ¼ F_{1→0}``, ``F_{t→1} = ¼ F_{0→1} − ¼ F_{1→0}``, the middle frame is
  the mean of both backward warps, and the score is ``(255 − MAE) / 255`` over the re-created frames.
* :func:`sharpness` — variance of the Laplacian (``cv2.Laplacian``, 3×3 aperture) of the gray image; the
  video version averages over frames. Scale-dependent: compare only at equal resolution.
* :func:`saturation` — mean HSV saturation in [0, 1] (OpenCV's 8-bit HSV, S / 255); the video version averages
  over frames. Grey mush scores near 0 where PSNR cannot tell it from a blurred world.
"""

from __future__ import annotations

import cv2
import numpy as np

_K1, _K2, _L = 0.01, 0.03, 255.0
_SIGMA, _TRUNCATE = 1.5, 3.5
_RADIUS = int(_TRUNCATE * _SIGMA + 0.5)  # 5 -> 11x11 window


def _as255(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return x.astype(np.float64)
    x = x.astype(np.float64)
    return x * 255.0 if x.size and np.nanmax(x) <= 1.0 else x


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if np.shape(a) != np.shape(b):
        raise ValueError(f"images must have equal shapes, got {np.shape(a)} and {np.shape(b)}")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two images (or videos) of equal shape, on the 0–255 scale."""
    _check_pair(a, b)
    mse = float(np.mean((_as255(a) - _as255(b)) ** 2))
    return float("inf") if mse == 0.0 else float(10.0 * np.log10(_L ** 2 / mse))


def _blur(x: np.ndarray) -> np.ndarray:
    k = 2 * _RADIUS + 1
    return cv2.GaussianBlur(x, (k, k), _SIGMA, borderType=cv2.BORDER_REFLECT)


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM (h w) or (h w c) of two images of equal shape, before border cropping."""
    _check_pair(a, b)
    x, y = _as255(a), _as255(b)
    c1, c2 = (_K1 * _L) ** 2, (_K2 * _L) ** 2
    mx, my = _blur(x), _blur(y)
    sxx = _blur(x * x) - mx * mx
    syy = _blur(y * y) - my * my
    sxy = _blur(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two images (h w c) or (h w); for videos (f h w c) the mean over frames."""
    a, b = np.asarray(a), np.asarray(b)
    _check_pair(a, b)
    if a.ndim == 4:
        return float(np.mean([ssim(x, y) for x, y in zip(a, b)]))
    if min(a.shape[:2]) <= 2 * _RADIUS:
        raise ValueError(f"SSIM needs images larger than {2 * _RADIUS + 1} pixels, got {a.shape[:2]}")
    m = ssim_map(a, b)
    r = _RADIUS
    return float(m[r:-r, r:-r].mean())


def _frame_mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(_as255(a) - _as255(b))))


def temporal_flicker(video: np.ndarray) -> float:
    """VBench temporal flickering of a video (f h w c), f ≥ 2: ``(255 − mean_t MAE(f_t, f_{t+1})) / 255``."""
    v = np.asarray(video)
    if v.shape[0] < 2:
        raise ValueError("temporal_flicker needs at least 2 frames")
    return (255.0 - float(np.mean([_frame_mae(v[t], v[t + 1]) for t in range(len(v) - 1)]))) / 255.0


def _gray_u8(frame: np.ndarray) -> np.ndarray:
    f = np.clip(np.round(_as255(frame)), 0, 255).astype(np.uint8)
    return cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) if f.ndim == 3 else f


def farneback(f0: np.ndarray, f1: np.ndarray) -> np.ndarray:
    """Dense optical flow (h w 2) from frame f0 to f1 (OpenCV Farnebäck), in pixels as (dx, dy)."""
    return cv2.calcOpticalFlowFarneback(_gray_u8(f0), _gray_u8(f1), None, pyr_scale=0.5, levels=3, winsize=15,
                                        iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


def _backward_warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img.astype(np.float32), gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def interpolate_middle(f0: np.ndarray, f1: np.ndarray) -> np.ndarray:
    """Frame halfway between f0 and f1 (h w c) float64 on 0–255, by Farnebäck flow and backward warping."""
    a, b = _as255(f0), _as255(f1)
    F01, F10 = farneback(f0, f1), farneback(f1, f0)
    Ft0 = -0.25 * F01 + 0.25 * F10
    Ft1 = 0.25 * F01 - 0.25 * F10
    return 0.5 * (_backward_warp(a, Ft0) + _backward_warp(b, Ft1)).astype(np.float64)


def motion_smoothness(video: np.ndarray) -> float:
    """Flow-interpolation proxy of VBench motion smoothness for a video (f h w c), f ≥ 3; 1 = perfectly smooth."""
    v = np.asarray(video)
    if v.shape[0] < 3:
        raise ValueError("motion_smoothness needs at least 3 frames")
    errs = [_frame_mae(interpolate_middle(v[t - 1], v[t + 1]), v[t]) for t in range(1, len(v) - 1, 2)]
    return (255.0 - float(np.mean(errs))) / 255.0


def sharpness(image_or_video: np.ndarray) -> float:
    """Variance of the Laplacian of the gray image (h w c); for a video (f h w c) the mean over frames."""
    x = np.asarray(image_or_video)
    if x.ndim == 4:
        return float(np.mean([sharpness(f) for f in x]))
    g = _gray_u8(x).astype(np.float64)
    return float(cv2.Laplacian(g, cv2.CV_64F, ksize=1).var())


def saturation(image_or_video: np.ndarray) -> float:
    """Mean HSV saturation in [0, 1] of an RGB image (h w 3); for a video (f h w 3) the mean over frames."""
    x = np.asarray(image_or_video)
    if x.ndim == 4:
        return float(np.mean([saturation(f) for f in x]))
    f = np.clip(np.round(_as255(x)), 0, 255).astype(np.uint8)
    return float(cv2.cvtColor(f, cv2.COLOR_RGB2HSV)[..., 1].mean() / 255.0)


def per_frame(metric, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Apply a two-image metric frame by frame to two videos (f h w c) -> (f,)."""
    _check_pair(a, b)
    return np.array([metric(x, y) for x, y in zip(np.asarray(a), np.asarray(b))])
