"""Best fake variant chosen on the validation folds (history.tsv's kept epoch)."""

from __future__ import annotations

import pandas as pd
import pytest

from syndface.classify.selection import best_fake_from_histories, kept_epoch_score


def history(scores: list[float], kept: list[bool]) -> pd.DataFrame:
    return pd.DataFrame({"epoch": range(1, len(scores) + 1), "val_balanced_accuracy": scores, "kept": kept})


def test_kept_epoch_is_the_one_model_pt_holds():
    h = history([0.5, 0.7, 0.9, 0.6], [False, True, False, False])  # epoch 3 is higher but was not kept
    assert kept_epoch_score(h) == 0.7
    with pytest.raises(ValueError, match="0 epochs as kept"):
        kept_epoch_score(history([0.5], [False]))
    with pytest.raises(ValueError, match="lacks column"):
        kept_epoch_score(h.drop(columns="kept"))


def test_best_fake_from_histories_averages_folds_and_ignores_real():
    histories = {
        "real": [history([0.99], [True])] * 2,  # never chosen: not a fake variant
        "real+unrelated": [history([0.7], [True]), history([0.8], [True])],
        "real+age_progression": [history([0.76], [True]), history([0.74], [True])],
        "real+blended_75": [history([0.75], [True]), history([0.75], [True])],
    }
    best, scores = best_fake_from_histories(histories)
    assert scores["real+unrelated"] == pytest.approx(0.75)
    assert best == "real+unrelated"  # three-way tie at 0.75: the first in taxonomy order
    histories["real+blended_75"] = [history([0.75, 0.8], [False, True])] * 2
    assert best_fake_from_histories(histories) == ("real+blended_75", pytest.approx({**scores, "real+blended_75": 0.8}))
    with pytest.raises(ValueError, match="no fake variant"):
        best_fake_from_histories({"real": [history([0.9], [True])]})
