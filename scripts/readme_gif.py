"""Make the README's play-session GIF: the default model streaming from a bundled start scene under a key script.

    .venv/bin/python scripts/readme_gif.py --out docs/images/play.gif

Runs the same :class:`relic.runtime.stream.StreamingSession` as ``relic play`` (the default model, see
:mod:`relic.runtime.default`), feeds it the keys of ``--keys`` (one ``key*frames`` token per segment, the
play page's key map), and writes every ``--every``-th frame, upscaled, with the held keys and the stream
time drawn under it. The GIF is written atomically.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
from PIL import Image

from relic.camera import KeyMap
from relic.fileio import atomic_path
from relic.runtime.default import default_model
from relic.runtime.stream import StreamingSession
from relic.serve.scenes import load_scenes

DEFAULT_KEYS = "none*8 w*32 left*32 d*16 right*32 s*16"


def parse(keys: str) -> list[tuple[str, int]]:
    out = []
    for tok in keys.split():
        name, _, n = tok.partition("*")
        out.append((name, int(n or 1)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/images/play.gif")
    ap.add_argument("--scene", type=int, default=1, help="index of the bundled start scene")
    ap.add_argument("--keys", default=DEFAULT_KEYS, help="key*frames tokens (none = no key)")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--every", type=int, default=2, help="keep every n-th frame")
    args = ap.parse_args()

    scene = load_scenes()[args.scene]
    session = StreamingSession.from_pretrained(default_model())
    keymap = KeyMap()
    image = cv2.cvtColor(cv2.imread(str(scene.image_path)), cv2.COLOR_BGR2RGB)
    frames = [session.start(image, scene.prompt)[0]]
    labels = [""]
    n = session.frames_per_step
    for key, count in parse(args.keys):
        held = {} if key == "none" else {key: True}
        for _ in range(-(-count // n)):
            a = np.repeat(keymap.action_from_keys(held, 0.0, 0.0)[None], n, 0)
            block = session.step(a)
            frames.extend(block)
            labels.extend([key.upper() if key != "none" else ""] * len(block))
    fps = session.cfg.fps
    out_frames = []
    for i in range(0, len(frames), args.every):
        f = cv2.resize(frames[i], None, fx=args.scale, fy=args.scale, interpolation=cv2.INTER_CUBIC)
        bar = np.full((22, f.shape[1], 3), 24, np.uint8)
        text = f"t={i / fps:4.1f}s  keys: {labels[i] or '-'}"
        cv2.putText(bar, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (235, 235, 235), 1, cv2.LINE_AA)
        out_frames.append(Image.fromarray(np.concatenate([f, bar])))
    with atomic_path(args.out) as tmp:
        out_frames[0].save(tmp, format="GIF", save_all=True, append_images=out_frames[1:],
                           duration=int(1000 * args.every / fps), loop=0, optimize=True)
    print(f"wrote {args.out} ({len(out_frames)} frames)")


if __name__ == "__main__":
    main()
