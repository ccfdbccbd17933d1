"""Teacher gate: does the bidirectional teacher hold a held-out world from one start image?

A student can only be as good as the teacher it is distilled from, so a retraining checks the teacher first
(``relic eval --suite teacher --teacher DIR``). For every held-out scene (world seeds ≥ 2**32, the actions and
quality suites' scenes) the teacher generates :data:`SECONDS` of video along one fixed script (:func:`gate_script`:
a dolly with a slow pan, as a walking operator) from exactly what the runtime would give the student:

* first latent: the single-image latent of the ground-truth start frame
  (:func:`relic.data.start_image.encode_start_image`, the function ``StreamingSession.start`` calls and the
  latent cache stores for training);
* the scene caption, the empty prompt for CFG, actions and poses in units of d̄ (eq. 3 from the identity),
  all built by :func:`relic.eval.suites.distill.teacher_clip`, which also decodes with the full VAE.

The model under test (``--model``, default the shipped ``weights/relic-tiny``) lends its VAE, text encoder and
resolution, and its student streams the same script from the same start frame (``StreamingSession``, its own
decoder): the distillation gate, "the student holds the teacher's numbers within 1 dB". With several models the
first one is used.

At each of :data:`TIMES_S` (frame ``round(t · fps)``) and per scene:

* ``psnr_teacher``: PSNR (dB) of the teacher's frame against the ground-truth render;
* ``psnr_frozen``: the trivial baseline, the start frame repeated (PSNR of frame 0 against the ground truth);
* ``saturation_ratio``: mean HSV saturation of the teacher's frame / the ground truth's (1 = as colourful;
  grey mush → 0);
* ``sharpness_ratio``: variance of the Laplacian of the teacher's frame / the ground truth's (1 = as sharp);
* ``psnr_student``, ``saturation_ratio_student``, ``sharpness_ratio_student``: the same for the student's
  stream; the summary's ``student_gain_db`` is its gain over frozen, ``student_vs_teacher_db`` student − teacher;
* ``psnr_vae``, ``saturation_ratio_vae``, ``sharpness_ratio_vae``: the same for the ground-truth clip encoded
  and decoded by the same VAE, the ceiling of any generator in this latent space. It tells the teacher's
  failures from the autoencoder's (relic-tiny's shipped VAE, for one, decodes a clip's first latent with
  little colour).

**Directions** (:func:`directions`): does the teacher move the way the command says, before any distillation?
The teacher and the student generate the actions suite's 12 single motions (25 frames each, γ = 1) in every
scene from the ground-truth start frame, and the actions suite's estimator scores each clip
(:func:`relic.eval.suites.actions.score_script`): direction match per motion and RPE-rot, beside the ground
truth's own (the noise floor). It tells a student that ignores the keys because its teacher does from one
that lost them in distillation. The estimator needs texture, and generated frames are blurred, so each clip is
also scored without it (:func:`contrast_db`): the opposite motion is rendered from the same start pose, and the
clip's last frame should be closer (PSNR) to its own motion's ground truth than to the opposite's by more than
the start frame is. ``contrast_db`` > 0: it moved the commanded way; 0: the start frame's answer (a model that
ignores the command scores about 0 on average).

The summary averages over scenes, per time, and says where the teacher beats the frozen baseline. A strip
image (``teacher_strip.png`` in the report directory) shows, per scene, five rows (ground truth | teacher |
student | VAE round trip | frozen) at the start and at each time.
"""

from __future__ import annotations

import time

import numpy as np

from relic.eval.metrics import saturation, sharpness
from relic.eval.suites.common import World, frame_grid, label_frame, motion_rows, script
from relic.eval.suites.memory import psnr

TIMES_S: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0)
SECONDS = 3.0


def gate_script(fps: int, seconds: float = SECONDS, rot_deg: float = 2.0, temporal: int = 4) -> np.ndarray:
    """The gate's actions: the prepended static row, then a dolly in with a slow pan right (rot_deg / 2 per
    frame) for ``seconds``, rounded up to whole latents -> (1 + 4k, 13)."""
    n = int(np.ceil(round(seconds * fps) / temporal)) * temporal
    return script(motion_rows(n, dolly_in=1.0, pan_right=rot_deg / 2))


def frame_indices(fps: int, times: tuple[float, ...] = TIMES_S) -> list[int]:
    return [int(round(t * fps)) for t in times]


