"""Classifier training, resume after a kill, fakes, prediction and evaluation on a tiny synthetic cache."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import options
from PIL import Image
from tiny import SIZE, write_classifier_cache
from tiny import classifier_config as config

from syndface.classify import evaluate, predict, table2
from syndface.classify.data import load_fold_data
from syndface.classify.model import load_classifier
from syndface.classify.train import CHECKPOINT_FILE, batches, train_classifier
from syndface.io import read_tsv, write_tsv
from syndface.taxonomy import DISEASES


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return write_classifier_cache(tmp_path_factory.mktemp("cache"))


def test_fold_split_trains_on_other_folds_and_validates_on_real_fold_images(cache):
    data = load_fold_data(cache, cache / "folds.tsv", 1, SIZE)
    folds = read_tsv(cache / "folds.tsv")
    assert len(data.train) == int((folds["fold"] != 1).sum()) and len(data.val) == int((folds["fold"] == 1).sum())
    index = read_tsv(cache / "index.tsv")
    val_ids = set(index.loc[data.val.rows, "image_id"])
    assert val_ids == set(folds.loc[folds["fold"] == 1, "image_id"])
    assert not set(index.loc[data.train.rows, "image_id"]) & (
        val_ids | set(index.loc[index["split"] == "test", "image_id"])
    )
    assert data.val_cohort.tolist() == [d != "unaffected" for d in index.loc[data.val.rows, "disease"]]
    with pytest.raises(ValueError, match="build a 64 px cache"):
        load_fold_data(cache, cache / "folds.tsv", 1, 64)


def test_batches_drop_only_what_they_must():
    gen = torch.Generator().manual_seed(0)
    assert [len(b) for b in batches(10, 4, gen, drop_last=False)] == [4, 4, 2]
    assert [len(b) for b in batches(10, 4, gen, drop_last=True)] == [4, 4]
    assert [len(b) for b in batches(9, 4, gen, drop_last=False)] == [4, 4]  # a batch of one breaks BatchNorm
    assert sorted(np.concatenate(batches(10, 4, gen, drop_last=False)).tolist()) == list(range(10))


def test_resume_after_kill_ends_with_the_same_weights(cache, tmp_path):
    cfg = config(cache)
    train_classifier(cfg, tmp_path / "full", keep_checkpoint=True)
    train_classifier(cfg, tmp_path / "killed", stop_after_epochs=1)
    killed = torch.load(tmp_path / "killed" / CHECKPOINT_FILE, weights_only=True)
    assert killed["state"]["epoch"] == 1
    # Snakemake deletes the outputs of a killed job (model.pt exists once an epoch was a gain); the
    # resumed run must rewrite them.
    (tmp_path / "killed" / "model.pt").unlink(missing_ok=True)
    train_classifier(cfg, tmp_path / "killed", keep_checkpoint=True)

    full = torch.load(tmp_path / "full" / CHECKPOINT_FILE, weights_only=True)
    resumed = torch.load(tmp_path / "killed" / CHECKPOINT_FILE, weights_only=True)
    assert full["state"]["epoch"] == resumed["state"]["epoch"] == 3
    for key, value in full["model"].items():
        assert torch.equal(value, resumed["model"][key]), key
    best_full = torch.load(tmp_path / "full" / "model.pt", weights_only=True)
    best_resumed = torch.load(tmp_path / "killed" / "model.pt", weights_only=True)
    assert (
        best_full["epoch"]
        == best_resumed["epoch"]
        == int(read_tsv(tmp_path / "full" / "history.tsv").query("kept")["epoch"].item())
    )
    assert all(torch.equal(v, best_resumed["state_dict"][k]) for k, v in best_full["state_dict"].items())
    history = read_tsv(tmp_path / "killed" / "history.tsv")
    assert history["epoch"].tolist() == [1, 2, 3]
    assert history["lr"].tolist() == pytest.approx([1e-3, 1e-2, 1e-2 * (1 + np.cos(np.pi / 2)) / 2])
    assert history.drop(columns="seconds").equals(read_tsv(tmp_path / "full" / "history.tsv").drop(columns="seconds"))
    model, ckpt = load_classifier(tmp_path / "killed" / "model.pt")
    assert ckpt["arch"]["image_size"] == SIZE and ckpt["fold"] == 0 and ckpt["classes"] == list(DISEASES)
    assert model(torch.zeros(2, 3, SIZE, SIZE)).shape == (2, 4)
    # Another configuration must not resume this run's checkpoint.
    with pytest.raises(ValueError, match="differs in: lr"):
        train_classifier(config(cache, lr=5e-4), tmp_path / "killed")


def test_model_and_checkpoint_record_version_and_precision_and_refuse_another_version(cache, tmp_path, monkeypatch):
    from syndface import __version__
    from syndface.classify import train

    cfg = config(cache, epochs=2, early_stop_rule="patience")  # epoch 1 is a gain: model.pt exists after it
    train_classifier(cfg, tmp_path, stop_after_epochs=1)
    ckpt = torch.load(tmp_path / CHECKPOINT_FILE, weights_only=True)
    model = torch.load(tmp_path / "model.pt", weights_only=True)
    assert ckpt["syndface_version"] == model["syndface_version"] == __version__
    assert ckpt["precision"] == model["precision"] == "fp32"
    assert model["train_config"] == ckpt["config"] == dataclasses.asdict(cfg)
    monkeypatch.setattr(train, "__version__", "9.9.9")
    with pytest.raises(ValueError, match=r"differs in: syndface_version \(.* there, 9\.9\.9 here\)"):
        train_classifier(cfg, tmp_path)


def write_fakes(root, fold: int, n: int = 6) -> str:
    """A fake manifest: n 48 px PNGs (larger than the cache, as GAN output) with soft labels."""
    rows = []
    for i in range(n):
        path = root / f"fake{i}.png"
        Image.fromarray(np.full((48, 48, 3), 30 * i, np.uint8)).save(path)
        soft = {f"label_{d}": 0.0 for d in DISEASES} | {"label_WS": 0.75, "label_22q": 0.25}
        rows.append(
            {
                "image_id": f"fake{i}",
                "path": path.name,
                "disease": "WS",
                "age_group": "child",
                "fake_type": "blended_75",
                "fold": fold,
                "seed": i,
                **soft,
            }
        )
    write_tsv(pd.DataFrame(rows), root / "manifest.tsv")
    return str(root / "manifest.tsv")


def test_fakes_join_training_with_soft_labels_and_must_match_the_fold(cache, tmp_path):
    fakes = write_fakes(tmp_path, fold=2)
    data = load_fold_data(cache, cache / "folds.tsv", 2, SIZE, fakes, label_mode="soft")
    n_real = len(data.train.rows)
    assert len(data.train) == n_real + 6 and data.train.extra.shape == (6, SIZE, SIZE, 3)
    np.testing.assert_allclose(data.train_targets[n_real:], [[0.75, 0.25, 0, 0]] * 6)
    assert data.train.gather(np.array([n_real + 5]))[0, 0, 0].tolist() == [150, 150, 150]
    hard = load_fold_data(cache, cache / "folds.tsv", 2, SIZE, fakes, label_mode="hard")
    np.testing.assert_allclose(hard.train_targets[n_real:], [[1, 0, 0, 0]] * 6)
    with pytest.raises(ValueError, match="may only train on its own GAN's fakes"):
        load_fold_data(cache, cache / "folds.tsv", 1, SIZE, fakes)
    path = train_classifier(
        config(cache, fold=2, fakes=fakes, label_mode="soft", epochs=1, augment="light"), tmp_path / "run"
    )
    assert path.exists() and not (tmp_path / "run" / CHECKPOINT_FILE).exists()


def test_predict_evaluate_and_table2_commands_write_their_files(cache, tmp_path):
    models = []
    for fold in range(3):
        train_classifier(config(cache, fold=fold, epochs=1, augment="none"), tmp_path / f"fold{fold}")
        models.append(str(tmp_path / f"fold{fold}" / "model.pt"))
    out = tmp_path / "predictions" / "real" / "test.tsv"
    assert (
        predict.main(
            [
                "--models",
                *models,
                "--cache",
                str(cache),
                *options({"classifier.ensemble_threshold": 0.5, "classifier.batch_size": 3}),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    table = read_tsv(out)
    assert len(table) == 8 and set(table["disease"]) == set(DISEASES)
    fold_columns = [f"p_fold{k}_{c}" for k in range(3) for c in DISEASES]
    assert table.columns.tolist() == [
        "image_id",
        "disease",
        "age_group",
        "source",
        *fold_columns,
        *(f"p_{c}" for c in DISEASES),
        "pred",
        "n_models",
        "fallback",
    ]
    probabilities = table[fold_columns].to_numpy().reshape(8, 3, 4).transpose(1, 0, 2)
    mean, n_models, fallback = predict.ensemble(probabilities, 0.5)
    np.testing.assert_allclose(table[[f"p_{c}" for c in DISEASES]].to_numpy(), mean, atol=2e-6)
    assert table["n_models"].tolist() == n_models.tolist() and table["fallback"].tolist() == fallback.tolist()
    assert table["pred"].tolist() == [DISEASES[i] for i in mean.argmax(1)]

    out_dir = tmp_path / "evaluation" / "real"
    assert (
        evaluate.main(["--predictions", str(out), *options({"classifier.bootstrap": 50}), "--out-dir", str(out_dir)])
        == 0
    )
    for name in ("metrics.tsv", "per_group.tsv", "two_way.tsv", "confusion.tsv", "confusion.png"):
        assert (out_dir / name).stat().st_size > 0
    metrics = read_tsv(out_dir / "metrics.tsv")
    assert metrics["accuracy"].iloc[-1] == pytest.approx(metrics["accuracy"].iloc[:4].mean())
    assert table2.main(["--metrics", f"real={out_dir / 'metrics.tsv'}", "--out", str(tmp_path / "table2.tsv")]) == 0
    assert read_tsv(tmp_path / "table2.tsv").columns.tolist() == ["class", "real", "real_ci_low", "real_ci_high"]
