"""The WebSocket protocol of ``relic play``: validated client messages and binary frame packing.

Client -> server: small JSON text messages (at most ``ServeConfig.max_message_bytes``)::

    {"type": "start", "scene": NAME | "upload": ID, "prompt": TEXT, "seed": INT?}
    {"type": "input", "keys": ["w", "left", ...], "dx": PX, "dy": PX, "gamma": G, "t": CLIENT_MS}
    {"type": "ack", "n": FRAME_INDEX}          # a frame was shown (flow control for latest-frame-wins)
    {"type": "reset"}                          # back to the start image
    {"type": "record", "on": BOOL}             # start / stop recording; stopping yields a download URL

Server -> client: JSON text messages ``hello``, ``started``, ``busy``, ``error``, ``recording``, and frames
as binary messages: ``uint32 little-endian N | N bytes of JSON header | JPEG bytes``. The header carries
``n`` (frame index since start), ``t`` (the echoed client timestamp of the newest input that the frame's
block used, or null), ``mem`` (memory tokens in use), ``pose`` ([x, y, heading_deg] top-down, Z-up
world) and ``gamma``.

Every malformed, unknown or oversized message raises :class:`ProtocolError`, whose message is sent back as
``{"type": "error", "code": ..., "message": ...}``; the connection stays open.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field

from relic.camera.controls import KEY_ALIASES, KEY_TO_ACTION

GAMMA_RANGE = (0.1, 4.0)
MAX_KEYS = 16
MAX_MOUSE_PX = 10_000.0


class ProtocolError(ValueError):
    """A client message we refuse; ``code`` is machine-readable, the message human-readable."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)

    def reply(self) -> dict:
        return {"type": "error", "code": self.code, "message": str(self)}


@dataclass
class Start:
    prompt: str
    scene: str | None = None
    upload: str | None = None
    seed: int | None = None


@dataclass
class Input:
    keys: tuple[str, ...] = ()
    dx: float = 0.0
    dy: float = 0.0
    gamma: float | None = None
    t: float | None = None


@dataclass
class Ack:
    n: int


@dataclass
class Reset:
    pass


@dataclass
class Record:
    on: bool


@dataclass
class Limits:
    max_message_bytes: int = 4096
    max_prompt_chars: int = 500
    allowed_keys: frozenset = field(default_factory=lambda: frozenset(KEY_TO_ACTION) | frozenset(KEY_ALIASES))


def _number(d: dict, name: str, default=None, lo: float = -math.inf, hi: float = math.inf):
    v = d.get(name, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ProtocolError("bad_field", f"'{name}' must be a finite number")
    if not lo <= v <= hi:
        raise ProtocolError("bad_field", f"'{name}' must be in [{lo:g}, {hi:g}], got {v:g}")
    return float(v)


def _check_fields(d: dict, allowed: set[str]) -> None:
    unknown = sorted(set(d) - allowed - {"type"})
    if unknown:
        raise ProtocolError("unknown_field", f"unknown field(s) for '{d['type']}': {', '.join(unknown)[:200]}")


def parse_message(text: str | bytes | None, limits: Limits = Limits()):
    """One client message -> :class:`Start` | :class:`Input` | :class:`Ack` | :class:`Reset` | :class:`Record`.

    Raises:
        ProtocolError: binary, oversized, not JSON, not an object, unknown type, unknown or bad fields.
    """
    if text is None:
        raise ProtocolError("binary", "binary messages are not accepted; send JSON text")
    if isinstance(text, bytes):
        raise ProtocolError("binary", "binary messages are not accepted; send JSON text")
    if len(text.encode("utf-8", "surrogatepass")) > limits.max_message_bytes:
        raise ProtocolError("too_large", f"message longer than {limits.max_message_bytes} bytes")
    try:
        d = json.loads(text)
    except (ValueError, RecursionError):
        raise ProtocolError("bad_json", "message is not valid JSON") from None
    if not isinstance(d, dict):
        raise ProtocolError("bad_message", "message must be a JSON object")
    kind = d.get("type")
    if kind == "input":
        _check_fields(d, {"keys", "dx", "dy", "gamma", "t"})
        keys = d.get("keys", [])
        if not isinstance(keys, list) or len(keys) > MAX_KEYS:
            raise ProtocolError("bad_field", f"'keys' must be a list of at most {MAX_KEYS} key names")
        for k in keys:
            if not isinstance(k, str) or k.lower() not in limits.allowed_keys:
                raise ProtocolError("bad_key", f"unknown key {str(k)[:20]!r}; keys: {', '.join(KEY_TO_ACTION)}")
        return Input(keys=tuple(k.lower() for k in keys),
                     dx=_number(d, "dx", 0.0, -MAX_MOUSE_PX, MAX_MOUSE_PX),
                     dy=_number(d, "dy", 0.0, -MAX_MOUSE_PX, MAX_MOUSE_PX),
                     gamma=_number(d, "gamma", None, *GAMMA_RANGE),
                     t=_number(d, "t", None))
    if kind == "ack":
        _check_fields(d, {"n"})
        n = d.get("n")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ProtocolError("bad_field", "'n' must be a non-negative integer frame index")
        return Ack(n)
    if kind == "start":
        _check_fields(d, {"scene", "upload", "prompt", "seed"})
        prompt = d.get("prompt", "")
        if not isinstance(prompt, str):
            raise ProtocolError("bad_field", "'prompt' must be a string")
        if len(prompt) > limits.max_prompt_chars:
            raise ProtocolError("prompt_too_long", f"prompt longer than {limits.max_prompt_chars} characters")
        scene, upload = d.get("scene"), d.get("upload")
        if (scene is None) == (upload is None):
            raise ProtocolError("bad_field", "give exactly one of 'scene' or 'upload'")
        for name, v in (("scene", scene), ("upload", upload)):
            if v is not None and (not isinstance(v, str) or not 0 < len(v) <= 64):
                raise ProtocolError("bad_field", f"'{name}' must be a short string")
        seed = d.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31):
            raise ProtocolError("bad_field", "'seed' must be an integer in [0, 2^31)")
        return Start(prompt=prompt.strip(), scene=scene, upload=upload, seed=seed)
    if kind == "reset":
        _check_fields(d, set())
        return Reset()
    if kind == "record":
        _check_fields(d, {"on"})
        if not isinstance(d.get("on"), bool):
            raise ProtocolError("bad_field", "'on' must be true or false")
        return Record(d["on"])
    raise ProtocolError("unknown_type", f"unknown message type {str(kind)[:40]!r}")


def pack_frame(header: dict, jpeg: bytes) -> bytes:
    """Frame message: uint32 LE header length, JSON header, JPEG bytes."""
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<I", len(h)) + h + jpeg


def unpack_frame(data: bytes) -> tuple[dict, bytes]:
    """Inverse of :func:`pack_frame` (used by tests and Python clients)."""
    (n,) = struct.unpack_from("<I", data, 0)
    return json.loads(data[4:4 + n]), data[4 + n:]
