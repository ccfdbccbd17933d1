"""Operator paths: collision-free with clearance, human speeds, balanced actions, exact action signs."""

import numpy as np
import pytest

from relic.camera import ACTION_INDEX, annotate
from relic.world.operator import Operator, OperatorConfig, _integrate, states_to_trajectory
from relic.world.scenes import make_scene
from relic.world.stats import STATS_ANNOTATE

FPS = 16.0


@pytest.mark.parametrize("seed", range(6))
def test_paths_keep_clearance(seed):
    scene = make_scene(seed)
    cfg = OperatorConfig()
    path = Operator(scene, np.random.default_rng(seed), FPS, cfg).fly(200)
    assert path.states.shape == (200, 6)
    P = path.states[:, :3]
    # every frame and the midpoints between frames keep the clearance
    mids = (P[1:] + P[:-1]) / 2
    assert scene.clearance(P).min() >= cfg.clearance - 1e-9
    assert scene.clearance(mids).min() >= cfg.clearance - 0.01
    # inside the bounds (above the floor, below the ceiling)
    assert (P > scene.bounds[0]).all() and (P < scene.bounds[1]).all()


def test_clearance_is_negative_inside_solids():
    scene = make_scene(2, "indoor")
    box = scene.colliders.boxes[len(scene.colliders.boxes) // 2]
    assert scene.clearance(box.mean(0)[None])[0] < 0
    cyl_scene = make_scene(1, "outdoor")
    if len(cyl_scene.colliders.cylinders):
        x, y, r, z0, z1 = cyl_scene.colliders.cylinders[0]
        assert cyl_scene.clearance(np.array([[x, y, (z0 + z1) / 2]]))[0] < 0


@pytest.mark.parametrize("seed", range(4))
def test_speeds_are_human(seed):
    scene = make_scene(seed)
    path = Operator(scene, np.random.default_rng(seed), FPS).fly(240)
    traj = states_to_trajectory(path.states, FPS, 64, 64)
    speed = np.linalg.norm(np.diff(traj.P, axis=0), axis=1) * FPS
    assert speed.max() < 2.0                                  # m/s: walking pace
    a, _ = annotate(traj.R, traj.P, STATS_ANNOTATE)
    rot = a[:, [ACTION_INDEX[n] for n in ("pan_left", "pan_right", "tilt_up", "tilt_down")]] * FPS
    assert rot.max() < 100.0                                  # deg/s
    # smooth: no velocity jumps bigger than what the ramps allow
    acc = np.linalg.norm(np.diff(np.diff(traj.P, axis=0), axis=0), axis=1) * FPS * FPS
    assert acc.max() < 8.0                                    # m/s²


def test_action_distribution_is_balanced():
    counts = np.zeros(13)
    for seed in range(8):
        scene = make_scene(seed)
        path = Operator(scene, np.random.default_rng(seed), FPS).fly(320)
        traj = states_to_trajectory(path.states, FPS, 64, 64)
        a, _ = annotate(traj.R, traj.P, STATS_ANNOTATE)
        counts += (a[1:] > 0).sum(0)
    frac = counts / counts[:12].sum()
    for name in ("dolly_in", "dolly_out", "truck_left", "truck_right", "pedestal_up", "pedestal_down",
                 "tilt_up", "tilt_down", "pan_left", "pan_right"):
        assert frac[ACTION_INDEX[name]] > 0.01, name
    dolly = frac[ACTION_INDEX["dolly_in"]] + frac[ACTION_INDEX["dolly_out"]]
    assert dolly < 0.4                     # not forward-dominated like real video


@pytest.mark.parametrize("channel,expected", [(0, "dolly_in"), (1, "truck_right"), (2, "pedestal_up"),
                                              (3, "pan_right"), (4, "tilt_up"), (5, "roll_cw")])
def test_channels_annotate_to_the_intended_action(channel, expected):
    state = np.array([0.0, 0.0, 1.5, 30.0, 0.0, 0.0])
    vel = np.zeros((10, 6))
    vel[:, channel] = 1.0 if channel < 3 else 20.0
    states = np.concatenate([state[None], _integrate(state, vel, 1 / FPS)])
    traj = states_to_trajectory(states, FPS, 64, 64)
    a, _ = annotate(traj.R, traj.P)
    active = {n for n, i in ACTION_INDEX.items() if n != "static" and (a[1:, i] > 1e-3).all()}
    assert active == {expected}


@pytest.mark.parametrize("kind", ["turn_back", "return", "loop"])
def test_revisit_moves_return_to_the_start_pose(kind):
    for seed in range(10):
        scene = make_scene(seed)
        op = Operator(scene, np.random.default_rng(seed), FPS)
        start = op.start_state()
        res = getattr(op, f"_{kind}")(start, 400)
        if res is None or not op.safe(res[0]):
            continue
        seg = res[0]
        assert np.abs(seg[-1, :3] - start[:3]).max() < 1e-6
        assert np.abs((seg[-1, 3:] - start[3:] + 180) % 360 - 180).max() < 1e-6
        # and it really went somewhere in between
        moved = np.linalg.norm(seg[:, :3] - start[:3], axis=1).max()
        turned = np.abs(seg[:, 3] - start[3]).max()
        assert moved > 0.3 or turned > 45
        return
    pytest.fail(f"no feasible {kind} in 10 scenes")


def _roll_rate(cfg: OperatorConfig, seeds=range(4), frames: int = 240) -> np.ndarray:
    """|roll| per frame (degrees) in the camera frame, as the annotation gives it, over a few paths."""
    out = []
    for seed in seeds:
        path = Operator(make_scene(seed), np.random.default_rng(seed), FPS, cfg).fly(frames)
        traj = states_to_trajectory(path.states, FPS, 64, 64)
        a, _ = annotate(traj.R, traj.P, STATS_ANNOTATE)
        out.append(np.abs(a[:, ACTION_INDEX["roll_cw"]] - a[:, ACTION_INDEX["roll_ccw"]]))
    return np.concatenate(out)


def test_roll_preset_rolls_often_and_fast_like_the_keys():
    """The ``roll`` operator rolls about twice as much as the default one (whose camera-frame roll is mostly the
    share of a pan made while tilted), within its speed limit plus that share."""
    from relic.world.operator import OPERATOR_PRESETS

    default, roll = _roll_rate(OPERATOR_PRESETS["default"]), _roll_rate(OPERATOR_PRESETS["roll"])
    assert (roll > 1.0).mean() > 1.6 * (default > 1.0).mean() and roll.mean() > 1.6 * default.mean()
    assert roll.max() * FPS <= OPERATOR_PRESETS["roll"].roll_speed[1] + 60    # + the roll a tilted pan carries
    for cfg in OPERATOR_PRESETS.values():
        assert cfg.check() is cfg


@pytest.mark.parametrize("field,value", [("roll_prob", 1.5), ("roll_speed", (5.0, 1.0)), ("max_roll", 0.0),
                                         ("pan_speed", (15.0, 500.0))])
def test_operator_check_names_the_bad_field(field, value):
    import dataclasses

    with pytest.raises(ValueError, match=field):
        dataclasses.replace(OperatorConfig(), **{field: value}).check()
