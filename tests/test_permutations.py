"""Exact-when-enumerable permutation machinery against scipy.stats.permutation_test and hand enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from syndface.permutations import (
    PermutationPValue,
    n_splits,
    pvalue_from_null,
    sign_flip_test,
    sign_patterns,
    split_memberships,
    two_sample_test,
)


def mean_difference(x, y, axis=-1):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_sign_flip_enumerates_exactly_as_scipy(alternative):
    d = np.array([0.6, -0.2, 0.45, 0.1, 0.7, -0.05, 0.3, 0.25, 0.15, 0.5])
    ours = sign_flip_test(d, alternative, max_exact=100_000)
    reference = stats.permutation_test(
        (d,), np.mean, permutation_type="samples", n_resamples=np.inf, alternative=alternative, vectorized=True
    )
    assert ours.exact and ours.n_relabellings == 1024 and not ours.at_floor
    assert ours.value == pytest.approx(reference.pvalue, abs=1e-12)


def test_sign_flip_hand_case():
    # d = (0.5, 0.75, 0.5): only "no flip" and "flip all" reach |mean d| = 1.75/3 -> 2 of 8
    assert sign_flip_test(np.array([0.5, 0.75, 0.5])).value == pytest.approx(2 / 8)
    assert sign_flip_test(np.array([0.5, 0.75, 0.5]), "greater").value == pytest.approx(1 / 8)


def test_monte_carlo_above_the_bound_uses_k_plus_one_and_flags_the_floor():
    d = np.full(12, 1.0)  # 4096 patterns; only the observed one reaches mean 1
    mc = sign_flip_test(d, "greater", max_exact=1000, n_resamples=999, seed=1)
    assert not mc.exact and mc.n_relabellings == 999
    if mc.at_floor:  # the all-plus pattern was not drawn
        assert mc.value == pytest.approx(1 / 1000) and mc.text() == "<=0.001"
    exact = sign_flip_test(d, "greater", max_exact=5000)
    assert exact.exact and exact.value == pytest.approx(1 / 4096) and exact.text() == "0.000244"
    assert pvalue_from_null(5.0, np.array([1.0, 2.0, 6.0]), "greater", exact=False) == PermutationPValue(
        0.5, False, 3, False
    )


def test_sign_patterns_are_all_distinct_when_exact():
    signs, exact = sign_patterns(4, 16, 0, np.random.default_rng(0))
    assert exact and signs.shape == (16, 4) and len({row.tobytes() for row in signs}) == 16
    signs, exact = sign_patterns(5, 16, 50, np.random.default_rng(0))
    assert not exact and signs.shape == (50, 5)


def test_split_memberships_enumerate_every_split_once():
    in_a, exact = split_memberships(3, 4, 100, 0, np.random.default_rng(0))
    assert exact and in_a.shape == (35, 7) and (in_a.sum(1) == 3).all()
    assert len({row.tobytes() for row in in_a}) == 35 == math.comb(7, 3)
    assert in_a[0].tolist() == [True] * 3 + [False] * 4  # the observed split comes first
    half, exact = split_memberships(3, 3, 100, 0, np.random.default_rng(0), symmetric=True)
    assert exact and len(half) == 10 == n_splits(3, 3, symmetric=True) and half[:, 0].all()
    random, exact = split_memberships(6, 6, 100, 50, np.random.default_rng(0))
    assert not exact and random.shape == (50, 12) and (random.sum(1) == 6).all()


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_two_sample_test_equals_scipy_exact(alternative):
    a = np.array([3.1, 2.0, 4.4, 5.2])
    b = np.array([1.0, 1.7, 2.9, 0.4, 2.2])
    ours = two_sample_test(a, b, mean_difference, alternative)
    reference = stats.permutation_test(
        (a, b), mean_difference, n_resamples=np.inf, alternative=alternative, vectorized=True
    )
    assert ours.exact and ours.n_relabellings == 126
    assert ours.value == pytest.approx(reference.pvalue, abs=1e-12)


def test_two_sided_two_sample_by_hand_enumeration():
    a, b = np.array([5.0, 4.0, 6.0]), np.array([1.0, 2.0, 0.5, 3.0])
    pooled = np.r_[a, b]
    observed = abs(a.mean() - b.mean())
    extreme = [
        abs(pooled[list(s)].mean() - np.delete(pooled, list(s)).mean()) >= observed - 1e-12
        for s in itertools.combinations(range(7), 3)
    ]
    assert two_sample_test(a, b, mean_difference).value == pytest.approx(np.mean(extreme))


def test_symmetric_half_enumeration_gives_the_same_p():
    """A distance between group means: enumerating the half with item 0 in A gives the full p."""
    gen = np.random.default_rng(4)
    pooled = gen.normal(size=(12, 5))
    pooled[:6] += 0.8

    def distances(in_a):
        mean_a = (in_a[:, :, None] * pooled).sum(1) / in_a.sum(1, keepdims=True)
        mean_b = (~in_a[:, :, None] * pooled).sum(1) / (~in_a).sum(1, keepdims=True)
        return np.linalg.norm(mean_a - mean_b, axis=1)

    full, _ = split_memberships(6, 6, 10_000, 0, gen)
    half, _ = split_memberships(6, 6, 10_000, 0, gen, symmetric=True)
    assert len(full) == 924 and len(half) == 462
    p_full = pvalue_from_null(distances(full[:1])[0], distances(full), "greater", exact=True)
    p_half = pvalue_from_null(distances(half[:1])[0], distances(half), "greater", exact=True)
    assert p_full.value == pytest.approx(p_half.value)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="unknown alternative"):
        sign_flip_test(np.ones(3), "bigger")
    with pytest.raises(ValueError, match="both groups"):
        split_memberships(0, 3, 10, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="at least one random"):
        split_memberships(6, 6, 10, 0, np.random.default_rng(0))
