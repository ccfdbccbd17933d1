"""The renderer uses relic's exact camera model: known 3D points land within 1 px; depth is camera z."""

import numpy as np
import pytest

from relic.camera.geometry import look_at, project
from relic.world.geometry import Colliders, Material, MeshBuilder
from relic.world.renderer import Renderer
from relic.world.scenes import Scene


def _sphere_scene(center, radius) -> Scene:
    mb = MeshBuilder()
    mb.sphere(center, radius, Material(0, (1.0, 1.0, 1.0), emissive=True), rings=24, segments=48)
    v, idx, ranges, boxes, shadow = mb.finish()
    tex = np.full((1, 8, 8, 3), 255, np.uint8)
    return Scene("test", 0, v, idx, shadow, ranges, boxes, tex, Colliders(), np.array([[-50.0] * 3, [50.0] * 3]),
                 np.array([0, 0, 1.0]), (0, 0, 0), (0, 0, 0), None, (0.0, 0.0, 0.0))


@pytest.fixture(scope="module")
def renderer():
    r = Renderer(96, 64, samples=4)
    yield r
    r.release()


def test_sphere_centroid_projects_within_one_pixel(renderer):
    rng = np.random.default_rng(0)
    center = np.array([1.0, 2.0, 1.5])
    renderer.set_scene(_sphere_scene(center, 0.06))
    # off-centre principal point and fx != fy, so that any transposition or half-pixel error shows
    K = np.array([[70.0, 0, 41.3], [0, 64.0, 35.7], [0, 0, 1.0]])
    for _ in range(6):
        P = center + rng.normal(0, 1, 3) * np.array([2.0, 2.0, 0.5])
        P = center + (P - center) / np.linalg.norm(P - center) * rng.uniform(2.5, 4.0)
        target = center + rng.normal(0, 0.25, 3)
        R = look_at(P, target)
        img, depth = renderer.render(K, R, P, depth=True)
        lum = img.astype(np.float64).sum(-1)
        assert lum.max() > 600
        ys, xs = np.mgrid[0:img.shape[0], 0:img.shape[1]]
        w = lum / lum.sum()
        centroid = np.array([(w * (xs + 0.5)).sum(), (w * (ys + 0.5)).sum()])   # pixel centres at +0.5
        uv, z = project(K, R, P, center[None])
        assert np.linalg.norm(centroid - uv[0]) < 1.0, (centroid, uv[0])
        u, v = (uv[0]).astype(int)
        assert depth[v, u] == pytest.approx(z[0] - 0.06, abs=0.03)


def test_image_rows_are_top_down(renderer):
    """A sphere above the optical axis appears in the upper half of the image."""
    center = np.array([5.0, 0.0, 1.0])
    renderer.set_scene(_sphere_scene(center, 0.3))
    K = np.array([[48.0, 0, 48.0], [0, 48.0, 32.0], [0, 0, 1.0]])
    P = np.array([0.0, 0.0, 0.0])
    R = look_at(P, np.array([5.0, 0.0, 0.0]))
    img = renderer.render(K, R, P)
    rows = np.nonzero(img.sum(-1).sum(1))[0]
    assert rows.mean() < 32
    cols = np.nonzero(img.sum(-1).sum(0))[0]
    assert abs(cols.mean() + 0.5 - 48) < 1.5


def test_background_depth_is_infinite(renderer):
    renderer.set_scene(_sphere_scene(np.array([5.0, 0, 0]), 0.3))
    K = np.array([[48.0, 0, 48.0], [0, 48.0, 32.0], [0, 0, 1.0]])
    _, depth = renderer.render(K, look_at(np.zeros(3), np.array([-1.0, 0, 0])), np.zeros(3), depth=True)
    assert np.isinf(depth).all()


def test_batched_views_equal_single_views():
    """render_many (stacked viewports, one resolve and read-back) matches one render per view."""
    from relic.world.operator import Operator, states_to_trajectory
    from relic.world.scenes import make_scene

    r = Renderer(40, 24, batch=4)
    try:
        for seed in (0, 1):
            scene = make_scene(seed)
            r.set_scene(scene)
            tr = states_to_trajectory(Operator(scene, np.random.default_rng(0), 16).fly(7).states, 16, 40, 24)
            frames, depth = r.render_many(tr.K, tr.R, tr.P, depth=True)
            for i in range(7):
                img, d = r.render(tr.K, tr.R[i], tr.P[i], depth=True)
                # identical up to float rounding in the viewport transform (rare edge/sample flips)
                diff = np.abs(frames[i].astype(int) - img)
                assert diff.mean() < 0.2 and (diff <= 2).mean() > 0.995
                finite = np.isfinite(d)
                assert np.array_equal(finite, np.isfinite(depth[i]))
                assert np.allclose(depth[i][finite], d[finite], rtol=1e-3, atol=1e-3)
    finally:
        r.release()
