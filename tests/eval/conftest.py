"""Fixtures for the eval tests (the scene itself lives in conftest_helpers)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from conftest_helpers import PlaneScene  # noqa: E402


@pytest.fixture(scope="session")
def plane_scene() -> PlaneScene:
    return PlaneScene(0)
