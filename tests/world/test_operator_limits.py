"""Clean operator paths are smooth and human-like at every clip length: revisits (turn-back, return, loop)
obey the same speed and acceleration limits as ordinary segments, are shortened or skipped rather than
squeezed when the clip is short, and the curation filters of relic.data.filters pass the clean clips."""

from functools import lru_cache

import numpy as np
import pytest

from relic.data.filters import FilterConfig, decide, run_filters
from relic.world import render_clip
from relic.world.operator import Operator, OperatorConfig, motion_peaks, states_to_trajectory
from relic.world.scenes import make_scene

FPS = 16.0
CFG = OperatorConfig()
# the filters that look at the poses only; the image filters get their own (rendered) test below
MOTION_FILTERS = FilterConfig(enabled=("pan_speed", "abrupt_rotation", "velocity_profile", "jitter"))


@lru_cache(maxsize=None)
def _scene(seed: int):
    return make_scene(seed)        # scenes are read-only for the operator; building one costs ~0.1 s


def _fly(scene, seed: int, seconds: float):
    """The clip's path exactly as relic.world.render_clip flies it (same generator seeding)."""
    n = max(2, int(round(seconds * FPS)))
    return Operator(scene, np.random.default_rng(np.random.SeedSequence([seed, 1])), FPS).fly(n)


def _assert_within_limits(states, what):
    v, w, a, alpha = motion_peaks(states, FPS)
    assert v <= CFG.max_speed, (what, "speed m/s", v)
    assert w <= CFG.max_angular_speed, (what, "angular speed deg/s", w)
    assert a <= CFG.max_accel, (what, "acceleration m/s²", a)
    assert alpha <= CFG.max_angular_accel, (what, "angular acceleration deg/s²", alpha)


def test_limits_sit_well_inside_the_filter_thresholds():
    f = FilterConfig()
    assert CFG.max_angular_speed <= f.max_angular_speed / 1.5 and CFG.max_speed <= f.max_speed / 2
    assert CFG.max_angular_accel <= f.max_angular_accel / 2 and CFG.max_accel <= f.max_linear_accel / 1.5


def test_motion_peaks_measure_like_the_filters():
    scene = _scene(3)
    states = _fly(scene, 3, 10.0).states
    traj = states_to_trajectory(states, FPS, 48, 32)
    v, w, a, alpha = motion_peaks(states, FPS)
    # each limit just below the measured peak makes the matching filter fire, just above keeps it quiet
    for field, peak, name in (("max_speed", v, "pan_speed"), ("max_angular_speed", w, "pan_speed"),
                              ("max_linear_accel", a, "velocity_profile"),
                              ("max_angular_accel", alpha, "abrupt_rotation")):
        assert peak > 0, field
        enabled = (name,)
        for scale, fires in ((0.999, True), (1.001, False)):
            cfg = FilterConfig(enabled=enabled, **{field: peak * scale})
            if field == "max_speed":
                cfg.max_angular_speed = 1e9
            if field == "max_angular_speed":
                cfg.max_speed = 1e9
            found = run_filters(traj, np.zeros((len(traj), 1, 1, 3), np.uint8), None, cfg)
            assert bool(found) == fires, (field, scale, [x.reason for x in found])


@pytest.mark.parametrize("seconds", [2.0, 3.0, 4.0, 5.0, 6.0, 8.0])
def test_clean_paths_stay_under_the_limits_and_pass_the_motion_filters(seconds):
    with_revisit = 0
    for seed in range(20):
        scene = _scene(seed)
        path = _fly(scene, seed, seconds)
        _assert_within_limits(path.states, (seconds, seed))
        traj = states_to_trajectory(path.states, FPS, 48, 32)
        findings = run_filters(traj, np.zeros((len(traj), 1, 1, 3), np.uint8), None, MOTION_FILTERS)
        assert findings == [], (seconds, seed, [(f.name, f.reason) for f in findings])
        with_revisit += bool(path.revisits)
    if seconds >= 4.0:   # short clips still get their revisits, just smaller ones
        assert with_revisit >= 18, (seconds, with_revisit)


@pytest.mark.parametrize("kind", ["turn_back", "return", "loop"])
def test_revisits_that_do_not_fit_are_shortened_or_skipped_not_sped_up(kind):
    made = 0
    for seed in range(8):
        scene = _scene(seed)
        for budget in (6, 12, 20, 30, 45, 64, 100, 400):
            op = Operator(scene, np.random.default_rng([seed, budget]), FPS)
            start = op.start_state()
            res = getattr(op, f"_{kind}")(start, budget)
            if res is None:
                continue
            seg, labels = res
            assert len(seg) == len(labels) <= budget
            _assert_within_limits(np.concatenate([start[None], seg]), (kind, seed, budget))
            v, w, _, _ = motion_peaks(np.concatenate([start[None], seg]), FPS)
            if kind == "turn_back":     # at most the sampled operator speed, ramps included
                assert w <= CFG.pan_speed[1] * 1.3 * 1.1, (seed, budget, w)
                turned = np.abs(seg[:, 3] - start[3]).max()
                assert turned >= CFG.min_turn_back - 1e-6, (seed, budget, turned)
            if kind == "loop":          # walking pace around the orbit
                assert v <= CFG.speed[1] * 1.05, (seed, budget, v)
            made += 1
    assert made > 0, f"no {kind} at any budget"


def test_rendered_short_clean_clips_pass_every_filter():
    """4-s clips at a tiny size, depth included: nothing is flagged, so no frame is cut."""
    for seed in range(6):
        clip = render_clip(seed, seconds=4.0, size=(48, 32), fps=FPS, depth=True)
        findings = run_filters(clip.trajectory, clip.frames, clip.depth)
        assert findings == [], (seed, [(f.name, f.reason) for f in findings])
        verdict = decide(f"seed{seed}", len(clip.frames), findings)
        assert verdict.kept and verdict.segments == [(0, len(clip.frames))]


@pytest.mark.slow
def test_many_seeds_and_lengths_stay_under_the_limits():
    for seed in range(20, 50):
        scene = _scene(seed)
        for seconds in (2.5, 4.0, 4.5, 7.0, 12.0, 20.0):
            path = _fly(scene, seed, seconds)
            _assert_within_limits(path.states, (seconds, seed))
            traj = states_to_trajectory(path.states, FPS, 48, 32)
            findings = run_filters(traj, np.zeros((len(traj), 1, 1, 3), np.uint8), None, MOTION_FILTERS)
            assert findings == [], (seconds, seed, [(f.name, f.reason) for f in findings])
