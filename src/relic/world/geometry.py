"""Meshes and colliders of the procedural world (numpy, no GL, no I/O).

A :class:`MeshBuilder` collects textured triangles for the renderer and, for every solid shape, a collider
used by the operator to keep the camera out of geometry. Everything is in relic's world frame: right-handed,
metres, +Z up. Boxes are axis-aligned; cylinders are vertical.

Vertex layout (one row per vertex, float32, :data:`VERTEX_FORMAT`): position (3), normal (3), uv (2),
texture layer (1), tint rgb (3), emissive (1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

VERTEX_FORMAT = "3f 3f 2f 1f 3f 1f"
VERTEX_ATTRS = ("in_pos", "in_normal", "in_uv", "in_layer", "in_tint", "in_emissive")
VERTEX_FLOATS = 13


@dataclass(frozen=True)
class Material:
    """A texture-array layer, an rgb tint multiplying it, the tile size in metres and an unlit flag."""

    layer: int
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    tile: float = 1.0
    emissive: bool = False


@dataclass
class Colliders:
    """Solid shapes: boxes (n 2 3) as (min, max), vertical cylinders (n 5) as (x, y, r, z0, z1), spheres (n 4)."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 2, 3)))
    cylinders: np.ndarray = field(default_factory=lambda: np.zeros((0, 5)))
    spheres: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Signed distance (n,) from points (n 3) to the nearest solid (negative inside); +inf if none."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        d = np.full(len(p), np.inf)
        if len(self.boxes):
            c = self.boxes.mean(1)
            h = (self.boxes[:, 1] - self.boxes[:, 0]) / 2
            q = np.abs(p[:, None, :] - c[None]) - h[None]                                   # (n m 3)
            out = np.linalg.norm(np.maximum(q, 0.0), axis=-1) + np.minimum(q.max(-1), 0.0)
            d = np.minimum(d, out.min(1))
        if len(self.cylinders):
            cy = self.cylinders
            dr = np.hypot(p[:, None, 0] - cy[None, :, 0], p[:, None, 1] - cy[None, :, 1]) - cy[None, :, 2]
            dz = np.maximum(cy[None, :, 3] - p[:, None, 2], p[:, None, 2] - cy[None, :, 4])
            out = np.hypot(np.maximum(dr, 0), np.maximum(dz, 0)) + np.minimum(np.maximum(dr, dz), 0.0)
            d = np.minimum(d, out.min(1))
        if len(self.spheres):
            s = self.spheres
            out = np.linalg.norm(p[:, None, :] - s[None, :, :3], axis=-1) - s[None, :, 3]
            d = np.minimum(d, out.min(1))
        return d


