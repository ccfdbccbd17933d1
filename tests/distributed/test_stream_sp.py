"""StreamingSession with a 2-rank sequence-parallel group (gloo, torchrun) gives the frames of one process.

Each rank caches its half of the heads (fp32 and fp8 storage), compressed memory included; see
stream_sp_worker.py.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from torchrun import run_torchrun  # noqa: E402


@pytest.mark.slow
def test_sequence_parallel_stream_matches_one_process():
    out = run_torchrun(Path(__file__).with_name("stream_sp_worker.py"))
    assert out.count("OK") == 4, out