def scene_row(gt: np.ndarray, gen: np.ndarray, frames: list[int], vae: np.ndarray | None = None,
              student: np.ndarray | None = None) -> dict:
    """Per-time metrics of one scene: uint8 (T h w 3) ground truth and teacher frames (and, optionally, the
    ground truth's VAE round trip: the ``*_vae`` keys; the student's stream: the ``*_student`` keys)."""
    out: dict[str, list] = {}
    for k in frames:
        s_gt, h_gt = saturation(gt[k]), sharpness(gt[k])
        for suffix, video in (("", gen), ("_vae", vae), ("_student", student)):
            if video is None:
                continue
            out.setdefault("psnr_teacher" if not suffix else "psnr" + suffix, []).append(psnr(video[k], gt[k]))
            out.setdefault("saturation_ratio" + suffix, []).append(saturation(video[k]) / s_gt if s_gt > 0 else None)
            out.setdefault("sharpness_ratio" + suffix, []).append(sharpness(video[k]) / h_gt if h_gt > 0 else None)
        out.setdefault("psnr_frozen", []).append(psnr(gt[0], gt[k]))
    return out


def summarize(rows: list[dict], times: tuple[float, ...] = TIMES_S) -> dict:
    """Means over scenes per time (None where nothing was measured), and where the teacher beats frozen."""
    done = [r for r in rows if "skipped" not in r]

    def mean(key: str, i: int):
        v = [r[key][i] for r in done if r[key][i] is not None and np.isfinite(r[key][i])]
        return float(np.mean(v)) if v else None

    out = {"n_scenes": len(done), "times_s": list(times)}
    for key in ("psnr_teacher", "psnr_frozen", "saturation_ratio", "sharpness_ratio", "psnr_vae",
                "saturation_ratio_vae", "sharpness_ratio_vae", "psnr_student", "saturation_ratio_student",
                "sharpness_ratio_student"):
        if all(key in r for r in done):
            out[key] = [mean(key, i) for i in range(len(times))]

    def diff(a: str, b: str) -> list:
        return [None if x is None or y is None else x - y for x, y in zip(out[a], out[b])]

    out["psnr_gain_db"] = diff("psnr_teacher", "psnr_frozen")
    out["beats_frozen"] = [g is not None and g > 0 for g in out["psnr_gain_db"]]
    if "psnr_student" in out:
        out["student_gain_db"] = diff("psnr_student", "psnr_frozen")
        out["student_vs_teacher_db"] = diff("psnr_student", "psnr_teacher")
    return out


def strip(scenes: list[tuple], frames: list[int], times: tuple[float, ...]) -> np.ndarray:
    """uint8 image: per scene (seed, gt, teacher[, vae round trip[, student]]) the rows ground truth | teacher |
    student | vae | frozen (those given), columns: the start and each time."""
    cols = [0, *frames]
    names = ["start", *[f"{t:g} s" for t in times]]
    blocks = []
    for seed, gt, gen, *rest in scenes:
        vae, student = (list(rest) + [None, None])[:2]
        kinds = [("gt", gt), ("teacher", gen)] + [(k, v) for k, v in (("student", student), ("vae", vae))
                                                   if v is not None] + [("frozen", None)]
        blocks.append([[label_frame(gt[0] if video is None else video[k], f"{kind} {name}" if kind == "gt" else kind)
                        for k, name in zip(cols, names)] for kind, video in kinds])
    return frame_grid(blocks)