class MeshBuilder:
    """Collects triangles (vertex rows) and colliders."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._casts: list[bool] = []
        self.casts_shadow = True   # chunks emitted while False don't cast shadows (e.g. ceilings)
        self._boxes: list[np.ndarray] = []
        self._cyl: list[list[float]] = []
        self._sph: list[list[float]] = []

    # -- output --------------------------------------------------------------------------------------
    def vertices(self) -> np.ndarray:
        """(v 13) float32 vertex rows, three per triangle, in emission order."""
        if not self._chunks:
            return np.zeros((0, VERTEX_FLOATS), np.float32)
        return np.concatenate(self._chunks).astype(np.float32)

    def finish(self, cell: float = 4.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        """Indexed geometry grouped for frustum culling.

        Chunks (one per primitive) are sorted into square cells of ``cell`` metres by their centre, shadow
        casters first; identical vertex rows are shared through an index buffer (llvmpipe shades each unique
        vertex once). Returns (vertices (v 13) float32, indices (i,) uint32, ranges (n 2) int as
        (first index, index count), range boxes (n 2 3) as (min, max), number of leading shadow-casting
        indices).
        """
        keys = []
        for ch, casts in zip(self._chunks, self._casts):
            c = (ch[:, :3].min(0) + ch[:, :3].max(0)) / 2
            keys.append((0 if casts else 1, int(np.floor(c[0] / cell)), int(np.floor(c[1] / cell))))
        order = sorted(range(len(self._chunks)), key=lambda i: keys[i])
        verts, idx, ranges, boxes = [], [], [], []
        first, base, shadow = 0, 0, 0
        i = 0
        while i < len(order):
            j = i
            while j < len(order) and keys[order[j]] == keys[order[i]]:
                j += 1
            group = np.concatenate([self._chunks[k] for k in order[i:j]]).astype(np.float32)
            uniq, inverse = np.unique(group, axis=0, return_inverse=True)
            verts.append(uniq)
            idx.append(inverse.reshape(-1).astype(np.uint32) + base)
            ranges.append((first, len(group)))
            boxes.append(np.stack([group[:, :3].min(0), group[:, :3].max(0)]).astype(np.float64))
            if keys[order[i]][0] == 0:
                shadow += len(group)
            first += len(group)
            base += len(uniq)
            i = j
        if not verts:
            return (np.zeros((0, VERTEX_FLOATS), np.float32), np.zeros(0, np.uint32), np.zeros((0, 2), int),
                    np.zeros((0, 2, 3)), 0)
        return (np.concatenate(verts), np.concatenate(idx), np.array(ranges, dtype=np.int64), np.array(boxes),
                shadow)

    def colliders(self) -> Colliders:
        return Colliders(np.array(self._boxes).reshape(-1, 2, 3), np.array(self._cyl).reshape(-1, 5),
                         np.array(self._sph).reshape(-1, 4))

    # -- primitives ----------------------------------------------------------------------------------
    def _emit(self, pos: np.ndarray, nrm: np.ndarray, uv: np.ndarray, m: Material) -> None:
        n = len(pos)
        extra = np.tile(np.array([m.layer, *m.tint, 1.0 if m.emissive else 0.0]), (n, 1))
        self._chunks.append(np.concatenate([pos, nrm, uv / m.tile, extra], 1))
        self._casts.append(self.casts_shadow)

    def box(self, lo, hi, m: Material, collide: bool = True) -> None:
        """Axis-aligned box from corner ``lo`` to ``hi`` (world metres); uvs tile in world units."""
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        if collide:
            self._boxes.append(np.stack([lo, hi]))
        pos, nrm, uv = [], [], []
        for axis in range(3):
            u_ax, v_ax = [a for a in range(3) if a != axis]
            for side, val in ((-1, lo[axis]), (1, hi[axis])):
                corners = []
                for a, b in ((0, 0), (1, 0), (1, 1), (0, 1)):
                    p = np.empty(3)
                    p[axis] = val
                    p[u_ax] = (lo, hi)[a][u_ax]
                    p[v_ax] = (lo, hi)[b][v_ax]
                    corners.append(p)
                corners = np.array(corners)
                tri = corners[[0, 1, 2, 0, 2, 3]]
                if side < 0:
                    tri = tri[::-1]
                nv = np.zeros(3)
                nv[axis] = side
                pos.append(tri)
                nrm.append(np.tile(nv, (6, 1)))
                # vertical faces: u horizontal, v = z; floors/ceilings: (x, y)
                uu = tri[:, u_ax] if axis != 2 else tri[:, 0]
                vv = tri[:, v_ax] if axis != 2 else tri[:, 1]
                if axis == 0:
                    uu, vv = tri[:, 1], tri[:, 2]
                elif axis == 1:
                    uu, vv = tri[:, 0], tri[:, 2]
                uv.append(np.stack([uu, vv], 1))
        self._emit(np.concatenate(pos), np.concatenate(nrm), np.concatenate(uv), m)

    def cylinder(self, x: float, y: float, r: float, z0: float, z1: float, m: Material, segments: int = 16,
                 collide: bool = True) -> None:
        """Vertical capped cylinder."""
        if collide:
            self._cyl.append([x, y, r, z0, z1])
        a = np.linspace(0, 2 * np.pi, segments + 1)
        ca, sa = np.cos(a), np.sin(a)
        pos, nrm, uv = [], [], []
        circ = 2 * np.pi * r
        for i in range(segments):
            p00 = [x + r * ca[i], y + r * sa[i], z0]
            p10 = [x + r * ca[i + 1], y + r * sa[i + 1], z0]
            p11 = [x + r * ca[i + 1], y + r * sa[i + 1], z1]
            p01 = [x + r * ca[i], y + r * sa[i], z1]
            n0, n1 = [ca[i], sa[i], 0], [ca[i + 1], sa[i + 1], 0]
            u0, u1 = circ * i / segments, circ * (i + 1) / segments
            pos += [p00, p10, p11, p00, p11, p01]
            nrm += [n0, n1, n1, n0, n1, n0]
            uv += [[u0, z0], [u1, z0], [u1, z1], [u0, z0], [u1, z1], [u0, z1]]
            for z, s in ((z1, 1), (z0, -1)):
                tri = [[x, y, z], [x + r * ca[i], y + r * sa[i], z], [x + r * ca[i + 1], y + r * sa[i + 1], z]]
                if s < 0:
                    tri = tri[::-1]
                pos += tri
                nrm += [[0, 0, s]] * 3
                uv += [[p[0], p[1]] for p in tri]
        self._emit(np.array(pos), np.array(nrm, float), np.array(uv), m)

    def sphere(self, center, r: float, m: Material, rings: int = 6, segments: int = 10,
               collide: bool = True) -> None:
        """UV sphere."""
        c = np.asarray(center, float)
        if collide:
            self._sph.append([*c, r])
        th = np.linspace(0, np.pi, rings + 1)
        ph = np.linspace(0, 2 * np.pi, segments + 1)
        def pt(i, j):
            n = np.array([np.sin(th[i]) * np.cos(ph[j]), np.sin(th[i]) * np.sin(ph[j]), np.cos(th[i])])
            return c + r * n, n, [ph[j] * r, th[i] * r]
        pos, nrm, uv = [], [], []
        for i in range(rings):
            for j in range(segments):
                q = [pt(i, j), pt(i + 1, j), pt(i + 1, j + 1), pt(i, j + 1)]
                for k in (0, 1, 2, 0, 2, 3):
                    pos.append(q[k][0])
                    nrm.append(q[k][1])
                    uv.append(q[k][2])
        self._emit(np.array(pos), np.array(nrm), np.array(uv), m)

    # -- composites ----------------------------------------------------------------------------------
    def table(self, x: float, y: float, w: float, d: float, h: float, top: Material, legs: Material) -> None:
        t = 0.05
        self.box([x - w / 2, y - d / 2, h - t], [x + w / 2, y + d / 2, h], top)
        for sx in (-1, 1):
            for sy in (-1, 1):
                lx, ly = x + sx * (w / 2 - 0.06), y + sy * (d / 2 - 0.06)
                self.box([lx - 0.03, ly - 0.03, 0], [lx + 0.03, ly + 0.03, h - t], legs)

    def bench(self, x: float, y: float, length: float, along_x: bool, seat: Material, legs: Material) -> None:
        w, d = (length, 0.45) if along_x else (0.45, length)
        self.box([x - w / 2, y - d / 2, 0.4], [x + w / 2, y + d / 2, 0.48], seat)
        for s in (-1, 1):
            lx = x + s * (w / 2 - 0.1) if along_x else x
            ly = y if along_x else y + s * (d / 2 - 0.1)
            hw, hd = (0.05, d / 2 - 0.02) if along_x else (w / 2 - 0.02, 0.05)
            self.box([lx - hw, ly - hd, 0], [lx + hw, ly + hd, 0.4], legs)

    def tree(self, x: float, y: float, height: float, trunk: Material, leaves: Material,
             rng: np.random.Generator) -> None:
        r = 0.12 + 0.04 * height
        self.cylinder(x, y, r, 0, height * 0.6, trunk, segments=8)
        cr = 0.35 * height
        self.sphere([x, y, height * 0.6 + cr * 0.7], cr, leaves)
        for _ in range(int(rng.integers(0, 2))):
            off = rng.normal(0, cr * 0.4, 3)
            self.sphere([x + off[0], y + off[1], height * 0.6 + cr * 0.7 + abs(off[2])], cr * 0.7, leaves)

    def stairs(self, x0: float, y0: float, width: float, steps: int, step_d: float, step_h: float, along_x: bool,
               m: Material) -> None:
        for k in range(steps):
            if along_x:
                self.box([x0 + k * step_d, y0, 0], [x0 + (k + 1) * step_d, y0 + width, (k + 1) * step_h], m)
            else:
                self.box([x0, y0 + k * step_d, 0], [x0 + width, y0 + (k + 1) * step_d, (k + 1) * step_h], m)
