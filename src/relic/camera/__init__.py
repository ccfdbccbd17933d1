"""Camera geometry, the 13-DoF action space, Algorithm 1 and eq. 3 (paper §3.3, §4.1.2).

See :mod:`relic.camera.geometry` for the one convention used everywhere (OpenCV camera, world-to-camera
rotation R and camera position P in a right-handed, Z-up world in metres).
"""

from relic.camera.actions import (ACTION_INDEX, ACTION_NAMES, NUM_ACTIONS, OPPOSITE, STATIC, AnnotateConfig,
                                  annotate, integrate, signed_motion, validate_actions)
from relic.camera.controls import (KEY_TO_ACTION, ActionScriptError, KeyMap, cancel_opposites,
                                   parse_action_script)
from relic.camera.geometry import (c2w_from_pose, geodesic_angle, intrinsics_matrix, is_rotation, look_at,
                                   orthonormalize, pose_from_c2w, pose_from_w2c, project, rotation_to_ypr,
                                   w2c_from_pose, ypr_to_rotation)
from relic.camera.trajectory import Trajectory

__all__ = [
    "ACTION_INDEX", "ACTION_NAMES", "NUM_ACTIONS", "OPPOSITE", "STATIC", "AnnotateConfig", "annotate", "integrate",
    "signed_motion", "validate_actions", "KEY_TO_ACTION", "ActionScriptError", "KeyMap", "cancel_opposites",
    "parse_action_script", "c2w_from_pose", "geodesic_angle", "intrinsics_matrix", "is_rotation", "look_at",
    "orthonormalize", "pose_from_c2w", "pose_from_w2c", "project", "rotation_to_ypr", "w2c_from_pose",
    "ypr_to_rotation", "Trajectory",
]
