"""Fixtures of the serve tests (helpers live in helpers.py)."""

import pytest

from .helpers import make_scene_dir


@pytest.fixture
def scene_dir(tmp_path):
    return make_scene_dir(tmp_path / "scenes", 64, 32)
