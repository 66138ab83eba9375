"""Best fake variant chosen on the validation folds (history.tsv, or out-of-fold predictions)."""

from __future__ import annotations

import pandas as pd
import pytest

from syndface.classify.selection import (
    best_fake_from_histories,
    best_fake_from_validation_predictions,
    kept_epoch_score,
)


def history(scores: list[float], best: list[bool]) -> pd.DataFrame:
    return pd.DataFrame(
        {"epoch": range(1, len(scores) + 1), "val_balanced_accuracy": scores, "best": best, "loss": 0.0}
    )


def test_kept_epoch_is_the_last_marked_best():
    h = history([0.5, 0.7, 0.9, 0.6], [True, True, False, False])  # epoch 3 is higher but was not kept
    assert kept_epoch_score(h) == 0.7
    with pytest.raises(ValueError, match="no epoch as best"):
        kept_epoch_score(history([0.5], [False]))
    with pytest.raises(ValueError, match="lacks column"):
        kept_epoch_score(h.drop(columns="best"))


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
    with pytest.raises(ValueError, match="no fake variant"):
        best_fake_from_histories({"real": [history([0.9], [True])]})


def test_best_fake_from_out_of_fold_predictions_uses_the_class_mean():
    truth = ["WS", "WS", "22q", "control", "unaffected", "unaffected"]
    table = lambda pred: pd.DataFrame({"image_id": list("abcdef"), "disease": truth, "pred": pred})  # noqa: E731
    predictions = {
        "real+unrelated": table(["WS", "WS", "22q", "WS", "unaffected", "unaffected"]),  # mean (1+1+0+1)/4
        "real+age_related": table(["WS", "22q", "22q", "control", "unaffected", "WS"]),  # (.5+1+1+.5)/4
    }
    best, scores = best_fake_from_validation_predictions(predictions)
    assert scores == pytest.approx({"real+unrelated": 0.75, "real+age_related": 0.75})
    assert best == "real+unrelated"
    predictions["real+age_related"] = table(["WS", "WS", "22q", "control", "unaffected", "unaffected"])
    assert best_fake_from_validation_predictions(predictions)[0] == "real+age_related"
    with pytest.raises(ValueError, match="different images"):
        best_fake_from_validation_predictions(
            {**predictions, "real+blended_55": predictions["real+unrelated"].iloc[1:]}
        )
