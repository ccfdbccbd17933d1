"""Rendering clips and writing them in the project's clip format (docs/formats.md).

Python API (used by the CLI, the data pipeline and tests)::

    from relic.world import render_clip, write_clip

    clip = render_clip(seed=7, seconds=4, size=128, fps=16, defects=("jitter", "frozen"), depth=True)
    clip.frames       # uint8 (f h w 3), row 0 at the top
    clip.trajectory   # relic.camera.Trajectory: R (f 3 3) world-to-camera, P (f 3), intrinsics, fps
    clip.caption      # one line from the scene description, never about camera motion
    clip.revisits     # [{"frame": j, "of": i, "kind": "turn_back|return|loop", "distance_m", "angle_deg"}]
    clip.depth        # float32 (f h w) metres along camera z, or None
    clip.meta         # what goes to meta.json: seed, family, generator options, defects injected
    write_clip("out/clip_000007", clip)            # atomic: temp dir, then rename; meta.json written last
    write_clip("out/clip_000008", seed=8, seconds=2, size=(224, 128))   # render and write in one call

``size`` is an int (square) or (width, height); both must be even (H.264 yuv420p). The same seed gives the
same clip on a given machine. Defects: see :mod:`relic.world.defects`.

:func:`render_dataset` writes ``clip_000000 …`` under a directory with a process pool, skipping complete
clips (resumable) and never leaving half-written ones.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from relic.camera.trajectory import Trajectory
from relic.world.defects import (IMAGE_DEFECTS, POSE_DEFECTS, apply_image_defect, apply_pose_defect,
                                 check_defects)
from relic.world.operator import Operator, OperatorConfig, states_to_trajectory
from relic.world.scenes import make_scene

FORMAT_VERSION = 1
_RENDERERS: dict = {}


@dataclass
class Clip:
    """A rendered clip; see the module docstring."""

    frames: np.ndarray
    trajectory: Trajectory
    caption: str
    revisits: list[dict]
    depth: np.ndarray | None
    meta: dict
    labels: list[str]


def parse_size(size) -> tuple[int, int]:
    """int, "128", "224x128" or (w, h) -> (width, height); raises ValueError when not positive and even."""
    if isinstance(size, str):
        parts = size.lower().split("x")
        if len(parts) not in (1, 2) or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"size must look like 128 or 224x128, got {size!r}")
        size = tuple(int(p) for p in parts) if len(parts) == 2 else int(parts[0])
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    w, h = (int(v) for v in size)
    if w < 8 or h < 8 or w % 2 or h % 2:
        raise ValueError(f"size must be even and at least 8 (H.264 yuv420p), got {w}x{h}")
    return w, h


def get_renderer(width: int, height: int):
    """A cached :class:`relic.world.renderer.Renderer` of this size for this process."""
    from relic.world.renderer import Renderer

    key = (width, height)
    if key not in _RENDERERS:
        _RENDERERS[key] = Renderer(width, height)
    return _RENDERERS[key]


def render_clip(seed: int, seconds: float = 4.0, size=128, fps: float = 16.0, defects=(), family: str | None = None,
                depth: bool = False, operator: OperatorConfig = OperatorConfig(), renderer=None) -> Clip:
    """Render one clip of the scene of ``seed`` flown by the simulated operator."""
    width, height = parse_size(size)
    defects = check_defects(defects)
    n = max(2, int(round(seconds * fps)))
    scene = make_scene(seed, family)
    path = Operator(scene, np.random.default_rng(np.random.SeedSequence([int(seed), 1])), fps, operator).fly(n)
    states = path.states.copy()
    drng = np.random.default_rng(np.random.SeedSequence([int(seed), 2]))
    records = [apply_pose_defect(d, states, fps, drng, scene.clearance) for d in defects if d in POSE_DEFECTS]
    traj = states_to_trajectory(states, fps, width, height, operator.fov_deg).validate(f"world clip seed {seed}")
    r = renderer or get_renderer(width, height)
    r.set_scene(scene)
    if depth:
        frames, dep = r.render_many(traj.K, traj.R, traj.P, depth=True)
    else:
        frames, dep = r.render_many(traj.K, traj.R, traj.P), None
    records += [apply_image_defect(d, frames, fps, drng) for d in defects if d in IMAGE_DEFECTS]
    # a revisit is only claimed where no pose defect touched its frames
    bad = np.zeros(n, bool)
    for rec in records:
        if rec["kind"] in POSE_DEFECTS and rec["kind"] != "fast_pan":
            bad[rec["frames"][0]:rec["frames"][1] + 1] = True
        if rec["kind"] == "fast_pan":
            bad[rec["frames"][0]:rec["frames"][1] + 1] = True
    revisits = [rv.to_json(traj) for rv in path.revisits if not (bad[rv.frame] or bad[rv.of])]
    meta = {
        "format_version": FORMAT_VERSION, "seed": int(seed), "family": scene.family, "caption": scene.caption,
        "scene": scene.description,
        "landmarks": [{"name": lm.name, "position": list(lm.position)} for lm in scene.landmarks],
        "generator": {"seconds": float(seconds), "fps": float(fps), "width": width, "height": height,
                      "frames": n, "depth": bool(depth), "operator": dataclasses.asdict(operator)},
        "defects": records,
    }
    return Clip(frames, traj, scene.caption, revisits, dep, meta, path.labels)


def is_complete(clip_dir: str | Path) -> bool:
    """A clip directory is complete when its meta.json exists (written last)."""
    return (Path(clip_dir) / "meta.json").is_file()


def write_clip(clip_dir: str | Path, clip: Clip | None = None, **render_kwargs) -> Path:
    """Write ``clip`` (or render one from ``render_kwargs``) to ``clip_dir`` atomically; returns the path.

    Files: video.mp4, cameras.json, caption.txt, revisits.json, depth.npz (when the clip has depth) and
    meta.json last. The directory is built as a temporary sibling and renamed into place.
    """
    from relic.data.clips import write_clip as write_clip_dir

    if clip is None:
        clip = render_clip(**render_kwargs)
    return write_clip_dir(clip_dir, clip.frames, clip.trajectory, clip.caption, clip.revisits, clip.meta,
                          clip.depth)


def clip_seed(dataset_seed: int, index: int) -> int:
    """The scene/operator seed of clip ``index`` of a dataset rendered with ``dataset_seed``."""
    return int(np.random.SeedSequence([int(dataset_seed), int(index)]).generate_state(1)[0])


def _work(job: tuple) -> str:
    out, index, seed, seconds, size, fps, depth, operator = job
    d = Path(out) / f"clip_{index:06d}"
    if not is_complete(d):
        write_clip(d, seed=seed, seconds=seconds, size=size, fps=fps, depth=depth, operator=operator)
    return d.name


def render_dataset(out: str | Path, clips: int, seconds: float, size=128, fps: float = 16.0, seed: int = 0,
                   workers: int = 1, depth: bool = False, progress: bool = True,
                   operator: OperatorConfig = OperatorConfig()) -> list[Path]:
    """Render clips ``clip_000000 …`` under ``out``; complete ones are skipped, stale temp dirs removed.
    Every clip is flown by ``operator`` (recorded in its meta.json under ``generator.operator``)."""
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".clip_*.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    size = parse_size(size)
    jobs = [(str(out), k, clip_seed(seed, k), seconds, size, fps, depth, operator) for k in range(clips)
            if not is_complete(out / f"clip_{k:06d}")]
    bar = tqdm(total=clips, initial=clips - len(jobs), unit="clip", disable=not progress, desc="world render")
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            _work(job)
            bar.update(1)
    else:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            for _ in pool.imap_unordered(_work, jobs):
                bar.update(1)
    bar.close()
    return [out / f"clip_{k:06d}" for k in range(clips)]


def read_meta(clip_dir: str | Path) -> dict:
    return json.loads((Path(clip_dir) / "meta.json").read_text())
