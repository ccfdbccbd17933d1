"""Clip readers: the project's clip directory (docs/formats.md) and RealEstate10K (frames + camera txt).

A :class:`Clip` holds the camera trajectory, caption, revisits and metadata of one clip and decodes its
frames on demand as uint8 (f h w c) RGB. Frames come from an mp4 (decoded with PyAV through
:mod:`relic.video`) or from a folder of images (PNG/JPEG, read with Pillow).

Layouts accepted by :func:`list_clips`:

* a clip directory (``meta.json`` present: it is written last, so its absence means "incomplete");
* a directory of clip directories (incomplete ones are skipped);
* RealEstate10K: ``<id>.txt`` camera files next to ``<id>.mp4`` or an ``<id>/`` folder of frames.

Every problem with the input is a :class:`UserError` naming the file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from relic.camera.io import read_cameras_json, read_re10k, write_cameras_json
from relic.camera.trajectory import Trajectory
from relic.errors import UserError
from relic.fileio import write_json_atomic, write_text_atomic

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def _load_json(path: Path, default=None):
    if not path.exists():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"line {e.lineno}: malformed JSON ({e.msg})", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read file ({e.__class__.__name__})", source=str(path)) from None


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"cannot read image ({e.__class__.__name__})", source=str(path)) from None


def _decode_video(path: Path, stop: int | None) -> np.ndarray:
    from relic.video import iter_video

    out = []
    for frame in iter_video(path):
        out.append(frame)
        if stop is not None and len(out) >= stop:
            break
    if not out:
        raise UserError("video has no frames", source=str(path))
    return np.stack(out)


@dataclass
class Clip:
    """One clip: poses, caption and (lazily decoded) frames.

    Attributes:
        path: the clip directory (or the RealEstate10K camera txt).
        traj: camera poses, one per frame.
        caption: the caption as stored (use :func:`relic.data.captions.suppress_motion` before training).
        revisits: ``[{"frame": j, "of": i, "kind": ...}, ...]`` from ``revisits.json`` (empty if absent).
        meta: ``meta.json`` contents (empty for RealEstate10K).
        video: the mp4 holding the frames, or None.
        images: image files holding the frames (one per pose), or None.
        frame_index: for an mp4 with more frames than poses (RealEstate10K), the video frame of each pose.
    """

    path: Path
    traj: Trajectory
    caption: str = ""
    revisits: list = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    video: Path | None = None
    images: list[Path] | None = None
    frame_index: np.ndarray | None = None

    @property
    def name(self) -> str:
        return self.path.stem if self.path.is_file() else self.path.name

    def __len__(self) -> int:
        return len(self.traj)

    @property
    def depth_path(self) -> Path | None:
        p = self.path / "depth.npz" if self.path.is_dir() else None
        return p if p is not None and p.exists() else None

    def frames(self, stop: int | None = None) -> np.ndarray:
        """Decode frames [0, stop) -> uint8 (f h w c). Raises UserError if the source has too few frames."""
        n = len(self) if stop is None else min(stop, len(self))
        if self.images is not None:
            arr = np.stack([_read_image(p) for p in self.images[:n]])
        else:
            assert self.video is not None
            need = n if self.frame_index is None else int(self.frame_index[n - 1]) + 1
            arr = _decode_video(self.video, need)
            if self.frame_index is not None and len(arr) >= need:
                arr = arr[self.frame_index[:n]]
            if len(arr) < n:
                raise UserError(f"video has {len(arr)} frames but cameras list {len(self)}", source=str(self.video))
        if (arr.shape[2], arr.shape[1]) != (self.traj.width, self.traj.height):
            src = self.video if self.video is not None else self.images[0]
            raise UserError(f"frames are {arr.shape[2]}x{arr.shape[1]} but the cameras say "
                            f"{self.traj.width}x{self.traj.height}", source=str(src))
        return arr

    def depth(self) -> np.ndarray | None:
        """``depth.npz`` -> float32 (f h w) metres along the camera z axis, or None when absent."""
        p = self.depth_path
        if p is None:
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                d = np.asarray(z["depth"], dtype=np.float32)
        except (KeyError, ValueError, OSError) as e:
            raise UserError(f"cannot read 'depth' ({e.__class__.__name__})", source=str(p)) from None
        if d.ndim != 3 or d.shape[0] != len(self):
            raise UserError(f"depth must be (f h w) with f = {len(self)}, got {d.shape}", source=str(p))
        return d


def is_clip_dir(path: Path) -> bool:
    """A complete clip directory: ``meta.json`` (written last) and ``cameras.json`` exist."""
    return path.is_dir() and (path / "meta.json").is_file() and (path / "cameras.json").is_file()


def read_clip(path: str | Path) -> Clip:
    """Read a clip directory (docs/formats.md)."""
    path = Path(path)
    if not path.is_dir():
        raise UserError("clip directory not found", source=str(path))
    if not (path / "meta.json").is_file():
        raise UserError("incomplete clip (no meta.json)", source=str(path))
    traj = read_cameras_json(path / "cameras.json")
    meta = _load_json(path / "meta.json", {})
    if not isinstance(meta, dict):
        raise UserError("expected a JSON object", source=str(path / "meta.json"))
    rev = _load_json(path / "revisits.json", {"revisits": []})
    if not isinstance(rev, dict) or not isinstance(rev.get("revisits", []), list):
        raise UserError("expected {\"revisits\": [...]}", source=str(path / "revisits.json"))
    cap_path = path / "caption.txt"
    caption = cap_path.read_text(encoding="utf-8").strip() if cap_path.exists() else ""
    video = path / "video.mp4"
    images = None
    if not video.exists():
        folder = path / "frames"
        if not folder.is_dir():
            raise UserError("no video.mp4 (or frames/ folder)", source=str(path))
        images = _image_files(folder)
        if len(images) != len(traj):
            raise UserError(f"{len(images)} images but cameras list {len(traj)} frames", source=str(folder))
        video = None
    return Clip(path, traj, caption, rev.get("revisits", []), meta, video, images)


def _probe_size(frames: Path) -> tuple[int, int, float | None]:
    """(width, height, fps or None) of a video or image folder, from its first frame."""
    if frames.is_dir():
        files = _image_files(frames)
        if not files:
            raise UserError("no images in folder", source=str(frames))
        im = _read_image(files[0])
        return im.shape[1], im.shape[0], None
    import av

    if not frames.is_file():
        raise UserError("video file not found", source=str(frames))
    try:
        with av.open(str(frames)) as c:
            s = c.streams.video[0]
            rate = float(s.average_rate) if s.average_rate else None
            return s.codec_context.width, s.codec_context.height, rate
    except (av.error.FFmpegError, IndexError) as e:  # type: ignore[attr-defined]
        raise UserError(f"cannot open video ({e.__class__.__name__})", source=str(frames)) from None


def read_re10k_clip(camera_txt: str | Path, frames: str | Path, caption: str = "") -> Clip:
    """A RealEstate10K clip: the camera txt plus its frames (an mp4 or a folder of images).

    Image folders must hold one image per camera line (sorted by name). For an mp4 with exactly one frame
    per camera line the mapping is 1:1; otherwise each camera's timestamp picks the video frame
    ``round((t - t0) * video_fps)``.
    """
    camera_txt, frames = Path(camera_txt), Path(frames)
    width, height, vfps = _probe_size(frames)
    traj = read_re10k(camera_txt, width=width, height=height)
    clip = Clip(camera_txt, traj, caption)
    if frames.is_dir():
        images = _image_files(frames)
        if len(images) != len(traj):
            raise UserError(f"{len(images)} images but {camera_txt.name} lists {len(traj)} cameras", source=str(frames))
        clip.images = images
    else:
        clip.video = frames
        if vfps:
            idx = np.round((traj.t - traj.t[0]) * vfps).astype(np.int64)
            if not np.array_equal(idx, np.arange(len(traj))):
                clip.frame_index = idx
    return clip


def list_clips(root: str | Path) -> list[Clip]:
    """All complete clips under ``root`` (see module docstring), sorted by name."""
    root = Path(root)
    if not root.exists():
        raise UserError("directory not found", source=str(root))
    if is_clip_dir(root):
        return [read_clip(root)]
    if not root.is_dir():
        raise UserError("not a directory", source=str(root))
    clips: list[Clip] = []
    for p in sorted(root.iterdir()):
        if p.name.startswith("."):
            continue
        if is_clip_dir(p):
            clips.append(read_clip(p))
        elif p.suffix == ".txt" and p.is_file():
            for frames in (p.with_suffix(".mp4"), p.with_suffix("")):
                if frames.exists():
                    cap = p.with_suffix(".caption")
                    clips.append(read_re10k_clip(p, frames, cap.read_text(encoding="utf-8").strip()
                                                 if cap.exists() else ""))
                    break
    return clips


def write_clip(path: str | Path, frames: np.ndarray, traj: Trajectory, caption: str = "",
               revisits: list | None = None, meta: dict | None = None, depth: np.ndarray | None = None) -> Path:
    """Write a clip directory atomically: built in a temporary sibling, ``meta.json`` last, then renamed.

    Args:
        frames: uint8 (f h w c) with f = len(traj).
        depth: optional float (f h w) metres.
    """
    from relic.video import write_mp4

    path = Path(path)
    frames = np.asarray(frames)
    if frames.shape[0] != len(traj):
        raise ValueError(f"{frames.shape[0]} frames but {len(traj)} poses")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        write_mp4(tmp / "video.mp4", frames, fps=traj.fps)
        write_cameras_json(tmp / "cameras.json", traj)
        write_text_atomic(tmp / "caption.txt", caption.strip() + "\n")
        write_json_atomic(tmp / "revisits.json", {"revisits": revisits or []})
        if depth is not None:
            np.savez_compressed(tmp / "depth.npz", depth=np.asarray(depth, dtype=np.float16))
        write_json_atomic(tmp / "meta.json", meta or {})
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; a clip directory is an ordinary directory
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
