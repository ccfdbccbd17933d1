"""Memory suite: does the model show the same place when the camera comes back? (paper §5.3, spatial memory)

Every protocol first turns a little (one block, ``lead``) so that the **first visit** is a generated frame at
a pose the conditioning image does not show exactly, then leaves that view, holds (static camera) for as long
as the target gap needs, and comes back to exactly the first-visit pose (the commanded poses are integrated
with eq. 3, so the return is exact up to float error):

* ``pan90`` / ``pan180``: pan right by 90° / 180°, hold, pan left back;
* ``pan360``: pan right 180°, hold, pan right another 180°;
* ``out_back``: turn around (pan 180°), walk out (dolly in), hold, walk back (dolly out), turn back;
* ``loop``: orbit a point in front of the camera (truck right + pan left) for half a turn, hold, finish it.

The **gap** is the time from the first visit to the revisit (frames / fps). For each (scene, protocol, gap)
and each model, memory on and memory off (window-only, see :mod:`relic.eval.suites.common`):

* ``psnr_gt``, ``ssim_gt``: the generated revisit frame against the ground-truth render at that pose;
* ``psnr_first``, ``ssim_first``: the revisit frame against the model's own first-visit frame;
* ``psnr_first_gt``: the first-visit frame against the ground truth (how good the view was to begin with).

Gaps shorter than the protocol's motion are skipped (recorded with the reason).
"""

from __future__ import annotations

import numpy as np

from relic.eval.metrics import psnr as _psnr
from relic.eval.metrics import ssim
from relic.eval.suites.common import ClipCache, World, motion_rows, script, static_rows

PSNR_CAP = 100.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB, capped at :data:`PSNR_CAP` (identical frames) so that means and JSON stay finite."""
    return min(_psnr(a, b), PSNR_CAP)


PROTOCOLS = ("pan90", "pan180", "pan360", "out_back", "loop")


def protocol_parts(name: str, rot_deg: float, out_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(away (n 13), back (m 13)) of a protocol; ``rot_deg`` degrees per frame, ``out_frames`` walking frames."""
    def pan(deg: float, direction: str) -> np.ndarray:
        n = int(round(deg / rot_deg))
        return motion_rows(n, **{direction: deg / n})

    if name == "pan90":
        return pan(90, "pan_right"), pan(90, "pan_left")
    if name == "pan180":
        return pan(180, "pan_right"), pan(180, "pan_left")
    if name == "pan360":
        return pan(180, "pan_right"), pan(180, "pan_right")
    if name == "out_back":
        return (np.concatenate([pan(180, "pan_right"), motion_rows(out_frames, dolly_in=1.0)]),
                np.concatenate([motion_rows(out_frames, dolly_out=1.0), pan(180, "pan_left")]))
    if name == "loop":
        n = int(round(180 / rot_deg))
        half = motion_rows(n, truck_right=1.0, pan_left=180 / n)
        return half, half.copy()
    raise ValueError(f"unknown memory protocol {name!r}; expected one of {', '.join(PROTOCOLS)}")


def protocol_script(name: str, gap_frames: int, lead: int, rot_deg: float, out_frames: int,
                    lead_deg: float = 5.0) -> np.ndarray | None:
    """(1 + lead + gap_frames, 13) actions: lead (pan left), away, hold, back; None if the motion is longer
    than the gap."""
    away, back = protocol_parts(name, rot_deg, out_frames)
    hold = gap_frames - len(away) - len(back)
    if hold < 0:
        return None
    return script(motion_rows(lead, pan_left=lead_deg), away, static_rows(hold), back)


