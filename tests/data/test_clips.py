"""Clip readers: our clip directory and RealEstate10K (camera txt + mp4 or image folder)."""

import numpy as np
import pytest
from PIL import Image

from relic.camera.io import write_re10k
from relic.data.clips import list_clips, read_clip, read_re10k_clip, write_clip
from relic.errors import UserError
from relic.video import read_video, write_mp4
from synth import synth_clip


def test_clip_dir_round_trip(tmp_path):
    frames, traj, _, _ = synth_clip(T=17, seed=0)
    depth = np.random.default_rng(0).uniform(0.5, 5, (17, 64, 96)).astype(np.float32)
    write_clip(tmp_path / "c", frames, traj, "a hall", [{"frame": 16, "of": 0, "kind": "loop"}], {"seed": 0}, depth)
    clip = read_clip(tmp_path / "c")
    assert clip.name == "c" and len(clip) == 17 and clip.caption == "a hall" and clip.meta == {"seed": 0}
    assert clip.revisits == [{"frame": 16, "of": 0, "kind": "loop"}]
    np.testing.assert_allclose(clip.traj.R, traj.R, atol=1e-12)
    got = clip.frames()
    assert got.shape == frames.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - frames).mean() < 8          # H.264 yuv420p (chroma is subsampled)
    assert clip.frames(5).shape[0] == 5
    np.testing.assert_allclose(clip.depth(), depth, rtol=1e-3)   # stored as float16


def test_re10k_from_mp4_and_images(tmp_path):
    frames, traj, _, _ = synth_clip(T=12, seed=1)
    write_re10k(tmp_path / "abc.txt", traj)
    write_mp4(tmp_path / "abc.mp4", frames, fps=traj.fps)
    clip = read_re10k_clip(tmp_path / "abc.txt", tmp_path / "abc.mp4")
    assert (clip.traj.width, clip.traj.height) == (96, 64)
    np.testing.assert_allclose(clip.traj.intrinsics, traj.intrinsics, rtol=1e-9)
    assert clip.frames().shape == (12, 64, 96, 3)
    folder = tmp_path / "img"
    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:05d}.png")
    clip = read_re10k_clip(tmp_path / "abc.txt", folder)
    np.testing.assert_array_equal(clip.frames(), frames)        # PNG is lossless
    assert [c.name for c in list_clips(tmp_path)] == ["abc"]


def test_re10k_video_with_more_frames_uses_timestamps(tmp_path):
    frames, traj, _, _ = synth_clip(T=24, seed=2)
    keep = np.arange(0, 24, 3)                                   # cameras for every 3rd video frame
    cams = traj.slice(0, 24)
    cams.R, cams.P, cams.t = traj.R[keep], traj.P[keep], traj.t[keep]
    write_re10k(tmp_path / "x.txt", cams)
    write_mp4(tmp_path / "x.mp4", frames, fps=16)
    clip = read_re10k_clip(tmp_path / "x.txt", tmp_path / "x.mp4")
    np.testing.assert_array_equal(clip.frame_index, keep)
    np.testing.assert_array_equal(clip.frames(), read_video(tmp_path / "x.mp4")[keep])


def test_bad_input_names_the_file(tmp_path):
    frames, traj, _, _ = synth_clip(T=9, seed=3)
    write_clip(tmp_path / "c", frames, traj)
    (tmp_path / "c" / "video.mp4").write_bytes(b"not a video")
    with pytest.raises(UserError, match="video.mp4"):
        read_clip(tmp_path / "c").frames()
    write_clip(tmp_path / "short", frames[:5], traj.slice(0, 5))
    clip = read_clip(tmp_path / "short")
    clip.traj = traj                                             # cameras list more frames than the video
    with pytest.raises(UserError, match="video has 5 frames but cameras list 9"):
        clip.frames()
    (tmp_path / "inc").mkdir()
    with pytest.raises(UserError, match="incomplete clip"):
        read_clip(tmp_path / "inc")
    (tmp_path / "img").mkdir()
    with pytest.raises(UserError, match="no images"):
        read_re10k_clip(tmp_path / "none.txt", tmp_path / "img")
