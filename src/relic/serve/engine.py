"""The server's view of a :class:`relic.runtime.stream.StreamingSession` (the one engine API).

:class:`Engine` wraps a session and gives the worker thread exactly what it needs: the model's size and
frame rate, how many video frames the next ``step`` makes, poses for the minimap and memory tokens for the
HUD. :func:`load_engines` builds the warmed-up engines of ``relic play``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from relic.camera import STATIC

from relic.runtime.default import REPO_MODEL, default_model  # noqa: F401  (re-exported for the apps)


class Engine:
    """Adapter around one :class:`~relic.runtime.stream.StreamingSession` (or an object with its API)."""

    def __init__(self, session):
        self.session = session
        cfg = session.cfg
        self.width, self.height, self.fps = int(cfg.width), int(cfg.height), float(cfg.fps)
        self._start: tuple[np.ndarray, str, int] | None = None
        self._first: np.ndarray | None = None

    def start(self, image: np.ndarray, prompt: str, seed: int) -> None:
        """Begin a stream from ``image`` uint8 (h w 3) and ``prompt``."""
        self._start = (image, prompt, seed)
        first = np.asarray(self.session.start(image, prompt, seed=seed))
        self._first = first[-1] if first.ndim == 4 else first

    def first_frame(self) -> np.ndarray:
        """The first frame as the model decodes it (frame 0 of the stream), uint8 (h w 3)."""
        return self._first

    def frames_per_step(self) -> int:
        """Video frames the next :meth:`step` produces (and takes actions for)."""
        return int(self.session.frames_per_step)

    def step(self, actions: np.ndarray, gamma: float) -> np.ndarray:
        """actions (f 13) -> frames uint8 (f h w 3), at speed coefficient γ."""
        self.session.gamma = float(gamma)
        return np.asarray(self.session.step(actions))

    def reset(self) -> None:
        """Back to the start image with an empty memory (the same image, prompt and seed)."""
        if self._start is None:
            raise RuntimeError("reset before start")
        self.start(*self._start)

    def clear(self) -> None:
        """Forget the stream (the engine goes back to the pool)."""
        self.session.reset()
        self._start = self._first = None

    def poses(self) -> tuple[np.ndarray, np.ndarray]:
        """Poses of every video frame so far: R (n 3 3) world-to-camera, P (n 3)."""
        st = self.session.state
        return np.asarray(st["R"]), np.asarray(st["P"])

    def memory_tokens(self) -> int:
        """KV tokens attended by the last block (first frame + compressed memory + window)."""
        return int(self.session.state["memory"].get("tokens", 0))

    def warm_up(self, image: np.ndarray | None = None, blocks: int = 2) -> None:
        """Run a couple of blocks so that the first user input does not pay for lazy initialisation."""
        img = np.full((self.height, self.width, 3), 127, np.uint8) if image is None else image
        self.start(img, "", seed=0)
        a = np.zeros((self.frames_per_step(), 13))
        a[:, STATIC] = 1.0
        for _ in range(blocks):
            self.step(a, 1.0)
        self.clear()


def load_engines(model: str | None = None, preset: str | None = None, count: int = 1,
                 progress: bool = True, compile: bool = False) -> tuple[list[Engine], str]:
    """Load ``count`` streaming sessions and warm each one up, with a progress bar.

    ``model`` is a model directory, ``preset`` a preset name (random weights); with neither, the default
    model. ``compile`` wraps the DiT in ``torch.compile``; the warm-up then also compiles. Returns the
    engines and a short description of what was loaded.
    """
    from tqdm import tqdm

    from relic.runtime.stream import StreamingSession

    source = model or preset or default_model()
    engines = []
    with tqdm(total=2 * count, desc="loading model", unit="step", disable=not progress, leave=True) as bar:
        for i in range(count):
            bar.set_description(f"loading model {i + 1}/{count}")
            session = StreamingSession.from_pretrained(source, compile=compile)
            bar.update()
            bar.set_description(f"{'compiling + ' if compile else ''}warming up {i + 1}/{count}")
            engine = Engine(session)
            engine.warm_up()
            engines.append(engine)
            bar.update()
    if model or Path(source).is_dir():
        desc = f"model {source}"
    else:
        desc = f"preset {source} (random weights)"
    return engines, desc
