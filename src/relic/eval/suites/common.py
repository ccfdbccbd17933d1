"""What every suite shares: the models under test, held-out scenes, ground-truth renders and generation.

* :class:`ModelSpec` names a model (a model directory or a preset with random weights) with a label and
  whether its long-horizon memory is on. "Memory off" is the **window-only student**: the same weights and
  the same rolling window (plus the always-kept first frame), but every latent that leaves the window is
  dropped instead of entering the compressed memory. It is configured with
  ``MemoryConfig(archive_latents=0)`` on the session's student (:func:`set_memory`), so no second copy of
  the weights is needed.
* :class:`World` renders held-out scenes (world seeds ≥ :data:`HELD_OUT_BASE` = 2**32, disjoint from the
  training scenes, whose seeds are 32-bit) with the model's resolution and field of view, finds start
  poses whose whole path keeps clear of solids (:func:`relic.eval.noise_floor._start_pose`) and renders the
  ground truth of a commanded trajectory.
* :func:`generate` streams a clip through :class:`relic.runtime.stream.StreamingSession` from the
  ground-truth start frame, block by block, with the speed coefficient γ.

Units: the ground truth is rendered in metres with ``speed_m`` metres per frame at translation magnitude 1
(the d̄ of eq. 3) and rotation entries in degrees per frame; the session integrates the same actions in units
of d̄. The suites compare trajectories after Sim(3) alignment, so the scale never matters.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from relic.camera.actions import ACTION_INDEX
from relic.camera.geometry import intrinsics_matrix
from relic.errors import UserError

#: First held-out world seed. Training clips are rendered from a dataset seed (``relic world render --seed 0``)
#: whose per-clip scene seeds are 32-bit draws (:func:`relic.world.writer.clip_seed`), so every scene seed
#: from 2**32 on is disjoint from any training set by construction.
HELD_OUT_BASE = 2**32


@dataclass
class ModelSpec:
    """A model under test: ``source`` is a model directory or a preset name; ``label`` names it in the report;
    ``memory=False`` evaluates it as the window-only student (see the module docstring)."""

    source: str
    label: str
    memory: bool = True

    @classmethod
    def parse(cls, text: str) -> "ModelSpec":
        """``[LABEL=]SOURCE[:nomem]`` -> ModelSpec (label defaults to the directory name or preset)."""
        label, _, rest = text.rpartition("=") if "=" in text else ("", "", text)
        memory = True
        if rest.endswith(":nomem"):
            rest, memory = rest[: -len(":nomem")], False
        if not rest:
            raise UserError(f"--compare {text!r}: expected [LABEL=]DIR_OR_PRESET[:nomem]")
        label = label or Path(rest.rstrip("/")).name + ("" if memory else "-nomem")
        return cls(rest, label, memory)


def check_source(source: str) -> None:
    """A UserError unless ``source`` is a preset or a model directory with a config.json."""
    from relic.config import PRESETS

    if source in PRESETS:
        return
    p = Path(source)
    if not p.exists():
        raise UserError("no such model directory", source=source)
    if not p.is_dir() or not (p / "config.json").is_file():
        raise UserError(f"not a model directory (no config.json) and not a preset ({', '.join(PRESETS)})",
                        source=source)


def open_session(spec: ModelSpec, *, decoder: str = "tiny", precision: str = "auto", seed: int = 0):
    """A :class:`StreamingSession` for ``spec`` (presets get random weights seeded by ``seed``)."""
    from relic.runtime.stream import StreamingSession

    check_source(spec.source)
    session = StreamingSession.from_pretrained(spec.source, decoder=decoder, precision=precision, seed=seed)
    session.eval_label = spec.label
    session.default_memory = spec.memory
    set_memory(session, spec.memory)
    return session


def set_memory(session, on: bool) -> None:
    """Memory on (the model's own :class:`~relic.config.MemoryConfig`) or off (window-only: the same config
    with ``archive_latents=0``, so latents leaving the window are dropped). Takes effect at the next
    ``start``."""
    base = session.cfg.memory
    session.memory = base if on else dataclasses.replace(base, archive_latents=0)


def static_rows(n: int) -> np.ndarray:
    a = np.zeros((n, 13))
    a[:, ACTION_INDEX["static"]] = 1.0
    return a


def motion_rows(n: int, **magnitudes: float) -> np.ndarray:
    """``n`` rows with the given action magnitudes (``static`` set where nothing moves)."""
    a = np.zeros((n, 13))
    for name, m in magnitudes.items():
        a[:, ACTION_INDEX[name]] = m
    a[:, ACTION_INDEX["static"]] = (a[:, :12] == 0).all(1)
    return a


def script(*parts: np.ndarray) -> np.ndarray:
    """The prepended static row followed by ``parts`` -> (1 + Σ len, 13)."""
    return np.concatenate([static_rows(1), *parts])


@dataclass
class WorldConfig:
    """Ground-truth rendering: sizes come from the model's config; motion per frame at magnitude 1."""

    width: int = 224
    height: int = 128
    fov_deg: float = 90.0
    speed_m: float = 0.08
    eye_height: float = 1.5
    clearance: float = 0.35
    min_view_depth: float = 2.0

    @property
    def K(self) -> np.ndarray:
        f = self.width / 2 / math.tan(math.radians(self.fov_deg) / 2)
        return intrinsics_matrix(f, f, self.width / 2, self.height / 2)


