"""The DiT with Ulysses sequence parallelism (2 gloo ranks under torchrun) equals one process.

Forward and backward (≤ 1e-5, fp32), with the block-causal mask and a kv_context holding compressed memory
tokens (pooled latents at fractional positions); the head-sharded K/V it returns, and the memory built from
them, equal the head slices of the single-process ones. See dit_sp_worker.py.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from torchrun import run_torchrun  # noqa: E402


@pytest.mark.slow
def test_dit_ulysses_matches_single_process():
    out = run_torchrun(Path(__file__).with_name("dit_sp_worker.py"))
    assert out.count("OK") == 2, out
