"""The training dataset: shapes, alignment of frames/actions/poses, palindromes, segments, latents."""

import numpy as np
import pytest
import torch

from relic.camera import integrate
from relic.data.clips import list_clips
from relic.data.dataset import ClipDataset, DatasetConfig, segment_frames
from relic.errors import UserError


@pytest.fixture(scope="module")
def clips(clip_root):
    return list_clips(clip_root)


def true_relative_poses(clip, idx, d_bar):
    """R_k R_0^T and R_0 (P_k - P_0) / d̄ of the source poses at idx."""
    R, P = clip.traj.R[idx], clip.traj.P[idx]
    return np.einsum("kij,lj->kil", R, R[0]), np.einsum("ij,kj->ki", R[0], P - P[0]) / d_bar


def test_segment_frames():
    assert segment_frames(2.0, 16) == 29
    assert segment_frames(20.0, 16) == 317
    assert segment_frames(0.1, 16) == 5
    with pytest.raises(UserError):
        DatasetConfig(seconds=21)


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_samples_are_aligned(clips, rate):
    ds = ClipDataset(clips, DatasetConfig(seconds=2.0, palindrome_rate=rate, samples_per_epoch=6))
    assert ds.num_frames == 29 and len(ds) == 6
    by_name = {c.name: c for c in clips}
    for i in range(len(ds)):
        s = ds[i]
        n = ds.num_frames
        assert s["frames"].shape == (n, 64, 96, 3) and s["frames"].dtype == torch.uint8
        assert s["actions"].shape == (n, 13) and s["R"].shape == (n, 3, 3) and s["P"].shape == (n, 3)
        assert s["caption"] == "A red wall"
        assert torch.equal(s["first_frame"], s["frames"][0])
        assert (s["pivot"] > 0) == (rate == 1.0)
        clip = by_name[s["clip"]]
        idx = s["frame_index"].numpy()
        # the frames are the source frames at frame_index
        np.testing.assert_array_equal(s["frames"].numpy(), clip.frames()[idx])
        # poses at frame k are the integration of the actions up to k
        a = s["actions"].double().numpy()
        assert a[0, 12] == 1.0
        for k in (1, n // 2, n - 1):
            Rk, Pk = integrate(a[:k + 1], 1.0)
            np.testing.assert_allclose(s["R"][k].double().numpy(), Rk[-1], atol=1e-5)
            np.testing.assert_allclose(s["P"][k].double().numpy(), Pk[-1], atol=1e-4)
        # ... and they are the true poses relative to the first frame, in units of the clip's d̄
        R_true, P_true = true_relative_poses(clip, idx, s["mean_displacement"])
        np.testing.assert_allclose(s["R"].double().numpy(), R_true, atol=1e-5)
        np.testing.assert_allclose(s["P"].double().numpy(), P_true, atol=1e-4)
        if rate:
            p = s["pivot"]
            P = s["P"].numpy()
            np.testing.assert_allclose(P[p:], P[p - 2::-1][:n - p], atol=1e-4)   # walks back over its path


def test_plain_sample_actions_are_the_clip_actions(clips):
    from relic.camera import annotate

    ds = ClipDataset(clips, DatasetConfig(seconds=2.0, palindrome_rate=0.0))
    s = ds.sample(1, 10)
    full, _ = annotate(clips[1].traj.R, clips[1].traj.P)
    np.testing.assert_allclose(s["actions"][1:].double().numpy(), full[11:39], atol=1e-5)


def test_starts_are_uniform_and_deterministic(clips):
    ds = ClipDataset(clips, DatasetConfig(seconds=2.0, palindrome_rate=0.0, samples_per_epoch=3000))
    draws = [ds._draw(np.random.default_rng([0, 0, i])) for i in range(3000)]
    per_clip = np.bincount([c for c, _, _ in draws], minlength=3)
    expected = np.array([49 - 29 + 1, 57 - 29 + 1, 41 - 29 + 1]) / (21 + 29 + 13) * 3000
    assert np.all(np.abs(per_clip - expected) < 0.2 * expected)
    key = lambda s: (s["clip"], int(s["frame_index"][0]))  # noqa: E731
    first = [key(ds[i]) for i in range(8)]
    assert first == [key(ds[i]) for i in range(8)]
    ds.set_epoch(1)
    assert first != [key(ds[i]) for i in range(8)]


def test_segments_restrict_the_windows(clips):
    segs = {"clip_000": [(0, 30), (35, 49)], "clip_001": [], "clip_002": [(3, 41)]}
    ds = ClipDataset(clips, DatasetConfig(seconds=2.0, palindrome_rate=0.0), segments=segs)
    assert [c.name for c in ds.clips] == ["clip_000", "clip_002"]
    np.testing.assert_array_equal(ds.windows[0], [0, 1])
    np.testing.assert_array_equal(ds.windows[1], np.arange(3, 13))
    with pytest.raises(UserError, match="no clip has a clean segment"):
        ClipDataset(clips, DatasetConfig(seconds=2.0), segments={c.name: [] for c in clips})


def test_resize_and_collate(clips):
    ds = ClipDataset(clips, DatasetConfig(seconds=1.0, size=(32, 48), samples_per_epoch=4))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["frames"].shape == (2, 13, 32, 48, 3) and batch["actions"].shape == (2, 13, 13)
    assert batch["caption"] == ["A red wall", "A red wall"]
