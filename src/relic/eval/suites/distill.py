"""Distill suite: the few-step causal student against its bidirectional teacher (paper §4.1.3, §4.4).

The issue's target: **the student is ≥ 20x faster than the teacher sampler and loses ≤ 1.5 dB PSNR on early
frames against the ground truth.**

For every held-out scene and every clip of the quality battery (:func:`relic.eval.suites.quality.battery`;
the student's clip comes from the :class:`~relic.eval.suites.common.ClipCache`, so it is the very clip the
quality suite scores) and every model, the teacher generates the same clip from the same conditioning:

* first latent: :func:`relic.data.start_image.encode_start_image` of ``gt[0]``, the function
  :meth:`StreamingSession.start` calls (and the latent cache, so training's latent 0 too);
* text: the session's text encoder on the scene caption, the empty prompt for classifier-free guidance;
* actions (T 13) with γ applied to columns :12 (as :meth:`StreamingSession.step`); poses R (f 3 3), P (f 3)
  = eq. 3 integration of those actions from the identity in units of d̄ (the session's convention), latent k
  taking video frame 4k; ``f = 1 + (T − 1) / 4`` latents;
* :func:`relic.training.teacher.teacher_sample` (Euler or, with ``teacher_sampler: renoise``, the student's
  re-noising sampler; CFG, ``teacher_steps`` steps, bf16 autocast when the session runs bf16), then the full VAE decoder -> uint8 (T h w 3).

Timing (wall clock, ``time.perf_counter``): ``teacher_s`` covers the first-frame encode, text encoding,
sampling and the VAE decode; ``student_s`` is the cached clip's generation time (``start`` + every ``step``,
its own decoder included: the tiny decoder by default). ``speedup = teacher_s / student_s``.

Quality: ``psnr_early_mean`` (dB) of teacher and student against the ground-truth render over the first
``early_seconds`` excluding frame 0 (:func:`relic.eval.suites.quality.early_psnr`, the quality suite's
definition); ``psnr_loss_db = teacher − student`` (positive: the student is worse).

Summary per model: median speedup, mean early PSNR of teacher and student, their difference and
``meets_target`` (``speedup_20x``: median speedup ≥ 20; ``psnr_loss_1.5db``: loss ≤ 1.5 dB).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from relic.errors import UserError
from relic.eval.suites.common import ClipCache, World
from relic.eval.suites.quality import battery, early_psnr

SPEEDUP_TARGET = 20.0
PSNR_LOSS_TARGET_DB = 1.5


def load_teacher(path: str):
    """The teacher DiT from ``path``: a ``DiT.from_pretrained`` directory (what ``relic train teacher`` exports
    to ``<out>/final``) or a full model directory (config.json + dit.safetensors). UserError otherwise."""
    from relic.models.dit import DiT
    from relic.runtime.stream import DIT_FILE
    from relic.training.teacher import init_dit

    p = Path(path)
    if not p.exists():
        raise UserError("no such teacher directory", source=str(path))
    if not p.is_dir():
        raise UserError("the teacher must be a DiT directory (config.json + safetensors)", source=str(path))
    try:
        if (p / DIT_FILE).is_file() and (p / "config.json").is_file():
            return DiT.from_pretrained(p, filename=DIT_FILE)          # a full model directory
        return init_dit(str(p), None)
    except UserError as e:
        raise UserError(f"cannot load the teacher DiT: {str(e).splitlines()[0]}") from None
    except Exception as e:                                            # corrupt files, bad configs
        msg = (str(e).splitlines() or [type(e).__name__])[0]
        raise UserError(f"cannot load the teacher DiT: {type(e).__name__}: {msg}", source=str(path)) from None


def check_teacher(teacher, session) -> None:
    """UserError unless the teacher works on the session's latents and text states."""
    t, s = teacher.cfg, session._dit_cfg
    for name in ("in_channels", "out_channels", "patch_size", "temporal_compression"):
        if np.ravel(getattr(t, name)).tolist() != np.ravel(getattr(s, name)).tolist():
            raise UserError(f"the teacher's {name} is {getattr(t, name)} but {session.eval_label}'s is "
                            f"{getattr(s, name)}: not the same latent space")
    if t.text_dim != session.text_encoder.dim:
        raise UserError(f"the teacher takes {t.text_dim}-d text states but {session.eval_label}'s text encoder "
                        f"gives {session.text_encoder.dim}-d")


