"""Curation filters (§3.2): each injected defect is caught by its filter; clean clips pass."""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from synth import FPS, retraj, synth_clip  # noqa: E402

from relic.cli import main  # noqa: E402
from relic.data.clips import list_clips, write_clip  # noqa: E402
from relic.data.filters import (FILTER_NAMES, FilterConfig, clean_segments, decide, format_frames,  # noqa: E402
                                run_filters)

T = 65


def names(findings):
    return {f.name for f in findings}


def frames_of(findings, name):
    return next(f.frames for f in findings if f.name == name)


@pytest.mark.parametrize("seed", range(6))
def test_clean_clips_pass(seed):
    frames, traj, _, _ = synth_clip(T=T, seed=seed)
    assert run_filters(traj, frames) == []


def test_clean_clip_passes_through_h264(tmp_path):
    frames, traj, _, _ = synth_clip(T=T, seed=7)
    write_clip(tmp_path / "c", frames, traj, "a room")
    clip = list_clips(tmp_path)[0]
    assert run_filters(clip.traj, clip.frames()) == []


# --- camera motion ---------------------------------------------------------------------------------------

def test_excessive_pan_speed():
    frames, traj, yaw, pitch = synth_clip(T=T, seed=1)
    yaw = yaw.copy()
    yaw[30:] += np.cumsum(np.full(T - 30, 400.0 / FPS))      # +400 deg/s from the step 29 -> 30 on
    f = run_filters(retraj(traj, yaw, pitch), frames)
    assert "pan_speed" in names(f)
    assert frames_of(f, "pan_speed")[0] == 30


def test_abrupt_rotation():
    frames, traj, yaw, pitch = synth_clip(T=T, seed=2)
    yaw = yaw.copy()
    yaw[40:] += 8.0                                           # an 8° snap between frames 39 and 40
    f = run_filters(retraj(traj, yaw, pitch), frames)
    assert "abrupt_rotation" in names(f)
    assert set(frames_of(f, "abrupt_rotation")) <= {39, 40}
    assert "pan_speed" not in names(f)                        # 128 deg/s for one frame: fast but allowed


def test_inconsistent_velocity_profile():
    frames, traj, yaw, pitch = synth_clip(T=T, seed=3)
    P = traj.P.copy()
    P[20:] += (P[20] - P[19]) * 2.0                          # one step three times as long: a stutter
    f = run_filters(retraj(traj, yaw, pitch, P), frames)
    assert names(f) >= {"velocity_profile"}
    assert set(frames_of(f, "velocity_profile")) == {19, 20}


# --- viewpoint stability ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["rotation", "position", "oscillation"])
def test_jitter(kind):
    frames, traj, yaw, pitch = synth_clip(T=T, seed=4)
    rng = np.random.default_rng(0)
    P = traj.P.copy()
    yaw = yaw.copy()
    if kind == "rotation":
        yaw += rng.normal(0, 0.8, T)                           # 0.8° micro-jitter
    elif kind == "position":
        P += rng.normal(0, 0.015, (T, 3))                      # 1.5 cm micro-jitter
    else:
        yaw += 1.0 * np.sin(2 * np.pi * 5.0 * np.arange(T) / FPS)   # 5 Hz oscillation of ±1°
    f = run_filters(retraj(traj, yaw, pitch, P), frames)
    assert "jitter" in names(f)
    assert len(frames_of(f, "jitter")) > T // 2


def test_near_collision():
    frames, traj, _, _ = synth_clip(T=T, seed=5)
    depth = np.full((T, 64, 96), 3.0, np.float32)
    assert run_filters(traj, frames, depth) == []
    depth[50:55, 20:44, 30:66] = 0.1                           # a wall 10 cm in front of the lens
    f = run_filters(traj, frames, depth)
    assert names(f) == {"near_collision"}
    assert frames_of(f, "near_collision") == [50, 51, 52, 53, 54]


# --- exposure ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gain,word", [(4.0, "overexposed"), (0.1, "underexposed")])
def test_over_under_exposure(gain, word):
    frames, traj, _, _ = synth_clip(T=T, seed=6)
    frames = frames.copy()
    frames[10:20] = np.clip(frames[10:20].astype(np.float32) * gain, 0, 255).astype(np.uint8)
    f = run_filters(traj, frames)
    assert "exposure" in names(f)
    assert frames_of(f, "exposure") == list(range(10, 20))
    assert word in next(x.reason for x in f if x.name == "exposure")
    assert "exposure_jump" in names(f)


def test_exposure_jump():
    frames, traj, _, _ = synth_clip(T=T, seed=8)
    frames = frames.copy()
    frames[30:] = np.clip(frames[30:].astype(np.float32) * 1.5, 0, 255).astype(np.uint8)
    f = run_filters(traj, frames)
    assert "exposure_jump" in names(f) and "exposure" not in names(f)
    assert frames_of(f, "exposure_jump") == [30]


