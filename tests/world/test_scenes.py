"""Scenes: both families, randomized per seed, captions from the description (never camera motion)."""

import re

import numpy as np

from relic.world.scenes import make_scene
from relic.world.textures import FAMILIES, make_texture

MOTION_WORDS = re.compile(r"\b(pan|pans|panning|tilt|dolly|truck|zoom|camera|moves?|moving|orbit|rotat\w*|fly|flies)\b")


def test_families_and_variety():
    scenes = [make_scene(s) for s in range(10)]
    assert {s.family for s in scenes} == {"indoor", "outdoor"}
    assert len({s.caption for s in scenes}) == 10
    for s in scenes:
        assert len(s.landmarks) >= 1
        assert s.vertices.dtype == np.float32 and s.vertices.shape[1] == 13
        assert s.indices.max() < len(s.vertices)
        assert s.textures.dtype == np.uint8 and s.textures.shape[1:] == (128, 128, 3)
        assert not MOTION_WORDS.search(s.caption), s.caption
        assert "\n" not in s.caption


def test_same_seed_same_scene():
    a, b = make_scene(5), make_scene(5)
    assert a.caption == b.caption
    assert np.array_equal(a.vertices, b.vertices) and np.array_equal(a.textures, b.textures)


def test_forced_family():
    assert make_scene(3, "indoor").family == "indoor"
    assert make_scene(3, "outdoor").family == "outdoor"
    assert make_scene(3, "outdoor").sky is not None


def test_textures_are_distinct_and_tileable():
    rng = np.random.default_rng(0)
    imgs = [make_texture(f, rng, 64, (0.8, 0.3, 0.2), (0.2, 0.3, 0.8)) for f in FAMILIES]
    for i in range(len(imgs)):
        assert imgs[i].shape == (64, 64, 3)
        for j in range(i):
            assert np.abs(imgs[i].astype(int) - imgs[j]).mean() > 5
