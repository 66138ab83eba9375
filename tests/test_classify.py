"""Classifier pieces without training: schedule, loss, ensemble, evaluation, Table 2 (augmentations: test_classify_augment.py)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from syndface.classify.evaluate import (
    balanced_accuracy,
    class_metrics,
    class_recalls,
    confusion_counts,
    confusion_table,
    group_metrics,
    two_way_answers,
    two_way_metrics,
)
from syndface.classify.loss import weighted_cross_entropy
from syndface.classify.options import TrainOptions
from syndface.classify.predict import ensemble
from syndface.classify.schedule import lr_schedule, paper_lr
from syndface.classify.table2 import make_table2
from syndface.intervals import class_mean_mover_interval, proportion_interval
from syndface.io import variant_paths
from syndface.options import OptionsError
from syndface.taxonomy import DISEASES

# --- schedule -----------------------------------------------------------------------------------


def test_schedule_reproduces_the_paper_codes_per_epoch_rates():
    b = 3e-5
    rates = lr_schedule(b, 30)
    assert len(rates) == 30
    assert rates[0] == pytest.approx(b)
    assert rates[1] == pytest.approx(10 * b)
    for epoch in range(3, 31):
        assert rates[epoch - 1] == pytest.approx(10 * b * (1 + math.cos(math.pi * (epoch - 2) / 29)) / 2)
    # The notes: epoch 30 falls to ~0.003 x 10b (sin^2(pi/58)) and no restart happens.
    assert rates[-1] / (10 * b) == pytest.approx(math.sin(math.pi / 58) ** 2)
    assert all(later < earlier for earlier, later in zip(rates[1:], rates[2:]))
    assert paper_lr(3, 1.0, 8, warmup_factor=10) == pytest.approx(10 * (1 + math.cos(math.pi / 7)) / 2)
    with pytest.raises(ValueError):
        paper_lr(0, b, 30)


# --- loss ---------------------------------------------------------------------------------------


def test_soft_label_loss_equals_hard_label_loss_on_one_hot_targets():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 4, generator=gen)
    labels = torch.tensor([0, 1, 2, 3, 3, 3, 0])
    weights = torch.tensor([10.0, 10.0, 10.0, 1.0])
    one_hot = F.one_hot(labels, 4).float()
    hard = torch.nn.CrossEntropyLoss(weight=weights)(logits, labels)
    assert torch.allclose(weighted_cross_entropy(logits, one_hot, weights), hard, atol=1e-6)
    # The paper code's soft form: a plain batch mean, which is torch's CE with probability targets.
    soft_targets = torch.softmax(torch.randn(7, 4, generator=gen), 1)
    batch_form = weighted_cross_entropy(logits, soft_targets, weights, normalisation="batch")
    assert torch.allclose(batch_form, F.cross_entropy(logits, soft_targets, weight=weights), atol=1e-6)
    by_hand = -(soft_targets * weights * torch.log_softmax(logits, 1)).sum() / 7
    assert torch.allclose(batch_form, by_hand, atol=1e-6)
    # On one-hot targets the two forms differ exactly by sum_i w[y_i] / N.
    ratio = weighted_cross_entropy(logits, one_hot, weights, "batch") / weighted_cross_entropy(
        logits, one_hot, weights, "weights"
    )
    assert ratio.item() == pytest.approx(weights[labels].sum().item() / 7)
    with pytest.raises(ValueError, match="normalisation"):
        weighted_cross_entropy(logits, one_hot, weights, "mean")


def test_class_weights_come_whole_from_the_options_and_unknown_classes_are_refused():
    weights = {"unaffected": 1, "WS": 10, "22q": 10, "control": 10}
    assert TrainOptions.parse({"classifier": {"class_weights": weights}}).class_weights == weights
    with pytest.raises(OptionsError, match="classifier.class_weights: 'unaffected' is a required property"):
        TrainOptions.parse({"classifier": {"class_weights": {"WS": 10, "22q": 10, "control": 10}}})
    with pytest.raises(OptionsError, match="'normal' was unexpected"):
        TrainOptions.parse({"classifier": {"class_weights": {**weights, "normal": 1}}})


# --- ensemble -----------------------------------------------------------------------------------


def test_ensemble_rule_on_a_hand_computed_case():
    probabilities = np.array(
        [
            # image 0: folds 0 and 2 are confident (max 0.7, 0.6), fold 1 is not (max 0.4)
            # image 1: no fold reaches 0.5 -> plain mean, flagged
            [[0.7, 0.1, 0.1, 0.1], [0.4, 0.3, 0.2, 0.1]],
            [[0.1, 0.4, 0.3, 0.2], [0.3, 0.3, 0.3, 0.1]],
            [[0.2, 0.6, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]],
        ]
    )
    mean, n_models, fallback = ensemble(probabilities, 0.5)
    np.testing.assert_allclose(mean[0], [0.45, 0.35, 0.1, 0.1])
    np.testing.assert_allclose(mean[1], [0.95 / 3, 0.85 / 3, 0.75 / 3, 0.45 / 3])
    assert n_models.tolist() == [2, 3] and fallback.tolist() == [False, True]
    # The paper code's 0.2: with four classes every model passes, so it is the plain mean.
    mean, n_models, fallback = ensemble(probabilities, 0.2)
    np.testing.assert_allclose(mean, probabilities.mean(0))
    assert n_models.tolist() == [3, 3] and not fallback.any()
    # Exactly at the threshold counts as confident ("at least 0.5").
    _, n_models, _ = ensemble(np.array([[[0.5, 0.5, 0, 0]], [[0.4, 0.3, 0.3, 0]]]), 0.5)
    assert n_models.tolist() == [1]


# --- evaluation ---------------------------------------------------------------------------------


def hand_predictions() -> pd.DataFrame:
    """10 test images with known answers: WS 3/4 right, 22q 1/2, control 2/3, unaffected 1/1."""
    rows = [
        # disease, age_group, pred, p_WS, p_22q, p_control
        ("WS", "infant", "WS", 0.7, 0.1, 0.1),
        ("WS", "infant", "WS", 0.6, 0.1, 0.2),
        ("WS", "child", "WS", 0.5, 0.2, 0.2),
        ("WS", "child", "control", 0.3, 0.1, 0.4),
        ("22q", "infant", "22q", 0.1, 0.6, 0.2),
        ("22q", "child", "unaffected", 0.1, 0.2, 0.3),  # 4-way wrong, two-way (22q vs control) also wrong
        ("control", "infant", "control", 0.2, 0.1, 0.6),
        ("control", "child", "control", 0.1, 0.3, 0.5),
        ("control", "child", "WS", 0.5, 0.1, 0.3),  # two-way: wrong in the WS survey, right in the 22q survey
        ("unaffected", "child", "unaffected", 0.1, 0.1, 0.1),
    ]
    frame = pd.DataFrame(rows, columns=["disease", "age_group", "pred", "p_WS", "p_22q", "p_control"])
    frame["p_unaffected"] = 1 - frame[["p_WS", "p_22q", "p_control"]].sum(axis=1)
    frame.insert(0, "image_id", [f"i{i}" for i in range(len(frame))])
    frame["source"] = np.where(frame["disease"] == "unaffected", "auxiliary", "cohort")
    return frame


def test_class_accuracy_mean_and_confusion_matrix_on_a_hand_case():
    predictions = hand_predictions()
    metrics = class_metrics(predictions, n_boot=200, seed=1).set_index("class")
    assert metrics["accuracy"].to_dict() == pytest.approx(
        {"WS": 0.75, "22q": 0.5, "control": 2 / 3, "unaffected": 1.0, "average": (0.75 + 0.5 + 2 / 3 + 1) / 4}
    )
    assert metrics.loc["WS", "n"] == 4 and metrics.loc["average", "correct"] == 7
    # Clopper-Pearson per class: 1/1 gives [0.025, 1], not the bootstrap's zero-width [1, 1]
    assert (metrics.loc["unaffected", "ci_low"], metrics.loc["unaffected", "ci_high"]) == pytest.approx((0.025, 1.0))
    assert metrics.loc["WS", ["ci_low", "ci_high"]].tolist() == pytest.approx(list(proportion_interval(3, 4)))
    n, correct = np.array([4, 2, 3, 1]), np.array([3, 1, 2, 1])
    average = metrics.loc["average", ["ci_low", "ci_high"]].tolist()
    assert average == pytest.approx(list(class_mean_mover_interval(correct, n)))
    boot = class_metrics(predictions, n_boot=500, seed=1, class_mean_interval="bootstrap").set_index("class")
    assert boot.loc["WS", "ci_low"] == metrics.loc["WS", "ci_low"]  # only the average's interval differs
    assert boot.loc["average", "ci_low"] < boot.loc["average", "accuracy"] < boot.loc["average", "ci_high"]
    assert (metrics["ci_low"] <= metrics["accuracy"] + 1e-12).all() and (
        metrics["accuracy"] <= metrics["ci_high"] + 1e-12
    ).all()
    assert metrics.equals(class_metrics(predictions, n_boot=200, seed=1).set_index("class"))
    confusion = confusion_table(predictions).set_index("true")
    assert confusion.loc["WS", list(DISEASES)].tolist() == [0.75, 0, 0.25, 0]
    assert confusion.loc["22q", list(DISEASES)].tolist() == [0, 0.5, 0, 0.5]
    assert confusion.loc["control", list(DISEASES)].tolist() == pytest.approx([1 / 3, 0, 2 / 3, 0])
    assert confusion["n"].tolist() == [4, 2, 3, 1]


def test_balanced_accuracy_averages_the_classes_present():
    assert balanced_accuracy(np.array([0, 0, 1, 1, 1]), np.array([0, 3, 1, 1, 1])) == pytest.approx((0.5 + 1) / 2)
    # The paper's bal_acc_ourdata on cohort images: predicting unaffected (3), absent from y_true, is an
    # error of the true class, not a fourth class with recall 0; and it is not worth a warning every epoch.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert balanced_accuracy(np.array([0, 1, 2, 2]), np.array([3, 1, 2, 3])) == pytest.approx((0 + 1 + 0.5) / 3)
    assert np.isnan(balanced_accuracy(np.array([], int), np.array([], int)))
    assert class_recalls(np.array([0, 0, 2]), np.array([0, 1, 3])).tolist() == pytest.approx(
        [0.5, np.nan, 0.0, np.nan], nan_ok=True
    )
    assert confusion_counts(np.array([0, 0, 2]), np.array([0, 1, 3])).tolist() == [
        [1, 1, 0, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 1],
        [0, 0, 0, 0],
    ]


def test_per_group_and_two_way_readouts_on_a_hand_case():
    predictions = hand_predictions()
    groups = group_metrics(predictions).set_index(["disease", "age_group"])
    assert groups.loc[("WS", "infant"), "accuracy"] == 1.0 and groups.loc[("WS", "child"), "accuracy"] == 0.5
    assert groups.loc[("control", "child"), "accuracy"] == 0.5 and len(groups) == 7
    answers = two_way_answers(predictions)
    ws = answers[answers["survey"] == "WS"].set_index("image_id")
    # i3: P(WS)=0.3 < P(control)=0.4 -> "other" (wrong); i8: 0.5 > 0.3 -> "WS" (wrong).
    assert ws.loc["i3", "answer"] == "other" and not ws.loc["i3", "correct"]
    assert ws.loc["i8", "answer"] == "WS" and not ws.loc["i8", "correct"]
    assert set(ws.index) == {"i0", "i1", "i2", "i3", "i6", "i7", "i8"}  # the unaffected image is in no survey
    summary = two_way_metrics(answers).set_index(["survey", "disease", "age_group"])
    assert summary.loc[("WS", "WS", "all"), "accuracy"] == 0.75
    assert summary.loc[("WS", "control", "all"), "accuracy"] == pytest.approx(2 / 3)
    assert summary.loc[("22q", "22q", "all"), "accuracy"] == 0.5  # i5: 0.2 < 0.3 -> control
    assert summary.loc[("22q", "control", "all"), "accuracy"] == 1.0  # i8 reads as control against 22q


# --- Table 2 ------------------------------------------------------------------------------------


def test_table2_rows_and_columns_follow_the_paper_order():
    def metrics(offset: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "class": [*DISEASES, "average"],
                "accuracy": np.arange(5) / 10 + offset,
                "ci_low": np.zeros(5),
                "ci_high": np.ones(5),
            }
        )

    given = {"real+age_progression": metrics(0.03), "real": metrics(0.0), "real+unrelated": metrics(0.01)}
    table = make_table2(given)
    assert table.columns.tolist() == ["class", "real", "+unrelated", "+age_progression"]
    assert table["class"].tolist() == ["WS", "22q", "control", "unaffected", "average"]
    assert table["+age_progression"].tolist() == pytest.approx([0.03, 0.13, 0.23, 0.33, 0.43])
    with_ci = make_table2({"real": metrics(0.0)}, with_ci=True)
    assert with_ci.columns.tolist() == ["class", "real", "real_ci_low", "real_ci_high"]
    assert variant_paths(["real=a.tsv", "real+blended_75=b.tsv"], "--metrics") == {
        "real": "a.tsv",
        "real+blended_75": "b.tsv",
    }
    with pytest.raises(ValueError, match="unknown variant"):
        variant_paths(["real+blended_60=c.tsv"], "--metrics")
    with pytest.raises(ValueError, match="given twice"):
        variant_paths(["real=a.tsv", "real=b.tsv"], "--metrics")
    with pytest.raises(ValueError, match="lack row"):
        make_table2({"real": metrics(0.0).iloc[:4]})
