"""Procedural scenes: indoor multi-room layouts and outdoor plazas, randomized from a seed (no I/O).

:func:`make_scene` builds a :class:`Scene` from ``(seed, family)``: textured triangles, colliders, textures,
lighting, distinct landmarks and a caption written from the scene description (never about camera motion).

* **indoor**: a grid of 2-6 rooms (sometimes one is a narrow corridor) joined by doorways, with floors of
  tiles or wood, brick / striped / plaster walls, furniture (tables, shelves, sofas, stairs, lamps) and one
  landmark per room.
* **outdoor**: a walled yard or plaza with gates, a sky gradient and a sun, trees, rows of pillars, benches,
  planters, a fountain and 2-4 landmarks (coloured sphere on a plinth, obelisk, arch, stacked statue).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from relic.world.geometry import Colliders, Material, MeshBuilder
from relic.world.textures import make_texture

FAMILIES = ("indoor", "outdoor")
TEXTURE_SIZE = 128

# Named colours (linear-ish rgb in [0, 1]) so that captions can name what they show.
WALL_COLORS = {"red": (0.62, 0.24, 0.18), "beige": (0.82, 0.74, 0.6), "grey": (0.6, 0.6, 0.62),
               "white": (0.9, 0.9, 0.88), "yellow": (0.85, 0.75, 0.35), "sage green": (0.55, 0.66, 0.5),
               "light blue": (0.6, 0.72, 0.85), "brown": (0.5, 0.36, 0.24), "pink": (0.85, 0.6, 0.62)}
LANDMARK_COLORS = {"red": (0.9, 0.12, 0.1), "blue": (0.12, 0.3, 0.95), "green": (0.1, 0.75, 0.2),
                   "yellow": (0.95, 0.85, 0.1), "purple": (0.6, 0.15, 0.8), "orange": (0.98, 0.5, 0.05),
                   "cyan": (0.1, 0.85, 0.9), "magenta": (0.92, 0.1, 0.6), "white": (0.95, 0.95, 0.95),
                   "black": (0.06, 0.06, 0.07)}
WOOD_COLORS = {"light": ((0.78, 0.6, 0.4), (0.62, 0.45, 0.28)), "dark": ((0.4, 0.25, 0.15), (0.28, 0.17, 0.1)),
               "honey": ((0.85, 0.62, 0.3), (0.7, 0.48, 0.2))}
TEX_WORDS = {"brick": "brick", "stripes": "striped", "noise": "plaster", "tiles": "tiled", "wood": "wooden"}


@dataclass
class Landmark:
    """A distinct object: a name for captions and its world position (metres)."""

    name: str
    position: tuple[float, float, float]


@dataclass
class Scene:
    """A static scene ready to render.

    Attributes:
        family: "indoor" or "outdoor"; seed: the scene seed.
        vertices: (v 13) float32 rows, see :mod:`relic.world.geometry`; indices: (i,) uint32 triangle list;
            ``shadow_vertices`` how many leading indices cast shadows (ceilings don't); ``ranges`` (n 2)
            (first, count) index ranges with bounding
            boxes ``range_boxes`` (n 2 3), for frustum culling.
        textures: (l h w 3) uint8 texture-array layers.
        colliders: solids the camera must keep clear of.
        bounds: (2 3) box the camera must stay inside (with clearance).
        sun_dir: unit vector towards the sun; sun_color, ambient: rgb.
        sky: (zenith rgb, horizon rgb) or None indoors; clear: background colour.
        landmarks, caption, description (dict of what was generated).
    """

    family: str
    seed: int
    vertices: np.ndarray
    indices: np.ndarray
    shadow_vertices: int
    ranges: np.ndarray
    range_boxes: np.ndarray
    textures: np.ndarray
    colliders: Colliders
    bounds: np.ndarray
    sun_dir: np.ndarray
    sun_color: tuple[float, float, float]
    ambient: tuple[float, float, float]
    sky: tuple[tuple[float, float, float], tuple[float, float, float]] | None
    clear: tuple[float, float, float]
    landmarks: list[Landmark] = field(default_factory=list)
    caption: str = ""
    description: dict = field(default_factory=dict)

    def clearance(self, points: np.ndarray) -> np.ndarray:
        """(n 3) -> (n,) distance to the nearest solid or to the bounds box walls (negative when outside)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        to_bounds = np.minimum(p - self.bounds[0], self.bounds[1] - p).min(1)
        return np.minimum(self.colliders.distance(p), to_bounds)


class _Textures:
    """Allocates texture-array layers, deduplicated by (family, colours)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.layers: list[np.ndarray] = []
        self.keys: dict = {}

    def get(self, family: str, c1, c2) -> int:
        key = (family, tuple(np.round(c1, 3)), tuple(np.round(c2, 3)))
        if key not in self.keys:
            self.keys[key] = len(self.layers)
            self.layers.append(make_texture(family, self.rng, TEXTURE_SIZE, c1, c2))
        return self.keys[key]

    def stack(self) -> np.ndarray:
        return np.stack(self.layers)


def _shade(c, k: float) -> tuple[float, float, float]:
    return tuple(float(np.clip(v * k, 0, 1)) for v in c)


def _pick(rng: np.random.Generator, options, k: int = 1) -> list:
    idx = rng.choice(len(options), size=k, replace=False)
    return [options[i] for i in idx]


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _landmark(mb: MeshBuilder, tex: _Textures, kind: str, color_name: str, x: float, y: float,
              rng: np.random.Generator, base: Material) -> Landmark:
    """Build one landmark of ``kind`` at (x, y); returns it with a caption name."""
    col = LANDMARK_COLORS[color_name]
    m = Material(tex.get("noise", _shade(col, 1.1), _shade(col, 0.8)), tile=1.0)
    if kind == "sphere":
        mb.box([x - 0.35, y - 0.35, 0], [x + 0.35, y + 0.35, 0.9], base)
        mb.sphere([x, y, 1.35], 0.45, m, rings=12, segments=20)
        return Landmark(f"{color_name} sphere on a plinth", (x, y, 1.35))
    if kind == "column":
        striped = Material(tex.get("stripes", _shade(col, 1.0), (0.95, 0.95, 0.95)), tile=1.2)
        mb.cylinder(x, y, 0.3, 0, 2.6, striped, segments=20)
        return Landmark(f"{color_name} and white striped column", (x, y, 1.3))
    if kind == "statue":
        mb.box([x - 0.4, y - 0.4, 0], [x + 0.4, y + 0.4, 0.5], base)
        mb.box([x - 0.25, y - 0.25, 0.5], [x + 0.25, y + 0.25, 1.2], m)
        mb.sphere([x, y, 1.45], 0.25, m)
        return Landmark(f"{color_name} statue", (x, y, 1.0))
    if kind == "obelisk":
        mb.box([x - 0.3, y - 0.3, 0], [x + 0.3, y + 0.3, 3.2], m)
        mb.box([x - 0.45, y - 0.45, 0], [x + 0.45, y + 0.45, 0.3], base)
        return Landmark(f"tall {color_name} obelisk", (x, y, 1.6))
    if kind == "cubes":
        s = 0.5
        mb.box([x - s, y - s, 0], [x + s, y + s, 2 * s], m)
        m2 = Material(tex.get("noise", (0.95, 0.95, 0.95), (0.8, 0.8, 0.8)))
        mb.box([x - s * 0.6, y - s * 0.6, 2 * s], [x + s * 0.6, y + s * 0.6, 3.2 * s], m2)
        return Landmark(f"stack of {color_name} and white cubes", (x, y, 0.8))
    raise ValueError(kind)


INDOOR_LANDMARKS = ("sphere", "column", "statue", "cubes")
OUTDOOR_LANDMARKS = ("sphere", "column", "statue", "obelisk", "cubes")


# --- indoor ----------------------------------------------------------------------------------------------

def _indoor(seed: int, rng: np.random.Generator) -> Scene:
    mb = MeshBuilder()
    tex = _Textures(rng)
    nx, ny = [(2, 1), (3, 1), (2, 2), (3, 2), (1, 2), (1, 3)][int(rng.integers(6))]
    widths = rng.uniform(3.6, 6.5, nx)
    depths = rng.uniform(3.6, 6.5, ny)
    corridor = bool(rng.random() < 0.4 and max(nx, ny) >= 2)
    if corridor:
        if nx >= ny:
            widths[int(rng.integers(nx))] = rng.uniform(2.0, 2.4)
        else:
            depths[int(rng.integers(ny))] = rng.uniform(2.0, 2.4)
    H = float(rng.uniform(2.7, 3.4))
    xs = np.concatenate([[0], np.cumsum(widths)])
    ys = np.concatenate([[0], np.cumsum(depths)])
    W, D = xs[-1], ys[-1]
    t = 0.1  # half wall thickness

    wall_names = _pick(rng, list(WALL_COLORS), 3)
    wall_fams = [str(rng.choice(["brick", "stripes", "noise"])) for _ in range(3)]
    walls = []
    for name, fam in zip(wall_names, wall_fams):
        c = WALL_COLORS[name]
        walls.append(Material(tex.get(fam, c, _shade(c, 0.75) if fam != "brick" else (0.8, 0.8, 0.78)),
                              tile=1.5 if fam != "brick" else 1.2))
    floor_kind = str(rng.choice(["tiles", "wood"]))
    if floor_kind == "wood":
        wname = str(rng.choice(list(WOOD_COLORS)))
        floor = Material(tex.get("wood", *WOOD_COLORS[wname]), tile=2.0)
        floor_words = f"{wname} wooden floor"
    else:
        a, b = _pick(rng, list(WALL_COLORS), 2)
        floor = Material(tex.get("tiles", WALL_COLORS[a], _shade(WALL_COLORS[b], 0.8)), tile=2.0)
        floor_words = f"{a} and {b} tiled floor"
    ceil = Material(tex.get("noise", (0.92, 0.92, 0.9), (0.8, 0.8, 0.78)), tile=3.0)
    dark_wood = Material(tex.get("wood", *WOOD_COLORS["dark"]), tile=1.0)
    light_wood = Material(tex.get("wood", *WOOD_COLORS["light"]), tile=1.0)
    fabric_c = LANDMARK_COLORS[str(rng.choice(["blue", "green", "red", "purple", "orange"]))]
    fabric = Material(tex.get("noise", _shade(fabric_c, 0.7), _shade(fabric_c, 0.5)), tile=0.5)
    metal = Material(tex.get("noise", (0.3, 0.3, 0.32), (0.2, 0.2, 0.22)), tile=0.5)

    mb.box([-t, -t, -0.2], [W + t, D + t, 0], floor)
    room_wall = rng.integers(0, 3, size=(nx, ny))
    # walls: segments along x at each ys[j] and along y at each xs[i], with doorways between rooms
    doors: list[tuple[float, float]] = []

    def wall_x(y: float, x0: float, x1: float, m: Material, door: bool) -> None:
        if not door:
            mb.box([x0 - t, y - t, 0], [x1 + t, y + t, H], m)
            return
        dw = float(rng.uniform(1.1, min(1.6, x1 - x0 - 0.8)))
        dc = float(rng.uniform(x0 + 0.4 + dw / 2, x1 - 0.4 - dw / 2))
        mb.box([x0 - t, y - t, 0], [dc - dw / 2, y + t, H], m)
        mb.box([dc + dw / 2, y - t, 0], [x1 + t, y + t, H], m)
        mb.box([dc - dw / 2, y - t, 2.2], [dc + dw / 2, y + t, H], m)
        doors.append((dc, y))

    def wall_y(x: float, y0: float, y1: float, m: Material, door: bool) -> None:
        if not door:
            mb.box([x - t, y0 - t, 0], [x + t, y1 + t, H], m)
            return
        dw = float(rng.uniform(1.1, min(1.6, y1 - y0 - 0.8)))
        dc = float(rng.uniform(y0 + 0.4 + dw / 2, y1 - 0.4 - dw / 2))
        mb.box([x - t, y0 - t, 0], [x + t, dc - dw / 2, H], m)
        mb.box([x - t, dc + dw / 2, 0], [x + t, y1 + t, H], m)
        mb.box([x - t, dc - dw / 2, 2.2], [x + t, dc + dw / 2, H], m)
        doors.append((x, dc))

    for i in range(nx):
        for j in range(ny + 1):
            wall_x(ys[j], xs[i], xs[i + 1], walls[room_wall[i, min(j, ny - 1)]], 0 < j < ny)
    for j in range(ny):
        for i in range(nx + 1):
            wall_y(xs[i], ys[j], ys[j + 1], walls[room_wall[min(i, nx - 1), j]], 0 < i < nx)

    # furniture and landmarks, kept away from doorways and room centres
    occupied: list[tuple[float, float, float]] = [(dx, dy, 1.1) for dx, dy in doors]

    def free(x: float, y: float, r: float) -> bool:
        return all(np.hypot(x - ox, y - oy) > r + orad for ox, oy, orad in occupied)

    lm_kinds = list(INDOOR_LANDMARKS)
    rng.shuffle(lm_kinds)
    lm_colors = _pick(rng, [c for c in LANDMARK_COLORS if c != "white"], len(lm_kinds))
    landmarks: list[Landmark] = []
    furniture_words: set[str] = set()
    rooms = [(i, j) for i in range(nx) for j in range(ny)]
    rng.shuffle(rooms)
    plinth = Material(tex.get("noise", (0.85, 0.84, 0.8), (0.7, 0.7, 0.68)), tile=1.0)
    for k, (i, j) in enumerate(rooms):
        x0, x1, y0, y1 = xs[i] + t, xs[i + 1] - t, ys[j] + t, ys[j + 1] - t
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        small = min(x1 - x0, y1 - y0) < 3.0
        if k < len(lm_kinds) and not small:
            for _ in range(20):
                if rng.random() < 0.5:
                    lx, ly = cx + rng.uniform(-0.3, 0.3), cy + rng.uniform(-0.3, 0.3)
                else:
                    lx, ly = rng.uniform(x0 + 0.7, x1 - 0.7), rng.uniform(y0 + 0.7, y1 - 0.7)
                if free(lx, ly, 0.7):
                    landmarks.append(_landmark(mb, tex, lm_kinds[k], lm_colors[k], lx, ly, rng, plinth))
                    occupied.append((lx, ly, 0.7))
                    break
        for _ in range(int(rng.integers(1, 4))):
            kind = str(rng.choice(["table", "shelf", "sofa", "lamp", "stairs"]))
            side = int(rng.integers(4))
            for _try in range(10):
                along = rng.uniform(0.2, 0.8)
                if side == 0:
                    fx, fy = x0 + along * (x1 - x0), y0 + 0.45
                elif side == 1:
                    fx, fy = x0 + along * (x1 - x0), y1 - 0.45
                elif side == 2:
                    fx, fy = x0 + 0.45, y0 + along * (y1 - y0)
                else:
                    fx, fy = x1 - 0.45, y0 + along * (y1 - y0)
                if not free(fx, fy, 0.8):
                    continue
                along_x = side < 2
                if kind == "table":
                    mb.table(fx, fy, 1.0 if along_x else 0.6, 0.6 if along_x else 1.0, 0.75, light_wood, dark_wood)
                    mb.box([fx - 0.1, fy - 0.1, 0.75], [fx + 0.1, fy + 0.1, 0.95], fabric)
                elif kind == "shelf":
                    w, d = (1.2, 0.35) if along_x else (0.35, 1.2)
                    mb.box([fx - w / 2, fy - d / 2, 0], [fx + w / 2, fy + d / 2, float(rng.uniform(1.4, 2.1))],
                           dark_wood)
                elif kind == "sofa":
                    w, d = (1.6, 0.8) if along_x else (0.8, 1.6)
                    mb.box([fx - w / 2, fy - d / 2, 0], [fx + w / 2, fy + d / 2, 0.45], fabric)
                    bx = (0, 0.3 if side == 0 else -0.3) if along_x else (0.3 if side == 2 else -0.3, 0)
                    bw, bd = (w, 0.2) if along_x else (0.2, d)
                    mb.box([fx + bx[0] - bw / 2, fy + bx[1] - bd / 2, 0.45],
                           [fx + bx[0] + bw / 2, fy + bx[1] + bd / 2, 0.9], fabric)
                elif kind == "lamp":
                    mb.cylinder(fx, fy, 0.04, 0, 1.5, metal, segments=8)
                    mb.sphere([fx, fy, 1.6], 0.18, Material(tex.get("noise", (1, 0.95, 0.8), (1, 0.9, 0.7)),
                                                            emissive=True), rings=6, segments=10)
                else:
                    if along_x:
                        mb.stairs(fx - 0.5, fy - 0.3, 0.6, 4, 0.25, 0.2, True, light_wood)
                    else:
                        mb.stairs(fx - 0.3, fy - 0.5, 0.6, 4, 0.25, 0.2, False, light_wood)
                occupied.append((fx, fy, 0.8))
                furniture_words.add({"table": "a table", "shelf": "shelves", "sofa": "a sofa", "lamp": "a lamp",
                                     "stairs": "a few steps"}[kind])
                break
    mb.casts_shadow = False
    mb.box([-t, -t, H], [W + t, D + t, H + 0.2], ceil)
    verts, indices, ranges, boxes, shadow_vertices = mb.finish()

    az, el = rng.uniform(0, 2 * np.pi), np.deg2rad(rng.uniform(55, 80))
    sun_dir = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    warm = rng.uniform(0.0, 0.15)
    n_rooms = nx * ny
    space = {2: "two-room flat", 3: "three-room apartment", 4: "four-room house", 6: "six-room house"}[n_rooms]
    if corridor:
        space += " joined by a corridor"
    wall_desc = _join(sorted({f"{n} {TEX_WORDS[f]}" for n, f in zip(wall_names, wall_fams)}))
    things = [_article(lm.name) for lm in landmarks] + sorted(furniture_words)
    caption = (f"{_article(space)}, with {wall_desc} walls, {_article(floor_words)}, " + _join(things[:5])).strip(", ")
    return Scene(
        family="indoor", seed=seed, vertices=verts, indices=indices, shadow_vertices=shadow_vertices, ranges=ranges,
        range_boxes=boxes, textures=tex.stack(),
        colliders=mb.colliders(), bounds=np.array([[0.0, 0.0, 0.0], [W, D, H]]), sun_dir=sun_dir,
        sun_color=(0.7 + warm, 0.68, 0.64 - warm), ambient=(0.55, 0.55, 0.57), sky=None, clear=(0.1, 0.1, 0.1),
        landmarks=landmarks, caption=caption,
        description={"rooms": [nx, ny], "corridor": corridor, "height": H, "walls": wall_desc,
                     "floor": floor_words, "landmarks": [lm.name for lm in landmarks],
                     "furniture": sorted(furniture_words)})


# --- outdoor ---------------------------------------------------------------------------------------------

SKIES = {"sunny": ((0.25, 0.45, 0.85), (0.75, 0.85, 0.95)), "hazy": ((0.5, 0.6, 0.75), (0.85, 0.85, 0.85)),
         "evening": ((0.2, 0.25, 0.55), (0.95, 0.6, 0.4)), "overcast": ((0.55, 0.57, 0.6), (0.78, 0.78, 0.8))}


def _outdoor(seed: int, rng: np.random.Generator) -> Scene:
    mb = MeshBuilder()
    tex = _Textures(rng)
    Lx, Ly = rng.uniform(14, 26, 2)
    place = str(rng.choice(["courtyard", "plaza", "yard", "garden square"]))
    ground_kind = str(rng.choice(["tiles", "noise", "grass"]))
    if ground_kind == "grass":
        ground = Material(tex.get("noise", (0.25, 0.5, 0.18), (0.4, 0.62, 0.25)), tile=3.0)
        ground_words = "grass"
    elif ground_kind == "tiles":
        a, b = _pick(rng, ["beige", "grey", "white", "red", "brown"], 2)
        ground = Material(tex.get("tiles", WALL_COLORS[a], _shade(WALL_COLORS[b], 0.85)), tile=2.5)
        ground_words = f"{a} and {b} paving"
    else:
        ground = Material(tex.get("noise", (0.6, 0.58, 0.55), (0.45, 0.44, 0.42)), tile=4.0)
        ground_words = "stone paving"
    E = 40.0
    mb.box([-E, -E, -0.2], [Lx + E, Ly + E, 0], ground)

    wall_name = str(rng.choice(["red", "beige", "grey", "brown", "yellow", "white"]))
    wall_fam = str(rng.choice(["brick", "brick", "noise", "stripes"]))
    wc = WALL_COLORS[wall_name]
    wall = Material(tex.get(wall_fam, wc, (0.8, 0.8, 0.78) if wall_fam == "brick" else _shade(wc, 0.7)),
                    tile=1.2 if wall_fam == "brick" else 2.0)
    Hw = float(rng.uniform(2.0, 4.0))
    t = 0.2
    gates: list[tuple[float, float]] = []
    for side in range(4):
        length = Lx if side < 2 else Ly
        gate = rng.random() < 0.6
        gc = float(rng.uniform(2.5, length - 2.5))
        gw = float(rng.uniform(1.8, 3.0))
        segs = [(0.0, gc - gw / 2), (gc + gw / 2, length)] if gate else [(0.0, length)]
        for a, b in segs:
            if side == 0:
                mb.box([a - t, -t, 0], [b + t, t, Hw], wall)
            elif side == 1:
                mb.box([a - t, Ly - t, 0], [b + t, Ly + t, Hw], wall)
            elif side == 2:
                mb.box([-t, a - t, 0], [t, b + t, Hw], wall)
            else:
                mb.box([Lx - t, a - t, 0], [Lx + t, b + t, Hw], wall)
        if gate:
            gates.append([(gc, 0), (gc, Ly), (0, gc), (Lx, gc)][side])

    occupied: list[tuple[float, float, float]] = [(gx, gy, 1.5) for gx, gy in gates]

    def free(x: float, y: float, r: float) -> bool:
        return (r + 0.3 < x < Lx - r - 0.3 and r + 0.3 < y < Ly - r - 0.3
                and all(np.hypot(x - ox, y - oy) > r + orad for ox, oy, orad in occupied))

    def spot(r: float, tries: int = 40) -> tuple[float, float] | None:
        for _ in range(tries):
            x, y = rng.uniform(0, Lx), rng.uniform(0, Ly)
            if free(x, y, r):
                occupied.append((x, y, r))
                return x, y
        return None

    plinth = Material(tex.get("noise", (0.85, 0.84, 0.8), (0.7, 0.7, 0.68)), tile=1.0)
    kinds = list(OUTDOOR_LANDMARKS)
    rng.shuffle(kinds)
    n_lm = int(rng.integers(2, 5))
    colors = _pick(rng, [c for c in LANDMARK_COLORS if c != "white"], n_lm)
    landmarks = []
    for k in range(n_lm):
        s = spot(1.6)
        if s is not None:
            landmarks.append(_landmark(mb, tex, kinds[k], colors[k], s[0], s[1], rng, plinth))

    pillar_name = str(rng.choice(list(LANDMARK_COLORS)[:8] + ["white", "grey"]))
    pc = LANDMARK_COLORS.get(pillar_name, WALL_COLORS.get(pillar_name))
    pillar = Material(tex.get("noise", pc, _shade(pc, 0.75)), tile=1.0)
    n_pillars = 0
    if rng.random() < 0.8:
        along_x = rng.random() < 0.5
        count = int(rng.integers(3, 7))
        y_row = float(rng.uniform(2.5, (Ly if along_x else Lx) - 2.5))
        ph = float(rng.uniform(2.5, 4.0))
        for k in range(count):
            a = (k + 1) / (count + 1) * (Lx if along_x else Ly)
            x, y = (a, y_row) if along_x else (y_row, a)
            if free(x, y, 0.6):
                occupied.append((x, y, 0.6))
                mb.cylinder(x, y, 0.25, 0, ph, pillar, segments=16)
                n_pillars += 1
    trunk = Material(tex.get("wood", *WOOD_COLORS["dark"]), tile=1.0)
    leaf_c = [(0.15, 0.45, 0.12), (0.3, 0.55, 0.15), (0.55, 0.5, 0.12), (0.2, 0.35, 0.15)][int(rng.integers(4))]
    leaves = Material(tex.get("noise", leaf_c, _shade(leaf_c, 0.6)), tile=1.0)
    n_trees = 0
    for _ in range(int(rng.integers(3, 10))):
        s = spot(1.3)
        if s is not None:
            mb.tree(s[0], s[1], float(rng.uniform(3.0, 5.0)), trunk, leaves, rng)
            n_trees += 1
    for _ in range(int(rng.integers(4, 10))):   # trees outside the walls, seen over them and through gates
        side = int(rng.integers(4))
        a = rng.uniform(-3, (Lx if side < 2 else Ly) + 3)
        o = rng.uniform(2.0, 8.0)
        x, y = [(a, -o), (a, Ly + o), (-o, a), (Lx + o, a)][side]
        mb.tree(x, y, float(rng.uniform(4.0, 7.0)), trunk, leaves, rng)
    wood = Material(tex.get("wood", *WOOD_COLORS[str(rng.choice(list(WOOD_COLORS)))]), tile=1.0)
    extras = []
    n_bench = 0
    for _ in range(int(rng.integers(1, 4))):
        s = spot(1.1)
        if s is not None:
            mb.bench(s[0], s[1], 1.6, bool(rng.random() < 0.5), wood, plinth)
            n_bench += 1
    if n_bench:
        extras.append("a wooden bench" if n_bench == 1 else "wooden benches")
    if rng.random() < 0.5:
        s = spot(1.8)
        if s is not None:
            water = Material(tex.get("noise", (0.2, 0.4, 0.7), (0.3, 0.55, 0.8)), tile=1.0)
            mb.cylinder(s[0], s[1], 1.3, 0, 0.5, plinth, segments=24)
            mb.cylinder(s[0], s[1], 1.15, 0.5, 0.52, water, segments=24, collide=False)
            mb.cylinder(s[0], s[1], 0.15, 0.5, 1.3, plinth, segments=10)
            extras.append("a fountain")
    for _ in range(int(rng.integers(0, 4))):
        s = spot(0.9)
        if s is not None:
            mb.box([s[0] - 0.5, s[1] - 0.5, 0], [s[0] + 0.5, s[1] + 0.5, 0.6], wall)
            mb.sphere([s[0], s[1], 0.9], 0.45, leaves, rings=6, segments=10)
            if "planters" not in extras:
                extras.append("planters")

    sky_name = str(rng.choice(list(SKIES)))
    zen, hor = SKIES[sky_name]
    el = np.deg2rad(rng.uniform(25, 65) if sky_name != "evening" else rng.uniform(12, 25))
    az = rng.uniform(0, 2 * np.pi)
    sun_dir = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    sun = {"sunny": (1.0, 0.95, 0.85), "hazy": (0.8, 0.8, 0.78), "evening": (1.0, 0.7, 0.45),
           "overcast": (0.45, 0.45, 0.47)}[sky_name]
    amb = {"sunny": (0.35, 0.38, 0.45), "hazy": (0.42, 0.43, 0.46), "evening": (0.3, 0.28, 0.35),
           "overcast": (0.6, 0.6, 0.62)}[sky_name]
    light_word = {"sunny": "sunlit", "hazy": "hazy", "evening": "evening", "overcast": "overcast"}[sky_name]
    things = [_article(lm.name) for lm in landmarks]
    if n_pillars:
        things.append(f"{pillar_name} pillars")
    if n_trees:
        things.append("trees")
    things += extras
    caption = (f"{_article(light_word + ' ' + place)} with {wall_name} {TEX_WORDS[wall_fam]} walls, "
               f"{ground_words} underfoot, " + _join(things[:6]))
    verts, indices, ranges, boxes, shadow_vertices = mb.finish()
    return Scene(
        family="outdoor", seed=seed, vertices=verts, indices=indices, shadow_vertices=shadow_vertices, ranges=ranges,
        range_boxes=boxes, textures=tex.stack(),
        colliders=mb.colliders(), bounds=np.array([[0.0, 0.0, 0.0], [Lx, Ly, 4.5]]), sun_dir=sun_dir,
        sun_color=sun, ambient=amb, sky=(zen, hor), clear=hor, landmarks=landmarks, caption=caption,
        description={"place": place, "size": [float(Lx), float(Ly)], "sky": sky_name, "walls": f"{wall_name} {wall_fam}",
                     "ground": ground_words, "landmarks": [lm.name for lm in landmarks], "pillars": n_pillars,
                     "trees": n_trees, "extras": extras})


def make_scene(seed: int, family: str | None = None) -> Scene:
    """Build the scene of ``seed``; ``family`` None picks indoor or outdoor from the seed."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5CE7E]))
    if family is None:
        family = FAMILIES[int(rng.integers(2))]
    if family == "indoor":
        return _indoor(int(seed), rng)
    if family == "outdoor":
        return _outdoor(int(seed), rng)
    raise ValueError(f"unknown scene family {family!r}; choose from {FAMILIES}")