class World:
    """Held-out scenes rendered with one :class:`relic.world.renderer.Renderer` (call :meth:`release`)."""

    def __init__(self, cfg: WorldConfig):
        from relic.world.renderer import Renderer

        self.cfg = cfg
        self.K = cfg.K
        self.renderer = Renderer(cfg.width, cfg.height)
        self._scene = None
        self.last_poses = None            # the latest start_pose result (R, P) or None
        self._starts: dict = {}           # (seed, salt, moving rows) -> (R0, P0) or None

    def scene(self, seed: int):
        from relic.world.scenes import make_scene

        if self._scene is None or self._scene.seed != seed:
            self._scene = make_scene(seed)
            self.renderer.set_scene(self._scene)
        return self._scene

    def start_pose(self, seed: int, actions: np.ndarray, gamma: float = 1.0, salt: int = 0):
        """Commanded poses (R (T 3 3), P (T 3) metres) of ``actions`` at speed γ from a start pose in scene
        ``seed`` that keeps clear of solids with an open view; None when no such start exists. Memoized:
        scripts with the same moving rows (they may differ in static holds) share the start pose."""
        from relic.camera.actions import integrate
        from relic.eval.noise_floor import NoiseFloorConfig, _start_pose

        a = np.asarray(actions, np.float64).copy()
        a[:, :12] *= gamma                                        # eq. 3: γ scales every motion
        # static rows (holds) do not change the path: scripts that differ only in holds share a start pose
        moving = a[1:][(a[1:, :12] != 0).any(1)]
        key = (seed, salt, moving.tobytes())
        scene = self.scene(seed)                                  # also puts the scene on the renderer
        if key in self._starts:
            start = self._starts[key]
            self.last_poses = None if start is None else integrate(a, self.cfg.speed_m, 1.0, *start)
            return self.last_poses
        nf = NoiseFloorConfig(seeds=(seed,), width=self.cfg.width, height=self.cfg.height, fov_deg=self.cfg.fov_deg,
                              frames=len(actions), speed_m=self.cfg.speed_m, eye_height=self.cfg.eye_height,
                              clearance=self.cfg.clearance, min_view_depth=self.cfg.min_view_depth)
        self.last_poses = _start_pose(scene, self.renderer, a, nf, np.random.default_rng([seed, salt]))
        self._starts[key] = None if self.last_poses is None else (self.last_poses[0][0], self.last_poses[1][0])
        return self.last_poses

    def render(self, R: np.ndarray, P: np.ndarray) -> np.ndarray:
        """(T 3 3), (T 3) -> uint8 (T h w 3)."""
        return self.renderer.render_many(self.K, R, P)

    def caption(self, seed: int) -> str:
        return self.scene(seed).caption

    def release(self) -> None:
        self.renderer.release()


