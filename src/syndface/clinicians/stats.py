"""Paired human-versus-model statistics over the images of a survey or of one age group.

Every test pairs, per image, the share of raters who answered it correctly (human) with
whether the model answered it correctly (0/1), so both sides see the same images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint


def mean_difference(model: np.ndarray, human: np.ndarray, axis: int = -1) -> np.ndarray:
    """Model minus human accuracy, averaged over images."""
    return np.mean(model - human, axis=axis)


def permutation_pvalue(
    model: np.ndarray, human: np.ndarray, n_permutations: int, seed: int, alternative: str = "two-sided"
) -> float:
    """Paired permutation test of mean(model - human): each image's two values are swapped or not.

    With at most `n_permutations` distinct swap patterns (2^n) every pattern is enumerated and
    the p-value is exact; otherwise `n_permutations` random patterns are drawn from `seed`.
    """
    result = stats.permutation_test(
        (np.asarray(model, float), np.asarray(human, float)),
        mean_difference,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_permutations,
        alternative=alternative,
        rng=np.random.default_rng(seed),
    )
    return float(result.pvalue)


@dataclass(frozen=True)
class PairedTests:
    difference: float  # mean(model) - mean(human)
    difference_ci_low: float  # 95% t interval of the mean paired difference
    difference_ci_high: float
    t_statistic: float
    p_ttest: float
    wilcoxon_statistic: float
    p_wilcoxon: float


def paired_tests(model: np.ndarray, human: np.ndarray) -> PairedTests:
    """The paper's paired t-test and, as a robustness check, the Wilcoxon signed-rank test.

    The Wilcoxon test drops images where model and human agree exactly (scipy's default);
    when all do, it is undefined and reported as NaN.
    """
    model, human = np.asarray(model, float), np.asarray(human, float)
    ttest = stats.ttest_rel(model, human)
    ci = ttest.confidence_interval(0.95)
    if np.any(model != human):
        wilcoxon = stats.wilcoxon(model, human)
        w_stat, w_p = float(wilcoxon.statistic), float(wilcoxon.pvalue)
    else:
        w_stat, w_p = np.nan, np.nan
    return PairedTests(
        difference=float(np.mean(model) - np.mean(human)),
        difference_ci_low=float(ci.low),
        difference_ci_high=float(ci.high),
        t_statistic=float(ttest.statistic),
        p_ttest=float(ttest.pvalue),
        wilcoxon_statistic=w_stat,
        p_wilcoxon=w_p,
    )


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order; NaN stays NaN."""
    pvalues = np.asarray(pvalues, float)
    adjusted = np.full(pvalues.shape, np.nan)
    finite = np.isfinite(pvalues)
    if finite.any():
        adjusted[finite] = multipletests(pvalues[finite], method="fdr_bh")[1]
    return adjusted


def bootstrap_mean_interval(values: np.ndarray, n_resamples: int, seed: int) -> tuple[float, float]:
    """95% percentile-bootstrap interval of a mean, resampling the units (images) with replacement.

    Used for human accuracy: answers to one image are not independent, so the image, not the
    answer, is the unit that is resampled."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan")
    gen = np.random.default_rng(seed)
    means = values[gen.integers(0, len(values), size=(n_resamples, len(values)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return float(low), float(high)


def wilson_interval(successes: float, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sound at 0/n and n/n, unlike the normal one)."""
    low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
    return float(low), float(high)
