"""Long rollouts scored on a re-anchored window: the window is cut as the dataset cuts a clip, its anchor is the
decoded frame encoded as a start image, and the windowed replay's gradients equal the full graph's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from relic.config import VAEConfig
from relic.errors import UserError
from relic.models.autoencoder import build_vae
from relic.training.bench import bench_model_config, grads_of, make_problem
from relic.training.dmd import naive_backward, replay_backward, rollout
from relic.training.long_rollout import (anchor_frame, anchor_latent, check_window, cut_window, draw_window,
                                         window_conditioning, window_latents)


def _vae(arch: str):
    torch.manual_seed(0)
    if arch == "pooled":
        return build_vae(VAEConfig(arch="pooled", z_dim=16, base_dim=4)).eval()
    return build_vae(VAEConfig(z_dim=4, base_dim=8, dim_mult=[1, 2, 2, 2], num_res_blocks=1)).eval()


@pytest.mark.parametrize("arch", ["pooled", "wan"])
def test_anchor_frame_is_frame_4k_minus_4_of_the_whole_decode(arch):
    """Latent k's anchor is video frame 4(k − 1) of the whole clip's decode (the pooled VAE's two-latent shortcut
    included), for every k."""
    vae = _vae(arch)
    z_dim = vae.latents_mean.shape[1]
    z = torch.randn(2, z_dim, 6, 4, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        video = vae.decode(z)                                             # (b 3 1+4·5 32 48)
    for k in range(1, 7):
        torch.testing.assert_close(anchor_frame(vae, z, k), video[:, :, 4 * (k - 1):4 * (k - 1) + 1],
                                   rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="outside"):
        anchor_frame(vae, z, 7)


def test_anchor_latent_is_the_start_image_encoding_of_the_anchor_frame():
    """k = 1 keeps latent 0; k > 1 gives encode_start_image of the decoded frame rounded to uint8, per sample."""
    from relic.data.start_image import encode_start_image
    from relic.runtime.stream import to_uint8

    vae = _vae("pooled")
    z = torch.randn(2, 16, 5, 4, 6, generator=torch.Generator().manual_seed(2))
    assert torch.equal(anchor_latent(vae, z, 1), z[:, :, :1])
    with torch.no_grad():
        video = vae.decode(z)
    for k in (2, 5):
        got = anchor_latent(vae, z, k)
        for b in range(2):
            img = to_uint8(video[b:b + 1, :, 4 * (k - 1):4 * (k - 1) + 1])[0]
            torch.testing.assert_close(got[b:b + 1], encode_start_image(vae, img, 32, 48), rtol=1e-5, atol=1e-5)
        assert not torch.allclose(got, z[:, :, k - 1:k], atol=1e-2)   # an image latent, not the video latent


def test_window_conditioning_is_the_datasets_window(tmp_path):
    """The window's actions are bitwise those the dataset gives for a clip cut at frame 4(k − 1); its poses (each
    latent's, relative to that frame, in units of d̄) match within float tolerance."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
    from synth import synth_clip

    from relic.data.clips import list_clips, write_clip
    from relic.data.dataset import ClipDataset, DatasetConfig
    from relic.training.batches import latent_poses

    frames, traj, _, _ = synth_clip(T=33, height=32, width=48, seed=3)      # an operator walking and panning
    write_clip(tmp_path / "clips" / "clip_000", frames, traj, "a wall", meta={"seed": 3})
    clips = list_clips(tmp_path / "clips")
    long = ClipDataset(clips, DatasetConfig(seconds=2.0625, palindrome_rate=0.0)).sample(0, 0)   # 33 frames
    assert long["actions"].shape[0] == 33
    W = window_latents(0.8125)
    assert W == 3
    short = ClipDataset(clips, DatasetConfig(seconds=0.8125, palindrome_rate=0.0))
    for k in (1, 2, 4, 6):
        a, R, P = window_conditioning(long["actions"][None], k, W)
        ref = short.sample(0, 4 * (k - 1))
        assert torch.equal(a[0], ref["actions"]), k
        Rr, Pr = latent_poses(ref["R"][None], ref["P"][None])
        torch.testing.assert_close(R, Rr, rtol=0, atol=1e-5)
        torch.testing.assert_close(P, Pr, rtol=0, atol=1e-5)
        assert not (k > 1 and torch.allclose(R, latent_poses(long["R"][None], long["P"][None])[0][:, :1 + W]))
    with pytest.raises(ValueError, match="needs frames up to"):
        window_conditioning(long["actions"][None], 7, W)


