"""Scores beyond the paper's accuracy, computed from a predictions table's probabilities.

- Brier score (Brier 1950, multiclass): per image the sum over the four classes of the squared
  difference between probability and one-hot truth, averaged over images; 0 is perfect, 2 the
  worst (scikit-learn's `brier_score_loss`, not halved).
- Expected calibration error of the top label: the images sorted by confidence (their largest
  probability) fall into `n_bins` bins of equal mass (sizes differ by at most one; ties keep the
  table's order), and ECE = sum over bins of n_b / N * |accuracy_b - mean confidence_b|. Equal
  mass rather than equal width: a confident model leaves equal-width low-confidence bins nearly
  empty (Nixon et al. 2019). Each bin's accuracy is a proportion with a Clopper-Pearson interval.
- Temperature scaling (Guo et al. 2017): p -> softmax(log p / T), one T fitted by maximum
  likelihood on predictions of images the model did not train on. log p equals the logits up to a
  per-image constant, so the probability tables suffice and the argmax never changes.
- Top-k accuracy and macro F1 (scikit-learn); macro F1's interval by a bootstrap stratified by
  true class (each class resampled on its own, as the test set was drawn per class).

Macro F1 and the class mean run over the classes present among the true labels (as the paper's
balanced accuracy): predicting an absent class is an error of the true class, not a class of its
own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats
from sklearn.metrics import brier_score_loss, f1_score, log_loss, top_k_accuracy_score

from syndface.intervals import proportion_interval
from syndface.taxonomy import DISEASES, disease_index

CLASSES = np.arange(len(DISEASES))
# Probabilities are written rounded to 6 decimals: an exact 0 stands for "below 5e-7".
PROBABILITY_FLOOR = 1e-7
TEMPERATURE_BOUNDS = (0.05, 20.0)


def probability_matrix(table: pd.DataFrame, prefix: str = "p_") -> np.ndarray:
    """Images x classes probabilities from columns `<prefix><class>`, rows renormalised to sum to 1
    (the tables round to 6 decimals)."""
    columns = [f"{prefix}{d}" for d in DISEASES]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"the predictions lack column(s) {', '.join(missing)}")
    p = table[columns].to_numpy(float)
    if (p < 0).any() or not np.all(p.sum(1) > 0):
        raise ValueError("probabilities must be non-negative with a positive sum per image")
    return p / p.sum(1, keepdims=True)


def true_labels(table: pd.DataFrame) -> np.ndarray:
    return np.array([disease_index(d) for d in table["disease"]], dtype=int)


def brier_score(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Multiclass Brier score, 0 (perfect) to 2."""
    return float(brier_score_loss(y_true, proba, labels=CLASSES[: proba.shape[1]], scale_by_half=False))


def negative_log_likelihood(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Mean -log p(true class) (scikit-learn's log_loss)."""
    return float(log_loss(y_true, proba, labels=CLASSES[: proba.shape[1]]))


def equal_mass_bins(confidence: np.ndarray, n_bins: int) -> list[np.ndarray]:
    """Indices of the images in each of `n_bins` bins of ascending confidence and equal size (+-1);
    fewer bins when there are fewer images."""
    if n_bins < 1:
        raise ValueError(f"need at least one bin, got {n_bins}")
    order = np.argsort(np.asarray(confidence), kind="stable")
    return [b for b in np.array_split(order, min(n_bins, len(order))) if len(b)]


def reliability_table(y_true: np.ndarray, proba: np.ndarray, n_bins: int, level: float = 0.95) -> pd.DataFrame:
    """Per equal-mass bin of top-label confidence: images, confidence range and mean, accuracy
    with its Clopper-Pearson interval, and the gap accuracy - confidence."""
    confidence = proba.max(1)
    correct = proba.argmax(1) == y_true
    rows = []
    for k, idx in enumerate(equal_mass_bins(confidence, n_bins)):
        rows.append(
            {
                "bin": k + 1,
                "n": len(idx),
                "correct": int(correct[idx].sum()),
                "conf_low": float(confidence[idx].min()),
                "conf_high": float(confidence[idx].max()),
                "confidence": float(confidence[idx].mean()),
            }
        )
    table = pd.DataFrame(rows, columns=["bin", "n", "correct", "conf_low", "conf_high", "confidence"])
    table["accuracy"] = table["correct"] / table["n"]
    table["ci_low"], table["ci_high"] = proportion_interval(table["correct"].to_numpy(), table["n"].to_numpy(), level)
    table["gap"] = table["accuracy"] - table["confidence"]
    return table


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, n_bins: int) -> float:
    """Top-label ECE over equal-mass bins: sum_b n_b / N * |accuracy_b - confidence_b|."""
    bins = reliability_table(y_true, proba, n_bins)
    return float((bins["n"] * bins["gap"].abs()).sum() / bins["n"].sum())


def temperature_scale(proba: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T) per row (T > 1 softens, T < 1 sharpens; the argmax is unchanged)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    z = np.log(np.clip(proba, PROBABILITY_FLOOR, None)) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def fit_temperature(y_true: np.ndarray, proba: np.ndarray) -> float:
    """The T minimising the negative log-likelihood of softmax(log p / T), searched over
    log T in [log 0.05, log 20] (scipy's bounded scalar minimiser)."""
    if len(y_true) == 0:
        raise ValueError("no predictions to fit a temperature on")
    log_p = np.log(np.clip(proba, PROBABILITY_FLOOR, None))
    rows = np.arange(len(y_true))

    def nll(log_t: float) -> float:
        z = log_p / np.exp(log_t)
        return float(np.mean(np.logaddexp.reduce(z, axis=1) - z[rows, y_true]))

    low, high = np.log(TEMPERATURE_BOUNDS)
    result = optimize.minimize_scalar(nll, bounds=(low, high), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(result.x))


def top_k_hits(y_true: np.ndarray, proba: np.ndarray, k: int) -> int:
    """Images whose true class is among the k most probable (scikit-learn's top_k_accuracy_score)."""
    return int(top_k_accuracy_score(y_true, proba, k=k, labels=CLASSES[: proba.shape[1]], normalize=False))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unweighted mean F1 over the classes present among the true labels."""
    return float(f1_score(y_true, y_pred, labels=np.unique(y_true), average="macro", zero_division=0))


def class_stratified_interval(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_resamples: int,
    seed: int,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of statistic(y_true, y_pred), resampling each true class's
    images on its own (scipy.stats.bootstrap, one sample per class). A class of one image, or one
    whose predictions are all alike, resamples to itself and is held fixed."""
    if n_resamples < 1:
        raise ValueError(f"need at least one bootstrap resample, got {n_resamples}")
    classes = np.unique(y_true)
    samples = [y_pred[y_true == c] for c in classes]
    varying = [i for i, s in enumerate(samples) if len(s) > 1 and np.any(s != s[0])]
    if not varying:
        value = statistic(y_true, y_pred)
        return value, value
    fixed = [i for i in range(len(samples)) if i not in varying]
    fixed_true = np.concatenate([np.full(len(samples[i]), classes[i]) for i in fixed] + [np.empty(0, int)])
    fixed_pred = np.concatenate([samples[i] for i in fixed] + [np.empty(0, int)])
    varying_true = np.concatenate([np.full(len(samples[i]), classes[i]) for i in varying])

    def resampled(*parts: Sequence[int]) -> float:
        pred = np.concatenate([fixed_pred, *parts]).astype(int)
        return statistic(np.concatenate([fixed_true, varying_true]).astype(int), pred)

    result = stats.bootstrap(
        [samples[i] for i in varying],
        resampled,
        n_resamples=n_resamples,
        vectorized=False,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)