# --- render quality ----------------------------------------------------------------------------------------

def test_frozen_frames():
    frames, traj, _, _ = synth_clip(T=T, seed=9)
    frames = frames.copy()
    frames[33:36] = frames[32]                                 # the picture stops while the camera moves
    f = run_filters(traj, frames)
    assert "frozen" in names(f)
    assert frames_of(f, "frozen") == [33, 34, 35]


def test_static_camera_is_not_frozen():
    frames, traj, yaw, pitch = synth_clip(T=T, seed=9)
    still = retraj(traj, np.full(T, yaw[0]), np.full(T, pitch[0]), np.repeat(traj.P[:1], T, 0))
    assert run_filters(still, np.repeat(frames[:1], T, 0)) == []


def test_black_frames():
    frames, traj, _, _ = synth_clip(T=T, seed=10)
    frames = frames.copy()
    frames[12] = 0
    f = run_filters(traj, frames)
    assert {"black", "exposure", "pop"} <= names(f)
    assert frames_of(f, "black") == [12]


def test_pop_glitch_and_persistent_pop():
    frames, traj, _, _ = synth_clip(T=T, seed=11)
    glitch = frames.copy()
    glitch[25, :, :48] = (255, 0, 255)                         # one frame with a missing (magenta) texture
    f = run_filters(traj, glitch)
    assert "pop" in names(f) and 25 in frames_of(f, "pop")
    popped = frames.copy()
    popped[40:, 8:56, 16:80] = (200, 30, 30)                  # a large red object pops in and stays
    f = run_filters(traj, popped)
    assert frames_of(f, "pop") == [40]


# --- decisions -------------------------------------------------------------------------------------------

def test_cut_into_clean_segments_or_reject():
    frames, traj, _, _ = synth_clip(T=T, seed=13)
    frames = frames.copy()
    frames[30] = 0
    cfg = FilterConfig(min_segment_frames=17)
    v = decide("c", T, run_filters(traj, frames, cfg=cfg), cfg)
    # 30 is black (exposure, black, pop); 31 jumps back to normal brightness (exposure_jump)
    assert v.kept and v.segments == [(0, 30), (32, 65)]
    strict = dataclasses.replace(cfg, cut=())
    v = decide("c", T, run_filters(traj, frames, cfg=strict), strict)
    assert not v.kept and v.segments == [] and "black" in v.rejected_by


def test_clean_segments_and_format():
    bad = np.zeros(20, bool)
    bad[[5, 6, 15]] = True
    assert clean_segments(bad, 3) == [(0, 5), (7, 15), (16, 20)]
    assert clean_segments(bad, 6) == [(7, 15)]
    assert format_frames([1, 2, 3, 7, 9, 10]) == "1–3, 7, 9–10"


def test_config_rejects_unknown_filter_names():
    with pytest.raises(ValueError, match="unknown filter"):
        FilterConfig(cut=("nope",))
    assert len(FILTER_NAMES) == 10


# --- CLI -------------------------------------------------------------------------------------------------

def test_filter_cli_report(tmp_path, capsys):
    good, traj, _, _ = synth_clip(T=T, seed=14)
    bad = good.copy()
    bad[5:60] = 0                                              # mostly black: nothing clean is left
    write_clip(tmp_path / "d" / "good", good, traj, "a hall")
    write_clip(tmp_path / "d" / "bad", bad, traj, "a hall")
    (tmp_path / "d" / "incomplete").mkdir()                    # no meta.json: skipped
    report, js = tmp_path / "r.md", tmp_path / "v.json"
    assert main(["data", "filter", str(tmp_path / "d"), "--report", str(report), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    text = report.read_text()
    assert out == text
    assert "1 of 2 clip(s) kept" in text
    assert "| good | 65 | kept |" in text
    row = next(line for line in text.splitlines() if line.startswith("| bad "))
    assert "rejected" in row and "**black**" in row
    import json
    v = {c["name"]: c for c in json.loads(js.read_text())["clips"]}
    assert v["good"]["segments"] == [[0, 65]] and v["bad"]["segments"] == []


def test_filter_cli_bad_input(tmp_path, capsys):
    assert main(["data", "filter", str(tmp_path / "missing")]) == 2
    assert "missing: directory not found" in capsys.readouterr().err
    clip = tmp_path / "c"
    clip.mkdir()
    (clip / "meta.json").write_text("{}")
    (clip / "cameras.json").write_text("{not json")
    assert main(["data", "filter", str(clip)]) == 2
    err = capsys.readouterr().err
    assert "cameras.json" in err and "malformed JSON" in err and len(err.strip().splitlines()) == 1
