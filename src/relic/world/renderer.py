"""Headless rasterizer for the procedural world: moderngl on an EGL context (Mesa llvmpipe on a CPU).

The camera model is exactly relic's (see :mod:`relic.camera.geometry`): intrinsics ``K`` in pixels with the
centre of pixel (0, 0) at (0.5, 0.5), world-to-camera rotation ``R`` (OpenCV axes: x right, y down,
z forward) and camera position ``P`` in a Z-up world in metres. GL wants eye space with y up and the camera
looking down -z, so the view matrix is ``diag(1, -1, -1, 1) @ w2c(R, P)`` and the projection comes from K
(:func:`gl_projection`). GL rows come back bottom-up and are flipped, so frames are (h w 3) uint8 with row 0
at the top, ready for :mod:`relic.video`.

Rendering: a texture array (one layer per procedural texture) with mipmaps and trilinear filtering
(anisotropic filtering stays off: it stalls llvmpipe), 4x MSAA resolved to a plain framebuffer, a sun with a
shadow map computed once per scene, ambient light, and for outdoor scenes a sky gradient drawn per pixel
from the camera ray. Optional depth is metres along the camera z axis, from a separate non-MSAA pass.
"""

from __future__ import annotations

import numpy as np

from relic.camera.geometry import w2c_from_pose
from relic.world.geometry import VERTEX_FLOATS
from relic.world.scenes import Scene

NEAR, FAR = 0.05, 200.0
CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])

_MAIN_VS = """
#version 330
uniform mat4 u_mvp;
uniform mat4 u_light;
in vec3 in_pos; in vec3 in_normal; in vec2 in_uv; in float in_layer; in vec3 in_tint; in float in_emissive;
out vec3 v_pos; out vec3 v_normal; out vec2 v_uv; flat out float v_layer; out vec3 v_tint; flat out float v_emit;
out vec4 v_shadow;
void main() {
    v_pos = in_pos; v_normal = in_normal; v_uv = in_uv; v_layer = in_layer; v_tint = in_tint; v_emit = in_emissive;
    v_shadow = u_light * vec4(in_pos, 1.0);
    gl_Position = u_mvp * vec4(in_pos, 1.0);
}
"""
_MAIN_FS = """
#version 330
uniform sampler2DArray u_tex;
uniform sampler2DShadow u_shadow;
uniform vec3 u_cam; uniform vec3 u_sun; uniform vec3 u_sun_color; uniform vec3 u_ambient;
uniform vec3 u_fog_color; uniform float u_fog;
in vec3 v_pos; in vec3 v_normal; in vec2 v_uv; flat in float v_layer; in vec3 v_tint; flat in float v_emit;
in vec4 v_shadow;
out vec4 f_color;
void main() {
    vec3 albedo = texture(u_tex, vec3(v_uv, v_layer)).rgb * v_tint;
    vec3 n = normalize(v_normal);
    vec3 V = u_cam - v_pos;
    if (dot(n, V) < 0.0) n = -n;
    float ndl = max(dot(n, u_sun), 0.0);
    vec3 sc = v_shadow.xyz / v_shadow.w * 0.5 + 0.5;
    float bias = 0.0015 + 0.003 * (1.0 - ndl);
    float lit = 1.0;
    if (all(greaterThan(sc, vec3(0.0))) && all(lessThan(sc, vec3(1.0))))
        lit = texture(u_shadow, vec3(sc.xy, sc.z - bias));
    vec3 c = albedo * (u_ambient + u_sun_color * ndl * lit);
    c = mix(c, albedo, v_emit);
    float fog = 1.0 - exp(-u_fog * length(V));
    f_color = vec4(mix(c, u_fog_color, fog), 1.0);
}
"""
_SKY_VS = """
#version 330
in vec2 in_xy;
void main() { gl_Position = vec4(in_xy, 1.0, 1.0); }   // on the far plane: drawn where nothing else is
"""
_SKY_FS = """
#version 330
uniform mat3 u_ray;      // R^T K^-1: pixel (u, v, 1) -> world direction
uniform float u_height;
uniform vec3 u_zenith; uniform vec3 u_horizon; uniform vec3 u_sun; uniform vec3 u_sun_color;
out vec4 f_color;
void main() {
    vec3 d = normalize(u_ray * vec3(gl_FragCoord.x, u_height - gl_FragCoord.y, 1.0));
    float h = clamp(d.z, -0.2, 1.0);
    vec3 c = h > 0.0 ? mix(u_horizon, u_zenith, sqrt(h)) : u_horizon * (1.0 + 2.0 * h);
    float s = max(dot(d, u_sun), 0.0);
    float s4 = (s * s) * (s * s);
    c += u_sun_color * (smoothstep(0.9990, 0.9996, s) * 2.0 + s4 * s4 * s4 * 0.15);   // disc + glow
    f_color = vec4(c, 1.0);
}
"""
_DEPTH_VS = """
#version 330
uniform mat4 u_mvp;
in vec3 in_pos;
void main() { gl_Position = u_mvp * vec4(in_pos, 1.0); }
"""
_DEPTH_FS = """
#version 330
out float f_depth;
void main() { f_depth = 1.0 / gl_FragCoord.w; }   // clip w = camera z in metres
"""


