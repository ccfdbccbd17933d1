"""Clips: determinism, revisits present and real, each defect injected on request, the clip directory format."""

import json
import os

import numpy as np
import pytest

from relic.camera.geometry import geodesic_angle
from relic.camera.io import read_cameras_json
from relic.video import read_video, write_mp4
from relic.world import DEFECTS, render_clip, write_clip
from relic.world.writer import is_complete

SIZE = (48, 32)


@pytest.fixture(scope="module")
def clean():
    return render_clip(11, seconds=5, size=SIZE, fps=16)


def test_deterministic_per_seed(clean):
    again = render_clip(11, seconds=5, size=SIZE, fps=16)
    assert np.array_equal(clean.frames, again.frames)
    assert np.array_equal(clean.trajectory.R, again.trajectory.R)
    assert np.array_equal(clean.trajectory.P, again.trajectory.P)
    assert clean.caption == again.caption and clean.revisits == again.revisits
    other = render_clip(12, seconds=5, size=SIZE, fps=16)
    assert not np.array_equal(clean.trajectory.P, other.trajectory.P)


def test_dataset_videos_are_byte_identical(tmp_path):
    """A dataset re-rendered from its seed is the same files: the H.264 encoder runs one thread (at the datasets'
    224x128 libx264 chose 2 slice threads, which gave different bitstreams for the same frames from run to run
    under load), and x264 records its settings in the stream."""
    frames = np.random.default_rng(0).integers(0, 256, (24, 128, 224, 3), dtype=np.uint8)
    videos = []
    for k in range(3):
        write_mp4(tmp_path / f"v{k}.mp4", frames)
        videos.append((tmp_path / f"v{k}.mp4").read_bytes())
    assert videos[0] == videos[1] == videos[2]
    assert b" threads=1 " in videos[0] and b"sliced_threads=0" in videos[0]


def test_shapes(clean):
    assert clean.frames.shape == (80, 32, 48, 3) and clean.frames.dtype == np.uint8
    assert len(clean.trajectory) == 80
    assert clean.trajectory.width == 48 and clean.trajectory.height == 32
    clean.trajectory.validate()


@pytest.mark.parametrize("seed", [11, 21, 31, 41])
def test_revisit_present_and_real(seed):
    clip = render_clip(seed, seconds=8, size=SIZE, fps=16) if seed != 11 else None
    clip = clip or render_clip(seed, seconds=8, size=SIZE, fps=16)
    assert clip.revisits, "every clip long enough has at least one revisit"
    tr = clip.trajectory
    for rv in clip.revisits:
        i, j = rv["of"], rv["frame"]
        assert i < j and rv["kind"] in ("turn_back", "return", "loop")
        assert np.linalg.norm(tr.P[j] - tr.P[i]) < 0.05
        assert np.rad2deg(geodesic_angle(tr.R[j], tr.R[i])) < 2.0
        # the images agree too, much better than frames half-way in between
        same = np.abs(clip.frames[j].astype(int) - clip.frames[i]).mean()
        mid = np.abs(clip.frames[(i + j) // 2].astype(int) - clip.frames[i]).mean()
        assert same < 3.0 and same < mid


def _mean_rot_step(traj):
    return np.rad2deg(geodesic_angle(traj.R[1:], traj.R[:-1]))


@pytest.mark.parametrize("defect", DEFECTS)
def test_each_defect_injected(defect, clean):
    clip = render_clip(11, seconds=5, size=SIZE, fps=16, defects=(defect,))
    recs = clip.meta["defects"]
    assert [r["kind"] for r in recs] == [defect]
    a, b = recs[0]["frames"]
    assert 0 <= a < b < 80
    step = _mean_rot_step(clip.trajectory)
    clean_step = _mean_rot_step(clean.trajectory)
    if defect == "jitter":
        jerk = np.linalg.norm(np.diff(clip.trajectory.P, 2, axis=0), axis=1)
        clean_jerk = np.linalg.norm(np.diff(clean.trajectory.P, 2, axis=0), axis=1)
        assert jerk[a:b].mean() > 5 * clean_jerk[a:b].mean() + 0.005
    elif defect == "abrupt_rotation":
        assert step.max() > 35 and clean_step.max() < 10
    elif defect == "fast_pan":
        assert step[a:b].min() > 10                            # > 160 deg/s at 16 fps
    elif defect in ("overexposure", "underexposure"):
        x, x0 = clip.frames[a:b + 1].astype(int), clean.frames[a:b + 1].astype(int)
        if defect == "overexposure":
            assert (x >= x0).all() and (x >= 250).mean() > (x0 >= 250).mean() + 0.2
        else:
            assert (x <= x0).all() and x.mean() < 0.4 * x0.mean()
        assert np.array_equal(clip.frames[:a], clean.frames[:a])
    elif defect == "frozen":
        assert all(np.array_equal(clip.frames[k], clip.frames[a]) for k in range(a, b + 1))
        assert not np.array_equal(clean.frames[a], clean.frames[b])
        assert np.array_equal(clip.trajectory.P, clean.trajectory.P)
    if defect in ("overexposure", "underexposure", "frozen"):
        assert np.array_equal(clip.trajectory.R, clean.trajectory.R)


def test_unknown_defect_rejected():
    with pytest.raises(ValueError, match="unknown defect"):
        render_clip(1, seconds=1, size=SIZE, defects=("blur",))


def test_clip_directory_format(tmp_path, clean):
    d = write_clip(tmp_path / "clip_000000", seed=11, seconds=2, size=SIZE, fps=16, depth=True)
    names = sorted(os.listdir(d))
    assert names == ["cameras.json", "caption.txt", "depth.npz", "meta.json", "revisits.json", "video.mp4"]
    traj = read_cameras_json(d / "cameras.json")
    video = read_video(d / "video.mp4")
    assert video.shape == (32, 32, 48, 3) and len(traj) == 32 and traj.fps == 16
    depth = np.load(d / "depth.npz")["depth"]
    assert depth.shape == (32, 32, 48) and depth.dtype == np.float16 and np.nanmin(depth) > 0.2
    cap = (d / "caption.txt").read_text()
    assert cap.endswith("\n") and cap.count("\n") == 1
    rv = json.loads((d / "revisits.json").read_text())
    assert isinstance(rv["revisits"], list)
    meta = json.loads((d / "meta.json").read_text())
    assert meta["seed"] == 11 and meta["family"] in ("indoor", "outdoor") and meta["defects"] == []
    assert is_complete(d)
    assert [p.name for p in tmp_path.iterdir()] == ["clip_000000"]


def test_failed_write_leaves_nothing(tmp_path, clean, monkeypatch):
    import relic.data.clips as w  # the clip-directory writer relic.world.write_clip delegates to

    def boom(path, obj, **kw):
        if str(path).endswith("meta.json"):
            raise RuntimeError("disk full")
        return orig(path, obj, **kw)

    orig = w.write_json_atomic
    monkeypatch.setattr(w, "write_json_atomic", boom)
    with pytest.raises(RuntimeError):
        write_clip(tmp_path / "clip_000000", clean)
    assert list(tmp_path.iterdir()) == []
