"""Confidence intervals for every accuracy the workflow reports, one module so the tables agree.

- A proportion of independent trials (a class's recall, the model's accuracy in an age group):
  Clopper-Pearson (exact: coverage >= the level for every n and p) or Wilson. Neither is
  zero-width at 0/n or n/n, unlike the percentile bootstrap (30/30 gives [1, 1]; the exact
  interval is [0.884, 1]).
- A proportion whose trials are clustered (human accuracy: each image is answered by several
  raters, and answers to one image share its difficulty): Korn and Graubard's Clopper-Pearson
  interval with the effective sample size, the clusters (images) being the unit of variance.
- The class-mean ("average") accuracy of Table 2: a stratified bootstrap by class with
  `scipy.stats.bootstrap` (each class resampled on its own, as the test set was drawn per
  class), or MOVER-Wilson (Zou and Donner's closed form for a linear combination of
  independent proportions, built from the classes' Wilson limits; never zero-width).

Every function returns limits as floats or arrays; `interval_note` names the method for a
table header.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

PROPORTION_METHODS = ("clopper-pearson", "wilson")
CLASS_MEAN_METHODS = ("bootstrap", "mover-wilson")
_STATSMODELS_NAME = {"clopper-pearson": "beta", "wilson": "wilson"}

METHOD_NOTES = {
    "clopper-pearson": "Clopper-Pearson exact {level:.0%} interval",
    "wilson": "Wilson score {level:.0%} interval",
    "korn-graubard": "Korn-Graubard {level:.0%} interval (Clopper-Pearson at the effective sample size, images as clusters)",
    "bootstrap": "stratified percentile bootstrap {level:.0%} interval ({n_resamples} resamples, classes resampled separately)",
    "mover-wilson": "MOVER-Wilson {level:.0%} interval (Zou-Donner, from the classes' Wilson limits)",
}


def interval_note(method: str, level: float = 0.95, n_resamples: int | None = None) -> str:
    """The method's name as a table header states it."""
    if method not in METHOD_NOTES:
        raise ValueError(f"unknown interval method {method!r}; allowed: {', '.join(METHOD_NOTES)}")
    return METHOD_NOTES[method].format(level=level, n_resamples=n_resamples)


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"confidence level must be between 0 and 1, got {level}")


