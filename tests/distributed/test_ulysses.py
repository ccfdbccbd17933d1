"""Ulysses sequence parallelism with 2 gloo ranks under torchrun equals single-process attention."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from torchrun import run_torchrun  # noqa: E402


@pytest.mark.slow
def test_ulysses_attention_matches_single_process():
    out = run_torchrun(Path(__file__).with_name("ulysses_worker.py"))
    assert out.count("fwd") == 2