def teacher_clip(session, teacher, frame0: np.ndarray, prompt: str, actions: np.ndarray, gamma: float = 1.0,
                 steps: int = 20, guidance: float = 3.0, shift: float = 5.0, seed: int = 0, guide: str = "text",
                 sampler: str = "euler") -> tuple[np.ndarray, float]:
    """The teacher's clip from the session's conditioning -> (uint8 (T h w 3), seconds).

    ``actions`` (T 13) as the student gets them (row 0 the prepended static action, T = 1 + 4(f − 1)).
    """
    import torch

    from relic.camera import integrate
    from relic.data.start_image import encode_start_image
    from relic.runtime.stream import to_uint8
    from relic.training.teacher import teacher_sample

    a = np.asarray(actions, np.float64).copy()
    a[:, :12] *= gamma                                                # as StreamingSession.step
    c = session._dit_cfg.temporal_compression
    if (len(a) - 1) % c:
        raise ValueError(f"{len(a)} actions is not 1 + a multiple of {c}")
    num_latents = 1 + (len(a) - 1) // c
    R, P = integrate(a, 1.0, 1.0, np.eye(3), np.zeros(3))             # units of d̄, from the identity
    lat = np.arange(num_latents) * c                                  # latent k: video frame 4k
    f32 = dict(dtype=torch.float32)
    act_t = torch.as_tensor(a, **f32)[None]
    R_t, P_t = torch.as_tensor(R[lat], **f32)[None], torch.as_tensor(P[lat], **f32)[None]
    gen = torch.Generator().manual_seed(int(seed))
    t0 = time.perf_counter()
    with torch.no_grad(), session._autocast():
        z0 = encode_start_image(session.vae, frame0, session.cfg.height, session.cfg.width, session.device)
        emb, mask = session.text_encoder.encode([prompt])
        empty = session.text_encoder.empty(1)
        x0, _ = teacher_sample(teacher, z0, num_latents, emb, mask, empty, act_t, R_t, P_t, steps=steps,
                               guidance=guidance, shift=shift, generator=gen, guide=guide, sampler=sampler)
        frames = session.vae.decode(x0.float())
    out = to_uint8(frames)
    return out, time.perf_counter() - t0


def summarize(rows: list[dict]) -> dict:
    """Per-clip rows (teacher_s, student_s, speedup, psnr_early_mean_teacher/student) -> the model's summary."""
    done = [r for r in rows if "skipped" not in r]

    def mean(key):
        v = [r[key] for r in done if r[key] is not None and np.isfinite(r[key])]
        return float(np.mean(v)) if v else None

    speedup = float(np.median([r["speedup"] for r in done])) if done else None
    t, s = mean("psnr_early_mean_teacher"), mean("psnr_early_mean_student")
    loss = t - s if t is not None and s is not None else None
    return {"n_clips": len(done), "speedup_median": speedup, "teacher_s_mean": mean("teacher_s"),
            "student_s_mean": mean("student_s"), "psnr_early_mean_teacher": t, "psnr_early_mean_student": s,
            "psnr_loss_db": loss,
            "meets_target": {"speedup_20x": speedup is not None and speedup >= SPEEDUP_TARGET,
                             "psnr_loss_1.5db": loss is not None and loss <= PSNR_LOSS_TARGET_DB}}


def run(sessions: list, world: World, cache: ClipCache, teacher, seeds: list[int], fps: int, quick: bool = False,
        frames: int = 25, rot_deg: float = 2.0, steps: int = 20, guidance: float = 3.0, shift: float = 5.0,
        early_seconds: float = 1.0, guide: str = "text", sampler: str = "euler") -> dict:
    """Teacher vs student on every (seed, clip, model); see the module docstring."""
    import torch

    scripts = battery(frames, rot_deg, quick)
    if quick:
        scripts, steps = [s for s in scripts if s[0] != "static"][:1], min(steps, 2)
    for s in sessions:
        check_teacher(teacher, s)
    teacher = teacher.eval()
    if sessions and sessions[0].precision == "bf16":                  # as the session does with its student
        for p in teacher.parameters():
            p.data = p.data.to(torch.bfloat16)
    models = {}
    for s in sessions:
        rows = []
        for seed in seeds:
            for name, actions, gamma in scripts:
                clip = cache.get(s, world, seed, name, actions, gamma)
                if clip is None:
                    rows.append({"seed": seed, "clip": name,
                                 "skipped": "no start pose with clearance and an open view"})
                    continue
                tf, teacher_s = teacher_clip(s, teacher, clip.gt[0], world.caption(seed), actions, gamma, steps,
                                             guidance, shift, guide=guide, sampler=sampler)
                n = min(len(tf), len(clip.gt))
                pt, mt = early_psnr(tf[:n], clip.gt[:n], fps, early_seconds)
                ps, ms = early_psnr(clip.frames, clip.gt, fps, early_seconds)
                rows.append({"seed": seed, "clip": name, "frames": int(len(clip.frames)),
                             "teacher_s": teacher_s, "student_s": clip.seconds,
                             "speedup": teacher_s / clip.seconds,
                             "psnr_early_teacher": pt, "psnr_early_student": ps,
                             "psnr_early_mean_teacher": mt, "psnr_early_mean_student": ms,
                             "psnr_loss_db": mt - ms if mt is not None and ms is not None else None})
        models[s.eval_label] = {"summary": summarize(rows), "results": rows}
    return {"seeds": list(seeds), "clips": [n for n, _, _ in scripts], "early_seconds": early_seconds,
            "teacher": {"steps": steps, "guidance": guidance, "shift": shift, "guide": guide, "sampler": sampler,
                        "dit": {"dim": teacher.cfg.dim, "layers": teacher.cfg.num_layers}},
            "targets": {"speedup": SPEEDUP_TARGET, "psnr_loss_db": PSNR_LOSS_TARGET_DB}, "models": models}
