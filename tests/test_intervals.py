"""Interval module: against statsmodels/scipy, hand cases, never zero-width, coverage by simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from syndface.intervals import (
    class_mean,
    class_mean_bootstrap_interval,
    class_mean_mover_interval,
    clustered_proportion_interval,
    interval_note,
    proportion_interval,
)


def test_clopper_pearson_hand_cases_and_scipy():
    assert proportion_interval(30, 30) == pytest.approx((0.884297, 1.0), abs=1e-6)  # not [1, 1]
    assert proportion_interval(0, 30) == pytest.approx((0.0, 0.115703), abs=1e-6)
    for k, n in [(0, 10), (3, 10), (10, 10), (17, 50), (50, 50)]:
        ci = stats.binomtest(k, n).proportion_ci(method="exact")
        assert proportion_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)
        wilson = stats.binomtest(k, n).proportion_ci(method="wilson")
        assert proportion_interval(k, n, method="wilson") == pytest.approx((wilson.low, wilson.high), abs=1e-12)


def test_proportion_interval_is_vectorised_and_never_zero_width():
    k, n = np.array([0, 5, 10, 0]), np.array([10, 10, 10, 0])
    low, high = proportion_interval(k, n, level=0.9)
    reference = proportion_confint(k[:3], n[:3], alpha=0.1, method="beta")
    assert low[:3] == pytest.approx(reference[0]) and high[:3] == pytest.approx(reference[1])
    assert np.isnan(low[3]) and np.isnan(high[3])  # no images, no interval
    assert np.all(high[:3] - low[:3] > 0.1)
    with pytest.raises(ValueError, match="between 0 and n"):
        proportion_interval(11, 10)
    with pytest.raises(ValueError, match="unknown proportion interval"):
        proportion_interval(1, 10, method="normal")


def test_clopper_pearson_covers_at_least_the_level():
    """Exact coverage, summed over the binomial distribution, for the paper's group sizes."""
    for n in (6, 10, 50):
        k = np.arange(n + 1)
        low, high = proportion_interval(k, np.full(n + 1, n))
        for p in (0.05, 0.5, 0.81, 0.86, 0.99):
            covered = (low <= p) & (p <= high)
            assert stats.binom.pmf(k, n, p)[covered].sum() >= 0.95 - 1e-12


def test_clustered_interval_pooled_when_images_agree_and_wider_when_they_differ():
    # every image 10/15: no between-image variance beyond the pooled one -> capped at the 150 answers
    same = clustered_proportion_interval(np.full(10, 10), np.full(10, 15))
    assert same == pytest.approx(proportion_interval(100, 150), abs=1e-9)
    spread = clustered_proportion_interval(np.array([15, 15, 15, 15, 15, 5, 5, 5, 5, 5]), np.full(10, 15))
    pooled = proportion_interval(100, 150)
    assert spread[1] - spread[0] > 1.5 * (pooled[1] - pooled[0])
    low, high = clustered_proportion_interval(np.full(10, 15), np.full(10, 15))  # all right
    assert high == 1.0 and low < 0.98
    with pytest.raises(ValueError, match="trials > 0"):
        clustered_proportion_interval([1, 2], [2, 0])


def test_clustered_interval_covers_the_image_mean_in_simulation():
    """10 images of differing difficulty, 15 raters each: coverage of the mean per-image accuracy."""
    gen = np.random.default_rng(0)
    replicates, covered = 1500, 0
    for _ in range(replicates):
        p = 1 / (1 + np.exp(-(0.8 + gen.normal(0, 0.8, 10))))
        k = gen.binomial(15, p)
        low, high = clustered_proportion_interval(k, np.full(10, 15))
        covered += low <= p.mean() <= high
    # Korn-Graubard is built to be conservative; a 0.95 interval covering < 0.93 would be wrong
    assert covered / replicates >= 0.93


def test_class_mean_bootstrap_is_stratified_seeded_and_matches_a_manual_bootstrap():
    gen = np.random.default_rng(1)
    correct = [gen.random(n) < p for n, p in ((50, 0.94), (50, 0.68), (81, 0.86), (400, 0.99))]
    low, high = class_mean_bootstrap_interval(correct, 4000, seed=3)
    assert (low, high) == class_mean_bootstrap_interval(correct, 4000, seed=3)
    assert low < class_mean(correct) < high
    # the same percentile interval by hand: each class resampled on its own
    manual = np.mean(
        [
            gen.choice(c.astype(float), size=(4000, len(c)), replace=True).mean(1)
            for c in (np.asarray(x) for x in correct)
        ],
        axis=0,
    )
    assert (low, high) == pytest.approx(tuple(np.quantile(manual, [0.025, 0.975])), abs=0.01)


def test_class_mean_intervals_are_not_zero_width_where_a_class_is_perfect():
    correct = [np.ones(30, bool), np.r_[np.ones(20), np.zeros(10)].astype(bool)]
    low, high = class_mean_bootstrap_interval(correct, 2000, seed=1)
    assert high - low > 0.05
    low, high = class_mean_mover_interval([30, 30], [30, 30])  # every class perfect
    assert high == 1.0 and low < 0.96


def test_mover_interval_equals_the_wilson_interval_for_one_class_and_covers():
    assert class_mean_mover_interval([7], [10]) == pytest.approx(proportion_interval(7, 10, method="wilson"))
    gen = np.random.default_rng(2)
    n, p = np.array([50, 50, 81, 300]), np.array([0.94, 0.68, 0.864, 0.99])
    hits = 0
    for _ in range(2000):
        low, high = class_mean_mover_interval(gen.binomial(n, p), n)
        hits += low <= p.mean() <= high
    assert hits / 2000 >= 0.935


def test_interval_note_names_the_method():
    assert interval_note("clopper-pearson") == "Clopper-Pearson exact 95% interval"
    assert "2000 resamples" in interval_note("bootstrap", n_resamples=2000)
    with pytest.raises(ValueError, match="unknown interval method"):
        interval_note("percentile")
