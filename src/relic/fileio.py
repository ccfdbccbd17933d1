"""Atomic file writing: nothing half-written is ever left behind.

Every writer in the project goes through :func:`atomic_path` (write to a temporary sibling, then
``os.replace`` it over the target) so that a crash or a validation error never leaves a partial file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``, on error delete it.

    ``suffix`` defaults to the target's suffix, so that libraries choosing a format by extension
    (e.g. an mp4 muxer) still see the right one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=path.suffix if suffix is None else suffix,
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, obj: Any, indent: int | None = 1) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")


def save_figure(fig, path: str | os.PathLike, dpi: float = 100, format: str | None = None) -> Path:
    """Save a matplotlib figure to ``path`` atomically, then close it; returns the path.

    ``format`` defaults to the target's suffix (``png`` when it has none). matplotlib is imported here,
    only when a figure is saved.
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=format or path.suffix.lstrip(".") or "png")
    finally:
        plt.close(fig)
    return path
