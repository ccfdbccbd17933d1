"""What every torchrun test shares: :func:`run_torchrun` launches a worker script with gloo ranks on this machine.

Each worker ends with :func:`relic.training.distributed.exit_process` (barrier, destroy the process group,
flush, exit without interpreter finalization), as ``relic`` itself does under torchrun: a plain return let a
gloo worker thread abort the process after the work was done ("terminate called without an active
exception", SIGABRT; see that function).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_torchrun(script: Path | str, *args: str, nproc: int = 2, timeout: int = 600, no_python: bool = False) -> str:
    """Run ``script`` (a Python file, or with ``no_python`` an executable such as ``relic``) under torchrun with
    ``nproc`` gloo ranks on this machine; fail with its output if it fails. Returns its stdout.

    ``--standalone`` lets torchrun pick a free rendezvous port itself (no port picked here that another
    process could take before torchrun binds it). ``timeout`` only catches a hang: a few seconds of work can
    take minutes on a 2-core machine shared with a training run. On a timeout torchrun gets SIGTERM, on which
    it stops its ranks (each runs in its own session: SIGKILL to torchrun alone would leave them running).
    """
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           *(["--no-python"] if no_python else []), str(script), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        raise AssertionError(f"torchrun {Path(script).name} still running after {timeout} s:\n"
                             + stdout[-3000:] + stderr[-3000:]) from None
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert "terminate called" not in stderr, stderr[-3000:]
    return stdout
