"""Training checkpoints: safetensors + a JSON sidecar, written atomically, the last N kept. No pickle.

A checkpoint is a directory ``<run>/checkpoints/step_<NNNNNNNN>/`` holding

* ``tensors.safetensors``: every tensor of the training state under a flat key (model and EMA weights,
  optimizer moments, RNG states), see :func:`flatten_state`;
* ``state.json``: everything else (step, scheduler and optimizer hyper-parameters, the data position,
  Python/NumPy RNG scalars, the run's config) plus the tree structure needed to put the tensors back.

It is built in a temporary sibling directory (``state.json`` written last) and renamed into place, so a
process killed at any moment leaves either the complete checkpoint or none. :func:`latest_checkpoint` only
considers complete directories.

Nested state (dicts, lists, tuples of tensors and JSON scalars, e.g. an optimizer ``state_dict()``) is
flattened by :func:`flatten_state`: tensors go to the safetensors file under dotted paths and are replaced in
the JSON tree by ``{"__tensor__": key}``; :func:`unflatten_state` inverts it exactly.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from relic.errors import UserError
from relic.fileio import write_json_atomic

TENSORS = "tensors.safetensors"
STATE = "state.json"
_STEP_DIR = re.compile(r"^step_(\d{8})$")


# ------------------------------------------------------------------------------------- nested <-> flat

def flatten_state(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Move every tensor of a nested structure into ``tensors`` (key ``prefix.path``); return the JSON tree."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[_key(k), flatten_state(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return flatten_state(torch.from_numpy(obj.copy()), prefix, tensors) | {"__numpy__": str(obj.dtype)}
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix} in a checkpoint")


def _key(k: Any) -> Any:
    if isinstance(k, (str, int)) and not isinstance(k, bool):
        return k
    raise TypeError(f"checkpoint dict keys must be str or int, got {type(k).__name__}")


def unflatten_state(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            t = tensors[tree["__tensor__"]]
            return t.numpy().astype(tree["__numpy__"]) if "__numpy__" in tree else t
        if "__dict__" in tree:
            return {k: unflatten_state(v, tensors) for k, v in tree["__dict__"]}
        if "__tuple__" in tree:
            return tuple(unflatten_state(v, tensors) for v in tree["__tuple__"])
        raise ValueError(f"unknown checkpoint node {sorted(tree)}")
    if isinstance(tree, list):
        return [unflatten_state(v, tensors) for v in tree]
    return tree


# --------------------------------------------------------------------------------------------- RNG

def rng_state(generators: dict[str, torch.Generator] | None = None) -> dict:
    """Torch (global + named generators), NumPy legacy and Python RNG states, as a nested structure."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    out = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": _py_state(random.getstate()),
        "generators": {k: g.get_state() for k, g in (generators or {}).items()},
    }
    return out


def _py_state(s: Any) -> Any:
    return list(_py_state(v) for v in s) if isinstance(s, tuple) else s


def set_rng_state(state: dict, generators: dict[str, torch.Generator] | None = None) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    for k, g in (generators or {}).items():
        if k in state["generators"]:
            g.set_state(state["generators"][k])


# ------------------------------------------------------------------------------------- save / load

def step_dir(root: str | Path, step: int) -> Path:
    return Path(root) / f"step_{step:08d}"


def list_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``root`` as (step, path), oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        m = _STEP_DIR.match(p.name)
        if m and (p / STATE).is_file() and (p / TENSORS).is_file():
            out.append((int(m.group(1)), p))
    return sorted(out)


def latest_checkpoint(root: str | Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1][1] if found else None


def save_checkpoint(root: str | Path, step: int, state: dict, keep_last: int | None = None) -> Path:
    """Write the nested ``state`` as checkpoint ``step`` under ``root`` atomically; prune to ``keep_last``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    tree = flatten_state(state, "s", tensors)
    final = step_dir(root, step)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=root))
    try:
        save_file(tensors, str(tmp / TENSORS), metadata={"format": "relic-checkpoint-1"})
        write_json_atomic(tmp / STATE, {"format": "relic-checkpoint-1", "step": step, "tree": tree}, indent=None)
        _fsync_dir(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if keep_last is not None and keep_last > 0:
        for _, old in list_checkpoints(root)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | Path) -> tuple[int, dict]:
    """Read a checkpoint directory -> (step, nested state)."""
    path = Path(path)
    try:
        meta = json.loads((path / STATE).read_text(encoding="utf-8"))
        tensors = load_file(str(path / TENSORS))
    except FileNotFoundError:
        raise UserError("incomplete checkpoint (state.json or tensors.safetensors missing)", source=str(path)) from None
    except (ValueError, SafetensorError, OSError) as e:
        raise UserError(f"cannot read checkpoint ({e.__class__.__name__}: {e})", source=str(path)) from None
    if meta.get("format") != "relic-checkpoint-1":
        raise UserError(f"unknown checkpoint format {meta.get('format')!r}", source=str(path / STATE))
    return int(meta["step"]), unflatten_state(meta["tree"], tensors)