def run(sessions: list, world: World, cache: ClipCache, seeds: list[int], fps: int, frames_per_step: int,
        quick: bool = False, gaps_s: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0, 30.0),
        protocols: tuple[str, ...] = PROTOCOLS, rot_deg: float = 6.0, out_frames: int = 16) -> dict:
    """Every model, memory on and off, on every (seed, protocol, gap). Returns a JSON-ready dict plus
    ``_strips`` [(label, memory, seed, protocol, gap_s, first, revisit, gt)] for the frame strips and
    ``_samples`` {(label, memory): Clip} (the longest gap of the first protocol) for the sample videos."""
    if quick:
        gaps_s, protocols, rot_deg = (0.25,), ("pan90",), 45.0
    lead = frames_per_step
    rows, strips, plan, samples = [], [], [], {}
    for p_i, proto in enumerate(protocols):
        for gap in gaps_s:
            n = max(1, int(round(gap * fps / frames_per_step))) * frames_per_step
            actions = protocol_script(proto, n, lead, rot_deg, out_frames)
            plan.append({"protocol": proto, "gap_s_target": gap, "gap_s": n / fps, "frames": 1 + lead + n,
                         "feasible": actions is not None})
            for seed in seeds:
                for s in sessions:
                    for mem in (True, False):
                        base = {"seed": seed, "protocol": proto, "gap_s": n / fps, "model": s.eval_label,
                                "memory": "on" if mem else "off"}
                        if actions is None:
                            rows.append({**base, "skipped": "the protocol's motion is longer than the gap"})
                            continue
                        clip = cache.get(s, world, seed, f"{proto}@{n / fps:g}s", actions, 1.0, memory=mem,
                                         salt=1000 + p_i, keep=False)
                        if clip is None:
                            rows.append({**base, "skipped": "no start pose with clearance and an open view"})
                            continue
                        first, rev = clip.frames[lead], clip.frames[-1]
                        gt = clip.gt[-1]                 # the ground-truth render at the revisit pose
                        rows.append({**base, "psnr_gt": psnr(rev, gt), "ssim_gt": ssim(rev, gt),
                                     "psnr_first": psnr(rev, first), "ssim_first": ssim(rev, first),
                                     "psnr_first_gt": psnr(first, clip.gt[lead]),
                                     "return_error_m": float(np.linalg.norm(clip.P[-1] - clip.P[lead])),
                                     "generation_s": round(clip.seconds, 3)})
                        strips.append((s.eval_label, mem, seed, proto, n / fps, first, rev, gt))
                        # sample video: the longest gap of the first protocol (and scene) that has a clip
                        prev = samples.get((s.eval_label, mem))
                        if prev is None or (prev.seed, prev.extra["protocol"]) == (seed, proto) and \
                                prev.extra["gap_s"] < n / fps:
                            clip.extra.update(protocol=proto, gap_s=n / fps, memory=mem)
                            samples[(s.eval_label, mem)] = clip
    return {"seeds": list(seeds), "protocols": plan, "rot_deg_per_frame": rot_deg, "lead_frames": lead,
            "summary": summarize(rows), "results": rows, "_strips": strips, "_samples": samples}


def _finite_mean(v: list[float]) -> float | None:
    """Mean of the finite values (identical frames give PSNR = inf; those are counted apart)."""
    f = [x for x in v if x is not None and np.isfinite(x)]
    return float(np.mean(f)) if f else None


def summarize(rows: list[dict]) -> dict:
    """{model: {memory: {gap_s: {n, psnr_gt, ssim_gt, psnr_first, ssim_first, psnr_first_gt}}}} (means)."""
    out: dict = {}
    done = [r for r in rows if "skipped" not in r]
    for r in done:
        out.setdefault(r["model"], {}).setdefault(r["memory"], {}).setdefault(f"{r['gap_s']:g}", []).append(r)
    keys = ("psnr_gt", "ssim_gt", "psnr_first", "ssim_first", "psnr_first_gt")
    return {m: {mem: {g: {"n": len(rs), **{k: _finite_mean([r[k] for r in rs]) for k in keys}}
                      for g, rs in sorted(gaps.items(), key=lambda kv: float(kv[0]))}
                for mem, gaps in mems.items()} for m, mems in out.items()}
