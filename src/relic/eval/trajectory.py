"""Trajectory metrics: Umeyama alignment, RPE and ATE (paper §5.3).

Poses come in relic's convention (:mod:`relic.camera.geometry`): world-to-camera rotations ``R`` (T, 3, 3)
and camera positions ``P`` (T, 3). Internally every pose is turned into a camera-to-world matrix
``c2w = [[R^T, P], [0, 1]]``, which is the convention of the usual definitions (Sturm et al. 2012, evo).

Definitions (``Q`` = reference / commanded poses, ``P`` = estimated poses, both c2w, (T, 4, 4)):

* **Alignment** (Umeyama 1991): the similarity ``S = (s, Ra, ta)`` minimising
  ``Σ_i ||Q_i.pos − (s Ra P_i.pos + ta)||²`` over the camera positions. ``with_scale=False`` fixes
  ``s = 1`` (SE(3)). The aligned estimate is ``S P_i`` (rotation ``Ra R_i^c2w``, position ``s Ra p_i + ta``).
* **RPE** over a frame delta Δ: ``E_i = (Q_i^{-1} Q_{i+Δ})^{-1} (P'_i^{-1} P'_{i+Δ})`` for the aligned estimate
  ``P'``. The translation error is ``||trans(E_i)||`` (reported as RMSE over i, in the reference's units), the
  rotation error is the angle of ``rot(E_i)`` in degrees. RPE is invariant to the rigid part of the alignment,
  so only its scale matters.
* **ATE**: RMSE of ``||Q_i.pos − (S P_i).pos||`` over frames.

Degenerate trajectories: when the reference (or the estimate) has no translation baseline — a pure rotation —
the Sim(3) scale is unobservable. Then :func:`evaluate` reports the rotation errors only, sets
``scale_observable=False`` and leaves every translation field ``None``: never a meaningless number.

Unknown estimates: frames whose estimated pose is NaN are skipped and counted. An optional ``segment`` array
(T,) of ints (as produced by :mod:`relic.eval.pose_estimation`, where a failed frame pair starts a new,
independently chained segment) restricts RPE pairs to frames of the same segment, and aligns each segment
with its own similarity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from relic.camera.geometry import c2w_from_pose, geodesic_angle

#: A reference whose positions all lie within this distance (world units) of their centroid has no baseline.
MIN_BASELINE = 1e-6


@dataclass(frozen=True)
class Similarity:
    """``x -> s R x + t``: a Sim(3) (or SE(3) when ``s == 1``)."""

    s: float
    R: np.ndarray  # (3, 3)
    t: np.ndarray  # (3,)

    def apply_points(self, X: np.ndarray) -> np.ndarray:
        """(n, 3) -> (n, 3)."""
        return self.s * np.asarray(X, dtype=np.float64) @ self.R.T + self.t

    def apply_poses(self, R: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Transform relic poses (w2c ``R`` (T, 3, 3), positions ``P`` (T, 3)) by this similarity.

        The camera-to-world rotation is left-multiplied by ``self.R``, so the world-to-camera one becomes
        ``R @ self.R^T``; positions map as points.
        """
        return np.asarray(R, dtype=np.float64) @ self.R.T, self.apply_points(P)


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> Similarity:
    """Least-squares similarity mapping ``src`` onto ``dst`` (Umeyama 1991).

    Args:
        src, dst: (n, 3) corresponding points, n ≥ 1. The solution is unique when ``src`` is not collinear.
        with_scale: fit the scale (Sim(3)); otherwise ``s = 1`` (SE(3)).
    Raises:
        ValueError: when a scale is requested but ``src`` is a single point (zero variance).
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or src.shape[0] < 1:
        raise ValueError(f"umeyama needs two (n, 3) arrays of equal shape, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    n = src.shape[0]
    cov = xd.T @ xs / n                                   # (3, 3) Σ_dst,src
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1.0
    R = U @ S @ Vt
    if with_scale:
        var_s = float((xs ** 2).sum() / n)
        if var_s <= 0.0:
            raise ValueError("umeyama: the source points have zero variance, the scale is unobservable")
        s = float(np.trace(np.diag(D) @ S) / var_s)
    else:
        s = 1.0
    t = mu_d - s * R @ mu_s
    return Similarity(s, R, t)


def baseline(P: np.ndarray) -> float:
    """Largest distance (world units) of the positions (T, 3) from their centroid; NaN rows are ignored."""
    P = np.asarray(P, dtype=np.float64)
    P = P[np.isfinite(P).all(axis=1)]
    if len(P) == 0:
        return 0.0
    return float(np.linalg.norm(P - P.mean(0), axis=1).max())


def relative_poses(R: np.ndarray, P: np.ndarray, delta: int = 1) -> np.ndarray:
    """c2w relative poses ``C_i^{-1} C_{i+Δ}`` (T−Δ, 4, 4) of relic poses (w2c ``R`` (T, 3, 3), ``P`` (T, 3))."""
    C = c2w_from_pose(R, P)
    return np.linalg.inv(C[:-delta]) @ C[delta:]


def rpe_per_pair(ref_R: np.ndarray, ref_P: np.ndarray, est_R: np.ndarray, est_P: np.ndarray, delta: int = 1,
                 scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair relative pose errors.

    The estimate's relative translations are multiplied by ``scale`` (the Sim(3) scale; RPE does not depend on
    the rigid part of an alignment).

    Returns:
        translation errors (T−Δ,) in reference units and rotation errors (T−Δ,) in degrees; NaN where an
        estimated pose is unknown.
    """
    if delta < 1:
        raise ValueError(f"delta must be >= 1, got {delta}")
    Qr = relative_poses(ref_R, ref_P, delta)
    Pr = relative_poses(est_R, est_P, delta)
    Pr[:, :3, 3] *= scale
    E = np.linalg.inv(Qr) @ Pr
    trans = np.linalg.norm(E[:, :3, 3], axis=-1)
    rot = np.rad2deg(geodesic_angle(np.broadcast_to(np.eye(3), E[:, :3, :3].shape), E[:, :3, :3]))
    return trans, rot


