"""Camera poses from a video with known intrinsics, by OpenCV two-view geometry (paper §5.3).

Per consecutive frame pair (k, k+1):

1. ``cv2.goodFeaturesToTrack`` corners in frame k, tracked into frame k+1 with pyramidal Lucas–Kanade
   (``cv2.calcOpticalFlowPyrLK``) and back again; a track is kept when the forward-backward round trip lands
   within ``fb_threshold`` pixels of its start.
2. ``cv2.findEssentialMat`` with ``cv2.USAC_MAGSAC``, checked against an LMedS estimate (the candidate with the
   lower median Sampson distance over all tracks wins, see :func:`_essential`); its inliers are the tracks within
   ``inlier_px``.
3. **Parallax check**: the best pure rotation is fitted to the inlier bearing vectors (Kabsch,
   :func:`_rotation_from_tracks`) and the tracks are compensated for it (the infinite homography
   ``K ΔR K^-1``). When the median remaining displacement is below ``min_parallax_px`` the translation
   direction is not measurable (a pure rotation, or motion too small for this resolution; the essential
   matrix is then degenerate). The pair is still valid with that pure rotation, its translation step is 0
   and ``parallax[k]`` is False: "no translation detectable", which the flag keeps apart from a measured one.
4. Otherwise ``cv2.recoverPose`` on the inliers gives the relative rotation ``ΔR = R_{k+1} R_k^T`` (relic's
   world-to-camera convention) and the unit direction of the camera-frame step ``ΔP^c = R_k (P_{k+1} − P_k)``.

A pair **fails** (``pair_valid[k] = False``) when fewer than ``min_tracks`` tracks survive, when the essential
matrix cannot be estimated, or when fewer than ``min_inliers`` tracks agree with it (or pass recoverPose's
cheirality test). Its relative pose is NaN:
unknown, never zero motion. The next frame then starts a new **segment** whose poses are chained from the
identity again; :func:`relic.eval.trajectory.evaluate` compares pairs within one segment only.

Translation scale is unobservable from two views. Steps are chained with unit length, or with the
per-step magnitudes the caller passes (``step_lengths``, e.g. the commanded |ΔP|), so ``P`` is known only up to
a global scale in the first case (and up to speed variations along the clip); RPE after Sim(3) alignment is the
intended comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class PoseEstimatorConfig:
    """Knobs of :func:`estimate_poses` (defaults tuned on 128² and 224×128 renders).

    Attributes:
        max_corners, quality_level, min_distance, block_size: ``cv2.goodFeaturesToTrack`` arguments.
        lk_window, lk_levels: Lucas–Kanade window side (pixels) and pyramid levels.
        fb_threshold: forward-backward round-trip error (pixels) above which a track is dropped.
        ransac_threshold: MAGSAC threshold (pixels) for ``findEssentialMat``.
        lmeds_check: run the LMedS check (most of the per-pair time); off = MAGSAC alone.
        lmeds_max_tracks, lmeds_confidence: tracks given to, and confidence of, the LMedS check of the
            essential matrix (its cost is set by the confidence, i.e. the number of 5-point samples).
        seed: OpenCV RNG seed set before each pair's robust estimation, so results do not depend on history.
        inlier_px: Sampson distance (pixels) below which a track is an inlier of the chosen essential matrix.
        confidence: RANSAC confidence.
        min_tracks: fewer surviving tracks than this -> the pair fails.
        min_inliers: fewer essential-matrix inliers than this -> the pair fails.
        min_parallax_px: median rotation-compensated flow (pixels) below which translation is not measurable.
        max_depth_baselines: ``recoverPose`` distance threshold, in units of the (unit) baseline.
    """

    max_corners: int = 400
    quality_level: float = 0.005
    min_distance: float = 4.0
    block_size: int = 5
    lk_window: int = 15
    lk_levels: int = 3
    fb_threshold: float = 0.5
    ransac_threshold: float = 0.5
    inlier_px: float = 0.5
    lmeds_check: bool = True
    lmeds_max_tracks: int = 120
    lmeds_confidence: float = 0.95
    seed: int = 0
    confidence: float = 0.999
    min_tracks: int = 12
    min_inliers: int = 8
    min_parallax_px: float = 0.2
    max_depth_baselines: float = 1e4


@dataclass
class PoseEstimate:
    """Estimated camera trajectory of a T-frame video, in relic's convention.

    Attributes:
        R: (T, 3, 3) world-to-camera rotations, chained per segment from the identity.
        P: (T, 3) positions, chained per segment from the origin; unit steps unless step lengths were given.
        rel_R: (T−1, 3, 3) pair rotations ΔR_k = R_{k+1} R_k^T; NaN where the pair failed.
        rel_dir: (T−1, 3) unit camera-frame step direction of pair k (camera k frame, ΔP^c / |ΔP^c|);
            NaN where the pair failed or had no parallax.
        pair_valid: (T−1,) bool, the pair's relative pose is known.
        parallax: (T−1,) bool, the translation direction was measurable.
        segment: (T,) ints; a failed pair starts a new segment.
        n_tracks, n_inliers: (T−1,) ints, tracks surviving the forward-backward check and essential inliers.
        median_parallax_px: (T−1,) float, median rotation-compensated flow (NaN where the pair failed).
    """

    R: np.ndarray
    P: np.ndarray
    rel_R: np.ndarray
    rel_dir: np.ndarray
    pair_valid: np.ndarray
    parallax: np.ndarray
    segment: np.ndarray
    n_tracks: np.ndarray
    n_inliers: np.ndarray
    median_parallax_px: np.ndarray

    def __len__(self) -> int:
        return int(self.R.shape[0])


def _gray(frame: np.ndarray) -> np.ndarray:
    f = np.asarray(frame)
    if f.dtype != np.uint8:
        f = np.clip(np.round(f.astype(np.float64) * (255.0 if f.max() <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
    return cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) if f.ndim == 3 else f


def track(g0: np.ndarray, g1: np.ndarray, cfg: PoseEstimatorConfig) -> tuple[np.ndarray, np.ndarray]:
    """Corners of gray frame ``g0`` tracked into ``g1`` with a forward-backward check -> (p0 (n, 2), p1 (n, 2))."""
    pts = cv2.goodFeaturesToTrack(g0, cfg.max_corners, cfg.quality_level, cfg.min_distance,
                                  blockSize=cfg.block_size)
    if pts is None:
        return np.zeros((0, 2), np.float32), np.zeros((0, 2), np.float32)
    lk = dict(winSize=(cfg.lk_window, cfg.lk_window), maxLevel=cfg.lk_levels,
              criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01))
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(g0, g1, pts, None, **lk)
    p0b, st2, _ = cv2.calcOpticalFlowPyrLK(g1, g0, p1, None, **lk)
    fb = np.linalg.norm((pts - p0b).reshape(-1, 2), axis=1)
    h, w = g0.shape
    q = p1.reshape(-1, 2)
    inside = (q[:, 0] >= 0) & (q[:, 0] <= w - 1) & (q[:, 1] >= 0) & (q[:, 1] <= h - 1)
    ok = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb < cfg.fb_threshold) & inside
    return pts.reshape(-1, 2)[ok], q[ok]


def _rotation_from_tracks(p0: np.ndarray, p1: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pure-rotation fit: the rotation R best mapping bearing vectors of p0 onto those of p1 (Kabsch)."""
    Kinv = np.linalg.inv(K)
    b0 = np.c_[p0, np.ones(len(p0))] @ Kinv.T
    b1 = np.c_[p1, np.ones(len(p1))] @ Kinv.T
    b0 /= np.linalg.norm(b0, axis=1, keepdims=True)
    b1 /= np.linalg.norm(b1, axis=1, keepdims=True)
    U, _, Vt = np.linalg.svd(b1.T @ b0)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    return U @ D @ Vt