def test_cut_window_batch_and_scatter():
    from relic.training.batches import LatentBatch

    vae = _vae("pooled")
    z = torch.randn(1, 16, 7, 4, 6, generator=torch.Generator().manual_seed(3))
    acts = torch.zeros(1, 25, 13)
    acts[:, :, 12] = 1.0
    long = LatentBatch(z, acts, torch.eye(3).expand(1, 7, 3, 3), torch.zeros(1, 7, 3), torch.zeros(1, 2, 8),
                       torch.ones(1, 2, dtype=torch.bool), ["c"])
    win = cut_window(vae, z, long, 3, 4)
    assert win.batch.latents.shape == (1, 16, 5, 4, 6) and win.batch.actions.shape == (1, 17, 13)
    assert torch.equal(win.batch.latents[:, :, 1:], z[:, :, 3:7])
    assert torch.equal(win.batch.latents[:, :, :1], anchor_latent(vae, z, 3))
    g = torch.randn(1, 16, 5, 4, 6)
    full = win.scatter(g, 7)
    assert torch.equal(full[:, :, 3:7], g[:, :, 1:]) and full[:, :, :3].abs().sum() == 0
    with pytest.raises(ValueError, match="outside"):
        cut_window(vae, z, long, 4, 4)


def test_window_checks_and_draws():
    check_window(4, 19, 1)
    for bad in ((0, 19, 1), (3, 19, 2), (20, 19, 1)):
        with pytest.raises(UserError, match="dmd.window_seconds"):
            check_window(*bad)
    g = torch.Generator().manual_seed(0)
    draws = {draw_window(10, 4, g) for _ in range(200)}
    assert draws == set(range(7))
    assert window_latents(5.0) == 19 and window_latents(20.0) == 79


def test_windowed_replay_equals_the_full_graph():
    """Gradient only on a window of blocks: replay from the window's first block equals one backward through
    every block's graph (the context blocks before the window get no gradient in either), and replay refuses to
    skip a block that has gradient."""
    mcfg = bench_model_config(dim=32, layers=2, heads=2, window=1, height=32, width=48)
    L, j = 6, 3
    student, first, text, actions, R, P = make_problem(mcfg, L)
    ro_n, outs = rollout(student, mcfg, first, text, actions, R, P, L, torch.Generator().manual_seed(3),
                         grad_steps=1, exit_step=2)
    grad = torch.randn(ro_n.latents.shape, generator=torch.Generator().manual_seed(4))
    grad[:, :, :1 + j] = 0.0
    naive_backward(outs, ro_n, grad)
    g_naive = grads_of(student).clone()
    student.zero_grad(set_to_none=True)
    with torch.no_grad():
        ro_r, _ = rollout(student, mcfg, first, text, actions, R, P, L, torch.Generator().manual_seed(3), exit_step=2)
    replay_backward(student, mcfg, ro_r, grad, text, actions, R, P, 1, start_block=j)
    g_replay = grads_of(student)
    assert g_naive.norm() > 0
    assert float((g_naive - g_replay).norm() / g_naive.norm()) <= 1e-4
    grad[:, :, j] = 1.0
    with pytest.raises(ValueError, match="non-zero gradient"):
        replay_backward(student, mcfg, ro_r, grad, text, actions, R, P, 1, start_block=j)
    assert np.isfinite(float(g_replay.norm()))


@pytest.mark.parametrize("vae, seconds, window, match", [
    (None, 20.0, 5.0, "needs the autoencoder"),
    ("weights/stages/vae_pooled", 5.0, 10.0, "at most the rollout's 19 latents"),
])
def test_dmd_stage_refuses_a_window_it_cannot_cut(vae, seconds, window, match):
    from relic.training.batches import LatentDataConfig
    from relic.training.dmd import DMDConfig, DMDStageConfig, DMDTask

    cfg = DMDStageConfig(vae=vae, data=LatentDataConfig(seconds=seconds), dmd=DMDConfig(window_seconds=window))
    with pytest.raises(UserError, match=match):
        DMDTask(cfg).build(None)
