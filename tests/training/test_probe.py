"""The conditioning probe: mirrored / static counterfactuals and the flow-loss gaps they cause."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from relic.camera import ACTION_NAMES, OPPOSITE, STATIC, annotate, integrate, signed_motion
from relic.training.batches import LatentBatch, latent_poses
from relic.training.probe import action_sensitivity, counterfactual


def test_opposite_is_an_involution_that_negates_the_motion():
    assert sorted(OPPOSITE) == list(range(13)) and all(OPPOSITE[OPPOSITE[i]] == i for i in range(13))
    assert OPPOSITE[STATIC] == STATIC
    assert ACTION_NAMES[OPPOSITE[ACTION_NAMES.index("pan_left")]] == "pan_right"
    rng = np.random.default_rng(0)
    R, P = integrate(_random_actions(rng, 17), 1.0)
    a, _ = annotate(R, P)
    step, ypr = signed_motion(a)
    mstep, mypr = signed_motion(a[:, list(OPPOSITE)])
    np.testing.assert_array_equal(mstep, -step)
    np.testing.assert_array_equal(mypr, -ypr)


def _random_actions(rng, F):
    """(F, 13) valid actions: per frame and axis, with probability 0.4 a random sign and magnitude."""
    a = np.zeros((F, 13))
    for pos, neg in ((0, 1), (3, 2), (4, 5), (6, 7), (9, 8), (10, 11)):
        on = rng.random(F) < 0.4
        mag = rng.uniform(0.2, 1.5, size=F) * on
        sign = rng.random(F) < 0.5
        a[:, pos], a[:, neg] = np.where(sign, mag, 0.0), np.where(sign, 0.0, mag)
    a[0] = 0
    a[:, STATIC] = (a[:, :STATIC] == 0).all(1)
    return a


def _batch(f=3, b=2, seed=0, h=4, w=6):
    rng = np.random.default_rng(seed)
    F = 1 + 4 * (f - 1)
    acts = np.stack([_random_actions(rng, F) for _ in range(b)])
    poses = [integrate(x, 1.0) for x in acts]
    R, P = latent_poses(torch.tensor(np.stack([r for r, _ in poses]), dtype=torch.float32),
                        torch.tensor(np.stack([p for _, p in poses]), dtype=torch.float32))
    g = torch.Generator().manual_seed(seed)
    return LatentBatch(torch.randn(b, 16, f, h, w, generator=g), torch.tensor(acts, dtype=torch.float32), R, P,
                       torch.randn(b, 3, 8, generator=g), torch.ones(b, 3, dtype=torch.bool), [""] * b)


def test_counterfactual_poses_follow_the_actions():
    batch = _batch()
    assert counterfactual(batch, "true") is batch
    m = counterfactual(batch, "mirror")
    assert not torch.allclose(m.R, batch.R)
    back = counterfactual(m, "mirror")                    # mirroring twice gives the true command and poses
    torch.testing.assert_close(back.actions, batch.actions)
    torch.testing.assert_close(back.R, batch.R, atol=1e-6, rtol=0)
    torch.testing.assert_close(back.P, batch.P, atol=1e-5, rtol=0)
    s = counterfactual(batch, "static")
    assert torch.equal(s.R, torch.eye(3).expand_as(s.R)) and not s.P.any() and bool(s.actions[..., STATIC].all())
    with pytest.raises(ValueError, match="unknown counterfactual"):
        counterfactual(batch, "reverse")


def _dit(random_conditioning: bool):
    from relic.config import DiTConfig
    from relic.models.dit import DiT

    torch.manual_seed(0)
    dit = DiT(DiTConfig(dim=32, ffn_dim=64, text_dim=8, num_heads=2, num_layers=2, freq_dim=32, action_hidden=16,
                        pose_hidden=16))
    for name, p in dit.named_parameters():                 # zero-init output layers (head, gates) get weights
        conditioning = name.startswith(("action_encoder.proj", "pose_encoder.proj"))
        if (random_conditioning or not conditioning) and p.ndim > 1 and p.abs().sum() == 0:
            torch.nn.init.normal_(p, std=0.5 if conditioning else 0.02)
    return dit.eval()


def test_a_fresh_dit_ignores_the_command_exactly():
    """The encoders' output layers start at zero (the Wan-preserving init): every counterfactual gives the same loss."""
    out = action_sensitivity(_dit(False), [_batch(seed=1), _batch(seed=2)], sigmas=(0.5, 0.9))
    assert out["loss_true"] > 0
    assert out["mirror_gap"] == 0.0 and out["static_gap"] == 0.0


def test_a_conditioned_dit_shows_a_gap():
    out = action_sensitivity(_dit(True), [_batch(seed=1), _batch(seed=2)], sigmas=(0.5, 0.9))
    assert abs(out["mirror_gap"]) > 1e-3 and abs(out["static_gap"]) > 1e-3
    assert out["mirror_gap"] == pytest.approx(out["loss_mirror"] / out["loss_true"] - 1.0)


def test_mirroring_one_axis_exchanges_only_its_two_actions():
    """``mirror:dolly`` swaps dolly in and out and re-integrates the poses; the other actions stay; twice is the
    identity; an unknown axis is refused."""
    from relic.training.probe import AXES, axis_actions

    batch = _batch(seed=3)
    i, j = axis_actions("dolly")
    assert (ACTION_NAMES[i], ACTION_NAMES[j]) == ("dolly_in", "dolly_out")
    assert sorted(k for a in AXES for k in axis_actions(a)) == list(range(STATIC))
    m = counterfactual(batch, "mirror:dolly")
    torch.testing.assert_close(m.actions[..., [i, j]], batch.actions[..., [j, i]])
    rest = [k for k in range(13) if k not in (i, j)]
    torch.testing.assert_close(m.actions[..., rest], batch.actions[..., rest])
    poses = [integrate(x.double().numpy(), 1.0) for x in m.actions]
    R, P = latent_poses(torch.tensor(np.stack([r for r, _ in poses]), dtype=torch.float32),
                        torch.tensor(np.stack([p for _, p in poses]), dtype=torch.float32))
    torch.testing.assert_close(m.R, R)
    torch.testing.assert_close(m.P, P)
    back = counterfactual(m, "mirror:dolly")
    torch.testing.assert_close(back.actions, batch.actions)
    with pytest.raises(ValueError, match="unknown axis"):
        counterfactual(batch, "mirror:jump")


def test_per_axis_gaps_only_on_windows_that_move_along_the_axis():
    """Per-axis gaps are 0 for zero-initialized encoders, non-zero for live ones, and computed only over the
    windows with that motion (a batch without roll has no roll gap)."""
    from relic.training.probe import axis_actions, axis_motion

    batches = [_batch(seed=1), _batch(seed=2)]
    for b in batches:
        b.actions[..., list(axis_actions("roll"))] = 0.0
    out0 = action_sensitivity(_dit(False), batches, sigmas=(0.9,), min_motion=0.1)
    assert out0["windows/roll"] == 0 and "mirror_gap/roll" not in out0
    n = sum(int((axis_motion(b, "pan") >= 0.1).sum()) for b in batches)
    assert out0["windows/pan"] == n > 0 and out0["mirror_gap/pan"] == 0.0
    out1 = action_sensitivity(_dit(True), batches, sigmas=(0.9,), min_motion=0.1)
    assert abs(out1["mirror_gap/pan"]) > 1e-4
