"""The evaluation suites behind ``relic eval`` (paper §5.3): actions, memory, quality, speed, distill, stability,
and the teacher gate (``teacher``: the teacher alone against the ground truth and a frozen frame).

::

    from relic.eval.suites import EvalConfig, ModelSpec, run_suites
    report = run_suites([ModelSpec("relic-tiny", "tiny")], ("actions", "memory"), EvalConfig(quick=True))
    # then relic.eval.report.write_report(report, "report/")

Every suite runs every model on held-out scenes (world seeds ≥ 2**32; training scene seeds are 32-bit draws
of :func:`relic.world.writer.clip_seed`). Generated clips are shared between suites (:class:`~relic.eval.suites.common.ClipCache`).
See docs/eval.md, "Suites and report".
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from relic.errors import UserError
from relic.eval.suites.common import HELD_OUT_BASE, ClipCache, ModelSpec, World, WorldConfig, check_source, \
    model_summary, open_session

SUITES = ("actions", "memory", "quality", "speed", "distill", "stability", "teacher")
#: What ``all`` runs; plus ``distill`` and ``teacher`` when a teacher is given.
ALL = ("actions", "memory", "quality", "speed", "stability")
#: The suites that need ``--teacher``.
TEACHER_SUITES = ("distill", "teacher")
NEEDS_TEACHER = ("the distill suite needs --teacher DIR (a teacher DiT directory, e.g. what `relic train teacher` "
                 "exports to <out>/final)")


def needs_teacher(suite: str) -> str:
    return NEEDS_TEACHER.replace("the distill suite", f"the {suite} suite")


@dataclass
class EvalConfig:
    """What the suites run. ``quick`` replaces every battery by a tiny one (CI on random weights).

    Attributes:
        seeds: held-out world seeds for actions and quality (None: 4 scenes, 1 with ``quick``).
        memory_seeds: scenes for the memory suite (None: 2 scenes, 1 with ``quick``).
        frames: frames per single-motion script (1 + a multiple of 4).
        rot_deg: rotation per frame at magnitude 1 (degrees); speed_m: metres per frame (d̄).
        gaps_s: memory revisit gaps (seconds of video between first visit and revisit).
        speed_horizons_s, speed_blocks: the speed suite's horizons and timed blocks.
        decoder, precision: how sessions run (``tiny``/``vae``, ``bf16``/``fp32``).
        lpips_weights: local LPIPS (AlexNet) safetensors; None omits LPIPS.
        sample_videos: write sample mp4s.
        teacher: the distill and teacher suites' teacher DiT directory (``DiT.from_pretrained``, or a model
            directory); teacher_steps, teacher_guidance, teacher_shift: its Euler CFG sampler;
            teacher_guide: what its unconditional branch drops (``text``, ``command``, ``all``);
            teacher_sampler: ``euler`` (its ODE) or ``renoise`` (x0 and fresh noise at each step, as the student).
        stability_seconds, stability_segment_s: the stability suite's stream length and segment (seconds).
    """

    quick: bool = False
    seeds: tuple[int, ...] | None = None
    memory_seeds: tuple[int, ...] | None = None
    frames: int = 25
    rot_deg: float = 2.0
    speed_m: float = 0.08
    gaps_s: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0, 30.0)
    speed_horizons_s: tuple[float, ...] = (5.0, 20.0, 60.0)
    speed_blocks: int = 4
    decoder: str = "tiny"
    precision: str = "auto"
    lpips_weights: str | None = None
    sample_videos: bool = True
    model_seed: int = 0
    teacher: str | None = None
    teacher_steps: int = 20
    teacher_guidance: float = 3.0
    teacher_guide: str = "text"
    teacher_shift: float = 5.0
    teacher_sampler: str = "euler"
    stability_seconds: float = 300.0
    stability_segment_s: float = 20.0

    def action_seeds(self) -> list[int]:
        if self.seeds is not None:
            return list(self.seeds)
        return [HELD_OUT_BASE + i for i in range(1 if self.quick else 4)]

    def revisit_seeds(self) -> list[int]:
        if self.memory_seeds is not None:
            return list(self.memory_seeds)
        return [HELD_OUT_BASE + 100 + i for i in range(1 if self.quick else 2)]


def shown_source(source: str) -> str:
    """A model source as the report shows it: relative to the working directory when it is a path under it
    (the default model resolves to an absolute path), so a committed report names no machine's directories."""
    path = Path(source)
    if path.is_absolute() and path.is_relative_to(Path.cwd()):
        return str(path.relative_to(Path.cwd()))
    return source


