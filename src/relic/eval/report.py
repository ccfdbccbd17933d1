"""The evaluation report: ``report.json``, ``report.md``, plots and sample mp4s (``relic eval --out DIR``).

:func:`write_report` takes the dict of :func:`relic.eval.suites.run_suites` and writes, atomically:

* ``report.json`` — everything measured (keys starting with ``_`` are left out), unknowns as ``null``;
* ``report.md`` — the tables and the plots below;
* ``actions_trajectories_<label>.png`` — top-down trajectories per script (first scene): commanded, estimated
  from the generated video, and estimated from the ground-truth render (the noise floor), Sim(3)-aligned;
* ``actions_rpe.png`` — RPE translation / rotation bars per script: noise floor next to every model;
* ``memory_psnr_vs_gap.png`` — PSNR of the revisit frame (vs ground truth, vs the model's first visit)
  against the gap, memory on (solid) and off (dashed);
* ``memory_strips.png`` — frame strips first visit / revisit / ground truth, memory on and off;
* ``quality_psnr_early.png`` — per-frame PSNR against the ground truth over the first second;
* ``quality_horizon.png`` — PSNR gain over the frozen start frame at 1, 2, 5, 10 and 20 s of the wander
  script, per model, with issue 23's targets; ``quality_horizon_strip.png`` — its frames (ground truth |
  models | frozen) at those times in the first two scenes;
* ``speed.png`` — FPS and block time per horizon per model;
* ``distill.png`` — per clip: early-frame PSNR of teacher and student against the ground truth, and the
  student's speedup over the teacher (the 20x target dashed);
* ``stability.png`` — flicker, sharpness and process RSS per segment over stream time (dashed: ±10 % of
  segment 0 for the proxies; for RSS, the memory-flat limit over the second half);
* ``stability_strips.png`` — the start frame and the last frame of every segment of each model's stream;
* ``teacher_strip.png`` — the teacher gate: per scene ground truth | teacher | student | VAE round trip | frozen
  start frame, at the start and at each gate time;
* ``direction_strip.png`` — the gate's directions check in its first scene: per motion, the start frame and the
  last frames of the ground truth, the teacher, the student and the opposite motion's ground truth;
* ``videos/*.mp4`` — ground truth | generated, side by side (:mod:`relic.video`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from relic.fileio import atomic_path, save_figure, write_json_atomic, write_text_atomic


_SAMPLER_NAMES = {"euler": "Euler", "renoise": "re-noising (x0, then fresh noise)"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    return save_figure(fig, path, dpi=90, format="png")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "model"


def _fmt(x, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float) and not math.isfinite(x):
        return "inf" if x > 0 else "n/a"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _json_safe(x):
    """inf / nan -> None (JSON has neither); recursively."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items() if not str(k).startswith("_")}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


# ------------------------------------------------------------------------------------------------ plots
def plot_trajectories(actions: dict, out: Path) -> list[Path]:
    plt = _plt()
    written = []
    tracks = actions["_tracks"]
    for label in dict.fromkeys(t[0] for t in tracks):
        mine = [t for t in tracks if t[0] == label]
        seed0 = mine[0][1]
        shown = [t for t in mine if t[1] == seed0]
        cols = min(5, len(shown))
        rows = math.ceil(len(shown) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
        for ax in axes.ravel():
            ax.axis("off")
        for ax, (_, _, name, P, Pe, Pg) in zip(axes.ravel(), shown):
            ax.axis("on")
            ext = np.ptp(P, axis=0)
            side = ext[2] > max(ext[0], ext[1])
            i, j = ((0 if ext[0] >= ext[1] else 1), 2) if side else (0, 1)
            ax.plot(P[:, i], P[:, j], "k-", lw=2, label="commanded")
            ax.plot(P[0, i], P[0, j], "ko", ms=4)
            if np.ptp(P, axis=0).max() < 1e-6:
                ax.text(0.5, 0.5, "pure rotation: no path\n(see RPE-rot)", transform=ax.transAxes, ha="center",
                        fontsize=8)
            if np.isfinite(Pg).any():
                ax.plot(Pg[:, i], Pg[:, j], ":", color="gray", lw=1.5, label="estimated, ground truth")
            if np.isfinite(Pe).any():
                ax.plot(Pe[:, i], Pe[:, j], "r--", lw=1.5, label="estimated, generated")
            elif np.ptp(P, axis=0).max() >= 1e-6:
                ax.text(0.5, 0.1, "generated: no translation estimate", transform=ax.transAxes, ha="center",
                        fontsize=7)
            ax.set_title(name + (" (side view)" if side else ""), fontsize=9)
            ax.set_aspect("equal", adjustable="datalim")
            ax.tick_params(labelsize=6)
        axes.ravel()[0].legend(fontsize=6, loc="best")
        fig.suptitle(f"{label}: top-down trajectories (m), scene {seed0}, Sim(3)-aligned estimates")
        fig.tight_layout()
        written.append(_save(fig, out / f"actions_trajectories_{_slug(label)}.png"))
    return written


def plot_rpe(actions: dict, out: Path) -> Path:
    plt = _plt()
    floor = actions["noise_floor"]["summary"]["per_script"]
    names = [b["name"] for b in actions["battery"] if b["name"] in floor or any(
        b["name"] in m["summary"]["per_script"] for m in actions["models"].values())]
    series = [("noise floor (ground truth)", floor)] + [(k, v["summary"]["per_script"])
                                                        for k, v in actions["models"].items()]
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 0.9 * len(names) * len(series) / 2 + 4), 4.5))
    w = 0.8 / len(series)
    x = np.arange(len(names))
    for ax, key, ylabel in ((axes[0], "rpe_trans", "RPE translation (m, Sim(3), Δ=1)"),
                            (axes[1], "rpe_rot_deg", "RPE rotation (°, Δ=1)")):
        for k, (label, per) in enumerate(series):
            vals = [per.get(n, {}).get(key) for n in names]
            ax.bar(x + (k - (len(series) - 1) / 2) * w, [v if v is not None else 0.0 for v in vals], w,
                   label=label, color="gray" if k == 0 else f"C{k - 1}")
            for i, v in enumerate(vals):
                if v is None:
                    ax.text(x[i] + (k - (len(series) - 1) / 2) * w, 0, "n/a", ha="center", va="bottom",
                            fontsize=6, rotation=90)
        ax.set_xticks(x, names, rotation=70, fontsize=7)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("Action accuracy: RPE per script (mean over scenes), next to the estimator's noise floor")
    fig.tight_layout()
    return _save(fig, out / "actions_rpe.png")


