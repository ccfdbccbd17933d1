"""Bundled start scenes (``relic/assets/start_scenes``): small PNG renders of held-out procedural worlds."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from relic.errors import UserError

SCENES_DIR = Path(__file__).resolve().parent.parent / "assets" / "start_scenes"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class StartScene:
    name: str
    title: str
    prompt: str
    seed: int
    image_path: Path


def load_scenes(directory: Path = SCENES_DIR) -> list[StartScene]:
    """Read ``scenes.json`` (``{"scenes": [{"name", "title", "prompt", "seed", "image"}, ...]}``)."""
    index = directory / "scenes.json"
    if not index.is_file():
        return []
    try:
        entries = json.loads(index.read_text(encoding="utf-8"))["scenes"]
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"bad start scene index ({e})", source=str(index)) from None
    scenes = []
    for i, e in enumerate(entries):
        try:
            name, image = str(e["name"]), str(e["image"])
            if not _NAME.match(name) or "/" in image or image.startswith("."):
                raise ValueError(f"bad name {name!r} or image {image!r}")
            scenes.append(StartScene(name, str(e.get("title", name)), str(e["prompt"]), int(e["seed"]),
                                     directory / image))
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"scene {i}: {err}", source=str(index)) from None
        if not scenes[-1].image_path.is_file():
            raise UserError(f"scene {i}: image {image} is missing", source=str(index))
    return scenes


#: world seeds of the bundled start scenes: held out like the eval's (≥ 2**32, never a training scene seed, which
#: are 32-bit draws), and away from the eval's own seeds (2**32 + 0..3, 2**32 + 100..101); 3 outdoor, 3 indoor
START_SEEDS = tuple(2**32 + k for k in (1003, 1009, 1002, 1005, 1006, 1014))


def render_start_scenes(out_dir: Path = SCENES_DIR, seeds: tuple[int, ...] = START_SEEDS,
                        size: str = "224x128") -> list[StartScene]:
    """Render the bundled start scenes with the procedural world (held-out seeds ≥ 2**32, :data:`START_SEEDS`).

    Each scene is the first frame the simulated operator sees in the world of its seed, with the world's
    own caption as the prompt. Run ``python -m relic.serve.scenes`` to regenerate the bundle.
    """
    from PIL import Image

    from relic.fileio import atomic_path, write_json_atomic
    from relic.world import render_clip

    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for seed in seeds:
        clip = render_clip(seed, seconds=0.125, size=size)
        family = clip.meta.get("family", "scene") if isinstance(clip.meta, dict) else "scene"
        name = f"{family}-{seed}"
        with atomic_path(out_dir / f"{name}.png") as tmp:
            Image.fromarray(clip.frames[0]).save(tmp, format="PNG", optimize=True)
        entries.append({"name": name, "title": f"{family} · seed {seed}", "prompt": clip.caption, "seed": seed,
                        "image": f"{name}.png"})
    write_json_atomic(out_dir / "scenes.json", {"scenes": entries})
    return load_scenes(out_dir)


if __name__ == "__main__":  # pragma: no cover - regenerates the bundled assets
    for s in render_start_scenes():
        print(f"{s.name}: {s.prompt}")
