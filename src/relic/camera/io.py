"""Readers and writers for camera trajectories.

Formats
-------
* **clip JSON** (``cameras.json``, relic's own)::

    {"width": 128, "height": 128, "fps": 16, "intrinsics": [fx, fy, cx, cy],        # pixels
     "frames": [{"t": 0.0, "R_w2c": [[...], [...], [...]], "position": [x, y, z]}, ...]}

* **RealEstate10K** camera txt: a URL line, then one line per frame with 19 numbers:
  ``timestamp fx fy cx cy 0 0`` followed by the 3×4 row-major world-to-camera matrix (OpenCV convention).
  Timestamps are integer microseconds, intrinsics are normalized by the image width (fx, cx) and height
  (fy, cy). Image size is not in the file; pass it (default 640×360).
* **Unreal Engine export** (JSON or CSV): per frame a time in seconds, a location in **centimetres** and a
  rotator (pitch, yaw, roll) in degrees, in UE's left-handed, Z-up world (X forward, Y right)::

    {"fps": 30, "width": 1280, "height": 720, "fov_deg": 90,
     "frames": [{"t": 0.0, "location": [x, y, z], "rotation": [pitch, yaw, roll]}, ...]}

  or CSV with the header ``t,x,y,z,pitch,yaw,roll`` (then fps/size/fov use the defaults).
  Conversion to relic's world (right-handed, metres, Z up): ``(x, y, z)_relic = (x, −y, z)_UE / 100``.
  The camera looks along the rotator's forward axis, its right is UE's right axis and its down is minus
  UE's up axis, each with y negated. So yaw +90° turns the camera to the right (towards UE's +Y), and
  pitch +90° looks straight up.

Every reader validates the trajectory (:meth:`Trajectory.validate`) and raises :class:`UserError` naming the
file and the line or frame.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from relic.camera.geometry import ue_basis
from relic.camera.trajectory import Trajectory
from relic.errors import UserError
from relic.fileio import write_json_atomic, write_text_atomic

_UE_FLIP = np.array([1.0, -1.0, 1.0])


def _read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError("file not found", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read file ({e.__class__.__name__})", source=str(path)) from None


def _load_json(path: str | Path) -> object:
    try:
        return json.loads(_read_text(path), parse_constant=lambda c: float(c))
    except json.JSONDecodeError as e:
        raise UserError(f"line {e.lineno}: malformed JSON ({e.msg})", source=str(path)) from None


def _num(x: object, where: str, src: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise UserError(f"{where}: expected a number, got {x!r}", source=src)
    return float(x)


# --- clip JSON -------------------------------------------------------------------------------------------

def trajectory_to_json(traj: Trajectory) -> dict:
    """Trajectory -> the clip JSON dict."""
    return {
        "width": int(traj.width), "height": int(traj.height), "fps": float(traj.fps),
        "intrinsics": [float(v) for v in traj.intrinsics],
        "frames": [{"t": float(traj.t[i]), "R_w2c": traj.R[i].tolist(), "position": traj.P[i].tolist()}
                   for i in range(len(traj))],
    }


def write_cameras_json(path: str | Path, traj: Trajectory) -> None:
    """Write ``cameras.json`` atomically."""
    write_json_atomic(path, trajectory_to_json(traj), indent=None)


def trajectory_from_json(obj: object, source: str = "<json>") -> Trajectory:
    """Parse and validate a clip JSON dict."""
    if not isinstance(obj, dict):
        raise UserError("expected a JSON object", source=source)
    for key in ("width", "height", "fps", "intrinsics", "frames"):
        if key not in obj:
            raise UserError(f"missing field {key!r}", source=source)
    frames = obj["frames"]
    if not isinstance(frames, list):
        raise UserError("field 'frames' must be a list", source=source)
    intr = obj["intrinsics"]
    if not isinstance(intr, list) or len(intr) != 4:
        raise UserError("field 'intrinsics' must be [fx, fy, cx, cy]", source=source)
    intr = [_num(v, "intrinsics", source) for v in intr]
    R, P, t = [], [], []
    for i, fr in enumerate(frames):
        if not isinstance(fr, dict) or not {"t", "R_w2c", "position"} <= fr.keys():
            raise UserError(f"frame {i}: needs 't', 'R_w2c' and 'position'", source=source)
        try:
            Ri = np.array(fr["R_w2c"], dtype=np.float64)
            Pi = np.array(fr["position"], dtype=np.float64)
        except (TypeError, ValueError):
            raise UserError(f"frame {i}: R_w2c and position must be numbers", source=source) from None
        if Ri.shape != (3, 3) or Pi.shape != (3,):
            raise UserError(f"frame {i}: R_w2c must be 3x3 and position 3 numbers", source=source)
        R.append(Ri)
        P.append(Pi)
        t.append(_num(fr["t"], f"frame {i}: t", source))
    if not frames:
        raise UserError("clip has 0 frames; at least 2 are needed", source=source)
    traj = Trajectory(np.stack(R), np.stack(P), np.array(t), _num(obj["fps"], "fps", source),
                      int(_num(obj["width"], "width", source)), int(_num(obj["height"], "height", source)),
                      tuple(intr))
    return traj.validate(source)


def read_cameras_json(path: str | Path) -> Trajectory:
    """Read and validate a ``cameras.json`` file."""
    return trajectory_from_json(_load_json(path), source=str(path))


# --- RealEstate10K ---------------------------------------------------------------------------------------

def read_re10k(path: str | Path, width: int = 640, height: int = 360, fps: float | None = None) -> Trajectory:
    """Read a RealEstate10K camera txt. ``fps`` defaults to the one implied by the timestamps."""
    src = str(path)
    lines = _read_text(path).splitlines()
    if not lines:
        raise UserError("empty file", source=src)
    R, P, t, intr = [], [], [], None
    for ln, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 19:
            raise UserError(f"line {ln}: expected 19 numbers, got {len(parts)}", source=src)
        try:
            vals = [float(x) for x in parts]
        except ValueError:
            raise UserError(f"line {ln}: not a number", source=src) from None
        if not all(math.isfinite(v) for v in vals):
            raise UserError(f"line {ln}: NaN or infinite value", source=src)
        w2c = np.array(vals[7:19]).reshape(3, 4)
        Ri = w2c[:, :3]
        R.append(Ri)
        P.append(-Ri.T @ w2c[:, 3])
        t.append(vals[0] / 1e6)
        if intr is None:
            intr = (vals[1] * width, vals[2] * height, vals[3] * width, vals[4] * height)
    if len(R) < 1:
        raise UserError("clip has 0 frames; at least 2 are needed", source=src)
    t_arr = np.array(t)
    if fps is None:
        dt = np.diff(t_arr)
        fps = float(1.0 / np.median(dt)) if len(dt) and np.median(dt) > 0 else 30.0
    return Trajectory(np.stack(R), np.stack(P), t_arr, fps, width, height, intr).validate(src)


def write_re10k(path: str | Path, traj: Trajectory, url: str = "https://example.invalid/relic") -> None:
    """Write a RealEstate10K camera txt (timestamps in integer microseconds)."""
    fx, fy, cx, cy = traj.intrinsics
    out = io.StringIO()
    out.write(url + "\n")
    for i in range(len(traj)):
        w2c = np.concatenate([traj.R[i], (-traj.R[i] @ traj.P[i])[:, None]], 1)
        nums = [f"{int(round(traj.t[i] * 1e6))}", repr(fx / traj.width), repr(fy / traj.height),
                repr(cx / traj.width), repr(cy / traj.height), "0", "0"] + [repr(float(v)) for v in w2c.ravel()]
        out.write(" ".join(nums) + "\n")
    write_text_atomic(path, out.getvalue())


# --- Unreal Engine ---------------------------------------------------------------------------------------

def ue_to_pose(location_cm: np.ndarray, rotator_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UE locations (T, 3) in cm and rotators (T, 3) as (pitch, yaw, roll) degrees -> (R (T,3,3), P (T,3))."""
    loc = np.asarray(location_cm, dtype=np.float64)
    rot = np.asarray(rotator_deg, dtype=np.float64)
    fwd, right, up = ue_basis(rot[..., 0], rot[..., 1], rot[..., 2])
    R = np.stack([right * _UE_FLIP, -up * _UE_FLIP, fwd * _UE_FLIP], -2)
    return R, loc * _UE_FLIP / 100.0


