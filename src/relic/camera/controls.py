"""Interactive key map and the action-script mini-language.

Key map (one table, used by the web page, `relic generate` and the docs)::

    key          action           key      action
    W            dolly_in         ↑ (up)   tilt_up
    S            dolly_out        ↓ (down) tilt_down
    A            truck_left       ← (left) pan_left
    D            truck_right      → (right) pan_right
    E            pedestal_up      Z        roll_ccw
    Q            pedestal_down    X        roll_cw
    mouse dx > 0 pan_right        mouse dy > 0 (down) tilt_down

Held keys combine (W+D moves diagonally); pressing both keys of an opposite pair cancels them. Translation
keys give a magnitude of ``translation`` (1.0 = the typical step d̄), rotation keys ``rotation_deg``
degrees per frame, mouse motion ``mouse_deg_per_px`` degrees per pixel, capped at ``mouse_max_deg``.

Action scripts
--------------
A script is a whitespace-separated list of tokens ``ITEM[+ITEM...][*N | *Ts]``. An item is a key name from
the table (``w a s d e q up down left right z x``), an action name (``dolly_in``, ``pan_left``, …) or
``static``, optionally with a magnitude ``name:0.5``. Every action is one *video frame*: ``*N`` holds it for
N video frames (default 1), ``*Ts`` for T seconds (T × fps frames; it must come out a whole number of
frames). At the 16 FPS of every preset, ``w*16`` = ``w*1s`` = one second of dolly-in.
Example: ``"w*2s a+left*8 static*4 up*0.75s"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from relic.camera.actions import ACTION_INDEX, ACTION_NAMES, NUM_ACTIONS, STATIC

KEY_TO_ACTION: dict[str, str] = {
    "w": "dolly_in", "s": "dolly_out", "a": "truck_left", "d": "truck_right",
    "e": "pedestal_up", "q": "pedestal_down",
    "up": "tilt_up", "down": "tilt_down", "left": "pan_left", "right": "pan_right",
    "z": "roll_ccw", "x": "roll_cw",
}
# Browser KeyboardEvent.key / code names accepted for the same keys.
KEY_ALIASES: dict[str, str] = {
    "arrowup": "up", "arrowdown": "down", "arrowleft": "left", "arrowright": "right",
    "keyw": "w", "keya": "a", "keys": "s", "keyd": "d", "keye": "e", "keyq": "q", "keyz": "z", "keyx": "x",
}
_ROTATIONS = {"tilt_up", "tilt_down", "pan_left", "pan_right", "roll_cw", "roll_ccw"}
_OPPOSITE = {ACTION_NAMES[i]: ACTION_NAMES[i ^ 1] for i in range(12)}


@dataclass(frozen=True)
class KeyMap:
    """Magnitudes produced by keys and mouse (see module docstring)."""

    translation: float = 1.0
    rotation_deg: float = 2.0
    mouse_deg_per_px: float = 0.15
    mouse_max_deg: float = 6.0
    keys: dict[str, str] = field(default_factory=lambda: dict(KEY_TO_ACTION))

    def table(self) -> list[tuple[str, str]]:
        """(key, action name) rows for on-screen display."""
        return list(self.keys.items()) + [("mouse x", "pan"), ("mouse y", "tilt")]

    def magnitude(self, action: str) -> float:
        return self.rotation_deg if action in _ROTATIONS else self.translation

    def action_from_keys(self, held: dict[str, bool] | list[str] | set[str], mouse_dx: float = 0.0,
                         mouse_dy: float = 0.0) -> np.ndarray:
        """Held keys (+ mouse motion in pixels since the last frame) -> one (13,) action vector.

        Raises ValueError for an unknown key name.
        """
        names = [k for k, v in held.items() if v] if isinstance(held, dict) else list(held)
        a = np.zeros(NUM_ACTIONS)
        for k in names:
            key = KEY_ALIASES.get(k.lower(), k.lower())
            if key not in self.keys:
                raise ValueError(f"unknown key {k!r}")
            act = self.keys[key]
            a[ACTION_INDEX[act]] = self.magnitude(act)
        yaw = float(np.clip(mouse_dx * self.mouse_deg_per_px, -self.mouse_max_deg, self.mouse_max_deg))
        pitch = float(np.clip(-mouse_dy * self.mouse_deg_per_px, -self.mouse_max_deg, self.mouse_max_deg))
        a[ACTION_INDEX["pan_right"]] += max(yaw, 0.0)
        a[ACTION_INDEX["pan_left"]] += max(-yaw, 0.0)
        a[ACTION_INDEX["tilt_up"]] += max(pitch, 0.0)
        a[ACTION_INDEX["tilt_down"]] += max(-pitch, 0.0)
        return cancel_opposites(a)


def cancel_opposites(a: np.ndarray) -> np.ndarray:
    """Net out opposite pairs (so never both are active) and set ``static`` when nothing moves. (..., 13)."""
    a = np.array(a, dtype=np.float64)
    for i in range(0, 12, 2):
        net = a[..., i] - a[..., i + 1]
        a[..., i] = np.maximum(net, 0.0)
        a[..., i + 1] = np.maximum(-net, 0.0)
    a[..., STATIC] = (a[..., :STATIC] == 0).all(axis=-1).astype(np.float64)
    return a


class ActionScriptError(ValueError):
    """A bad token in an action script; the message names the token and its character position."""


_TOKEN = re.compile(r"\S+")
_ITEM = re.compile(r"^([a-z_]+)(?::([0-9]*\.?[0-9]+))?$")
_SECONDS = re.compile(r"^([0-9]*\.?[0-9]+)s$")

#: video frames per second of every preset (relic.config.RelicConfig.fps): what ``*Ts`` counts in by default
FPS = 16


def parse_action_script(script: str, keymap: KeyMap = KeyMap(), fps: int = FPS) -> np.ndarray:
    """Parse an action script (module docstring) into per-video-frame actions (N, 13) float64.

    ``fps`` (video frames per second) turns a repeat in seconds (``w*2s``) into frames.
    """
    frames: list[np.ndarray] = []
    for m in _TOKEN.finditer(script):
        tok, pos = m.group(0), m.start()
        body, _, rep = tok.partition("*")
        if rep:
            n = _repeat(rep, tok, pos, fps)
        else:
            n = 1
        a = np.zeros(NUM_ACTIONS)
        for item in body.split("+"):
            im = _ITEM.match(item.lower())
            name = im.group(1) if im else None
            act = keymap.keys.get(name, name) if name else None
            if act != "static" and act not in ACTION_INDEX:
                raise ActionScriptError(f"unknown action {item!r} in token {tok!r} at position {pos}")
            if act == "static":
                continue
            mag = float(im.group(2)) if im.group(2) else keymap.magnitude(act)
            a[ACTION_INDEX[act]] += mag
        frames.extend([cancel_opposites(a)] * n)
    if not frames:
        raise ActionScriptError("empty action script")
    return np.stack(frames)


def _repeat(rep: str, tok: str, pos: int, fps: int) -> int:
    """Video frames of a repeat ``N`` (frames) or ``Ts`` (seconds at ``fps``)."""
    sec = _SECONDS.match(rep)
    if sec:
        frames = float(sec.group(1)) * fps
        n = round(frames)
        if n < 1 or abs(frames - n) > 1e-6:
            raise ActionScriptError(f"{sec.group(1)} s in token {tok!r} at position {pos} is {frames:g} video "
                                    f"frames at {fps} FPS; it must be a whole number of frames, at least 1")
        return n
    if not rep.isdigit() or int(rep) < 1:
        raise ActionScriptError(f"bad repeat count in token {tok!r} at position {pos} (expected *N video "
                                f"frames or *Ts seconds, e.g. w*16 or w*1s)")
    return int(rep)


def opposite(action: str) -> str:
    """The opposite action's name (dolly_in <-> dolly_out, ...)."""
    return _OPPOSITE[action]