def plot_memory(memory: dict, out: Path) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    summ = memory["summary"]
    for k, (label, mems) in enumerate(summ.items()):
        for mem, style in (("on", "o-"), ("off", "s--")):
            gaps = mems.get(mem, {})
            g = [float(x) for x in gaps]
            for ax, key in ((axes[0], "psnr_gt"), (axes[1], "psnr_first")):
                y = [gaps[x][key] for x in gaps]
                ax.plot(g, [v if v is not None else np.nan for v in y], style, color=f"C{k}",
                        label=f"{label}, memory {mem}")
    for ax, title in ((axes[0], "revisit vs ground truth"), (axes[1], "revisit vs the model's first visit")):
        ax.set_xlabel("revisit gap (s of video)")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if memory.get("window_s"):
            ax.axvline(memory["window_s"], color="gray", lw=0.8, ls=":")
    axes[0].legend(fontsize=7)
    fig.suptitle("Memory: PSNR of the revisit frame vs gap (dotted line: the rolling window's span)")
    fig.tight_layout()
    return _save(fig, out / "memory_psnr_vs_gap.png")


def plot_strips(memory: dict, out: Path, max_rows: int = 8) -> Path:
    plt = _plt()
    strips = memory["_strips"]
    by_key: dict = {}
    for s in strips:
        by_key.setdefault((s[0], s[2], s[3], s[4]), {})[s[1]] = s
    keys = list(by_key)
    # prefer the longest gaps: memory matters most there
    keys.sort(key=lambda k: -k[3])
    keys = keys[:max_rows // 2 if max_rows > 1 else 1]
    rows = []
    for k in keys:
        for mem in (True, False):
            if mem in by_key[k]:
                rows.append(by_key[k][mem])
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 1.9 * len(rows) + 0.5), squeeze=False)
    for r, (label, mem, seed, proto, gap, first, rev, gt) in enumerate(rows):
        for c, (img, title) in enumerate(((first, "first visit"), (rev, "revisit"), (gt, "ground truth"))):
            ax = axes[r, c]
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=9)
        axes[r, 0].set_ylabel(f"{label}\n{proto} {gap:g}s\nmem {'on' if mem else 'off'}", fontsize=7)
    fig.tight_layout()
    return _save(fig, out / "memory_strips.png")


