"""Ulysses sequence parallelism with 2 gloo ranks under torchrun equals single-process attention."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_torchrun(script: Path, *args: str, nproc: int = 2, timeout: int = 180) -> str:
    """Run ``script`` under torchrun on 127.0.0.1 with ``nproc`` gloo ranks; fail with its output if it fails."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", "--master-addr=127.0.0.1",
           f"--master-port={free_port()}", str(script), *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout


@pytest.mark.slow
def test_ulysses_attention_matches_single_process():
    out = run_torchrun(Path(__file__).with_name("ulysses_worker.py"))
    assert out.count("fwd") == 2
