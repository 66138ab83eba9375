"""Early-stop parity with the paper's code and the loss normalisation per variant family."""

from __future__ import annotations

import pytest

from syndface.classify.options import loss_normalisation_for
from syndface.classify.schedule import early_stopped_run, initial_best, stop_after_epoch


def paper_loop(metrics: list[float], n_epochs: int, early_stop: int) -> tuple[int, int]:
    """The paper's training loop (C:train.py:L280-294), its bookkeeping only: (epochs run, best epoch)."""
    bal_acc_ourdata_max, best_epoch, epoch = 0.0, 0, 0
    for epoch in range(1, n_epochs + 1):
        bal_acc_ourdata = metrics[epoch - 1]
        if bal_acc_ourdata > bal_acc_ourdata_max:
            bal_acc_ourdata_max, best_epoch = bal_acc_ourdata, epoch
        if epoch - best_epoch > early_stop:
            break
    return epoch, best_epoch


@pytest.mark.parametrize(
    "metrics",
    [
        [0.5, 0.6, 0.6, 0.55, 0.6, 0.58, 0.59, 0.6, 0.6, 0.6],  # best at 2, ties do not count
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],  # never above the paper's initial 0
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95],  # always improving: every epoch runs
        [0.7, 0.1, 0.1, 0.1, 0.1, 0.8, 0.1, 0.1, 0.1, 0.1],
    ],
)
@pytest.mark.parametrize("early_stop", [0, 2, 3])
def test_paper_rule_reproduces_the_papers_loop(metrics, early_stop):
    assert early_stopped_run(metrics, len(metrics), early_stop, "paper") == paper_loop(
        metrics, len(metrics), early_stop
    )


def test_paper_rule_trains_one_epoch_more_than_the_patience_rule():
    metrics = [0.5, 0.6] + [0.55] * 20
    assert early_stopped_run(metrics, 22, 10, "paper") == (13, 2)  # 13 - 2 > 10
    assert early_stopped_run(metrics, 22, 10, "patience") == (12, 2)  # 10 epochs without a gain
    assert stop_after_epoch(13, 2, 10) and not stop_after_epoch(12, 2, 10)
    assert stop_after_epoch(12, 2, 10, "patience")
    assert initial_best("paper") == 0.0 and initial_best("patience") == float("-inf")
    with pytest.raises(ValueError, match="unknown early-stop rule"):
        stop_after_epoch(3, 1, 2, "lenient")
    with pytest.raises(ValueError, match="best_epoch"):
        stop_after_epoch(3, 4, 2)


def test_loss_normalisation_per_variant_family():
    paper_code = {"real": "weights", "fakes": "batch"}
    assert loss_normalisation_for("real", paper_code) == "weights"
    assert loss_normalisation_for("real+age_progression", paper_code) == "batch"
    assert loss_normalisation_for("real+unrelated", "weights") == "weights"  # one value for all
    with pytest.raises(ValueError, match="exactly the keys real and fakes"):
        loss_normalisation_for("real", {"real": "weights"})
    with pytest.raises(ValueError, match="unknown loss normalisation"):
        loss_normalisation_for("real", {"real": "mean", "fakes": "batch"})


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    from tiny import write_classifier_cache

    return write_classifier_cache(tmp_path_factory.mktemp("cache"))


def scripted_validation(monkeypatch, metrics: list[float]) -> None:
    """train.validate returns metrics[e - 1] as epoch e's cohort balanced accuracy."""
    from syndface.classify import train

    calls = iter(metrics)

    def validate(*args, **kwargs):
        value = next(calls)
        return {"val_accuracy": value, "val_balanced_accuracy": value, "val_cohort_balanced_accuracy": value}

    monkeypatch.setattr(train, "validate", validate)


@pytest.mark.parametrize(
    "rule, metrics, epochs_run, kept",
    [
        ("paper", [0.5, 0.6, 0.55, 0.55, 0.55], 4, 2),  # 4 - 2 > 1
        ("patience", [0.5, 0.6, 0.55, 0.55, 0.55], 3, 2),  # one epoch without a gain
        ("paper", [0.0, 0.0, 0.0, 0.0, 0.0], 2, 2),  # nothing beats the paper's 0: the last epoch is kept
    ],
)
def test_training_stops_by_the_rule_and_keeps_the_right_epoch(
    cache, tmp_path, monkeypatch, rule, metrics, epochs_run, kept
):
    import torch
    from tiny import classifier_config

    from syndface.classify.train import train_classifier
    from syndface.io import read_tsv

    scripted_validation(monkeypatch, metrics)
    cfg = classifier_config(cache, epochs=5, early_stop=1, early_stop_rule=rule, augment="none")
    model = torch.load(train_classifier(cfg, tmp_path), weights_only=True)
    history = read_tsv(tmp_path / "history.tsv")
    assert history["epoch"].tolist() == list(range(1, epochs_run + 1))
    assert history["kept"].tolist() == [e == kept for e in history["epoch"]]
    assert model["epoch"] == kept and model["val_cohort_balanced_accuracy"] == metrics[kept - 1]
    header = (tmp_path / "history.tsv").read_text().splitlines()[0]
    if max(metrics) == 0:
        assert not history["best"].any() and model["best_epoch"] == 0
        assert "no epoch's cohort balanced accuracy beat 0" in header and f"epoch {kept}" in header
    else:
        assert model["best_epoch"] == kept and f"best epoch {kept}" in header