def run(session, world: World, teacher, seeds: list[int], fps: int, quick: bool = False, steps: int = 20,
        guidance: float = 3.0, shift: float = 5.0, rot_deg: float = 2.0, times: tuple[float, ...] = TIMES_S,
        log=print, guide: str = "text", sampler: str = "euler", cache=None) -> dict:
    """The gate on every held-out scene (see the module docstring). ``quick``: 2 Euler steps (CI).
    ``cache``: a :class:`relic.eval.suites.common.ClipCache` to share the student's clips with the actions suite."""
    import torch

    from relic.eval.suites.common import generate
    from relic.eval.suites.distill import check_teacher, teacher_clip
    from relic.runtime.stream import to_uint8
    from relic.training.frames import to_video

    if quick:
        steps = min(steps, 2)
    check_teacher(teacher, session)
    teacher = teacher.eval()
    if session.precision == "bf16":                                   # as the session does with its student
        for p in teacher.parameters():
            p.data = p.data.to(torch.bfloat16)
    actions = gate_script(fps, max(times), rot_deg, session._dit_cfg.temporal_compression)
    frames = frame_indices(fps, times)
    rows, shown = [], []
    for seed in seeds:
        poses = world.start_pose(seed, actions)
        if poses is None:
            rows.append({"seed": seed, "skipped": "no start pose with clearance and an open view"})
            continue
        gt = world.render(*poses)
        t0 = time.perf_counter()
        gen, _ = teacher_clip(session, teacher, gt[0], world.caption(seed), actions, 1.0, steps, guidance, shift,
                              guide=guide, sampler=sampler)
        seconds = time.perf_counter() - t0
        with torch.no_grad(), session._autocast():                   # the ceiling: the ground truth's round trip
            z, _ = session.vae.encode(to_video(gt[None]).to(session.device))
            vae = to_uint8(session.vae.decode(z.float()))
        t0 = time.perf_counter()
        stu = generate(session, gt[0], world.caption(seed), actions)
        student_s = time.perf_counter() - t0
        n = min(len(gen), len(gt), len(vae), len(stu))
        gen, gt, vae, stu = gen[:n], gt[:n], vae[:n], stu[:n]
        row = {"seed": seed, "frames": n, "seconds": seconds, "student_seconds": student_s,
               **scene_row(gt, gen, frames, vae, stu)}
        rows.append(row)
        shown.append((seed, gt, gen, vae, stu))
        log(f"  teacher gate: scene {seed}: PSNR teacher {', '.join(f'{x:.2f}' for x in row['psnr_teacher'])} | "
            f"student {', '.join(f'{x:.2f}' for x in row['psnr_student'])} | "
            f"frozen {', '.join(f'{x:.2f}' for x in row['psnr_frozen'])} dB at {', '.join(f'{t:g}' for t in times)} s")
    dirs = directions(session, world, teacher, seeds, quick, steps, guidance, shift, rot_deg, guide=guide,
                      sampler=sampler, cache=cache, log=log)
    return {"seeds": list(seeds), "model": session.eval_label, "times_s": list(times), "frames": frames,
            "script": "dolly_in+pan_right", "rot_deg_per_frame": rot_deg / 2, "directions": dirs,
            "teacher": {"steps": steps, "guidance": guidance, "shift": shift, "guide": guide, "sampler": sampler,
                        "dit": {"dim": teacher.cfg.dim, "layers": teacher.cfg.num_layers}},
            "summary": summarize(rows, times), "results": rows, "_strip": strip(shown, frames, times)}


def direction_scripts(frames: int = 25, rot_deg: float = 2.0, quick: bool = False) -> list[tuple[str, np.ndarray, float]]:
    """The actions suite's single-motion scripts: the 12 motions at γ = 1 (``quick``: its two one-block ones)."""
    from relic.eval.suites.actions import base_motion, battery

    return [(n, a, g) for n, a, g in battery(frames, rot_deg, quick=quick)
            if base_motion(n) is not None and (quick or g == 1.0)]


def direction_strip(shown: list[tuple[str, list[np.ndarray]]]) -> np.ndarray:
    """uint8 image: one row per motion of one scene (``"seed:motion"``, [start, ground truth, teacher, student,
    the opposite motion's ground truth], each (h w 3) uint8: the clip's last frame but the start). A teacher
    that follows the command looks like the second column, not the fifth; one that ignores it, like the first."""
    names = ["start", "ground truth", "teacher", "student", "opposite's gt"]
    rows = [[label_frame(img, f"{label.split(':')[1]}: {name}" if k == 0 else name)
             for k, (name, img) in enumerate(zip(names, tiles))] for label, tiles in shown]
    return frame_grid([rows]) if rows else frame_grid([])


def contrast_db(video: np.ndarray, own: np.ndarray, other: np.ndarray) -> float:
    """How much closer the last frame of ``video`` is to ``own``'s than to ``other``'s (PSNR, dB), beyond what
    the start frame ``own[0]`` scores: [PSNR(v, own) − PSNR(v, other)] − [PSNR(own₀, own) − PSNR(own₀, other)]
    at the last frame (uint8 (T h w 3) clips, same T). The start frame repeated scores exactly 0."""
    v, a, b = video[-1], own[-1], other[-1]
    return float(psnr(v, a) - psnr(v, b) - (psnr(own[0], a) - psnr(own[0], b)))


