"""Evaluation (paper §5.3): trajectory metrics, pose estimation from video, image/video quality metrics,
and direction checks of commanded motions.

* :mod:`relic.eval.trajectory` — Umeyama Sim(3)/SE(3) alignment, RPE, ATE.
* :mod:`relic.eval.pose_estimation` — OpenCV two-view poses (LK tracks, MAGSAC essential matrix) chained.
* :mod:`relic.eval.metrics` — PSNR, SSIM, temporal flicker, motion smoothness proxy, sharpness.
* :mod:`relic.eval.direction` — does the estimated motion go where the action commanded?
* :mod:`relic.eval.noise_floor` — the estimator on ground-truth renders.
* :mod:`relic.eval.suites` — the ``relic eval`` suites (actions, memory, quality, speed);
  :mod:`relic.eval.report` writes their report; :mod:`relic.eval.lpips` is LPIPS from local weights.

See ``docs/eval.md`` for the definitions.
"""

from relic.eval.direction import commanded_motion, direction_accuracy, direction_matches, estimated_motion
from relic.eval.metrics import motion_smoothness, psnr, sharpness, ssim, temporal_flicker
from relic.eval.pose_estimation import PoseEstimate, PoseEstimatorConfig, estimate_poses, relative_pose
from relic.eval.trajectory import Similarity, TrajectoryErrors, align, evaluate, rpe_per_pair, umeyama

__all__ = [
    "commanded_motion", "direction_accuracy", "direction_matches", "estimated_motion", "motion_smoothness",
    "psnr", "sharpness", "ssim", "temporal_flicker", "PoseEstimate", "PoseEstimatorConfig", "estimate_poses",
    "relative_pose", "Similarity", "TrajectoryErrors", "align", "evaluate", "rpe_per_pair", "umeyama",
]
