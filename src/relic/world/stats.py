"""Dataset statistics like the paper's Figure 2: clip durations and the 13-DoF action distribution.

Actions come from Algorithm 1 (:func:`relic.camera.annotate`) on each clip's cameras.json, with display
thresholds (5% of the mean step, 0.1°/frame) so that numerical cross-talk does not count as motion.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from relic.camera import ACTION_NAMES, AnnotateConfig, annotate
from relic.camera.io import read_cameras_json
from relic.errors import UserError

STATS_ANNOTATE = AnnotateConfig(static_translation=0.05, static_rotation_deg=0.1)


def dataset_stats(root: str | Path) -> dict:
    """Scan complete clip directories under ``root`` -> {clips, total_seconds, durations, action_fraction}."""
    root = Path(root)
    if not root.is_dir():
        raise UserError("not a directory", source=str(root))
    clips = sorted(p for p in root.iterdir() if p.is_dir() and (p / "meta.json").is_file())
    if not clips:
        raise UserError("no complete clip directories (with meta.json) found", source=str(root))
    durations, counts, frames = [], np.zeros(len(ACTION_NAMES)), 0
    families: dict[str, int] = {}
    for c in clips:
        traj = read_cameras_json(c / "cameras.json")
        durations.append(len(traj) / traj.fps)
        a, _ = annotate(traj.R, traj.P, STATS_ANNOTATE)
        counts += (a[1:] > 0).sum(0)
        frames += len(a) - 1
        import json

        fam = json.loads((c / "meta.json").read_text()).get("family", "?")
        families[fam] = families.get(fam, 0) + 1
    return {"clips": len(clips), "total_seconds": float(sum(durations)), "durations": durations,
            "families": families,
            "action_fraction": {n: float(v / max(frames, 1)) for n, v in zip(ACTION_NAMES, counts)}}


def plot_stats(stats: dict, out: str | Path) -> None:
    """Two panels: duration histogram and the fraction of frames with each action active."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from relic.fileio import save_figure

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8))
    a1.hist(stats["durations"], bins=min(20, max(3, len(stats["durations"]))), color="#4a7bd0")
    a1.set_xlabel("clip duration (s)")
    a1.set_ylabel("clips")
    a1.set_title(f"{stats['clips']} clips, {stats['total_seconds'] / 60:.1f} min")
    names = list(stats["action_fraction"])
    a2.bar(range(len(names)), [stats["action_fraction"][n] for n in names], color="#d07a4a")
    a2.set_xticks(range(len(names)), [n.replace("_", " ") for n in names], rotation=60, ha="right")
    a2.set_ylabel("fraction of frames")
    a2.set_title("action distribution (Algorithm 1)")
    fig.tight_layout()
    save_figure(fig, out, dpi=110)


def frame_strip(out: str | Path, seeds_by_family: dict[str, list[int]], size=(224, 128), frames_per_clip: int = 4,
                seconds: float = 8.0) -> None:
    """A README image: one row per family, ``frames_per_clip`` frames of each seed's clip side by side."""
    from PIL import Image

    from relic.fileio import atomic_path
    from relic.world.writer import render_clip

    rows = []
    for family, seeds in seeds_by_family.items():
        tiles = []
        for seed in seeds:
            clip = render_clip(seed, seconds=seconds, size=size, family=family)
            idx = np.linspace(0, len(clip.frames) - 1, frames_per_clip).round().astype(int)
            tiles += [clip.frames[i] for i in idx]
        rows.append(np.concatenate(tiles, 1))
    width = min(r.shape[1] for r in rows)
    img = np.concatenate([r[:, :width] for r in rows], 0)
    with atomic_path(out) as tmp:
        Image.fromarray(img).save(tmp, format="PNG")
