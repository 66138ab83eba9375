"""Choosing Table 1's "best fake variant" without looking at the test images.

The paper took the fake type with the highest Table 2 average, i.e. chose on the same test
images Table 1 then tests it on, so its p-values are optimistic. Two choices that use only the
validation folds (every variant's fold-k model validates on the same real images of fold k):
- `best_fake_from_histories`: each fold's 4-class balanced accuracy on its validation fold at
  the epoch whose weights were kept (history.tsv, written today), averaged over folds. The kept
  epoch was itself chosen on that fold (by the cohort-only balanced accuracy), which flatters
  every variant a little and alike.
- `best_fake_from_validation_predictions`: the class-mean accuracy of the pooled out-of-fold
  predictions, Table 2's own statistic on the validation folds. It needs every fold model's
  predictions on its validation fold at the kept epoch (a `validation.tsv` beside model.pt, the
  columns of predictions/<variant>/test.tsv), which train-classifier does not yet write.
Ties go to the earlier variant in taxonomy order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from syndface.classify.evaluate import class_recalls, labels_and_predictions
from syndface.taxonomy import VARIANTS, variant_fake_type

HISTORY_METRIC = "val_balanced_accuracy"


def kept_epoch_score(history: pd.DataFrame, metric: str = HISTORY_METRIC) -> float:
    """`metric` at the epoch whose weights model.pt holds: the last epoch marked best."""
    missing = [c for c in ("epoch", "best", metric) if c not in history.columns]
    if missing:
        raise ValueError(f"history lacks column(s) {', '.join(missing)}; it comes from `syndface train-classifier`")
    best = history[history["best"].astype(str).str.lower() == "true"]
    if best.empty:
        raise ValueError("history marks no epoch as best: the training did not finish an epoch")
    return float(best.sort_values("epoch")[metric].iloc[-1])


def _best(scores: dict[str, float]) -> str:
    fakes = {v: s for v, s in scores.items() if variant_fake_type(v) is not None}
    if not fakes:
        raise ValueError("no fake variant to choose from (real+<type>)")
    ordered = sorted(fakes, key=VARIANTS.index)
    return max(ordered, key=lambda v: (fakes[v], -VARIANTS.index(v)))


def best_fake_from_histories(histories: dict[str, list[pd.DataFrame]]) -> tuple[str, dict[str, float]]:
    """(best fake variant, {variant: mean over folds of the kept epoch's validation balanced accuracy})."""
    scores = {}
    for variant, folds in histories.items():
        if not folds:
            raise ValueError(f"{variant}: no fold history given")
        scores[variant] = float(np.mean([kept_epoch_score(h) for h in folds]))
    return _best(scores), scores


def best_fake_from_validation_predictions(
    predictions: dict[str, pd.DataFrame],
) -> tuple[str, dict[str, float]]:
    """(best fake variant, {variant: class-mean accuracy of its pooled out-of-fold predictions}).

    Each table: every fold model's predictions on its own validation fold (disease, pred)."""
    scores = {}
    for variant, table in predictions.items():
        y_true, y_pred = labels_and_predictions(table)
        recalls = class_recalls(y_true, y_pred)
        scores[variant] = float(np.nanmean(recalls))
    images = {v: frozenset(t["image_id"]) for v, t in predictions.items() if "image_id" in t.columns}
    if len(set(images.values())) > 1:
        raise ValueError("the variants' validation predictions cover different images; compare them on the same folds")
    return _best(scores), scores
