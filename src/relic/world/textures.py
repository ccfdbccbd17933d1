"""Procedural textures: brick, tiles, wood, noise and stripes (numpy, no I/O).

Every generator returns a tileable uint8 RGB image (h w 3) with its colours baked in; the renderer stacks them
into one texture array with mipmaps. All randomness comes from the ``rng`` argument, so a scene seed fixes
every texel.
"""

from __future__ import annotations

import numpy as np

FAMILIES = ("brick", "tiles", "wood", "noise", "stripes")


def _value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Tileable smooth value noise in [0, 1], (size size)."""
    grid = rng.random((cells, cells))
    x = np.arange(size) * cells / size
    i0 = np.floor(x).astype(int)
    f = x - i0
    f = f * f * (3 - 2 * f)
    i1 = (i0 + 1) % cells
    rows = grid[i0][:, i0] * (1 - f)[None, :] + grid[i0][:, i1] * f[None, :]
    rows1 = grid[i1][:, i0] * (1 - f)[None, :] + grid[i1][:, i1] * f[None, :]
    return rows * (1 - f)[:, None] + rows1 * f[:, None]


def fractal_noise(rng: np.random.Generator, size: int, octaves: int = 4, base: int = 4) -> np.ndarray:
    """Tileable fractal noise in [0, 1], (size size)."""
    out = np.zeros((size, size))
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = min(base * 2 ** o, size)
        out += amp * _value_noise(rng, size, cells)
        total += amp
        amp *= 0.5
    return out / total


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]


def _to_u8(img: np.ndarray) -> np.ndarray:
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


def brick(rng: np.random.Generator, size: int, color: np.ndarray, mortar: np.ndarray) -> np.ndarray:
    """Running-bond bricks: 4 rows x 2 bricks per tile, mortar lines, per-brick tone variation."""
    y, x = np.mgrid[0:size, 0:size] / size
    rows = 4
    row = np.floor(y * rows).astype(int)
    xs = (x * 2 + 0.5 * (row % 2)) % 2.0
    col = np.floor(xs).astype(int)
    fy, fx = (y * rows) % 1.0, xs % 1.0
    m = 0.06
    is_mortar = (fy < m * 2) | (fx < m)
    tone = rng.uniform(0.75, 1.15, size=(rows, 2))[row % rows, col % 2]
    n = fractal_noise(rng, size, 3, 8)
    c = np.clip(color[None, None, :] * (tone * (0.85 + 0.3 * n))[..., None], 0, 1)
    img = np.where(is_mortar[..., None], mortar[None, None, :] * (0.9 + 0.2 * n[..., None]), c)
    return _to_u8(img)


def tiles(rng: np.random.Generator, size: int, color: np.ndarray, color2: np.ndarray) -> np.ndarray:
    """Checkerboard floor tiles with grout."""
    y, x = np.mgrid[0:size, 0:size] / size
    k = 4
    cx, cy = np.floor(x * k).astype(int), np.floor(y * k).astype(int)
    checker = ((cx + cy) % 2).astype(float)
    fx, fy = (x * k) % 1.0, (y * k) % 1.0
    grout = (fx < 0.04) | (fy < 0.04)
    n = fractal_noise(rng, size, 3, 8)
    img = _mix(color, color2, checker) * (0.92 + 0.16 * n[..., None])
    img = np.where(grout[..., None], 0.25 * (color + color2)[None, None, :] * 0.6, img)
    return _to_u8(img)


def wood(rng: np.random.Generator, size: int, color: np.ndarray, color2: np.ndarray) -> np.ndarray:
    """Planks with rings (grain along x)."""
    y, x = np.mgrid[0:size, 0:size] / size
    planks = 4
    p = np.floor(y * planks).astype(int)
    offs = rng.random(planks)[p % planks]
    n = fractal_noise(rng, size, 4, 4)
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (8 * (y * planks % 1.0) + 3 * n + offs * 5))
    img = _mix(color, color2, rings ** 2)
    seam = (y * planks) % 1.0 < 0.04
    img = np.where(seam[..., None], img * 0.5, img)
    return _to_u8(img)


def noise(rng: np.random.Generator, size: int, color: np.ndarray, color2: np.ndarray) -> np.ndarray:
    """Plaster, grass or stone: fractal noise between two colours."""
    n = fractal_noise(rng, size, 5, 4)
    n = (n - n.min()) / max(n.max() - n.min(), 1e-6)
    return _to_u8(_mix(color, color2, n))


def stripes(rng: np.random.Generator, size: int, color: np.ndarray, color2: np.ndarray) -> np.ndarray:
    """Wallpaper-like vertical stripes (soft edges, light noise)."""
    y, x = np.mgrid[0:size, 0:size] / size
    k = int(rng.integers(2, 6))
    s = 0.5 + 0.5 * np.cos(2 * np.pi * k * x)
    s = np.clip((s - 0.5) * 4 + 0.5, 0, 1)
    n = fractal_noise(rng, size, 3, 8)
    return _to_u8(_mix(color, color2, s) * (0.94 + 0.12 * n[..., None]))


def make_texture(family: str, rng: np.random.Generator, size: int, color, color2) -> np.ndarray:
    """One texture of ``family`` -> uint8 (size size 3)."""
    fn = {"brick": brick, "tiles": tiles, "wood": wood, "noise": noise, "stripes": stripes}[family]
    return fn(rng, size, np.asarray(color, dtype=np.float64), np.asarray(color2, dtype=np.float64))