def pose_to_ue(R: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`ue_to_pose`: (R, P) -> (location cm (T,3), rotator (pitch, yaw, roll) degrees (T,3))."""
    from relic.camera.geometry import ue_rotator_from_basis

    R = np.asarray(R, dtype=np.float64)
    right, down, fwd = R[..., 0, :] * _UE_FLIP, R[..., 1, :] * _UE_FLIP, R[..., 2, :] * _UE_FLIP
    pitch, yaw, roll = ue_rotator_from_basis(fwd, right, -down)
    return np.asarray(P) * _UE_FLIP * 100.0, np.stack([pitch, yaw, roll], -1)


def _fov_intrinsics(width: int, height: int, fov_deg: float) -> tuple[float, float, float, float]:
    f = (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)  # UE's FOV is horizontal
    return (f, f, width / 2.0, height / 2.0)


def read_ue(path: str | Path) -> Trajectory:
    """Read an Unreal Engine camera export (JSON or CSV, see module docstring)."""
    src = str(path)
    fps, width, height, fov = 30.0, 1280, 720, 90.0
    rows: list[tuple[float, list[float], list[float]]] = []
    if str(path).lower().endswith(".csv"):
        reader = csv.reader(io.StringIO(_read_text(path)))
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header] != ["t", "x", "y", "z", "pitch", "yaw", "roll"]:
            raise UserError("line 1: header must be t,x,y,z,pitch,yaw,roll", source=src)
        for ln, rec in enumerate(reader, start=2):
            if not rec:
                continue
            try:
                vals = [float(v) for v in rec]
            except ValueError:
                raise UserError(f"line {ln}: not a number", source=src) from None
            if len(vals) != 7:
                raise UserError(f"line {ln}: expected 7 values, got {len(vals)}", source=src)
            rows.append((vals[0], vals[1:4], vals[4:7]))
    else:
        obj = _load_json(path)
        if not isinstance(obj, dict) or not isinstance(obj.get("frames"), list):
            raise UserError("expected an object with a 'frames' list", source=src)
        fps = _num(obj.get("fps", fps), "fps", src)
        width = int(_num(obj.get("width", width), "width", src))
        height = int(_num(obj.get("height", height), "height", src))
        fov = _num(obj.get("fov_deg", fov), "fov_deg", src)
        for i, fr in enumerate(obj["frames"]):
            try:
                loc = [float(v) for v in fr["location"]]
                rot = [float(v) for v in fr["rotation"]]
                t = float(fr["t"])
            except (KeyError, TypeError, ValueError):
                raise UserError(f"frame {i}: needs numeric 't', 'location' [x,y,z] and 'rotation' "
                                f"[pitch,yaw,roll]", source=src) from None
            if len(loc) != 3 or len(rot) != 3:
                raise UserError(f"frame {i}: location and rotation need 3 numbers each", source=src)
            rows.append((t, loc, rot))
    if not rows:
        raise UserError("clip has 0 frames; at least 2 are needed", source=src)
    t = np.array([r[0] for r in rows])
    R, P = ue_to_pose(np.array([r[1] for r in rows]), np.array([r[2] for r in rows]))
    return Trajectory(R, P, t, fps, width, height, _fov_intrinsics(width, height, fov)).validate(src)


def write_ue(path: str | Path, traj: Trajectory, fov_deg: float | None = None) -> None:
    """Write an Unreal Engine export JSON (the inverse of :func:`read_ue`)."""
    loc, rot = pose_to_ue(traj.R, traj.P)
    if fov_deg is None:
        fov_deg = math.degrees(2 * math.atan((traj.width / 2.0) / traj.intrinsics[0]))
    write_json_atomic(path, {
        "fps": traj.fps, "width": traj.width, "height": traj.height, "fov_deg": fov_deg,
        "frames": [{"t": float(traj.t[i]), "location": loc[i].tolist(), "rotation": rot[i].tolist()}
                   for i in range(len(traj))]})


READERS = {"json": read_cameras_json, "re10k": read_re10k, "ue": read_ue}


def guess_format(path: str | Path) -> str:
    """'json' for .json files holding 'R_w2c', 'ue' for UE exports (.csv or JSON with 'location'), else 're10k'."""
    p = str(path).lower()
    if p.endswith(".csv"):
        return "ue"
    if p.endswith(".json"):
        text = _read_text(path)
        return "ue" if '"location"' in text and '"R_w2c"' not in text else "json"
    return "re10k"


def read_trajectory(path: str | Path, fmt: str | None = None) -> Trajectory:
    """Read any supported format (guessed from the file when ``fmt`` is None)."""
    fmt = fmt or guess_format(path)
    if fmt not in READERS:
        raise UserError(f"unknown camera format {fmt!r} (choose from {', '.join(READERS)})")
    return READERS[fmt](path)