def plot_quality(quality: dict, out: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for k, (label, m) in enumerate(quality["models"].items()):
        curves = [r["psnr_early"] for r in m["results"] if "skipped" not in r]
        if not curves:
            continue
        n = min(len(c) for c in curves)
        arr = np.array([c[:n] for c in curves], dtype=np.float64)
        arr[~np.isfinite(arr)] = np.nan
        ax.plot(np.arange(n), np.nanmean(arr, axis=0), "o-", color=f"C{k}", label=label)
    ax.set_xlabel("frame")
    ax.set_ylabel("PSNR vs ground truth (dB)")
    ax.set_title("Early frames against the ground-truth render (mean over clips)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out / "quality_psnr_early.png")


def plot_horizon(h: dict, out: Path) -> Path:
    """Gain over the frozen start frame vs time, per model, with the issue's targets."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    ts = h["times_s"]
    for k, (label, m) in enumerate(h["models"].items()):
        g = [np.nan if x is None else x for x in m["summary"]["gain_db"]]
        ax.plot(ts, g, "o-", color=f"C{k}", label=label)
    tg = [np.nan if x is None else x for x in h["target_db"]]
    ax.plot(ts, tg, "k_", markersize=18, mew=2, label="target")
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_xticks(ts, [f"{t:g}" for t in ts])
    ax.set_xlabel("time (s)")
    ax.set_ylabel("PSNR gain over the frozen start frame (dB)")
    ax.set_title(f"Beats copying: {h['seconds']:g} s {h['script']} script (mean over scenes)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out / "quality_horizon.png")


def plot_speed(speed: dict, out: Path) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for k, (label, m) in enumerate(speed["models"].items()):
        x = [h["seconds"] for h in m["horizons"]]
        axes[0].plot(x, [h["fps"] for h in m["horizons"]], "o-", color=f"C{k}", label=label)
        axes[1].plot(x, [h["block_ms_p50"] for h in m["horizons"]], "o-", color=f"C{k}", label=label)
    for ax, yl in ((axes[0], "frames per second (decode included)"), (axes[1], "block time p50 (ms)")):
        ax.set_xlabel("horizon (s of video already streamed)")
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    mc = speed["machine"]
    fig.suptitle(f"Speed on {mc['cpus']} CPUs (load average {mc['load_avg'][0]} at start)")
    fig.tight_layout()
    return _save(fig, out / "speed.png")


def plot_distill(distill: dict, out: Path) -> Path:
    plt = _plt()
    rows = [(label, r) for label, m in distill["models"].items() for r in m["results"] if "skipped" not in r]
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 1.2 * len(rows) + 5), 4))
    x = np.arange(len(rows))
    names = [f"{label}\n{r['clip']}\n{r['seed']}" for label, r in rows]
    for k, (key, name) in enumerate((("psnr_early_mean_teacher", "teacher"), ("psnr_early_mean_student", "student"))):
        vals = [r[key] if r[key] is not None else np.nan for _, r in rows]
        axes[0].bar(x + (k - 0.5) * 0.4, vals, 0.4, label=name, color="gray" if k == 0 else "C0")
    axes[0].set_ylabel(f"PSNR vs ground truth (dB), first {distill['early_seconds']:g} s w/o frame 0")
    axes[1].bar(x, [r["speedup"] for _, r in rows], 0.6, color="C1")
    axes[1].axhline(distill["targets"]["speedup"], color="k", ls="--", lw=1,
                    label=f"target {distill['targets']['speedup']:g}x")
    axes[1].set_ylabel("speedup (teacher s / student s)")
    for ax in axes:
        ax.set_xticks(x, names, fontsize=6)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Distillation: teacher ({distill['teacher']['steps']} "
                 f"{_SAMPLER_NAMES.get(distill['teacher'].get('sampler', 'euler'), 'Euler')} steps, CFG "
                 f"{distill['teacher']['guidance']:g}) vs student, per clip")
    fig.tight_layout()
    return _save(fig, out / "distill.png")


def plot_stability(st: dict, out: Path) -> Path:
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for k, (label, m) in enumerate(st["models"].items()):
        segs, summ = m["segments"], m["summary"]
        t = [s["t_end_s"] for s in segs]
        for ax, key in ((axes[0], "flicker"), (axes[1], "sharpness")):
            y = [s[key] if s[key] is not None else np.nan for s in segs]
            ax.plot(t, y, "o-", color=f"C{k}", label=label)
            if y and np.isfinite(y[0]):
                tol = summ["tolerances"]["quality"]
                for f in (1 - tol, 1 + tol):
                    ax.axhline(y[0] * f, color=f"C{k}", ls="--", lw=0.8)
        axes[2].plot(t, [s["rss_mib"] for s in segs], "o-", color=f"C{k}", label=label)
        mid = summ["mid_segment"]
        limit = segs[mid]["rss_mib"] + summ["tolerances"]["rss"] * segs[0]["rss_mib"]
        axes[2].hlines(limit, t[mid], t[-1], color=f"C{k}", ls="--", lw=0.8)
    for ax, yl in ((axes[0], "temporal flicker (1 = no change)"), (axes[1], "sharpness (Laplacian variance)"),
                   (axes[2], "process RSS (MiB)")):
        ax.set_xlabel("stream time at the segment's end (s)")
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"Stability over a {st['seconds']:g} s stream ({st['segment_s']:g} s segments; dashed: ±10 % of "
                 "segment 0, and the RSS limit of memory_flat over the second half)", fontsize=10)
    fig.tight_layout()
    return _save(fig, out / "stability.png")


def plot_stability_strips(st: dict, out: Path, max_cols: int = 8) -> Path:
    plt = _plt()
    strips = st["_strips"]
    n = max(len(f) for _, f in strips.values())
    cols = sorted(set(np.linspace(0, n - 1, min(n, max_cols - 1)).round().astype(int).tolist()))
    fig, axes = plt.subplots(len(strips), len(cols) + 1, figsize=(1.8 * (len(cols) + 1), 1.4 * len(strips) + 0.5),
                             squeeze=False)
    seg_s = st["models"][next(iter(strips))]["segments"]
    for r, (label, (frame0, frames)) in enumerate(strips.items()):
        for c, (img, title) in enumerate([(frame0, "start")] + [(frames[i], f"{seg_s[i]['t_end_s']:g} s")
                                                                for i in cols if i < len(frames)]):
            ax = axes[r, c]
            ax.imshow(img)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, fontsize=7)
        axes[r, 0].set_ylabel(label, fontsize=7)
    fig.tight_layout()
    return _save(fig, out / "stability_strips.png")


def _save_png(img: np.ndarray, path: Path) -> Path:
    """Write a uint8 (h w 3) image as an optimized PNG, atomically."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(img).save(tmp, format="PNG", optimize=True)
    return path


def save_teacher_strip(teacher: dict, out: Path) -> Path:
    """The teacher gate's strip (uint8 image, :func:`relic.eval.suites.teacher.strip`) as a PNG."""
    return _save_png(teacher["_strip"], out / "teacher_strip.png")


def save_horizon_strip(h: dict, out: Path) -> Path:
    """The horizon's strip (:mod:`relic.eval.suites.horizon`: ground truth | models | frozen) as a PNG."""
    return _save_png(h["_strip"], out / "quality_horizon_strip.png")


def save_direction_strip(teacher: dict, out: Path) -> Path | None:
    """The directions check's strip (:func:`relic.eval.suites.teacher.direction_strip`) as a PNG, if any."""
    img = (teacher.get("directions") or {}).get("_strip")
    if img is None or img.shape[0] < 2:
        return None
    return _save_png(img, out / "direction_strip.png")


# ------------------------------------------------------------------------------------------------ videos
def write_videos(report: dict, out: Path, fps: int, per_model: int = 2) -> list[Path]:
    """Ground truth | generated side-by-side mp4s: per model its first ``per_model`` stored clips (actions /
    quality) plus, from the memory suite, the longest-gap revisit clip with memory on and off."""
    from relic.video import write_mp4

    cache = report.get("_clips")
    items = cache.items() if cache is not None else []
    samples = report.get("memory", {}).get("_samples", {})
    labels = list(dict.fromkeys([k[0] for k, _ in items] + [k[0] for k in samples]))
    chosen: list[tuple[str, bool, object]] = []
    for label in labels:
        chosen += [(label, k[1], c) for k, c in items if k[0] == label][:per_model]
        chosen += [(label, mem, samples[(label, mem)]) for mem in (True, False) if (label, mem) in samples]
    paths: list[Path] = []
    for label, mem, clip in chosen:
        path = out / "videos" / f"{_slug(label)}_{_slug(clip.name)}_seed{clip.seed}_mem{'on' if mem else 'off'}.mp4"
        if path in paths:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        write_mp4(path, np.concatenate([clip.gt, clip.frames], axis=2), fps=fps)
        paths.append(path)
    return paths


# ------------------------------------------------------------------------------------------------ markdown
def _md_actions(a: dict, lines: list[str]) -> None:
    lines += ["## Actions", "",
              f"Held-out scenes {a['seeds']}; {len(a['battery'])} scripts. RPE after Sim(3) alignment, Δ = 1 frame "
              "(translation in metres of the commanded path, rotation in degrees); `n/a` = not observable (pure "
              "rotation) or nothing could be estimated. The noise floor is the same estimator on the ground-truth "
              "render of the same trajectory.", ""]
    labels = list(a["models"])
    head = "| script | floor RPE-t | floor RPE-r | " + " | ".join(f"{m} RPE-t | {m} RPE-r" for m in labels) + " |"
    lines += [head, "|" + "---|" * (3 + 2 * len(labels))]
    floor = a["noise_floor"]["summary"]
    for b in a["battery"]:
        n = b["name"]
        f = floor["per_script"].get(n, {})
        cells = [n, _fmt(f.get("rpe_trans")), _fmt(f.get("rpe_rot_deg"))]
        for m in labels:
            p = a["models"][m]["summary"]["per_script"].get(n, {})
            cells += [_fmt(p.get("rpe_trans")), _fmt(p.get("rpe_rot_deg"))]
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["**all**", _fmt(floor.get("rpe_trans")), _fmt(floor.get("rpe_rot_deg"))]
    for m in labels:
        s = a["models"][m]["summary"]
        cells += [_fmt(s.get("rpe_trans")), _fmt(s.get("rpe_rot_deg"))]
    lines += ["| " + " | ".join(cells) + " |", ""]
    lines += ["Direction accuracy per motion (matched / scripts; unknown = nothing measurable):", "",
              "| model | " + " | ".join(["motion", "matched", "unknown", "accuracy"]) + " |", "|---|---|---|---|---|"]
    for m in labels:
        for motion, d in a["models"][m]["direction_accuracy"].items():
            lines.append(f"| {m} | {motion} | {d['matched']}/{d['n']} | {d['unknown']} | {d['accuracy']:.0%} |")
    lines.append("")


def _md_memory(mem: dict, lines: list[str]) -> None:
    lines += ["## Memory", "",
              f"Held-out scenes {mem['seeds']}; protocols "
              f"{', '.join(sorted({p['protocol'] for p in mem['protocols']}))}; the rolling window spans "
              f"{_fmt(mem.get('window_s'), 2)} s. Memory off = window-only student (the first frame stays). PSNR "
              "(dB) / SSIM of the revisit frame against the ground truth and against the model's own first "
              "visit; means over scenes and protocols.", "",
              "| model | memory | gap (s) | n | PSNR gt | SSIM gt | PSNR first | SSIM first | first-visit PSNR gt |",
              "|---|---|---|---|---|---|---|---|---|"]
    for label, mems in mem["summary"].items():
        for m, gaps in mems.items():
            for g, r in gaps.items():
                lines.append(f"| {label} | {m} | {g} | {r['n']} | {_fmt(r['psnr_gt'], 2)} | {_fmt(r['ssim_gt'])} | "
                             f"{_fmt(r['psnr_first'], 2)} | {_fmt(r['ssim_first'])} | {_fmt(r['psnr_first_gt'], 2)} |")
    skipped = [r for r in mem["results"] if "skipped" in r]
    if skipped:
        lines += ["", f"{len(skipped)} (scene, protocol, gap, model, memory) runs skipped: "
                  + "; ".join(sorted({f"{r['protocol']} @ {r['gap_s']:g} s: {r['skipped']}" for r in skipped}))]
    lines.append("")


def _md_quality(q: dict, lines: list[str]) -> None:
    lines += ["## Quality", "",
              f"Clips {', '.join(q['clips'])} in scenes {q['seeds']}. Flicker and smoothness: 1 = no change / "
              "perfectly smooth (VBench formulas; smoothness is the flow-interpolation proxy); sharpness: variance "
              f"of the Laplacian; early PSNR/SSIM: mean over frames 1…{q['early_seconds']:g} s against the ground "
              "truth.", "",
              "| | clips | flicker (static clip) | flicker (all) | smoothness | sharpness | PSNR early | SSIM early |"
              + (" LPIPS early |" if q["lpips"] == "computed" else ""),
              "|---|---|---|---|---|---|---|---|" + ("---|" if q["lpips"] == "computed" else "")]
    rows = [("ground truth", q["ground_truth"]["summary"])] + [(k, v["summary"]) for k, v in q["models"].items()]
    for label, s in rows:
        line = (f"| {label} | {s['n_clips']} | {_fmt(s.get('flicker_static'), 4)} | {_fmt(s.get('flicker'), 4)} | "
                f"{_fmt(s.get('smoothness'), 4)} | {_fmt(s.get('sharpness'), 1)} | {_fmt(s.get('psnr_early_mean'), 2)} | "
                f"{_fmt(s.get('ssim_early_mean'))} |")
        if q["lpips"] == "computed":
            line += f" {_fmt(s.get('lpips_early_mean'))} |"
        lines.append(line)
    if q["lpips"] != "computed":
        lines += ["", f"LPIPS: {q['lpips']}. VBench imaging / aesthetic scores are not computed (they need "
                  "network weights)."]
    if "horizon" in q:
        _md_horizon(q["horizon"], lines)
    lines.append("")


def _md_horizon(h: dict, lines: list[str]) -> None:
    ts = h["times_s"]
    target = " / ".join(f"{'+' if x > 0 else '≥ '}{x:g}" if x is not None else "—" for x in h["target_db"])
    lines += ["", f"**Beats copying** ({h['seconds']:g} s {h['script']} script from each scene's start frame; PSNR vs "
              "ground truth averaged over ±0.25 s around each time, beside the frozen start frame; target gain "
              f"{target} dB at {' / '.join(f'{t:g}' for t in ts)} s):", "",
              "| model | scenes | " + " | ".join(f"PSNR {t:g} s" for t in ts) + " | "
              + " | ".join(f"gain {t:g} s" for t in ts) + " | target met |",
              "|---|---|" + "---|" * (2 * len(ts) + 1)]
    for label, m in h["models"].items():
        s = m["summary"]
        met = s["target_met"]
        verdict = "n/a" if all(x is None for x in met) else f"{sum(bool(x) for x in met)} of {len(met)} times"
        lines.append(f"| {label} | {s['n_scenes']} | " + " | ".join(_fmt(x, 2) for x in s["psnr"]) + " | "
                     + " | ".join(_fmt(x, 2) for x in s["gain_db"]) + f" | {verdict} |")
    lines += ["", "Frozen start frame PSNR: " + ", ".join(
        f"{_fmt(x, 2)} dB at {t:g} s" for t, x in zip(ts, next(iter(h["models"].values()))["summary"]["psnr_frozen"]))
        + "."]


def _md_speed(sp: dict, lines: list[str]) -> None:
    mc = sp["machine"]
    lines += ["## Speed", "",
              f"`relic bench stream`'s measurement ({sp['blocks']} timed blocks per horizon) on {mc['cpus']} CPUs, "
              f"torch {mc['torch']}, {mc['threads']} threads, load average {mc['load_avg']} → "
              f"{mc.get('load_avg_end')} (wall-clock timing: read it next to the load).", "",
              "| model | horizon (s) | FPS | block p50 (ms) | block p95 (ms) | action latency (ms) | CPU ms p50 | "
              "KV tokens | KV MiB |", "|---|---|---|---|---|---|---|---|---|"]
    for label, m in sp["models"].items():
        for h in m["horizons"]:
            lines.append(f"| {label} | {h['seconds']:g} | {h['fps']} | {h['block_ms_p50']} | {h['block_ms_p95']} | "
                         f"{h['action_latency_ms']} | {h.get('cpu_ms_p50', 'n/a')} | {h['kv_tokens']} | "
                         f"{h['kv_bytes'] / 2**20:.1f} |")
    lines.append("")


def _md_distill(d: dict, lines: list[str]) -> None:
    t = d["teacher"]
    lines += ["## Distillation (teacher vs student)", "",
              f"Clips {', '.join(d['clips'])} in scenes {d['seeds']}, from the same first frame, caption, actions "
              f"and poses. Teacher: {t['steps']} {_SAMPLER_NAMES.get(t.get('sampler', 'euler'), t.get('sampler'))} "
              f"steps with CFG {t['guidance']:g} (shift {t['shift']:g}), "
              "decoded by the full VAE; student: the streamed clip (its own decoder). Time: wall clock of the "
              f"whole clip. PSNR: mean over the first {d['early_seconds']:g} s but frame 0, against the ground "
              "truth. Targets: "
              f"speedup ≥ {d['targets']['speedup']:g}x and PSNR loss ≤ {d['targets']['psnr_loss_db']:g} dB.", "",
              "| model | clips | teacher (s) | student (s) | speedup (median) | PSNR teacher | PSNR student | "
              "loss (dB) | speedup target | PSNR target |", "|---|---|---|---|---|---|---|---|---|---|"]
    for label, m in d["models"].items():
        s = m["summary"]
        ok = s["meets_target"]
        lines.append(f"| {label} | {s['n_clips']} | {_fmt(s['teacher_s_mean'], 2)} | {_fmt(s['student_s_mean'], 2)} | "
                     f"{_fmt(s['speedup_median'], 1)} | {_fmt(s['psnr_early_mean_teacher'], 2)} | "
                     f"{_fmt(s['psnr_early_mean_student'], 2)} | {_fmt(s['psnr_loss_db'], 2)} | "
                     f"{'met' if ok['speedup_20x'] else 'not met'} | {'met' if ok['psnr_loss_1.5db'] else 'not met'} |")
    lines.append("")


def _md_stability(st: dict, lines: list[str]) -> None:
    lines += ["## Stability (long stream)", ""]
    if "skipped" in st:
        lines += [f"Skipped: {st['skipped']}.", ""]
        return
    lines += [f"One {st['seconds']:g} s stream per model from scene {st['seed']} (a cycle of "
              f"{len(st['motions'])} motions replayed in every {st['segment_s']:g} s segment). Deviation: "
              "max over later segments of |x / x₀ − 1| against segment 0. memory_flat: RSS growth over the "
              "second half < 5 % of segment 0's RSS, and stored K/V bytes growing ≤ 5 % over the second half. "
              "Saturation: mean HSV saturation of a segment's frames over the ground-truth start frame's, for the "
              "first and the last segment and the lowest of all (1 = as colourful; grey → 0).", "",
              "| model | segments | flicker dev | sharpness dev | within 10 % | saturation first / last / min | "
              "RSS start (MiB) | RSS growth (MiB) | 2nd-half growth (MiB) | KV end (MiB) | archive_latents | memory flat |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, m in st["models"].items():
        s = m["summary"]
        w = s["within_10pct"]
        lines.append(f"| {label} | {s['segments']} | {_fmt(s['flicker_max_rel_dev'], 3)} | "
                     f"{_fmt(s['sharpness_max_rel_dev'], 3)} | {'yes' if w['all'] else 'no'} | "
                     f"{_fmt(s.get('saturation_ratio_first'), 2)} / {_fmt(s.get('saturation_ratio_last'), 2)} / "
                     f"{_fmt(s.get('saturation_ratio_min'), 2)} | "
                     f"{s['rss_start_mib']:.0f} | {s['rss_growth_mib']:.1f} | {s['rss_growth_second_half_mib']:.1f} | "
                     f"{s['kv_bytes_end'] / 2**20:.2f} | {m['memory_config']['archive_latents']} | "
                     f"{'yes' if s['memory_flat'] else 'no'} |")
    lines.append("")


def _md_teacher(tg: dict, lines: list[str]) -> None:
    t, s = tg["teacher"], tg["summary"]
    times = tg["times_s"]
    lines += ["## Teacher gate", "",
              f"The teacher, {t['steps']} {_SAMPLER_NAMES.get(t.get('sampler', 'euler'), t.get('sampler'))} steps "
              f"with CFG {t['guidance']:g} (shift {t['shift']:g}), from the "
              f"single-image latent of the ground-truth start frame of held-out scenes {tg['seeds']} "
              f"({s['n_scenes']} with a start pose), script {tg['script']}, decoded by {tg['model']}'s VAE; "
              f"the student: {tg['model']} streaming the same script from the same start frame. "
              "Frozen: the start frame repeated. Ratios: generated / ground truth (mean HSV saturation; variance "
              "of the Laplacian); 1 = as colourful / as sharp.", "",
              "| | " + " | ".join(f"{x:g} s" for x in times) + " |", "|---" * (len(times) + 1) + "|"]
    for key, name, d in (("psnr_teacher", "PSNR teacher (dB)", 2), ("psnr_frozen", "PSNR frozen (dB)", 2),
                         ("psnr_gain_db", "teacher − frozen (dB)", 2), ("saturation_ratio", "saturation ratio", 3),
                         ("sharpness_ratio", "sharpness ratio", 3),
                         ("psnr_student", "PSNR student (dB)", 2), ("student_gain_db", "student − frozen (dB)", 2),
                         ("student_vs_teacher_db", "student − teacher (dB)", 2),
                         ("saturation_ratio_student", "saturation ratio, student", 3),
                         ("sharpness_ratio_student", "sharpness ratio, student", 3),
                         ("psnr_vae", "PSNR VAE round trip (dB)", 2),
                         ("saturation_ratio_vae", "saturation ratio, VAE round trip", 3),
                         ("sharpness_ratio_vae", "sharpness ratio, VAE round trip", 3)):
        if key in s:
            lines.append(f"| {name} | " + " | ".join(_fmt(x, d) for x in s[key]) + " |")
    lines += ["", "The VAE round trip (the ground-truth clip encoded and decoded) is the ceiling of any generator "
              "in this latent space.", ""]
    _md_teacher_directions(tg.get("directions"), lines)


def _md_teacher_directions(dirs: dict | None, lines: list[str]) -> None:
    """The gate's direction table: per motion, scripts matched by teacher, student and the ground truth."""
    if not dirs or not dirs["teacher"]["n_motions"]:
        return
    who = ("teacher", "student", "ground_truth")
    lines += ["### Directions: teacher and student on the 12 single motions", "",
              "Each scene's ground-truth start frame, 25 frames of one motion; the actions suite's pose estimator "
              "on each clip. Scripts whose estimated motion is the commanded one (matched / scripts); the ground "
              "truth's own is the estimator's noise floor.", "",
              "| motion | teacher | student | ground truth |", "|---|---|---|---|"]
    for m in dirs["teacher"]["direction_accuracy"]:
        cells = []
        for w in who:
            d = dirs[w]["direction_accuracy"].get(m)
            cells.append(f"{d['matched']}/{d['n']}" if d else "–")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines.append("| motions ≥ 90 % | " + " | ".join(f"{dirs[w]['motions_at_90']} of {dirs[w]['n_motions']}"
                                                 for w in who) + " |")
    lines.append("| RPE-rot (°) | " + " | ".join(_fmt(dirs[w]["rpe_rot_deg"], 3) for w in who) + " |")
    lines += ["", "Without the estimator (generated frames are blurred): per motion, how much closer (dB) the clip's "
              "last frame is to its own motion's ground truth than to the opposite motion's, rendered from the same "
              "start, beyond what the start frame scores (0: the start frame's answer; > 0: moved the commanded way).",
              "", "| motion | teacher (dB) | student (dB) |", "|---|---|---|"]
    for m in dirs["teacher"]["direction_accuracy"]:
        lines.append(f"| {m} | " + " | ".join(_fmt(dirs[w].get("contrast_db", {}).get(m), 2)
                                             for w in ("teacher", "student")) + " |")
    lines.append("| mean | " + " | ".join(_fmt(dirs[w].get("contrast_db_mean"), 2) for w in ("teacher", "student"))
                 + " |")
    lines.append("")


def markdown(report: dict, plots: list[Path], videos: list[Path], out: Path) -> str:
    lines = ["# RELIC evaluation report", "",
             f"Created {report['created_utc']}; suites: {', '.join(report['suites'])}"
             + (" (**quick**: tiny batteries, not a measurement)" if report["quick"] else "") + ".", "",
             "| model | source | memory | config | resolution |", "|---|---|---|---|---|"]
    for m in report["models"]:
        lines.append(f"| {m['label']} | `{m['source']}` | {m['memory']} | {m['name']} "
                     f"(dim {m['dit']['dim']}, {m['dit']['layers']} layers) | {m['resolution'][1]}x{m['resolution'][0]} "
                     f"@ {m['fps']} fps |")
    ho = report["held_out"]
    lines += ["", f"Held-out world seeds: actions/quality/distill/teacher {ho['actions']}, memory {ho['memory']}"
              + (f", stability {ho['stability']}" if ho.get("stability") else "") + f" ({ho['note']}).", ""]
    names = {p.name for p in plots}

    def img(name: str, alt: str) -> None:
        if name in names:
            lines.extend([f"![{alt}]({name})", ""])

    if "actions" in report:
        _md_actions(report["actions"], lines)
        img("actions_rpe.png", "RPE per script")
        for p in plots:
            if p.name.startswith("actions_trajectories_"):
                img(p.name, "trajectories")
    if "memory" in report:
        _md_memory(report["memory"], lines)
        img("memory_psnr_vs_gap.png", "PSNR vs revisit gap")
        img("memory_strips.png", "first visit / revisit / ground truth")
    if "quality" in report:
        _md_quality(report["quality"], lines)
        img("quality_psnr_early.png", "early-frame PSNR")
        if "horizon" in report["quality"]:
            img("quality_horizon.png", "gain over the frozen start frame vs time")
            img("quality_horizon_strip.png", "ground truth / models / frozen along the wander script")
    if "speed" in report:
        _md_speed(report["speed"], lines)
        img("speed.png", "speed")
    if "distill" in report:
        _md_distill(report["distill"], lines)
        img("distill.png", "teacher vs student")
    if "stability" in report:
        _md_stability(report["stability"], lines)
        img("stability.png", "stability over the stream")
        img("stability_strips.png", "frames along the stream")
    if "teacher" in report:
        _md_teacher(report["teacher"], lines)
        img("teacher_strip.png", "ground truth | teacher | student | VAE round trip | frozen")
        img("direction_strip.png", "per motion, last frame: start | ground truth | teacher | student | "
                                   "the opposite motion's ground truth")
    if videos:
        lines += ["## Sample videos (ground truth | generated)", ""]
        lines += [f"* [{v.name}]({v.relative_to(out).as_posix()})" for v in videos]
        lines.append("")
    lines += [f"Suite wall time (s): {report['timing_s']}.", ""]
    return "\n".join(lines)


def write_report(report: dict, out_dir: str | Path, videos: bool = True) -> list[Path]:
    """Write report.json, report.md, the plots and sample videos into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots: list[Path] = []
    if "actions" in report:
        plots += plot_trajectories(report["actions"], out)
        plots.append(plot_rpe(report["actions"], out))
    if "memory" in report:
        plots.append(plot_memory(report["memory"], out))
        if report["memory"]["_strips"]:
            plots.append(plot_strips(report["memory"], out))
    if "quality" in report:
        plots.append(plot_quality(report["quality"], out))
        if "horizon" in report["quality"]:
            plots.append(plot_horizon(report["quality"]["horizon"], out))
            if "_strip" in report["quality"]["horizon"]:
                plots.append(save_horizon_strip(report["quality"]["horizon"], out))
    if "speed" in report:
        plots.append(plot_speed(report["speed"], out))
    if "distill" in report and any("skipped" not in r for m in report["distill"]["models"].values()
                                   for r in m["results"]):
        plots.append(plot_distill(report["distill"], out))
    if report.get("stability", {}).get("models"):
        plots.append(plot_stability(report["stability"], out))
        plots.append(plot_stability_strips(report["stability"], out))
    if report.get("teacher", {}).get("summary", {}).get("n_scenes"):
        plots.append(save_teacher_strip(report["teacher"], out))
        strip_path = save_direction_strip(report["teacher"], out)
        if strip_path is not None:
            plots.append(strip_path)
    vids = write_videos(report, out, report["models"][0]["fps"]) if videos else []
    data = _json_safe(report)
    data["plots"] = [p.name for p in plots]
    data["videos"] = [v.relative_to(out).as_posix() for v in vids]
    md = markdown(report, plots, vids, out)
    write_text_atomic(out / "report.md", md)
    write_json_atomic(out / "report.json", data)
    return [out / "report.json", out / "report.md", *plots, *vids]
