"""``actions.json``: per-frame 13-D actions with the clip's mean displacement d̄.

Schema: ``{"names": [13 names], "actions": [[13 floats] per frame], "mean_displacement": d̄, "fps": fps}``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from relic.camera.actions import ACTION_NAMES, NUM_ACTIONS
from relic.errors import UserError
from relic.fileio import write_json_atomic


def write_actions_json(path: str | Path, actions: np.ndarray, mean_displacement: float, fps: float) -> None:
    """Write actions (T, 13) atomically."""
    write_json_atomic(path, {"names": list(ACTION_NAMES), "actions": np.asarray(actions).tolist(),
                             "mean_displacement": float(mean_displacement), "fps": float(fps)}, indent=None)


def read_actions_json(path: str | Path) -> tuple[np.ndarray, float, float]:
    """Read and validate ``actions.json`` -> (actions (T, 13) float64, d̄, fps)."""
    src = str(path)
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=float)
    except FileNotFoundError:
        raise UserError("file not found", source=src) from None
    except json.JSONDecodeError as e:
        raise UserError(f"line {e.lineno}: malformed JSON ({e.msg})", source=src) from None
    if not isinstance(obj, dict) or "actions" not in obj:
        raise UserError("expected an object with an 'actions' list", source=src)
    names = obj.get("names", list(ACTION_NAMES))
    if list(names) != list(ACTION_NAMES):
        raise UserError(f"'names' must be the 13 action names in order: {', '.join(ACTION_NAMES)}", source=src)
    rows = obj["actions"]
    if not isinstance(rows, list) or len(rows) < 2:
        raise UserError("need at least 2 frames of actions", source=src)
    out = np.zeros((len(rows), NUM_ACTIONS))
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != NUM_ACTIONS:
            raise UserError(f"frame {i}: expected {NUM_ACTIONS} numbers", source=src)
        for j, v in enumerate(row):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise UserError(f"frame {i}: {ACTION_NAMES[j]} is not a finite number", source=src)
            if v < 0:
                raise UserError(f"frame {i}: {ACTION_NAMES[j]} is negative", source=src)
            out[i, j] = v
    d_bar = obj.get("mean_displacement", 1.0)
    fps = obj.get("fps", 16.0)
    for key, v in (("mean_displacement", d_bar), ("fps", fps)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise UserError(f"'{key}' must be a positive number", source=src)
    return out, float(d_bar), float(fps)
