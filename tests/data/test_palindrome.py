"""Palindrome augmentation (§3.4): the reversed half revisits the poses, and its actions say so."""

import math

import numpy as np
import pytest

from relic.camera import annotate, integrate
from relic.camera.synthetic import smooth_trajectory
from relic.data.palindrome import palindrome, palindrome_indices, sample_pivot


def test_indices():
    np.testing.assert_array_equal(palindrome_indices(10, 6), [0, 1, 2, 3, 4, 5, 4, 3, 2, 1])
    np.testing.assert_array_equal(palindrome_indices(9, 5), [0, 1, 2, 3, 4, 3, 2, 1, 0])
    np.testing.assert_array_equal(palindrome_indices(7, 7), np.arange(7))
    for T in range(3, 40):
        for p in range(math.ceil((T + 1) / 2), T + 1):
            idx = palindrome_indices(T, p)
            assert len(idx) == T and idx.min() >= 0 and idx.max() == p - 1
            assert idx[p - 1] == p - 1 and (np.diff(idx[p - 1:]) == -1).all()
    with pytest.raises(ValueError):
        palindrome_indices(10, 5)          # 2t* - T would be frame 0 of a 1-based clip: out of range


def test_pivot_is_uniform_over_the_second_half():
    rng = np.random.default_rng(0)
    T = 33
    p = np.array([sample_pivot(T, rng) for _ in range(4000)])
    assert p.min() == 17 and p.max() == 32
    counts = np.bincount(p - 17)
    assert counts.min() > 4000 / 16 * 0.7


@pytest.mark.parametrize("seed", range(5))
def test_integrated_actions_land_on_the_revisited_poses(seed):
    T = 41
    R, P = smooth_trajectory(seed, T)                     # all six motions at once
    rng = np.random.default_rng(seed)
    pivot = sample_pivot(T, rng)
    idx, actions, d_bar = palindrome(R, P, pivot)
    R_int, P_int = integrate(actions, d_bar, R0=R[0], P0=P[0])
    # the augmented sequence is the source poses at idx ...
    np.testing.assert_allclose(R_int, R[idx], atol=1e-8)
    np.testing.assert_allclose(P_int, P[idx], atol=1e-7 * max(1.0, np.abs(P).max()))
    # ... so after the pivot it walks back over the poses it came from
    for m in range(1, T - pivot + 1):
        np.testing.assert_allclose(R_int[pivot - 1 + m], R_int[pivot - 1 - m], atol=1e-8)
        np.testing.assert_allclose(P_int[pivot - 1 + m], P_int[pivot - 1 - m], atol=1e-7 * max(1.0, np.abs(P).max()))


def test_reversed_actions_are_not_the_negated_forward_actions():
    """Reversing a motion inverts each relative pose; swapping opposite actions by hand lands elsewhere."""
    T = 21
    R, P = smooth_trajectory(3, T)
    idx, actions, d_bar = palindrome(R, P, 11)
    fwd, _ = annotate(R, P)
    fwd = fwd * 1.0
    swapped = fwd[1:11][::-1][:, [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12]]
    naive = np.concatenate([actions[:11], swapped[:T - 11]])
    R_naive, P_naive = integrate(naive, d_bar, R0=R[0], P0=P[0])
    assert np.abs(P_naive[-1] - P[idx[-1]]).max() > 1e-3 * np.abs(P).max()


def test_actions_in_the_clip_units():
    T = 25
    R, P = smooth_trajectory(1, T)
    _, d_clip = annotate(R, P)
    idx, actions, d = palindrome(R, P, 15, mean_displacement=d_clip)
    assert d == d_clip
    R_int, P_int = integrate(actions, d_clip, R0=R[0], P0=P[0])
    np.testing.assert_allclose(P_int, P[idx], atol=1e-7 * np.abs(P).max())
    # the forward half equals the clip's own actions
    full, _ = annotate(R, P)
    np.testing.assert_allclose(actions[1:15], full[1:15], atol=1e-12)
