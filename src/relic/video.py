"""Video I/O through PyAV: H.264 yuv420p mp4 writing (atomic) and decoding to uint8 (f h w c).

Frames are always uint8 RGB arrays shaped (f, h, w, 3). H.264 with yuv420p needs even width and height;
odd sizes are rejected with a clear error rather than silently cropped.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from relic.errors import UserError
from relic.fileio import atomic_path


class Mp4Writer:
    """Incremental H.264 (yuv420p) mp4 writer. Use as a context manager; the file appears only on success.

    Example::

        with Mp4Writer("out.mp4", fps=16) as w:
            w.write(frames)          # (f, h, w, 3) uint8, any number of calls
    """

    def __init__(self, path: str | Path, fps: float = 16.0, crf: int = 18, preset: str = "veryfast"):
        self.path = Path(path)
        self.fps = fps
        self.crf = crf
        self.preset = preset
        self._ctx = None
        self._container = None
        self._stream = None
        self.frames_written = 0

    def __enter__(self) -> "Mp4Writer":
        import av

        self._ctx = atomic_path(self.path, suffix=".mp4")
        tmp = self._ctx.__enter__()
        self._container = av.open(str(tmp), mode="w", format="mp4")
        self._stream = self._container.add_stream("libx264", rate=Fraction(self.fps).limit_denominator(1000))
        self._stream.pix_fmt = "yuv420p"
        # One encoder thread: libx264's threaded encoders (slice threads here) made the same frames encode to
        # different bitstreams from run to run under load (PSNR ~45 dB apart), so a re-rendered dataset was not
        # byte-identical and the curation filter's verdicts moved; at these sizes one thread is as fast.
        self._stream.options = {"crf": str(self.crf), "preset": self.preset, "threads": "1"}
        return self

    def write(self, frames: np.ndarray) -> None:
        """Append frames (f, h, w, 3) or one frame (h, w, 3), uint8 RGB."""
        import av

        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 (f, h, w, 3), got {frames.dtype} {frames.shape}")
        h, w = frames.shape[1:3]
        if self.frames_written == 0:
            if h % 2 or w % 2:
                raise UserError(f"H.264 yuv420p needs even frame sizes, got {w}x{h}")
            self._stream.width, self._stream.height = w, h
        elif (h, w) != (self._stream.height, self._stream.width):
            raise ValueError(f"frame size changed from {self._stream.width}x{self._stream.height} to {w}x{h}")
        for f in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            for packet in self._stream.encode(vf):
                self._container.mux(packet)
            self.frames_written += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                if self.frames_written == 0:
                    raise ValueError("no frames were written")
                for packet in self._stream.encode():
                    self._container.mux(packet)
            self._container.close()
        except BaseException as e:
            self._ctx.__exit__(type(e), e, e.__traceback__)
            raise
        self._ctx.__exit__(exc_type, exc, tb)


def write_mp4(path: str | Path, frames: np.ndarray | Iterable[np.ndarray], fps: float = 16.0, crf: int = 18) -> None:
    """Write uint8 frames (f, h, w, 3) to an H.264 yuv420p mp4, atomically."""
    with Mp4Writer(path, fps=fps, crf=crf) as w:
        if isinstance(frames, np.ndarray):
            w.write(frames)
        else:
            for f in frames:
                w.write(f)


def iter_video(path: str | Path) -> Iterator[np.ndarray]:
    """Decode a video file frame by frame -> uint8 (h, w, 3) RGB arrays."""
    import av

    path = Path(path)
    if not path.is_file():
        raise UserError("video file not found", source=str(path))
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
    except av.error.FFmpegError as e:  # type: ignore[attr-defined]
        raise UserError(f"cannot decode video ({e.__class__.__name__})", source=str(path)) from None


def read_video(path: str | Path) -> np.ndarray:
    """Decode a whole video -> uint8 (f, h, w, 3)."""
    frames = list(iter_video(path))
    if not frames:
        raise UserError("video has no frames", source=str(path))
    return np.stack(frames)