def _stats(x: np.ndarray) -> dict | None:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return None
    return {"rmse": float(np.sqrt(np.mean(x ** 2))), "mean": float(x.mean()), "median": float(np.median(x)),
            "max": float(x.max())}


@dataclass
class TrajectoryErrors:
    """Result of :func:`evaluate`. Translation fields are ``None`` when ``scale_observable`` is False.

    Attributes:
        rpe_trans: RMSE of the RPE translation errors (reference units), or None.
        rpe_rot_deg: mean RPE rotation error in degrees, or None when no pair is known.
        ate: RMSE of the aligned position errors (reference units), or None.
        rpe_trans_stats, rpe_rot_stats, ate_stats: rmse / mean / median / max, or None.
        scale: the fitted Sim(3) scale of the (largest) segment, 1.0 for SE(3), None when unobservable.
        scale_observable: False for a pure rotation (no baseline in the reference or in the estimate).
        with_scale: Sim(3) (True) or SE(3) (False) alignment.
        delta: RPE frame delta.
        n_pairs: frame pairs (i, i+Δ) evaluated; n_unknown: pairs skipped because the estimate is unknown there.
    """

    rpe_trans: float | None
    rpe_rot_deg: float | None
    ate: float | None
    rpe_trans_stats: dict | None
    rpe_rot_stats: dict | None
    ate_stats: dict | None
    scale: float | None
    scale_observable: bool
    with_scale: bool
    delta: int
    n_pairs: int
    n_unknown: int

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate(ref_R: np.ndarray, ref_P: np.ndarray, est_R: np.ndarray, est_P: np.ndarray, delta: int = 1,
             with_scale: bool = True, segment: np.ndarray | None = None,
             min_baseline: float = MIN_BASELINE) -> TrajectoryErrors:
    """RPE (translation, rotation) and ATE of an estimated trajectory against a reference.

    Args:
        ref_R, ref_P: reference poses, w2c (T, 3, 3) and positions (T, 3).
        est_R, est_P: estimated poses, same shapes; NaN rows are unknown frames.
        delta: RPE frame delta.
        with_scale: Sim(3) alignment (scale fitted) or SE(3).
        segment: (T,) ints; estimated frames in different segments share no frame of reference.
        min_baseline: below this reference (or estimated) :func:`baseline` the Sim(3) scale is unobservable.
    """
    ref_R, ref_P = np.asarray(ref_R, np.float64), np.asarray(ref_P, np.float64)
    est_R, est_P = np.asarray(est_R, np.float64), np.asarray(est_P, np.float64)
    T = ref_R.shape[0]
    if est_R.shape != (T, 3, 3) or est_P.shape != (T, 3) or ref_P.shape != (T, 3):
        raise ValueError(f"reference and estimate must both be (T, 3, 3) / (T, 3); got {ref_R.shape}, "
                         f"{ref_P.shape}, {est_R.shape}, {est_P.shape}")
    if delta < 1 or delta >= T:
        raise ValueError(f"delta must be in [1, {T - 1}] for {T} frames, got {delta}")
    seg = np.zeros(T, dtype=np.int64) if segment is None else np.asarray(segment, dtype=np.int64)
    known = np.isfinite(est_R).all(axis=(1, 2)) & np.isfinite(est_P).all(axis=1)

    trans_err = np.full(T - delta, np.nan)
    rot_err = np.full(T - delta, np.nan)
    ate_err = np.full(T, np.nan)
    scale_observable = not with_scale or baseline(ref_P) > min_baseline
    main_scale: float | None = 1.0
    largest = -1
    for s_id in np.unique(seg):
        idx = np.flatnonzero((seg == s_id) & known)
        if len(idx) < 2:
            continue
        ref_b, est_b = baseline(ref_P[idx]), baseline(est_P[idx])
        observable = True
        if with_scale:
            if ref_b <= min_baseline:
                observable = False          # pure rotation: the scale means nothing
                sim = None
            elif est_b <= min_baseline:
                # The reference moves, the estimate does not: every scale gives the same (collapsed) estimate.
                sim = Similarity(0.0, np.eye(3), ref_P[idx].mean(0))
            else:
                sim = umeyama(est_P[idx], ref_P[idx], with_scale=True)
        else:
            sim = umeyama(est_P[idx], ref_P[idx], with_scale=False)
        scale_observable &= observable
        if len(idx) > largest:
            largest = len(idx)
            main_scale = None if sim is None else sim.s
        # RPE over pairs (i, i+Δ) both inside this segment and known.
        lo, hi = idx[0], idx[-1] + 1
        e_R, e_P = est_R[lo:hi].copy(), est_P[lo:hi].copy()
        e_R[~known[lo:hi]], e_P[~known[lo:hi]] = np.eye(3), 0.0   # finite fillers for unknown frames; pair_ok below excludes them
        t_seg, r_seg = rpe_per_pair(ref_R[lo:hi], ref_P[lo:hi], e_R, e_P, delta,
                                    scale=1.0 if sim is None else sim.s) if hi - lo > delta else (None, None)
        if t_seg is not None:
            pair_ok = np.isin(np.arange(lo, hi - delta), idx) & np.isin(np.arange(lo + delta, hi), idx)
            i0 = np.arange(lo, hi - delta)[pair_ok]
            rot_err[i0] = r_seg[pair_ok]
            if observable:
                trans_err[i0] = t_seg[pair_ok]
        if observable:
            ate_err[idx] = np.linalg.norm(ref_P[idx] - sim.apply_points(est_P[idx]), axis=1)

    all_pairs = np.arange(T - delta)
    n_pairs = int(np.isfinite(rot_err).sum())
    n_unknown = len(all_pairs) - n_pairs
    rot_stats = _stats(rot_err)
    if not scale_observable:
        return TrajectoryErrors(None, None if rot_stats is None else rot_stats["mean"], None, None, rot_stats, None,
                                None, False, with_scale, delta, n_pairs, n_unknown)
    t_stats, a_stats = _stats(trans_err), _stats(ate_err)
    return TrajectoryErrors(
        rpe_trans=None if t_stats is None else t_stats["rmse"],
        rpe_rot_deg=None if rot_stats is None else rot_stats["mean"],
        ate=None if a_stats is None else a_stats["rmse"],
        rpe_trans_stats=t_stats, rpe_rot_stats=rot_stats, ate_stats=a_stats,
        scale=main_scale if largest >= 0 else None, scale_observable=True, with_scale=with_scale, delta=delta,
        n_pairs=n_pairs, n_unknown=n_unknown)


def align(ref_P: np.ndarray, est_R: np.ndarray, est_P: np.ndarray,
          with_scale: bool = True) -> tuple[np.ndarray, np.ndarray, Similarity]:
    """Align an estimate onto reference positions; return the aligned (w2c R, P) and the similarity.

    Frames with unknown (NaN) estimates are ignored by the fit and stay NaN.
    """
    est_P = np.asarray(est_P, np.float64)
    ok = np.isfinite(est_P).all(axis=1) & np.isfinite(np.asarray(est_R)).all(axis=(1, 2))
    sim = umeyama(est_P[ok], np.asarray(ref_P, np.float64)[ok], with_scale=with_scale)
    R2, P2 = sim.apply_poses(est_R, est_P)
    return R2, P2, sim


__all__ = ["MIN_BASELINE", "Similarity", "TrajectoryErrors", "align", "baseline", "evaluate", "relative_poses",
           "rpe_per_pair", "umeyama"]
