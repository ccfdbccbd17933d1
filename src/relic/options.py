"""Options that several commands share, defined once with one wording and one behaviour.

Used by :mod:`relic.commands` and by the benchmark modules that add their own ``relic bench`` subcommand, so it
sits at the bottom of the stack (it imports nothing of relic but :mod:`relic.errors`):

* ``--threads N``: :func:`add_threads_argument`, checked by :func:`check_threads`, applied by :func:`apply_threads`;
  without it torch keeps its own choice.
* output files: :func:`check_output_file` refuses a path whose directory does not exist (a typo is not silently
  created) or that is a directory, before any work.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from relic.errors import UserError

THREADS_HELP = ("torch CPU threads (default: torch's own choice, $OMP_NUM_THREADS if set, else one per physical "
                "core; 1 is steadier on a busy shared CPU)")


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """``--threads N`` (checked by :func:`check_threads`, applied by :func:`apply_threads`)."""
    parser.add_argument("--threads", type=int, default=None, metavar="N", help=THREADS_HELP)


def check_threads(threads: int | None) -> None:
    """A one-line error for a --threads value outside 1..256 (None: torch's own choice)."""
    if threads is not None and not 1 <= threads <= 256:
        raise UserError(f"--threads must be between 1 and 256, got {threads}")


def apply_threads(threads: int | None) -> None:
    """Set torch's intra-op threads to ``threads`` (checked); None leaves torch's own choice."""
    check_threads(threads)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def check_output_file(path: str | Path, flag: str) -> Path:
    """A one-line error unless ``path`` can be written as a file: its directory must exist (a typo in a path is
    refused, as ffmpeg does, rather than created) and it must not be a directory. Returns it as a Path."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{flag} is a directory, not a file", source=str(path))
    parent = path.parent
    if not parent.is_dir():
        raise UserError(f"{flag}: {'not a directory' if parent.exists() else 'no such directory'}: {parent}")
    return path
