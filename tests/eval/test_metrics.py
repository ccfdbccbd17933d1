"""PSNR, SSIM, temporal flicker, motion smoothness proxy and sharpness (relic.eval.metrics)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest_helpers import _texture
from scipy import ndimage
from skimage.metrics import structural_similarity

from relic.eval.metrics import (interpolate_middle, motion_smoothness, per_frame, psnr, sharpness, ssim,
                                temporal_flicker)


def test_psnr_hand_computed():
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 10, np.uint8)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255 ** 2 / 100))
    assert psnr(a, a) == float("inf")
    assert psnr(a / 255.0, b / 255.0) == pytest.approx(psnr(a, b))   # [0, 1] floats are scaled
    with pytest.raises(ValueError, match="equal shapes"):
        psnr(a, b[:4])


@pytest.mark.parametrize("seed", range(3))
def test_ssim_matches_skimage(seed):
    rng = np.random.default_rng(seed)
    a = _texture(rng, 64)
    b = np.clip(a.astype(int) + rng.normal(0, 5 + 20 * seed, a.shape), 0, 255).astype(np.uint8)
    ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                data_range=255, channel_axis=-1)
    assert ssim(a, b) == pytest.approx(ref, abs=1e-6)
    gray_ref = structural_similarity(a[..., 0], b[..., 0], gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=255)
    assert ssim(a[..., 0], b[..., 0]) == pytest.approx(gray_ref, abs=1e-6)


def test_ssim_identity_and_video_mean():
    rng = np.random.default_rng(0)
    v = np.stack([_texture(rng, 32) for _ in range(3)])
    w = v.copy()
    w[1] = 255 - w[1]
    assert ssim(v[0], v[0]) == pytest.approx(1.0)
    assert ssim(v, w) == pytest.approx(np.mean([1.0, ssim(v[1], w[1]), 1.0]))
    np.testing.assert_allclose(per_frame(ssim, v, w), [1.0, ssim(v[1], w[1]), 1.0])
    with pytest.raises(ValueError, match="larger than"):
        ssim(v[0, :8, :8], v[0, :8, :8])


def test_temporal_flicker_hand_computed():
    v = np.stack([np.full((4, 4, 3), x, np.uint8) for x in (0, 10, 30)])   # MAEs 10 and 20 -> 15
    assert temporal_flicker(v) == pytest.approx((255 - 15) / 255)
    assert temporal_flicker(v[:1].repeat(3, 0)) == 1.0
    with pytest.raises(ValueError):
        temporal_flicker(v[:1])


def _shifted(tex, shifts):
    return np.stack([np.roll(tex, (0, int(s)), axis=(0, 1))[:64, :64] for s in shifts])


def test_motion_smoothness_orders_smooth_above_jerky():
    tex = _texture(np.random.default_rng(1), 128)
    static = _shifted(tex, [0] * 7)
    smooth = _shifted(tex, [2 * k for k in range(7)])                        # constant velocity
    jerky = _shifted(tex, [0, 6, 0, 7, 1, 8, 2])                             # back and forth
    assert motion_smoothness(static) == 1.0
    s_smooth, s_jerky = motion_smoothness(smooth), motion_smoothness(jerky)
    assert s_smooth > 0.97 and s_smooth > s_jerky + 0.02
    # The interpolated middle of a constant-velocity pair is close to the true middle frame.
    mid = interpolate_middle(smooth[0], smooth[2])
    assert np.abs(mid - smooth[1]).mean() < np.abs(smooth[0].astype(float) - smooth[1]).mean() / 3
    with pytest.raises(ValueError):
        motion_smoothness(static[:2])


def test_sharpness_is_variance_of_laplacian():
    rng = np.random.default_rng(2)
    g = rng.integers(0, 256, size=(32, 40)).astype(np.uint8)
    ref = ndimage.laplace(g.astype(np.float64), mode="mirror").var()         # mirror == OpenCV's default border
    assert sharpness(g) == pytest.approx(ref)
    assert sharpness(np.full((16, 16, 3), 77, np.uint8)) == 0.0
    tex = _texture(rng, 64)
    blurred = np.stack([ndimage.gaussian_filter(tex[..., c].astype(float), 2.0) for c in range(3)], -1)
    assert sharpness(tex) > 3 * sharpness(blurred.astype(np.uint8))
    assert sharpness(np.stack([tex, tex])) == pytest.approx(sharpness(tex))