def directions(session, world: World, teacher, seeds: list[int], quick: bool = False, steps: int = 4,
               guidance: float = 1.0, shift: float = 2.0, rot_deg: float = 2.0, frames: int = 25,
               guide: str = "all", sampler: str = "renoise", cache=None, log=print) -> dict:
    """Teacher and student on :func:`direction_scripts` in every scene (the teacher already prepared, as
    :func:`run` leaves it). Returns ``{"teacher" | "student" | "ground_truth": {"direction_accuracy": {motion:
    {n, matched, unknown, accuracy}}, "motions_at_90": k, "rpe_rot_deg": mean, "contrast_db": {motion: mean
    dB}, "contrast_db_mean": dB}, "results": rows}`` (no contrast for the ground truth)."""
    from relic.camera.actions import integrate
    from relic.eval.direction import MOTIONS, direction_accuracy, opposite
    from relic.eval.noise_floor import _summarize
    from relic.eval.suites.actions import base_motion, score_script
    from relic.eval.suites.common import ClipCache
    from relic.eval.suites.distill import teacher_clip

    cache = ClipCache() if cache is None else cache
    rows: dict[str, list[dict]] = {"teacher": [], "student": [], "ground_truth": []}
    shown: list[tuple[str, list[np.ndarray]]] = []       # the first scene's last frames, one row per motion
    for seed in seeds[:1] if quick else seeds:
        for name, actions, gamma in direction_scripts(frames, rot_deg, quick):
            clip = cache.get(session, world, seed, name, actions, gamma)     # the student's (and the ground truth)
            if clip is None:
                continue
            gen, _ = teacher_clip(session, teacher, clip.gt[0], world.caption(seed), actions, gamma, steps, guidance,
                                  shift, guide=guide, sampler=sampler)
            motion = base_motion(name)
            flip = np.asarray(actions, np.float64).copy()          # the opposite motion from the same start pose
            i, j = MOTIONS.index(motion), MOTIONS.index(opposite(motion))
            flip[:, [i, j]] = flip[:, [j, i]]
            flip[:, :12] *= gamma
            other = world.render(*integrate(flip, world.cfg.speed_m, 1.0, clip.R[0], clip.P[0]))
            if not shown or shown[0][0].split(":")[0] == str(seed):
                n = len(clip.gt) - 1
                shown.append((f"{seed}:{motion}", [clip.gt[0], clip.gt[n], gen[min(n, len(gen) - 1)],
                                                   clip.frames[min(n, len(clip.frames) - 1)], other[n]]))
            for who, video in (("teacher", gen), ("student", clip.frames), ("ground_truth", clip.gt)):
                video = video[:len(clip.gt)]
                row, _ = score_script(name, actions, gamma, clip.R, clip.P, video, world.K)
                if who != "ground_truth":
                    row["contrast_db"] = contrast_db(video, clip.gt[:len(video)], other[:len(video)])
                rows[who].append({"seed": seed, "script": name, "gamma": gamma, **row})
        log(f"  teacher gate: directions in scene {seed}: teacher "
            f"{sum(r['direction_match'] is True for r in rows['teacher'])}, student "
            f"{sum(r['direction_match'] is True for r in rows['student'])}, ground truth "
            f"{sum(r['direction_match'] is True for r in rows['ground_truth'])} of {len(rows['teacher'])} so far")
    out = {"_strip": direction_strip(shown)}
    for who, rs in rows.items():
        acc = direction_accuracy([(base_motion(r["script"]), r["direction_match"]) for r in rs])
        out[who] = {"direction_accuracy": acc, "motions_at_90": sum(d["accuracy"] >= 0.9 for d in acc.values()),
                    "n_motions": len(acc), "rpe_rot_deg": _summarize(rs)["rpe_rot_deg"] if rs else None,
                    "results": rs}
        if who != "ground_truth" and rs:
            by = {m: float(np.mean([r["contrast_db"] for r in rs if base_motion(r["script"]) == m])) for m in acc}
            out[who].update(contrast_db=by, contrast_db_mean=float(np.mean(list(by.values()))))
    return out


__all__ = ["TIMES_S", "SECONDS", "gate_script", "frame_indices", "scene_row", "summarize", "strip", "run",
           "direction_scripts", "directions", "direction_strip", "contrast_db"]
