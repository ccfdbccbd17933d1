"""Curation filters (paper §3.2): camera motion, viewpoint stability, exposure and render quality.

Each filter has a name, thresholds in :class:`FilterConfig` and returns a :class:`Finding` (the frames it
flags and a one-line reason). :func:`filter_clip` runs them all and turns the findings into a
:class:`ClipVerdict`: a filter in ``FilterConfig.cut`` removes its flagged frames and the clip survives as its
clean segments (each at least ``min_segment_frames`` long); any other filter that flags a frame rejects the
whole clip.

Filters (names as they appear in reports):

================= ======================================================================================
``pan_speed``      angular speed |ω| (deg/s) of the step k−1→k above ``max_angular_speed`` or linear speed
                   (m/s) above ``max_speed``. Flags frame k.
``abrupt_rotation`` angular acceleration |ω_{k+1} − ω_k|·fps (deg/s²) above ``max_angular_accel``.
``velocity_profile`` linear acceleration (m/s²) above ``max_linear_accel``: speed spikes, stop-and-go
                   stutters, teleports.
``jitter``         high-frequency energy of the pose signal: the per-step linear and angular velocities minus
                   their running median over ``jitter_window`` frames, as an RMS over ``jitter_rms_window``
                   frames. A median keeps ramps, clean starts and stops and short smooth bursts, and removes
                   what changes direction from frame to frame, so this measures energy near the frame rate's
                   Nyquist band (≳ fps/4 Hz): micro-jitter and fast oscillatory drift. Slow drift (a few Hz
                   at 16 fps) looks like operator motion and is not flagged.
``near_collision`` (only with depth.npz) the ``near_percentile`` of the central crop's depth below
                   ``min_depth`` metres.
``exposure``       fraction of clipped pixels: luma ≥ ``overexposed_level`` or ≤ ``underexposed_level`` on
                   more than ``max_clipped_fraction`` of the frame; or an exposure level that differs from
                   frame 0's by more than ``max_exposure_ratio`` (×) after sudden jumps: the gain of each
                   jump (ratio of mean luma across it) is accumulated, so a run of frames that was suddenly
                   brightened or darkened is flagged as a whole even where few pixels clip.
``exposure_jump``  mean luma changing by more than ``max_luma_jump`` (0–255) between consecutive frames.
``frozen``         a frame (nearly) identical to the previous one while the camera moved: mean absolute
                   difference below ``frozen_abs`` and below ``frozen_ratio`` × the clip's median
                   difference, with a pose step that should move the picture: a rotation of at least
                   ``frozen_min_pixels`` pixels (angle · fx) or a translation of ``frozen_min_translation``.
``black``          more than ``black_fraction`` of the pixels darker than ``black_level``.
``pop``            a sudden change of the picture not explained by neighbouring frames: the difference
                   d(k−1,k) exceeds ``pop_ratio`` × both neighbouring differences (a persistent pop), or
                   d(k−1,k) and d(k,k+1) both exceed ``pop_ratio`` × d(k−1,k+1) (a one-frame glitch); in both
                   cases also above ``pop_min`` grey levels.
================= ======================================================================================

All thresholds are per-second quantities where it matters, so they hold at any fps. The defaults pass
normal operator motion (walking-speed translation, pans of tens of degrees per second).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import median_filter, uniform_filter1d
from scipy.spatial.transform import Rotation

from relic.camera.trajectory import Trajectory

FILTER_NAMES: tuple[str, ...] = ("pan_speed", "abrupt_rotation", "velocity_profile", "jitter", "near_collision",
                                 "exposure", "exposure_jump", "frozen", "black", "pop")


@dataclass
class FilterConfig:
    """Thresholds of the curation filters (see the module docstring for what each one measures)."""

    # camera motion
    max_angular_speed: float = 230.0       # deg/s; operator pans are tens of deg/s, turn-backs reach ~200
    max_speed: float = 4.0                 # m/s; walking is ~1.4 m/s
    max_angular_accel: float = 1500.0      # deg/s²; an 8° snap in one frame at 16 fps is ~2000 deg/s²
    max_linear_accel: float = 15.0         # m/s²; the world's operator stays below ~11
    # viewpoint stability
    jitter_window: int = 3                 # frames of the running median (odd)
    jitter_rms_window: int = 8             # frames of the RMS window
    max_jitter_speed: float = 0.2          # m/s RMS of the high-frequency linear velocity
    max_jitter_angular: float = 8.0        # deg/s RMS of the high-frequency angular velocity
    min_depth: float = 0.25                # m
    near_percentile: float = 10.0          # percentile of the central crop's depth
    near_crop: float = 0.5                 # central crop, fraction of width and height
    # exposure
    overexposed_level: int = 250
    underexposed_level: int = 16           # video black level
    max_clipped_fraction: float = 0.4
    max_luma_jump: float = 30.0            # grey levels of mean luma between consecutive frames
    max_exposure_ratio: float = 1.8        # exposure gain accumulated over jumps, relative to frame 0
    # render quality
    frozen_abs: float = 0.2                # grey levels of mean |difference|
    frozen_ratio: float = 0.1
    frozen_min_pixels: float = 0.5         # rotation step in pixels at the image centre (angle · fx)
    frozen_min_translation: float = 0.02   # m
    black_level: int = 16
    black_fraction: float = 0.98
    pop_ratio: float = 2.5
    pop_min: float = 12.0                  # grey levels of mean |difference|
    # decisions
    cut: tuple[str, ...] = ("pan_speed", "abrupt_rotation", "velocity_profile", "near_collision", "exposure",
                            "exposure_jump", "frozen", "black", "pop")
    min_segment_frames: int = 17           # shortest clean segment kept when cutting (1 + 4k)
    enabled: tuple[str, ...] = FILTER_NAMES

    def __post_init__(self) -> None:
        for name in tuple(self.cut) + tuple(self.enabled):
            if name not in FILTER_NAMES:
                raise ValueError(f"unknown filter {name!r} (choose from {', '.join(FILTER_NAMES)})")


@dataclass
class Finding:
    """What one filter found in one clip: the flagged frames (sorted) and a one-line reason."""

    name: str
    frames: list[int]
    reason: str


@dataclass
class ClipVerdict:
    """Outcome for one clip.

    Attributes:
        kept: True when at least one clean segment survives.
        segments: kept frame ranges [start, stop); the whole clip when nothing was flagged.
        findings: every filter that flagged something.
        rejected_by: names of the filters that rejected the whole clip (empty when kept, or when it was cut
            into nothing, in which case ``findings`` explains why).
    """

    name: str
    num_frames: int
    kept: bool
    segments: list[tuple[int, int]]
    findings: list[Finding] = field(default_factory=list)
    rejected_by: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "num_frames": self.num_frames, "kept": self.kept,
                "segments": [list(s) for s in self.segments], "rejected_by": self.rejected_by,
                "findings": [{"name": f.name, "frames": f.frames, "reason": f.reason} for f in self.findings]}


# --- signals ---------------------------------------------------------------------------------------------

def angular_velocity(R: np.ndarray, fps: float) -> np.ndarray:
    """(T, 3, 3) world-to-camera rotations -> (T-1, 3) angular velocity of each step in the camera frame, deg/s."""
    dR = np.einsum("tij,tkj->tik", R[1:], R[:-1])                # R_{k} R_{k-1}^T
    return np.rad2deg(Rotation.from_matrix(dR).as_rotvec()) * fps


def linear_velocity(P: np.ndarray, fps: float) -> np.ndarray:
    """(T, 3) positions -> (T-1, 3) velocity of each step, m/s."""
    return np.diff(P, axis=0) * fps


def luma(frames: np.ndarray) -> np.ndarray:
    """uint8 (f h w c) RGB -> float32 (f h w) Rec.601 luma in 0..255."""
    f = frames.astype(np.float32)
    return f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114


def frame_differences(frames: np.ndarray, lag: int = 1) -> np.ndarray:
    """uint8 (f h w c) -> (f-lag,) mean |frame_k − frame_{k-lag}| over pixels and channels (grey levels)."""
    out = np.empty(max(0, len(frames) - lag), np.float64)
    for k in range(len(out)):
        out[k] = np.abs(frames[k + lag].astype(np.int16) - frames[k]).mean()
    return out


def _step_flags(mask_steps: np.ndarray, T: int) -> np.ndarray:
    """A flag on step k-1→k (index k-1) marks frame k."""
    out = np.zeros(T, bool)
    out[1:] = mask_steps
    return out


def _frames(mask: np.ndarray) -> list[int]:
    return [int(i) for i in np.flatnonzero(mask)]


def format_frames(frames: list[int], limit: int = 6) -> str:
    """[3, 4, 5, 9] -> '3–5, 9' (at most ``limit`` ranges, then '…')."""
    if not frames:
        return ""
    runs, start, prev = [], frames[0], frames[0]
    for f in frames[1:] + [None]:
        if f is not None and f == prev + 1:
            prev = f
            continue
        runs.append(f"{start}" if start == prev else f"{start}–{prev}")
        if f is not None:
            start = prev = f
    return ", ".join(runs[:limit]) + (", …" if len(runs) > limit else "")


def _finding(name: str, mask: np.ndarray, what: str, values: np.ndarray, unit: str, limit: float) -> Finding | None:
    if not mask.any():
        return None
    frames = _frames(mask)
    peak = float(np.max(values[mask]))
    return Finding(name, frames, f"{what} {peak:.3g} {unit} > {limit:g} at frames {format_frames(frames)}")


# --- filters ---------------------------------------------------------------------------------------------

def check_pan_speed(traj: Trajectory, cfg: FilterConfig) -> Finding | None:
    w = np.linalg.norm(angular_velocity(traj.R, traj.fps), axis=-1)
    v = np.linalg.norm(linear_velocity(traj.P, traj.fps), axis=-1)
    rot, lin = _step_flags(w > cfg.max_angular_speed, len(traj)), _step_flags(v > cfg.max_speed, len(traj))
    if rot.any():
        f = _finding("pan_speed", rot, "angular speed", np.r_[0, w], "deg/s", cfg.max_angular_speed)
        if lin.any():
            f.frames = _frames(rot | lin)
            f.reason += f"; speed {v.max():.3g} m/s > {cfg.max_speed:g}"
        return f
    return _finding("pan_speed", lin, "speed", np.r_[0, v], "m/s", cfg.max_speed)


def check_abrupt_rotation(traj: Trajectory, cfg: FilterConfig) -> Finding | None:
    if len(traj) < 3:
        return None
    w = angular_velocity(traj.R, traj.fps)
    acc = np.linalg.norm(np.diff(w, axis=0), axis=-1) * traj.fps   # (T-2,), centred on frames 1..T-2
    mask = np.zeros(len(traj), bool)
    mask[1:-1] = acc > cfg.max_angular_accel
    return _finding("abrupt_rotation", mask, "angular acceleration", np.r_[0, acc, 0], "deg/s²",
                    cfg.max_angular_accel)


def check_velocity_profile(traj: Trajectory, cfg: FilterConfig) -> Finding | None:
    if len(traj) < 3:
        return None
    v = linear_velocity(traj.P, traj.fps)
    acc = np.linalg.norm(np.diff(v, axis=0), axis=-1) * traj.fps
    mask = np.zeros(len(traj), bool)
    mask[1:-1] = acc > cfg.max_linear_accel
    return _finding("velocity_profile", mask, "linear acceleration", np.r_[0, acc, 0], "m/s²", cfg.max_linear_accel)


def _high_frequency_rms(x: np.ndarray, window: int, rms_window: int) -> np.ndarray:
    """(n, 3) signal -> (n,) running RMS of |x − running median(x)|."""
    resid = x - median_filter(x, size=(window, 1), mode="nearest")
    return np.sqrt(np.maximum(uniform_filter1d((resid ** 2).sum(-1), size=rms_window, mode="nearest"), 0.0))


def check_jitter(traj: Trajectory, cfg: FilterConfig) -> Finding | None:
    if len(traj) < cfg.jitter_window + 1:
        return None
    lin = _high_frequency_rms(linear_velocity(traj.P, traj.fps), cfg.jitter_window, cfg.jitter_rms_window)
    ang = _high_frequency_rms(angular_velocity(traj.R, traj.fps), cfg.jitter_window, cfg.jitter_rms_window)
    ml, ma = _step_flags(lin > cfg.max_jitter_speed, len(traj)), _step_flags(ang > cfg.max_jitter_angular, len(traj))
    if not (ml.any() or ma.any()):
        return None
    parts = []
    if ma.any():
        parts.append(f"high-frequency angular velocity {ang.max():.3g} deg/s RMS > {cfg.max_jitter_angular:g}")
    if ml.any():
        parts.append(f"high-frequency velocity {lin.max():.3g} m/s RMS > {cfg.max_jitter_speed:g}")
    frames = _frames(ml | ma)
    return Finding("jitter", frames, "; ".join(parts) + f" at frames {format_frames(frames)}")


def check_near_collision(depth: np.ndarray | None, cfg: FilterConfig) -> Finding | None:
    if depth is None:
        return None
    f, h, w = depth.shape
    ch, cw = max(1, int(h * cfg.near_crop)), max(1, int(w * cfg.near_crop))
    crop = depth[:, (h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw].reshape(f, -1)
    crop = np.where(np.isfinite(crop) & (crop > 0), crop, np.inf)
    near = np.percentile(crop, cfg.near_percentile, axis=1)
    mask = near < cfg.min_depth
    if not mask.any():
        return None
    frames = _frames(mask)
    return Finding("near_collision", frames, f"depth {float(near[mask].min()):.3g} m < {cfg.min_depth:g} "
                                             f"at frames {format_frames(frames)}")


def exposure_gain(y: np.ndarray, cfg: FilterConfig) -> np.ndarray:
    """(f h w) luma -> (f,) exposure gain relative to frame 0, accumulated over sudden jumps only."""
    m = y.mean(axis=(1, 2)).astype(np.float64)
    jump = np.abs(np.diff(m)) > cfg.max_luma_jump
    log_gain = np.where(jump, np.log((m[1:] + 1.0) / (m[:-1] + 1.0)), 0.0)
    return np.exp(np.r_[0.0, np.cumsum(log_gain)])


def check_exposure(y: np.ndarray, cfg: FilterConfig) -> Finding | None:
    over = (y >= cfg.overexposed_level).mean(axis=(1, 2))
    under = (y <= cfg.underexposed_level).mean(axis=(1, 2))
    gain = exposure_gain(y, cfg)
    mo = (over > cfg.max_clipped_fraction) | (gain > cfg.max_exposure_ratio)
    mu = (under > cfg.max_clipped_fraction) | (gain < 1.0 / cfg.max_exposure_ratio)
    if not (mo.any() or mu.any()):
        return None
    parts = []
    for mask, word, frac in ((mo, "overexposed", over), (mu, "underexposed", under)):
        if mask.any():
            g = gain[mask]
            g = g.max() if word == "overexposed" else g.min()
            parts.append(f"{word} ({frac[mask].max():.0%} clipped, ×{g:.2g} exposure vs frame 0) at frames "
                         f"{format_frames(_frames(mask))}")
    return Finding("exposure", _frames(mo | mu), "; ".join(parts) +
                   f" (limits {cfg.max_clipped_fraction:.0%} clipped, ×{cfg.max_exposure_ratio:g})")


def check_exposure_jump(y: np.ndarray, cfg: FilterConfig) -> Finding | None:
    jump = np.abs(np.diff(y.mean(axis=(1, 2))))
    return _finding("exposure_jump", _step_flags(jump > cfg.max_luma_jump, len(y)), "mean-luma jump",
                    np.r_[0, jump], "grey levels", cfg.max_luma_jump)


def check_frozen(traj: Trajectory, diff: np.ndarray, cfg: FilterConfig) -> Finding | None:
    if len(diff) == 0:
        return None
    rot = np.deg2rad(np.linalg.norm(angular_velocity(traj.R, traj.fps), axis=-1) / traj.fps)
    step = np.linalg.norm(np.diff(traj.P, axis=0), axis=-1)
    moved = (rot * traj.intrinsics[0] >= cfg.frozen_min_pixels) | (step >= cfg.frozen_min_translation)
    if not moved.any():
        return None
    ref = float(np.median(diff[moved]))
    mask = _step_flags(moved & (diff < cfg.frozen_abs) & (diff < cfg.frozen_ratio * ref), len(traj))
    if not mask.any():
        return None
    frames = _frames(mask)
    return Finding("frozen", frames, f"{len(frames)} frame(s) repeat the previous one while the camera moves "
                                     f"(median change {ref:.3g}) at frames {format_frames(frames)}")


def check_black(y: np.ndarray, cfg: FilterConfig) -> Finding | None:
    dark = (y < cfg.black_level).mean(axis=(1, 2))
    mask = dark > cfg.black_fraction
    if not mask.any():
        return None
    frames = _frames(mask)
    return Finding("black", frames, f"{len(frames)} black frame(s) at frames {format_frames(frames)}")


def check_pop(frames: np.ndarray, diff: np.ndarray, cfg: FilterConfig) -> Finding | None:
    T = len(frames)
    if T < 4:
        return None
    d = np.r_[0.0, diff]                                  # d[k] = diff(k-1, k); d[0] unused
    mask = np.zeros(T, bool)
    # persistent pop at k (2 ≤ k ≤ T-2): d[k] ≫ d[k-1] and d[k+1]
    k = np.arange(2, T - 1)
    mask[k] = (d[k] > cfg.pop_min) & (d[k] > cfg.pop_ratio * np.maximum(d[k - 1], d[k + 1]))
    # one-frame glitch at k (1 ≤ k ≤ T-2): frame k differs from both neighbours, which agree
    d2 = frame_differences(frames, lag=2)                      # d2[k-1] = diff(k-1, k+1)
    k = np.arange(1, T - 1)
    lo = np.minimum(d[k], d[k + 1])
    mask[k] |= (lo > cfg.pop_min) & (lo > cfg.pop_ratio * d2[k - 1])
    if not mask.any():
        return None
    frames = _frames(mask)
    return Finding("pop", frames, f"sudden picture change ({float(d[mask].max()):.3g} grey levels) at frames "
                                  f"{format_frames(frames)}")


# --- decisions -------------------------------------------------------------------------------------------

def clean_segments(bad: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """Maximal runs [start, stop) of unflagged frames that are at least ``min_len`` long."""
    segs, start = [], None
    for i, b in enumerate(list(bad) + [True]):
        if not b and start is None:
            start = i
        elif b and start is not None:
            if i - start >= min_len:
                segs.append((start, i))
            start = None
    return segs


def run_filters(traj: Trajectory, frames: np.ndarray, depth: np.ndarray | None = None,
                cfg: FilterConfig = FilterConfig()) -> list[Finding]:
    """Run every enabled filter on one clip.

    Args:
        traj: the clip's poses (T frames).
        frames: uint8 (T h w c) RGB.
        depth: optional (T h w) metres.
    """
    y = luma(frames)
    diff = frame_differences(frames)
    checks = {
        "pan_speed": lambda: check_pan_speed(traj, cfg),
        "abrupt_rotation": lambda: check_abrupt_rotation(traj, cfg),
        "velocity_profile": lambda: check_velocity_profile(traj, cfg),
        "jitter": lambda: check_jitter(traj, cfg),
        "near_collision": lambda: check_near_collision(depth, cfg),
        "exposure": lambda: check_exposure(y, cfg),
        "exposure_jump": lambda: check_exposure_jump(y, cfg),
        "frozen": lambda: check_frozen(traj, diff, cfg),
        "black": lambda: check_black(y, cfg),
        "pop": lambda: check_pop(frames, diff, cfg),
    }
    return [f for name in FILTER_NAMES if name in cfg.enabled and (f := checks[name]()) is not None]


def decide(name: str, num_frames: int, findings: list[Finding], cfg: FilterConfig = FilterConfig()) -> ClipVerdict:
    """Findings -> verdict: reject on any non-cutting finding, else keep the clean segments."""
    rejected_by = [f.name for f in findings if f.name not in cfg.cut]
    if rejected_by:
        return ClipVerdict(name, num_frames, False, [], findings, rejected_by)
    bad = np.zeros(num_frames, bool)
    for f in findings:
        bad[f.frames] = True
    segs = clean_segments(bad, cfg.min_segment_frames)
    return ClipVerdict(name, num_frames, bool(segs), segs, findings, [])


def filter_clip(clip, cfg: FilterConfig = FilterConfig()) -> ClipVerdict:
    """Run the filters on a :class:`relic.data.clips.Clip` and decide."""
    frames = clip.frames()
    depth = clip.depth() if "near_collision" in cfg.enabled else None
    return decide(clip.name, len(clip), run_filters(clip.traj, frames, depth, cfg), cfg)


def report_markdown(verdicts: list[ClipVerdict]) -> str:
    """A markdown table of kept and rejected clips with their reasons."""
    kept = sum(v.kept for v in verdicts)
    lines = ["# Curation report", "", f"{kept} of {len(verdicts)} clip(s) kept.", "",
             "| clip | frames | verdict | kept segments | reasons |", "|---|---|---|---|---|"]
    for v in verdicts:
        if not v.kept:
            verdict = "rejected"
        elif v.segments == [(0, v.num_frames)]:
            verdict = "kept"
        else:
            verdict = "cut"
        segs = ", ".join(f"{a}–{b - 1}" for a, b in v.segments) or "—"
        reasons = "; ".join(f"**{f.name}**{' (rejects)' if f.name in v.rejected_by else ''}: {f.reason}"
                            for f in v.findings) or "—"
        lines.append(f"| {v.name} | {v.num_frames} | {verdict} | {segs} | {reasons.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