@dataclass
class Clip:
    """One generated clip with its ground truth. frames, gt: uint8 (T h w 3); R, P: commanded poses."""

    seed: int
    name: str
    actions: np.ndarray
    gamma: float
    R: np.ndarray
    P: np.ndarray
    gt: np.ndarray
    frames: np.ndarray
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def generate(session, frame0: np.ndarray, prompt: str, actions: np.ndarray, gamma: float = 1.0,
             seed: int = 0) -> np.ndarray:
    """Stream ``actions`` (T, 13; row 0 is the prepended static action; T − 1 a multiple of the session's
    frames per step) from ``frame0`` -> uint8 (T h w 3)."""
    n = session.frames_per_step
    if (len(actions) - 1) % n:
        raise ValueError(f"{len(actions) - 1} action frames is not a multiple of {n} frames per step")
    session.gamma = gamma
    out = [session.start(frame0, prompt, seed=seed)]
    for k in range(1, len(actions), n):
        out.append(session.step(actions[k:k + n]))
    return np.concatenate(out)


class ClipCache:
    """Generated clips keyed by (model label, memory, seed, script, γ, start salt), so suites share them."""

    def __init__(self):
        self._clips: dict[tuple, Clip] = {}

    def items(self) -> list[tuple[tuple, Clip]]:
        """[(key, clip)] in generation order; key = (label, memory, seed, name, γ, actions bytes, salt)."""
        return list(self._clips.items())

    def get(self, session, world: World, seed: int, name: str, actions: np.ndarray, gamma: float = 1.0,
            memory: bool | None = None, salt: int = 0, keep: bool = True) -> Clip | None:
        """The clip of ``name`` in scene ``seed`` (generated on first use); None when no start pose exists.
        ``keep=False`` does not store it (long clips used by one suite only: frames take memory)."""
        import time

        memory = session.default_memory if memory is None else memory
        key = (session.eval_label, memory, seed, name, float(gamma), np.asarray(actions, np.float64).tobytes(), salt)
        if key in self._clips:
            return self._clips[key]
        poses = world.start_pose(seed, actions, gamma, salt)
        if poses is None:
            return None
        R, P = poses
        gt = world.render(R, P)
        set_memory(session, memory)
        t0 = time.perf_counter()
        frames = generate(session, gt[0], world.caption(seed), actions, gamma)
        clip = Clip(seed, name, actions, gamma, R, P, gt, frames, time.perf_counter() - t0)
        set_memory(session, session.default_memory)
        if keep:
            self._clips[key] = clip
        return clip


def label_frame(img: np.ndarray, text: str) -> np.ndarray:
    """A copy of the uint8 (h w 3) frame with ``text`` written in its top-left corner (white on black)."""
    import cv2

    img = img.copy()
    cv2.putText(img, text, (3, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.putText(img, text, (3, 11), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def frame_grid(blocks: list[list[list[np.ndarray]]], gap: int = 2) -> np.ndarray:
    """uint8 image of ``blocks`` (one per scene) of rows of equally sized uint8 (h w 3) tiles: tiles and rows
    separated by white gaps of ``gap`` pixels, blocks by grey bars of 3·gap. An empty list gives a 1×1 image."""
    out = []
    for rows in blocks:
        lines = []
        for tiles in rows:
            h = tiles[0].shape[0]
            parts = [p for t in tiles for p in (t, np.full((h, gap, 3), 255, np.uint8))][:-1]
            lines.append(np.concatenate(parts, axis=1))
            lines.append(np.full((gap, lines[-1].shape[1], 3), 255, np.uint8))
        block = np.concatenate(lines[:-1])
        out += [block, np.full((3 * gap, block.shape[1], 3), 128, np.uint8)]
    return np.concatenate(out[:-1]) if out else np.zeros((1, 1, 3), np.uint8)


def model_summary(session) -> dict:
    """The model's identity in the report: label, memory config, sizes."""
    cfg = session.cfg
    return {"label": session.eval_label, "memory": "on" if session.default_memory else "off (window only)",
            "name": cfg.name, "resolution": [cfg.height, cfg.width], "fps": cfg.fps,
            "frames_per_block": cfg.frames_per_block,
            "dit": {"dim": cfg.dit.dim, "layers": cfg.dit.num_layers, "heads": cfg.dit.num_heads},
            "memory_config": dataclasses.asdict(session.memory), "decoder": session.decoder_kind,
            "precision": session.precision}