def _robust_rotation(p0: np.ndarray, p1: np.ndarray, K: np.ndarray, rounds: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Pure-rotation fit refitted on the tracks within twice the median residual -> (R, residuals (n,) px)."""
    sel = np.ones(len(p0), bool)
    for _ in range(rounds):
        R = _rotation_from_tracks(p0[sel], p1[sel], K)
        res = _rotated_flow(p0, p1, K, R)
        sel = res <= max(2.0 * float(np.median(res)), 1e-3)
    return R, res


def _rotated_flow(p0: np.ndarray, p1: np.ndarray, K: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Per-track displacement (pixels) left after warping p0 by the infinite homography K R K^-1."""
    H = K @ R @ np.linalg.inv(K)
    q = np.c_[p0, np.ones(len(p0))] @ H.T
    q = q[:, :2] / q[:, 2:3]
    return np.linalg.norm(p1 - q, axis=1)


def sampson_px(E: np.ndarray, p0: np.ndarray, p1: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Sampson distance (n,) of correspondences p0 -> p1 (pixels) to the essential matrix E, in pixels (via fx)."""
    Kinv = np.linalg.inv(K)
    x0 = np.c_[p0, np.ones(len(p0))] @ Kinv.T
    x1 = np.c_[p1, np.ones(len(p1))] @ Kinv.T
    Ex0, Etx1 = x0 @ E.T, x1 @ E
    num = np.sum(x1 * Ex0, axis=1) ** 2
    den = Ex0[:, 0] ** 2 + Ex0[:, 1] ** 2 + Etx1[:, 0] ** 2 + Etx1[:, 1] ** 2
    return np.sqrt(num / np.maximum(den, 1e-300)) * K[0, 0]


def _essential(p0: np.ndarray, p1: np.ndarray, K: np.ndarray,
               cfg: PoseEstimatorConfig) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Essential matrix of the tracks: the USAC_MAGSAC estimate, checked against an LMedS one.

    MAGSAC occasionally settles on a rotation-for-translation confusion when the parallax is below a pixel
    (median Sampson error ~10x that of the true E on our renders); LMedS (on at most ``lmeds_max_tracks``
    evenly spaced tracks, for speed) rarely does. Every candidate
    (either method may return several stacked 3×3 solutions) is scored by its median Sampson distance over
    all tracks, the best one wins, and its inliers are the tracks within ``inlier_px``.
    """
    cands = []
    cv2.setRNGSeed(cfg.seed)      # the samplers draw from OpenCV's global RNG: make every pair reproducible
    sub = np.linspace(0, len(p0) - 1, min(len(p0), cfg.lmeds_max_tracks)).astype(int)
    runs = [(cv2.USAC_MAGSAC, p0, p1, cfg.confidence)]
    if cfg.lmeds_check:
        runs.append((cv2.LMEDS, p0[sub], p1[sub], cfg.lmeds_confidence))
    for method, q0, q1, prob in runs:
        E, _ = cv2.findEssentialMat(q0, q1, K, method=method, prob=prob, threshold=cfg.ransac_threshold)
        if E is not None and E.ndim == 2 and E.shape[1] == 3 and E.shape[0] % 3 == 0:
            cands += [E[i:i + 3] for i in range(0, E.shape[0], 3) if np.isfinite(E[i:i + 3]).all()]
    if not cands:
        return None, None
    errs = [sampson_px(E, p0, p1, K) for E in cands]
    best = int(np.argmin([np.median(e) for e in errs]))
    return cands[best], errs[best] < cfg.inlier_px


def relative_pose(frame0: np.ndarray, frame1: np.ndarray, K: np.ndarray,
                  cfg: PoseEstimatorConfig = PoseEstimatorConfig()) -> dict:
    """Two-view relative pose of one frame pair (h w c uint8, or h w gray).

    Returns a dict: ``valid`` (bool), ``R`` (3, 3) = ΔR (NaN if invalid), ``dir`` (3,) unit camera-frame step
    direction ΔP^c/|ΔP^c| in camera-0 coordinates (NaN if invalid or without parallax), ``parallax`` (bool),
    ``n_tracks``, ``n_inliers``, ``median_parallax_px``.
    """
    K = np.asarray(K, np.float64)
    nan3 = np.full(3, np.nan)
    out = {"valid": False, "R": np.full((3, 3), np.nan), "dir": nan3, "parallax": False, "n_tracks": 0,
           "n_inliers": 0, "median_parallax_px": float("nan")}
    p0, p1 = track(_gray(frame0), _gray(frame1), cfg)
    out["n_tracks"] = len(p0)
    if len(p0) < cfg.min_tracks:
        return out
    E, inl = _essential(p0, p1, K, cfg)
    if E is None or inl.sum() < cfg.min_inliers:
        out["n_inliers"] = 0 if inl is None else int(inl.sum())
        return out
    out["n_inliers"] = int(inl.sum())
    # Parallax left after the best pure rotation: with none, E is degenerate and only the rotation is known.
    R_rot, residual = _robust_rotation(p0[inl], p1[inl], K)
    par = float(np.median(residual))
    out["median_parallax_px"] = par
    if par < cfg.min_parallax_px:
        out["R"], out["valid"] = R_rot, True
        return out
    # The distanceThresh overload: points up to 1e4 baselines away still count as in front of both cameras
    # (the default overload drops points beyond 50 baselines, i.e. most of a scene seen with small steps).
    n_good, R, t, _, _ = cv2.recoverPose(E, p0[inl], p1[inl], K, distanceThresh=cfg.max_depth_baselines)
    if n_good < cfg.min_inliers or not np.isfinite(R).all():
        return out
    out["R"], out["valid"], out["parallax"] = R, True, True
    # recoverPose: x1 = R x0 + t with t = -R ΔP^c (up to scale), so ΔP^c ∝ -R^T t.
    d = -R.T @ t.ravel()
    out["dir"] = d / np.linalg.norm(d)
    return out


def chain(rel_R: np.ndarray, rel_dir: np.ndarray, pair_valid: np.ndarray,
          step_lengths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chain pair poses into absolute poses.

    ``R_{k+1} = ΔR_k R_k`` and ``P_{k+1} = P_k + R_k^T (ℓ_k d_k)`` with ``d_k`` the unit step direction (zero when the
    pair had no parallax) and ``ℓ_k`` = 1 or ``step_lengths[k]``. A failed pair starts a new segment at the
    identity / origin.

    Args:
        rel_R: (T−1, 3, 3); rel_dir: (T−1, 3); pair_valid: (T−1,) bool; step_lengths: optional (T−1,).
    Returns:
        R (T, 3, 3), P (T, 3), segment (T,) ints.
    """
    n = len(pair_valid)
    ell = np.ones(n) if step_lengths is None else np.asarray(step_lengths, np.float64)
    if ell.shape != (n,):
        raise ValueError(f"step_lengths must have shape ({n},), got {ell.shape}")
    R = np.empty((n + 1, 3, 3))
    P = np.empty((n + 1, 3))
    seg = np.zeros(n + 1, dtype=np.int64)
    R[0], P[0] = np.eye(3), 0.0
    for k in range(n):
        if not pair_valid[k]:
            R[k + 1], P[k + 1], seg[k + 1] = np.eye(3), 0.0, seg[k] + 1
            continue
        d = rel_dir[k] if np.isfinite(rel_dir[k]).all() else np.zeros(3)
        R[k + 1] = rel_R[k] @ R[k]
        P[k + 1] = P[k] + R[k].T @ (ell[k] * d)
        seg[k + 1] = seg[k]
    return R, P, seg


def estimate_poses(frames: np.ndarray, K: np.ndarray, cfg: PoseEstimatorConfig = PoseEstimatorConfig(),
                   step_lengths: np.ndarray | None = None) -> PoseEstimate:
    """Estimate the camera trajectory of a video.

    Args:
        frames: (f h w c) uint8 RGB (or (f h w) gray) video, f ≥ 2.
        K: (3, 3) intrinsics in pixels (relic's convention, see :mod:`relic.camera.geometry`).
        step_lengths: optional (f−1,) per-step translation magnitudes; unit steps otherwise.
    """
    frames = np.asarray(frames)
    T = frames.shape[0]
    if T < 2:
        raise ValueError(f"pose estimation needs at least 2 frames, got {T}")
    rel_R = np.full((T - 1, 3, 3), np.nan)
    rel_dir = np.full((T - 1, 3), np.nan)
    valid = np.zeros(T - 1, bool)
    parallax = np.zeros(T - 1, bool)
    n_tr = np.zeros(T - 1, np.int64)
    n_in = np.zeros(T - 1, np.int64)
    med = np.full(T - 1, np.nan)
    grays = [_gray(f) for f in frames]
    for k in range(T - 1):
        r = relative_pose(grays[k], grays[k + 1], K, cfg)
        rel_R[k], rel_dir[k], valid[k], parallax[k] = r["R"], r["dir"], r["valid"], r["parallax"]
        n_tr[k], n_in[k], med[k] = r["n_tracks"], r["n_inliers"], r["median_parallax_px"]
    R, P, seg = chain(rel_R, rel_dir, valid, step_lengths)
    return PoseEstimate(R, P, rel_R, rel_dir, valid, parallax, seg, n_tr, n_in, med)