def parse_suites(text: str, teacher: bool = False) -> tuple[str, ...]:
    """``actions,memory`` / ``all`` -> suite names (UserError for an unknown one, or ``distill`` / ``teacher``
    without a teacher). ``all`` is :data:`ALL`, plus ``distill`` and ``teacher`` when ``teacher``."""
    names = [s.strip() for s in str(text).split(",") if s.strip()]
    if names == ["all"]:
        return tuple(n for n in SUITES if n in ALL or (teacher and n in TEACHER_SUITES))
    bad = [n for n in names if n not in SUITES]
    if bad or not names:
        raise UserError(f"unknown suite {', '.join(bad) or repr(text)} (choose from {', '.join(SUITES)} or all)")
    for n in TEACHER_SUITES:
        if n in names and not teacher:
            raise UserError(needs_teacher(n))
    return tuple(dict.fromkeys(names))


def run_suites(models: list[ModelSpec], suites: tuple[str, ...], cfg: EvalConfig = EvalConfig(),
               log=print) -> dict:
    """Run ``suites`` on ``models`` -> the report dict (keys starting with ``_`` hold arrays for the plots)."""
    import os
    import platform

    import torch

    if not models:
        raise UserError("no model to evaluate (--model DIR or --preset NAME)")
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise UserError(f"model labels must be unique, got {', '.join(labels)} (use --compare LABEL=DIR)")
    for m in models:
        check_source(m.source)
    for s in suites:
        if s not in SUITES:
            raise UserError(f"unknown suite {s!r} (choose from {', '.join(SUITES)} or all)")
    low = [x for x in (cfg.seeds or ()) + (cfg.memory_seeds or ()) if x < HELD_OUT_BASE]
    if low:
        raise UserError(f"held-out world seeds must be >= 2**32 = {HELD_OUT_BASE} (training scene seeds are "
                        f"32-bit), got {low[0]}")
    if cfg.lpips_weights is not None and not os.path.isfile(cfg.lpips_weights):
        raise UserError("no such LPIPS weights file", source=cfg.lpips_weights)
    teacher = None
    wanting = [s for s in TEACHER_SUITES if s in suites]
    if wanting:
        if not cfg.teacher:
            raise UserError(needs_teacher(wanting[0]))
        if cfg.teacher_steps < 1:
            raise UserError(f"--teacher-steps must be >= 1, got {cfg.teacher_steps}")
        from relic.eval.suites.distill import load_teacher
        teacher = load_teacher(cfg.teacher)
    if "stability" in suites and not (0 < cfg.stability_segment_s <= cfg.stability_seconds):
        raise UserError(f"stability: need 0 < segment ({cfg.stability_segment_s} s) <= stream "
                        f"({cfg.stability_seconds} s)")
    sessions = [open_session(m, decoder=cfg.decoder, precision=cfg.precision, seed=cfg.model_seed) for m in models]
    c0 = sessions[0].cfg
    for s in sessions[1:]:
        if (s.cfg.height, s.cfg.width, s.cfg.fps) != (c0.height, c0.width, c0.fps):
            raise UserError(f"models to compare need one resolution and fps: {s.eval_label} is "
                            f"{s.cfg.width}x{s.cfg.height}@{s.cfg.fps}, {sessions[0].eval_label} is "
                            f"{c0.width}x{c0.height}@{c0.fps}")
    report: dict = {
        "format": "relic-eval-report", "version": 1,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": cfg.quick, "suites": list(suites), "config": asdict(cfg),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "load_avg": [round(x, 2) for x in os.getloadavg()]},
        "held_out": {"note": f"world seeds >= 2**32 = {HELD_OUT_BASE}: training scene seeds are 32-bit "
                             "(relic.world.writer.clip_seed), so these scenes are never in a training set",
                     "actions": cfg.action_seeds() if {"actions", "quality", "distill", "teacher"} & set(suites)
                     else [],
                     "memory": cfg.revisit_seeds() if "memory" in suites else [],
                     "stability": cfg.action_seeds() if "stability" in suites else []},
        "models": [{**model_summary(s), "source": shown_source(m.source)} for s, m in zip(sessions, models)],
        "timing_s": {},
    }
    wcfg = WorldConfig(width=c0.width, height=c0.height, fov_deg=c0.memory.fov_deg, speed_m=cfg.speed_m)
    report["world"] = {**asdict(wcfg), "K": wcfg.K.tolist()}
    cache = ClipCache()
    world = World(wcfg) if {"actions", "memory", "quality", "distill", "stability", "teacher"} & set(suites) else None
    try:
        for name in SUITES:
            if name not in suites:
                continue
            log(f"suite {name} ...")
            t0 = time.perf_counter()
            if name == "actions":
                from relic.eval.suites import actions
                report["actions"] = actions.run(sessions, world, cache, cfg.action_seeds(), cfg.quick, cfg.frames,
                                                cfg.rot_deg)
            elif name == "memory":
                from relic.eval.suites import memory
                report["memory"] = memory.run(sessions, world, cache, cfg.revisit_seeds(), c0.fps,
                                              sessions[0].frames_per_step, cfg.quick, cfg.gaps_s)
                report["memory"]["window_s"] = (c0.memory.window or 0) * sessions[0].frames_per_step / \
                    c0.frames_per_block / c0.fps
            elif name == "quality":
                from relic.eval.suites import quality
                lp = None
                if cfg.lpips_weights:
                    from relic.eval.lpips import LPIPS
                    lp = LPIPS.from_file(cfg.lpips_weights)
                report["quality"] = quality.run(sessions, world, cache, cfg.action_seeds(), c0.fps, cfg.quick,
                                                cfg.frames, cfg.rot_deg, lpips=lp)
            elif name == "speed":
                from relic.eval.suites import speed
                report["speed"] = speed.run(sessions, cfg.quick, cfg.speed_horizons_s, cfg.speed_blocks)
            elif name == "distill":
                from relic.eval.suites import distill
                report["distill"] = distill.run(sessions, world, cache, teacher, cfg.action_seeds(), c0.fps,
                                                cfg.quick, cfg.frames, cfg.rot_deg, cfg.teacher_steps,
                                                cfg.teacher_guidance, cfg.teacher_shift, guide=cfg.teacher_guide,
                                                sampler=cfg.teacher_sampler)
            elif name == "stability":
                from relic.eval.suites import stability
                report["stability"] = stability.run(sessions, world, cfg.action_seeds(), cfg.quick,
                                                    cfg.stability_seconds, cfg.stability_segment_s, cfg.rot_deg,
                                                    log=log)
            elif name == "teacher":
                from relic.eval.suites import teacher as teacher_gate
                report["teacher"] = teacher_gate.run(sessions[0], world, teacher, cfg.action_seeds(), c0.fps,
                                                     cfg.quick, cfg.teacher_steps, cfg.teacher_guidance,
                                                     cfg.teacher_shift, cfg.rot_deg, log=log, guide=cfg.teacher_guide,
                                                     sampler=cfg.teacher_sampler, cache=cache)
            report["timing_s"][name] = round(time.perf_counter() - t0, 2)
            log(f"suite {name}: {report['timing_s'][name]:.1f} s")
    finally:
        if world is not None:
            world.release()
    report["_clips"] = cache
    return report


__all__ = ["SUITES", "ALL", "EvalConfig", "ModelSpec", "parse_suites", "run_suites"]