def gl_projection(K: np.ndarray, width: int, height: int, near: float = NEAR, far: float = FAR) -> np.ndarray:
    """(4 4) GL projection of the pinhole K (pixels, top-left origin) for GL eye space (y up, looking down -z).

    A point with OpenCV camera coordinates (x, y, z) lands at NDC x = 2u/W - 1 and NDC y = 1 - 2v/H, where
    (u, v) = (fx x/z + cx, fy y/z + cy), so GL's viewport puts it exactly at pixel (u, v).
    """
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    return np.array([
        [2 * fx / width, 0.0, 1.0 - 2 * cx / width, 0.0],
        [0.0, 2 * fy / height, 2 * cy / height - 1.0, 0.0],
        [0.0, 0.0, -(far + near) / (far - near), -2 * far * near / (far - near)],
        [0.0, 0.0, -1.0, 0.0]])


def gl_view(R: np.ndarray, P: np.ndarray) -> np.ndarray:
    """(4 4) GL view matrix of relic's pose: the OpenCV->GL axis flip applied to w2c."""
    return CV_TO_GL @ w2c_from_pose(R, P)


def _mat(m: np.ndarray) -> bytes:
    return np.asarray(m, dtype=np.float32).T.tobytes()   # GL is column-major


class Renderer:
    """One EGL context with framebuffers of a fixed size; :meth:`set_scene` then :meth:`render`.

    Args:
        width, height: output size in pixels.
        samples: MSAA samples (0 disables MSAA).
        shadow_size: shadow-map resolution.
        batch: views drawn per framebuffer (stacked viewports) by :meth:`render_many`.
    """

    def __init__(self, width: int, height: int, samples: int = 4, shadow_size: int = 1024, batch: int = 8):
        import moderngl

        self.mgl = moderngl
        self.width, self.height = int(width), int(height)
        self.ctx = moderngl.create_context(standalone=True, backend="egl")
        samples = min(samples, self.ctx.max_samples)
        self.samples = samples
        self.batch = max(1, int(batch))
        size = (self.width, self.height * self.batch)
        if samples > 1:
            self.ms_fbo = self.ctx.framebuffer(self.ctx.renderbuffer(size, 4, samples=samples),
                                               self.ctx.depth_renderbuffer(size, samples=samples))
        else:
            self.ms_fbo = None
        self.fbo = self.ctx.framebuffer(self.ctx.renderbuffer(size, 4), self.ctx.depth_renderbuffer(size))
        self.depth_fbo = self.ctx.framebuffer(self.ctx.renderbuffer(size, 1, dtype="f4"),
                                              self.ctx.depth_renderbuffer(size))
        self.shadow_size = shadow_size
        self.shadow_tex = self.ctx.depth_texture((shadow_size, shadow_size))
        self.shadow_tex.compare_func = "<="
        self.shadow_tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self.shadow_tex.repeat_x = self.shadow_tex.repeat_y = False
        self.shadow_fbo = self.ctx.framebuffer(depth_attachment=self.shadow_tex)
        self.main = self.ctx.program(vertex_shader=_MAIN_VS, fragment_shader=_MAIN_FS)
        self.sky = self.ctx.program(vertex_shader=_SKY_VS, fragment_shader=_SKY_FS)
        self.depth_prog = self.ctx.program(vertex_shader=_DEPTH_VS, fragment_shader=_DEPTH_FS)
        tri = np.array([-1, -1, 3, -1, -1, 3], dtype=np.float32)
        self.sky_vao = self.ctx.vertex_array(self.sky, [(self.ctx.buffer(tri.tobytes()), "2f", "in_xy")])
        self.main["u_tex"] = 0
        self.main["u_shadow"] = 1
        self.scene: Scene | None = None
        self._vbo = self._ibo = self._tex = self._vao = self._pos_vao = None

    # -- scene ---------------------------------------------------------------------------------------
    def set_scene(self, scene: Scene) -> None:
        """Upload geometry and textures, compute the shadow map, warm up the shaders."""
        mgl = self.mgl
        for obj in (self._vao, self._pos_vao, self._vbo, self._ibo, self._tex):
            if obj is not None:
                obj.release()
        self.scene = scene
        v = np.ascontiguousarray(scene.vertices, dtype=np.float32)
        assert v.shape[1] == VERTEX_FLOATS
        self._n_vertices = len(v)
        self._vbo = self.ctx.buffer(v.tobytes())
        self._ibo = self.ctx.buffer(np.ascontiguousarray(scene.indices, dtype=np.uint32).tobytes())
        self._vao = self.ctx.vertex_array(self.main, [(self._vbo, "3f 3f 2f 1f 3f 1f", "in_pos", "in_normal",
                                                       "in_uv", "in_layer", "in_tint", "in_emissive")],
                                          index_buffer=self._ibo, index_element_size=4)
        self._pos_vao = self.ctx.vertex_array(self.depth_prog, [(self._vbo, "3f 40x", "in_pos")],
                                              index_buffer=self._ibo, index_element_size=4)
        L, th, tw, _ = scene.textures.shape
        self._tex = self.ctx.texture_array((tw, th, L), 3, np.ascontiguousarray(scene.textures).tobytes())
        self._tex.build_mipmaps()
        self._tex.filter = (mgl.LINEAR_MIPMAP_LINEAR, mgl.LINEAR)
        self._tex.anisotropy = 1.0
        self._tex.repeat_x = self._tex.repeat_y = True

        # sun shadow map: orthographic view along -sun over the scene's bounds (plus a margin)
        lo, hi = scene.bounds[0].copy(), scene.bounds[1].copy()
        hi[2] = max(hi[2], 8.0)
        centre = (lo + hi) / 2
        radius = float(np.linalg.norm(hi - lo) / 2) + 6.0
        sun = np.asarray(scene.sun_dir, dtype=np.float64)
        sun = sun / np.linalg.norm(sun)
        eye = centre + sun * radius * 2
        f = -sun
        up = np.array([0.0, 0.0, 1.0]) if abs(f[2]) < 0.99 else np.array([0.0, 1.0, 0.0])
        r = np.cross(f, up)
        r /= np.linalg.norm(r)
        u = np.cross(r, f)
        view = np.eye(4)
        view[0, :3], view[1, :3], view[2, :3] = r, u, -f
        view[:3, 3] = -view[:3, :3] @ eye
        near, far = radius * 0.5, radius * 3.5
        ortho = np.diag([1 / radius, 1 / radius, -2 / (far - near), 1.0])
        ortho[2, 3] = -(far + near) / (far - near)
        self._light = ortho @ view
        self.shadow_fbo.use()
        self.shadow_fbo.clear(depth=1.0)
        self.ctx.enable(mgl.DEPTH_TEST)
        self.depth_prog["u_mvp"].write(_mat(self._light))
        self._pos_vao.render(mgl.TRIANGLES, vertices=int(scene.shadow_vertices))

        self.main["u_light"].write(_mat(self._light))
        self.main["u_sun"].value = tuple(float(x) for x in sun)
        self.main["u_sun_color"].value = tuple(0.8 * c for c in scene.sun_color)
        self.main["u_ambient"].value = tuple(scene.ambient)
        self.main["u_fog_color"].value = tuple(scene.sky[1] if scene.sky else scene.clear)
        self.main["u_fog"].value = 0.006 if scene.sky else 0.0
        if scene.sky:
            self.sky["u_zenith"].value = tuple(scene.sky[0])
            self.sky["u_horizon"].value = tuple(scene.sky[1])
            self.sky["u_sun"].value = tuple(float(x) for x in sun)
            self.sky["u_sun_color"].value = tuple(scene.sun_color)
        # warm-up: the first draws compile llvmpipe's shader variants
        K = np.array([[self.width / 2, 0, self.width / 2], [0, self.width / 2, self.height / 2], [0, 0, 1.0]])
        P = (scene.bounds[0] + scene.bounds[1]) / 2
        R = np.array([[0, -1.0, 0], [0, 0, -1.0], [1.0, 0, 0]])
        self.render(K, R, P, depth=True)

    # -- frames --------------------------------------------------------------------------------------
    def render(self, K: np.ndarray, R: np.ndarray, P: np.ndarray, depth: bool = False):
        """One view -> uint8 (h w 3), or (uint8 (h w 3), float32 depth (h w)) when ``depth``.

        Depth is the camera-z distance in metres (``inf`` where nothing was drawn).
        """
        out = self.render_many(K, np.asarray(R)[None], np.asarray(P)[None], depth=depth)
        return (out[0][0], out[1][0]) if depth else out[0]

    def render_many(self, K: np.ndarray, R: np.ndarray, P: np.ndarray, depth: bool = False):
        """Views R (b 3 3), P (b 3) -> uint8 (b h w 3) [and float32 depth (b h w)].

        Up to ``batch`` views are drawn side by side (stacked viewports) into one tall framebuffer, so the
        MSAA resolve and the read-back (which wait for the rasterizer) happen once per batch.
        """
        if self.scene is None:
            raise RuntimeError("Renderer.set_scene must be called before render")
        K = np.asarray(K, dtype=np.float64)
        R = np.asarray(R, dtype=np.float64)
        P = np.asarray(P, dtype=np.float64)
        n = len(R)
        frames = np.empty((n, self.height, self.width, 3), np.uint8)
        depths = np.empty((n, self.height, self.width), np.float32) if depth else None
        for a in range(0, n, self.batch):
            b = min(n, a + self.batch)
            self._render_batch(K, R[a:b], P[a:b], frames[a:b], None if depths is None else depths[a:b])
        return (frames, depths) if depth else frames

    def _render_batch(self, K, R, P, frames, depths) -> None:
        mgl = self.mgl
        W, H, n = self.width, self.height, len(R)
        proj = gl_projection(K, W, H)
        mvps = [proj @ gl_view(R[i], P[i]) for i in range(n)]
        visible = [self.visible_ranges(m) for m in mvps]
        target = self.ms_fbo if self.ms_fbo is not None else self.fbo
        target.use()
        target.clear(*self.scene.clear, 1.0, depth=1.0)
        self._tex.use(0)
        self.shadow_tex.use(1)
        kinv = np.linalg.inv(K)
        self.ctx.enable(mgl.DEPTH_TEST)
        self.ctx.depth_func = "<="
        for i in range(n):
            self.ctx.viewport = (0, i * H, W, H)
            self.main["u_mvp"].write(_mat(mvps[i]))
            self.main["u_cam"].value = tuple(float(x) for x in P[i])
            for first, count in visible[i]:
                self._vao.render(mgl.TRIANGLES, vertices=int(count), first=int(first))
            if self.scene.sky:      # after the geometry, so that only uncovered pixels shade the sky
                self.sky["u_ray"].write(_mat(R[i].T @ kinv))
                self.sky["u_height"].value = float((i + 1) * H)
                self.sky_vao.render(mgl.TRIANGLES)
        if self.ms_fbo is not None:
            self.ctx.copy_framebuffer(self.fbo, self.ms_fbo)
        rows = n * H
        img = np.frombuffer(self.fbo.read(viewport=(0, 0, W, rows), components=3, alignment=1), np.uint8)
        img = img.reshape(n, H, W, 3)          # GL rows bottom-up within each stacked view
        frames[:] = img[:, ::-1]
        if depths is None:
            return
        self.depth_fbo.use()
        self.depth_fbo.clear(np.inf, 0, 0, 0, depth=1.0)
        for i in range(n):
            self.ctx.viewport = (0, i * H, W, H)
            self.depth_prog["u_mvp"].write(_mat(mvps[i]))
            for first, count in visible[i]:
                self._pos_vao.render(mgl.TRIANGLES, vertices=int(count), first=int(first))
        d = np.frombuffer(self.depth_fbo.read(viewport=(0, 0, W, rows), components=1, dtype="f4", alignment=1),
                          np.float32)
        depths[:] = d.reshape(n, H, W)[:, ::-1]

    def visible_ranges(self, mvp: np.ndarray) -> list[tuple[int, int]]:
        """Vertex ranges whose bounding boxes intersect the view frustum, merged when adjacent."""
        boxes = self.scene.range_boxes
        sel = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1], [1, 0, 0], [1, 0, 1], [1, 1, 0], [1, 1, 1]])
        corners = boxes[:, sel, [0, 1, 2]]                                   # (n 8 3)
        clip = np.concatenate([corners, np.ones(corners.shape[:2] + (1,))], -1) @ mvp.T
        x, y, z, w = clip[..., 0], clip[..., 1], clip[..., 2], clip[..., 3]
        out = ((x < -w).all(1) | (x > w).all(1) | (y < -w).all(1) | (y > w).all(1) | (z < -w).all(1)
               | (z > w).all(1))
        merged: list[tuple[int, int]] = []
        for (first, count), cull in zip(self.scene.ranges, out):
            if cull:
                continue
            if merged and merged[-1][0] + merged[-1][1] == first:
                merged[-1] = (merged[-1][0], merged[-1][1] + int(count))
            else:
                merged.append((int(first), int(count)))
        return merged

    def release(self) -> None:
        """Free the GL context."""
        self.ctx.release()