def proportion_interval(
    successes, n, level: float = 0.95, method: str = "clopper-pearson"
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Interval of successes / n (scalars or arrays); NaN where n is 0."""
    if method not in PROPORTION_METHODS:
        raise ValueError(f"unknown proportion interval {method!r}; allowed: {', '.join(PROPORTION_METHODS)}")
    _check_level(level)
    successes, n = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    if np.any(successes < 0) or np.any(successes > n):
        raise ValueError("successes must lie between 0 and n")
    valid = n > 0
    low, high = np.full(np.broadcast(successes, n).shape, np.nan), np.full(np.broadcast(successes, n).shape, np.nan)
    if np.any(valid):
        s, t = np.broadcast_arrays(successes, n)
        lo, hi = proportion_confint(s[valid], t[valid], alpha=1 - level, method=_STATSMODELS_NAME[method])
        low[valid], high[valid] = lo, hi
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def clustered_proportion_interval(
    correct: Sequence[float], trials: Sequence[float], level: float = 0.95
) -> tuple[float, float]:
    """Interval of the mean per-cluster share, mean(correct / trials), over clusters (images).

    Korn and Graubard (1998): Clopper-Pearson at the effective sample size
    n* = p(1 - p) / var(p), with var(p) the between-cluster variance of the mean share and n*
    scaled by (z / t_{k-1})^2 for k clusters; n* is capped at the number of trials, so the
    interval is never narrower than the pooled one and never zero-width at 0 or 1.
    """
    _check_level(level)
    correct, trials = np.asarray(correct, dtype=float), np.asarray(trials, dtype=float)
    if correct.shape != trials.shape or correct.ndim != 1:
        raise ValueError("correct and trials must be 1-d arrays of the same length (one entry per cluster)")
    if np.any(trials <= 0) or np.any(correct < 0) or np.any(correct > trials):
        raise ValueError("every cluster needs trials > 0 and 0 <= correct <= trials")
    k = len(correct)
    if k == 0:
        return float("nan"), float("nan")
    shares = correct / trials
    p = shares.mean()
    n_trials = trials.sum()
    n_eff = n_trials
    if k > 1:
        variance = shares.var(ddof=1) / k
        if variance > 0:
            z = stats.norm.ppf(0.5 + level / 2)
            t = stats.t.ppf(0.5 + level / 2, k - 1)
            n_eff = min(n_trials, p * (1 - p) / variance * (z / t) ** 2)
    alpha = 1 - level
    x = p * n_eff
    low = 0.0 if x <= 0 else stats.beta.ppf(alpha / 2, x, n_eff - x + 1)
    high = 1.0 if x >= n_eff else stats.beta.ppf(1 - alpha / 2, x + 1, n_eff - x)
    return float(low), float(high)


def class_mean(correct: Sequence[np.ndarray]) -> float:
    """Unweighted mean over classes of their accuracy (the paper's Table 2 "Average")."""
    return float(np.mean([np.mean(c) for c in correct]))


def class_mean_bootstrap_interval(
    correct: Sequence[np.ndarray], n_resamples: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """Stratified percentile bootstrap of the class-mean accuracy; `correct` holds one 0/1 array per class.

    scipy.stats.bootstrap resamples each sample of a multi-sample statistic separately, which
    is the stratification by class. Percentile, not BCa: BCa is undefined when a class is all
    correct (its jackknife is constant) and unstable for 0/1 data."""
    _check_level(level)
    samples = tuple(np.asarray(c, dtype=np.float32) for c in correct)
    if not samples or any(len(s) == 0 for s in samples):
        raise ValueError("every class needs at least one image")
    if n_resamples < 1:
        raise ValueError(f"need at least one bootstrap resample, got {n_resamples}")
    # A class whose images are all right (or all wrong, or one image) resamples to itself: it adds
    # a constant. scipy needs >= 2 varying observations per sample, so only the others go to it.
    varying = tuple(s for s in samples if np.any(s != s[0]))
    constant = sum(float(s[0]) for s in samples if np.all(s == s[0]))
    if not varying:
        value = class_mean(samples)
        return value, value
    n_classes = len(samples)
    longest = max(len(s) for s in varying)
    result = stats.bootstrap(
        varying,
        lambda *xs, axis: (np.sum([x.mean(axis=axis) for x in xs], axis=0) + constant) / n_classes,
        n_resamples=n_resamples,
        batch=max(1, 2**24 // longest),  # bounds memory: the unaffected class has ~10k images
        vectorized=True,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def class_mean_mover_interval(successes, n, level: float = 0.95) -> tuple[float, float]:
    """MOVER-Wilson interval of the unweighted mean of independent class accuracies successes / n.

    Zou and Donner (2008), Zou, Huang and Zhang (2009): for sum_c w_c p_c with per-class Wilson
    limits (l_c, u_c), L = est - sqrt(sum w_c^2 (p_c - l_c)^2), U = est + sqrt(sum w_c^2 (u_c - p_c)^2)."""
    successes, n = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
    if successes.ndim != 1 or successes.shape != n.shape or len(n) == 0 or np.any(n <= 0):
        raise ValueError("need one success count and one n > 0 per class")
    low, high = proportion_interval(successes, n, level, "wilson")
    p = successes / n
    w = 1.0 / len(n)
    estimate = float(np.sum(w * p))
    return (
        max(0.0, estimate - float(np.sqrt(np.sum((w * (p - low)) ** 2)))),
        min(1.0, estimate + float(np.sqrt(np.sum((w * (high - p)) ** 2)))),
    )
