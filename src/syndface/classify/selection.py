"""Choosing Table 1's "best fake variant" without looking at the test images.

The paper took the fake type with the highest Table 2 average, i.e. chose on the same test
images Table 1 then tests it on, so its p-values are optimistic. `best_fake_from_histories`
uses only the validation folds: each fold model's balanced accuracy on its own validation fold
at the epoch whose weights model.pt holds (history.tsv, column `kept`), averaged over the folds.

Why history.tsv and not a file of out-of-fold predictions: its `val_balanced_accuracy` *is*
Table 2's statistic (sklearn's balanced accuracy is the unweighted mean of the per-class
recalls, the paper's "average") on the fold's real validation images, which every variant's
fold-k model shares (fakes never validate), so the variants are compared on the same images
with the same statistic; it is already a declared output of every training job, so choosing
costs no extra inference and no new file. Averaging per-fold values instead of pooling the
folds' predictions weights the folds equally, which for folds stratified by disease x age
changes little. The kept epoch was itself chosen on that fold (by the cohort-only balanced
accuracy), which flatters every variant a little and alike.
Ties go to the earlier variant in taxonomy order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from syndface.taxonomy import VARIANTS, variant_fake_type

HISTORY_METRIC = "val_balanced_accuracy"
SELECTION_NOTE = (
    "highest mean over the fold models of the 4-class balanced accuracy on their validation fold at the kept "
    "epoch, history.tsv"
)


def kept_epoch_score(history: pd.DataFrame, metric: str = HISTORY_METRIC) -> float:
    """`metric` at the epoch whose weights model.pt holds (column `kept`)."""
    missing = [c for c in ("epoch", "kept", metric) if c not in history.columns]
    if missing:
        raise ValueError(
            f"history lacks column(s) {', '.join(missing)}; it comes from `syndface train-classifier` "
            "(retrain to write it)"
        )
    kept = history[history["kept"].astype(str).str.lower() == "true"]
    if len(kept) != 1:
        raise ValueError(f"history marks {len(kept)} epochs as kept, not one: the training did not finish an epoch")
    return float(kept[metric].iloc[0])


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
