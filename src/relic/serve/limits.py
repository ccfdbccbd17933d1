"""Limits and knobs of the play server (:class:`ServeConfig`), one typed dataclass."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServeConfig:
    """Limits of ``relic play``. Every value is a hard cap enforced by :mod:`relic.serve.app`.

    Attributes:
        max_sessions: concurrent streaming sessions (one generation worker thread each); extra clients get a
            ``busy`` message and the socket is closed with code 1013 (try again later).
        max_upload_bytes: largest accepted image upload (HTTP 413 above it).
        max_image_pixels: largest accepted image area (width × height), checked from the header before
            the pixels are decoded (decompression bombs).
        max_prompt_chars: longest prompt.
        max_message_bytes: longest client WebSocket message we parse; longer ones get an ``error`` reply.
        ws_max_size: the WebSocket protocol's own frame limit (uvicorn closes with 1009 above it).
        max_inflight_frames: frames sent but not yet acknowledged by the client; while this many are in
            flight, newer frames replace older unsent ones (latest-frame-wins, no queue).
        jpeg_quality: quality of the JPEG frames (1–100).
        start_timeout_s: a socket that has not sent ``start`` after this long is closed (frees its slot).
        max_record_seconds: a recording stops by itself after this many seconds of video.
        max_uploads: uploaded images kept in memory (oldest dropped first).
        max_recordings: finished recordings kept for download (oldest deleted first).
    """

    max_sessions: int = 1
    max_upload_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    max_prompt_chars: int = 500
    max_message_bytes: int = 4096
    ws_max_size: int = 1024 * 1024
    max_inflight_frames: int = 2
    jpeg_quality: int = 85
    start_timeout_s: float = 60.0
    max_record_seconds: float = 600.0
    max_uploads: int = 32
    max_recordings: int = 8
