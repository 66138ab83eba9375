"""Evaluation beyond the paper: every metric against scikit-learn/scipy or a hand-worked case,
temperature scaling and ECE by simulation, the commands end to end on a tiny cache."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import options
from scipy import stats
from sklearn.metrics import balanced_accuracy_score, f1_score, log_loss, top_k_accuracy_score
from tiny import classifier_config as config
from tiny import write_classifier_cache

from syndface.align.cache import load_cache
from syndface.classify import evaluate, predict, table2
from syndface.classify.data import ImageSet
from syndface.classify.model import load_classifier
from syndface.classify.train import predict_probabilities, train_classifier
from syndface.evaluation import (
    calibration,
    features,
    gallery,
    held_out,
    metrics,
    open_set,
    out_of_fold,
    readouts,
    subgroups,
    summary,
    tta,
)
from syndface.io import read_tsv, write_tsv
from syndface.runtime import Precision
from syndface.taxonomy import DISEASES

# --- metrics -----------------------------------------------------------------------------------


def test_brier_score_on_a_hand_case():
    y = np.array([0, 1])
    p = np.array([[0.7, 0.2, 0.1, 0.0], [0.25, 0.25, 0.25, 0.25]])
    # (0.3^2 + 0.2^2 + 0.1^2 + 0) and (0.25^2 + 0.75^2 + 0.25^2 + 0.25^2), averaged
    assert metrics.brier_score(y, p) == pytest.approx((0.14 + 0.75) / 2)
    assert metrics.brier_score(y, np.eye(4)[y]) == 0.0 and metrics.brier_score(y, np.eye(4)[[1, 0]]) == 2.0


def test_ece_on_a_known_case_and_its_equal_mass_bins():
    # confidences 0.6 0.7 | 0.9 0.95, right: 1 0 | 1 1 -> |0.5 - 0.65| / 2 + |1 - 0.925| / 2
    p = np.array([[0.9, 0.1, 0, 0], [0.6, 0.4, 0, 0], [0.05, 0.95, 0, 0], [0.3, 0.7, 0, 0]])
    y = np.array([0, 0, 1, 0])
    assert metrics.expected_calibration_error(y, p, 2) == pytest.approx(0.15 / 2 + 0.075 / 2)
    bins = metrics.reliability_table(y, p, 2)
    assert bins["n"].tolist() == [2, 2] and bins["accuracy"].tolist() == [0.5, 1.0]
    low, high = stats.binomtest(1, 2).proportion_ci(method="exact")
    assert (bins.loc[0, "ci_low"], bins.loc[0, "ci_high"]) == pytest.approx((low, high))
    sizes = [len(b) for b in metrics.equal_mass_bins(np.random.default_rng(0).random(103), 10)]
    assert sum(sizes) == 103 and max(sizes) - min(sizes) <= 1
    assert len(metrics.equal_mass_bins(np.arange(3.0), 10)) == 3


def _simulated(n: int, temperature: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Model probabilities softmax(z) and labels drawn from softmax(z / temperature)."""
    gen = np.random.default_rng(seed)
    z = gen.normal(0, 2.0, (n, 4))
    truth = np.exp(z / temperature) / np.exp(z / temperature).sum(1, keepdims=True)
    y = np.array([gen.choice(4, p=row) for row in truth])
    return y, np.exp(z) / np.exp(z).sum(1, keepdims=True)


def test_ece_is_near_zero_when_calibrated_and_large_when_overconfident():
    y, p = _simulated(20000, 1.0, seed=1)
    assert metrics.expected_calibration_error(y, p, 10) < 0.015
    y, p = _simulated(20000, 2.5, seed=2)  # the model is sharper than the truth
    assert metrics.expected_calibration_error(y, p, 10) > 0.1


def test_temperature_scaling_recovers_a_planted_temperature_and_keeps_the_argmax():
    y, p = _simulated(20000, 2.0, seed=3)
    t = metrics.fit_temperature(y, p)
    assert t == pytest.approx(2.0, abs=0.1)
    scaled = metrics.temperature_scale(p, t)
    assert (scaled.argmax(1) == p.argmax(1)).all()
    np.testing.assert_allclose(scaled.sum(1), 1.0)
    np.testing.assert_allclose(metrics.temperature_scale(p, 1.0), p, atol=1e-12)
    # the fit is the maximum-likelihood T: scikit-learn's log loss is lowest there on a grid
    grid = np.linspace(1.5, 2.5, 41)
    losses = [log_loss(y, metrics.temperature_scale(p, g), labels=range(4)) for g in grid]
    assert abs(grid[int(np.argmin(losses))] - t) <= 0.025 + 1e-9
    assert metrics.negative_log_likelihood(y, scaled) < metrics.negative_log_likelihood(y, p)
    assert metrics.expected_calibration_error(y, scaled, 10) < 0.02
    with pytest.raises(ValueError, match="positive"):
        metrics.temperature_scale(p, 0.0)


def test_top_k_and_macro_f1_against_scikit_learn_on_hand_cases():
    p = np.array([[0.5, 0.3, 0.1, 0.1], [0.5, 0.3, 0.1, 0.1], [0.1, 0.2, 0.3, 0.4], [0.4, 0.1, 0.2, 0.3]])
    y = np.array([0, 1, 1, 3])  # true class ranks 1, 2, 3, 2
    assert metrics.top_k_hits(y, p, 2) == 3 == top_k_accuracy_score(y, p, k=2, labels=range(4), normalize=False)
    assert metrics.top_k_hits(y, p, 3) == 4
    # pred 0 0 3 0 against 0 1 1 3: F1 class 0 = 2*(1/3*1)/(1/3+1) = 0.5, classes 1 and 3: 0
    pred = p.argmax(1)
    assert metrics.macro_f1(y, pred) == pytest.approx(0.5 / 3)
    assert metrics.macro_f1(y, pred) == pytest.approx(f1_score(y, pred, labels=[0, 1, 3], average="macro"))


def test_class_stratified_bootstrap_keeps_class_sizes_and_brackets_the_estimate():
    gen = np.random.default_rng(4)
    y = np.repeat([0, 1, 2], [30, 20, 1])
    pred = np.where(gen.random(51) < 0.7, y, (y + 1) % 3)

    def count_of_class_0(yt, yp):
        return float((yt == 0).sum())

    assert metrics.class_stratified_interval(count_of_class_0, y, pred, 50, seed=1) == (30.0, 30.0)
    low, high = metrics.class_stratified_interval(metrics.macro_f1, y, pred, 200, seed=1)
    assert low < metrics.macro_f1(y, pred) < high
    assert (low, high) == metrics.class_stratified_interval(metrics.macro_f1, y, pred, 200, seed=1)


# --- readouts, subjects, subgroups -------------------------------------------------------------


def _predictions(rows: list[tuple[str, str, str, list[float]]]) -> pd.DataFrame:
    """(image_id, disease, age_group, probabilities) rows -> a predictions table."""
    table = pd.DataFrame(
        {"image_id": [r[0] for r in rows], "disease": [r[1] for r in rows], "age_group": [r[2] for r in rows]}
    )
    proba = np.array([r[3] for r in rows], float)
    for j, c in enumerate(DISEASES):
        table[f"p_{c}"] = proba[:, j]
    table["pred"] = np.array(DISEASES)[proba.argmax(1)]
    table["source"] = np.where(table["disease"] == "unaffected", "auxiliary", "cohort")
    return table


HAND = _predictions(
    [
        ("a1", "WS", "infant", [0.6, 0.2, 0.1, 0.1]),
        ("a2", "WS", "infant", [0.2, 0.5, 0.2, 0.1]),  # a's mean: [0.4, 0.35, ...] -> WS
        ("b1", "WS", "child", [0.1, 0.6, 0.2, 0.1]),
        ("c1", "22q", "child", [0.1, 0.7, 0.1, 0.1]),
        ("d1", "control", "child", [0.3, 0.1, 0.5, 0.1]),
        ("e1", "unaffected", "child", [0.1, 0.1, 0.1, 0.7]),
        ("f1", "unaffected", "older_adult", [0.6, 0.1, 0.1, 0.2]),
    ]
)
HAND_MANIFEST = pd.DataFrame(
    {
        "image_id": HAND["image_id"],
        "subject_id": ["a", "a", "b", "c", "d", "e", "f"],
        "sex": ["female", "female", "male", "male", None, "female", "male"],
    }
)


def test_subject_readout_averages_a_subjects_photos():
    subjects = readouts.subject_predictions(HAND, HAND_MANIFEST).set_index("subject_id")
    assert subjects.loc["a", "n_photos"] == 2 and subjects.loc["a", "pred"] == "WS"
    assert subjects.loc["a", "p_22q"] == pytest.approx(0.35)
    side = readouts.subjects_table(HAND, subjects.reset_index()).set_index("class")
    assert side.loc["WS", ["image_n", "image_correct", "subject_n", "subject_correct"]].tolist() == [3, 1, 2, 1]
    assert (
        side.loc["WS", "subjects_with_several_photos"] == 1 and side.loc["average", "subjects_with_several_photos"] == 1
    )
    bad = HAND_MANIFEST.assign(subject_id=["a", "a", "b", "a", "d", "e", "f"])
    with pytest.raises(ValueError, match="more than one disease"):
        readouts.subject_predictions(HAND, bad)


def test_readout_metrics_agree_with_scikit_learn():
    rows = {r["metric"]: r for r in readouts.readout_rows(HAND, "image", 2, 100, seed=1)}
    y, pred = metrics.true_labels(HAND), np.array([DISEASES.index(d) for d in HAND["pred"]])
    proba = metrics.probability_matrix(HAND)
    assert rows["average"]["value"] == pytest.approx(balanced_accuracy_score(y, pred))
    assert rows["accuracy"]["value"] == pytest.approx((y == pred).mean())
    assert rows["top2_accuracy"]["value"] == pytest.approx(top_k_accuracy_score(y, proba, k=2, labels=range(4)))
    assert rows["macro_f1"]["value"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert all(r["ci_low"] <= r["value"] <= r["ci_high"] for r in rows.values())


def test_subgroup_recall_and_specificity_with_cell_sizes_and_unknowns():
    table, attributes = subgroups.with_attributes(HAND, HAND_MANIFEST)
    assert attributes == ["age_group", "sex"]
    out = subgroups.subgroup_table(table, attributes, min_cell=2).set_index(["attribute", "group", "class", "measure"])
    assert out.loc[("age_group", "infant", "WS", "recall"), ["n", "correct"]].tolist() == [2, 1]
    assert out.loc[("age_group", "infant", "WS", "recall"), "small"] == False  # noqa: E712
    assert out.loc[("age_group", "child", "WS", "recall"), ["n", "correct", "small"]].tolist() == [1, 0, True]
    # unaffected faces: e1 called unaffected, f1 called WS
    assert out.loc[("age_group", "older_adult", "WS", "specificity"), ["n", "correct"]].tolist() == [1, 0]
    assert out.loc[("age_group", "child", "WS", "specificity"), "value"] == 1.0
    assert out.loc[("sex", "male", "unaffected", "recall"), ["n", "correct"]].tolist() == [1, 0]
    assert out.loc[("sex", "unknown", "control", "recall"), "n"] == 1
    low, high = stats.binomtest(1, 2).proportion_ci(method="exact")
    assert tuple(out.loc[("age_group", "infant", "WS", "recall"), ["ci_low", "ci_high"]]) == pytest.approx((low, high))
    _, only_age = subgroups.with_attributes(HAND, HAND_MANIFEST.drop(columns="sex"))
    assert only_age == ["age_group"]


# --- TTA ----------------------------------------------------------------------------------------


def test_the_eight_transforms_are_the_dihedral_group_and_tta_averages_softmax():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    images = [tta.dihedral(x, i) for i in range(8)]
    rotations = [torch.rot90(x, r, (2, 3)) for r in range(4)]
    group = rotations + [r.transpose(2, 3) for r in rotations]
    assert all(any(torch.equal(a, b) for b in group) for a in images)
    assert len({tuple(t.flatten().tolist()) for t in images}) == 8
    assert torch.equal(tta.dihedral(x, 2), x.flip(3))  # the horizontal (mirror) flip

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 4)).eval()
    with torch.no_grad():
        for mode, indices in tta.TTA_TRANSFORMS.items():
            out = torch.softmax(tta.TestTimeAugmented(model, mode)(x), 1)
            expected = torch.stack([torch.softmax(model(tta.dihedral(x, i)), 1) for i in indices]).mean(0)
            torch.testing.assert_close(out, expected)
    with pytest.raises(ValueError, match="allowed"):
        tta.TestTimeAugmented(model, "rot90")


def test_table2_gains_a_tta_column_after_the_variants_and_checks_the_images():
    def metrics_table(acc, n=(10, 10, 10, 20, 50)):
        frame = pd.DataFrame({"class": [*DISEASES, "average"], "accuracy": acc, "ci_low": 0.1, "ci_high": 0.9})
        return frame.assign(n_test=list(n), n=list(n), n_excluded=0)

    base = {"real": metrics_table([0.5] * 5), "real+unrelated": metrics_table([0.6] * 5)}
    table = table2.make_table2(base, with_ci=True)
    out = table2.add_tta_columns(table, {"real": metrics_table([0.7] * 5)}, with_ci=True)
    assert out.columns.tolist() == [*table.columns, "real (TTA)", "real (TTA)_ci_low", "real (TTA)_ci_high"]
    assert (out["real (TTA)"] == 0.7).all() and out[table.columns].equals(table)
    with pytest.raises(ValueError, match="other test images"):
        table2.add_tta_columns(table, {"real": metrics_table([0.7] * 5, n=(9, 10, 10, 20, 49))}, with_ci=True)


# --- gallery and held-out label -----------------------------------------------------------------


def _cosine(a, b):
    return 1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b))


def test_knn_on_a_toy_gallery():
    gallery_points = np.array([[1, 0], [1, 0.1], [0, 1], [0.1, 1], [-1, 0]], float)
    labels = np.array([0, 0, 1, 1, 2])
    query = np.array([[1, 0.05], [0.2, 1]])
    shares, nearest, mean_k = gallery.knn_readout(gallery_points, labels, query, k=3)
    # query 0: both class-0 points, then (0.1, 1) which is closer to it than (0, 1)
    np.testing.assert_allclose(shares[0], [2 / 3, 1 / 3, 0, 0])
    np.testing.assert_allclose(shares[1], [1 / 3, 2 / 3, 0, 0])
    d = np.array([[_cosine(q, g) for g in gallery_points] for q in query])
    np.testing.assert_allclose(nearest, d.min(1), atol=1e-12)
    np.testing.assert_allclose(mean_k, np.sort(d, 1)[:, :3].mean(1), atol=1e-12)
    shares, _, _ = gallery.knn_readout(gallery_points, labels, query, k=99)  # k capped at the gallery
    np.testing.assert_allclose(shares[0], [2 / 5, 2 / 5, 1 / 5, 0])


def test_each_fold_model_searches_only_the_images_it_trained_on():
    labels = {
        "image_id": np.array(["g0", "g1", "t0"]),
        "disease": np.array(["WS", "22q", "WS"]),
        "age_group": np.array(["child"] * 3),
        "source": np.array(["cohort"] * 3),
        "split": np.array(["train", "train", "test"]),
    }
    folds = pd.DataFrame({"image_id": ["g0", "g1"], "fold": [0, 1]})
    # model of fold 0 trained on g1 only, model of fold 1 on g0 only
    feats = np.array([[[1, 0], [0, 1], [1, 0.1]], [[1, 0], [0, 1], [1, 0.1]]], float)
    table = gallery.gallery_queries(labels, np.array([0, 1]), feats, folds, k=1)
    assert table[["knn_WS", "knn_22q"]].iloc[0].tolist() == [0.5, 0.5]
    expected = np.mean([_cosine(np.array([1, 0.1]), np.array([0, 1])), _cosine(np.array([1, 0.1]), np.array([1, 0]))])
    assert table["nearest_distance"].iloc[0] == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="no model features for fold"):
        gallery.gallery_queries(labels, np.array([0]), feats[:1], folds, k=1)


def test_held_out_folds_drop_the_disease_and_keep_validation_possible():
    folds = pd.DataFrame(
        {
            "image_id": list("abcdef"),
            "disease": ["WS", "control", "22q", "unaffected", "unaffected", "WS"],
            "source": ["cohort", "cohort", "cohort", "auxiliary", "auxiliary", "cohort"],
            "fold": [0, 0, 1, 1, 2, 2],
        }
    )
    kept = held_out.held_out_folds(folds, "control")
    assert kept["image_id"].tolist() == ["a", "c", "d", "e", "f"]
    with pytest.raises(ValueError, match=r"fold\(s\) \[1\] have no cohort image"):
        held_out.held_out_folds(folds, "22q")


def test_open_set_distances_auroc_is_the_mann_whitney_statistic():
    gen = np.random.default_rng(5)
    queries = pd.DataFrame(
        {
            "disease": ["control"] * 12 + ["WS"] * 10 + ["22q"] * 8,
            "age_group": ["child"] * 30,
            "nearest_distance": np.r_[gen.normal(0.5, 0.1, 12), gen.normal(0.3, 0.1, 18)],
            "pred": ["WS"] * 9 + ["22q"] * 3 + ["WS"] * 18,
        }
    )
    table = open_set.distance_table(queries, "control").set_index("class")
    held = queries.loc[queries["disease"] == "control", "nearest_distance"]
    seen = queries.loc[queries["disease"] != "control", "nearest_distance"]
    u = stats.mannwhitneyu(held, seen, alternative="greater")
    assert table.loc["seen", "auroc_vs_held_out"] == pytest.approx(u.statistic / (12 * 18))
    assert table.loc["seen", "p_value"] == pytest.approx(u.pvalue)
    assert np.isnan(table.loc["control", "auroc_vs_held_out"]) and table.loc["control", "role"] == "held_out"
    placement = open_set.placement_table(queries, "control", min_cell=20).set_index(["age_group", "landed_as"])
    assert placement.loc[("all", "WS"), ["n", "landed"]].tolist() == [12, 9]
    assert placement.loc[("all", "WS"), "small"] and placement.loc[("child", "22q"), "share"] == 0.25


# --- the commands on a tiny cache ---------------------------------------------------------------


@pytest.fixture(scope="module")
def fold_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluation")
    cache = write_classifier_cache(root / "cache")
    models = []
    for fold in range(3):
        train_classifier(config(cache, fold=fold, epochs=1, augment="none"), root / f"fold{fold}")
        models.append(str(root / f"fold{fold}" / "model.pt"))
    return cache, models


def test_evaluation_commands_write_their_tables_from_fold_models(fold_models, tmp_path):
    cache, models = fold_models
    run = {"classifier.batch_size": 5}
    test = tmp_path / "predictions.tsv"
    assert predict.main(["--models", *models, "--cache", str(cache), *options(run), "--out", str(test)]) == 0

    oof = tmp_path / "out_of_fold.tsv"
    assert out_of_fold.main(["--models", *models, "--cache", str(cache), "--folds", str(cache / "folds.tsv")] + [
        *options(run), "--out", str(oof)]) == 0  # fmt: skip
    folds, predicted = read_tsv(cache / "folds.tsv"), read_tsv(oof)
    assert sorted(predicted["image_id"]) == sorted(folds["image_id"])
    by_image = predicted.set_index("image_id")
    assert by_image["fold"].sort_index().equals(folds.set_index("image_id")["fold"].sort_index())
    # each image by the model that held it out: fold 1's images as fold 1's model predicts them
    index = read_tsv(cache / "index.tsv").set_index("image_id")
    ids = folds.loc[folds["fold"] == 1, "image_id"]
    images, _ = load_cache(cache)
    model, _ = load_classifier(models[1])
    direct = predict_probabilities(
        model,
        ImageSet(images, index.loc[ids, "row"].to_numpy()),
        5,
        Precision.for_device(torch.device("cpu")),
        torch.device("cpu"),
    )
    np.testing.assert_allclose(by_image.loc[ids, [f"p_{c}" for c in DISEASES]].to_numpy(), direct, atol=1e-6)

    tta_out = tmp_path / "tta.tsv"
    assert tta.main(["--models", *models, "--cache", str(cache), *options({**run, "classifier.tta": "flip"})] + [
        "--out", str(tta_out)]) == 0  # fmt: skip
    plain, flipped = read_tsv(test), read_tsv(tta_out)
    assert flipped.columns.tolist() == plain.columns.tolist() and flipped["image_id"].equals(plain["image_id"])
    assert not np.allclose(flipped["p_WS"], plain["p_WS"])

    feats = tmp_path / "features.npz"
    assert features.main(["--models", *models, "--cache", str(cache), *options(run), "--out", str(feats)]) == 0
    labels, model_folds, matrix = features.load_features(feats)
    assert model_folds.tolist() == [0, 1, 2] and matrix.shape[:2] == (3, len(read_tsv(cache / "index.tsv")))

    manifest = read_tsv(cache / "index.tsv").drop(columns="row")
    manifest["sex"] = np.where(np.arange(len(manifest)) % 2, "female", "male")
    write_tsv(manifest, tmp_path / "manifest.tsv")
    out = tmp_path / "evaluation"
    steps = [
        (calibration, ["--predictions", str(test), "--out-of-fold", str(oof), *options({"evaluation.ece_bins": 3})]),
        (subgroups, ["--predictions", str(test), "--manifest", str(tmp_path / "manifest.tsv")]),
        (readouts, ["--predictions", str(test), "--manifest", str(tmp_path / "manifest.tsv")]),
        (gallery, ["--features", str(feats), "--folds", str(cache / "folds.tsv"), "--predictions", str(test)]),
    ]
    for module, args in steps:
        assert module.main([*args, "--out-dir", str(out)]) == 0, module.__name__
    for name in ("calibration.tsv", "reliability.tsv", "reliability.png", "subgroups.tsv", "recall_by_age.png"):
        assert (out / name).stat().st_size > 0
    cal = read_tsv(out / "calibration.tsv")
    assert cal[["split", "readout"]].values.tolist() == [
        ["out_of_fold", "as predicted"], ["out_of_fold", "temperature-scaled"],
        ["test", "as predicted"], ["test", "temperature-scaled"]
    ]  # fmt: skip
    assert cal.loc[2, "brier"] == pytest.approx(
        metrics.brier_score(metrics.true_labels(plain), metrics.probability_matrix(plain)), abs=1e-4
    )
    assert set(read_tsv(out / "subgroups.tsv")["attribute"]) == {"age_group", "sex"}
    knn = read_tsv(out / "knn.tsv").set_index("class")
    assert knn.loc["average", "n"] == 8 and "softmax_accuracy" in knn.columns

    held = tmp_path / "held_folds.tsv"
    assert held_out.main(["--folds", str(cache / "folds.tsv"), "--disease", "control", "--out", str(held)]) == 0
    placed = tmp_path / "held_out"
    assert open_set.main(["--features", str(feats), "--folds", str(held), "--disease", "control"] + [
        "--out-dir", str(placed)]) == 0  # fmt: skip
    placement = read_tsv(placed / "placement.tsv")
    assert placement.loc[placement["age_group"] == "all", "landed"].sum() == 2  # the 2 control test images
    assert (placed / "distances.png").stat().st_size > 0

    evaluate.main(
        ["--predictions", str(test), *options({"classifier.bootstrap": 20}), "--out-dir", str(tmp_path / "m")]
    )
    assert summary.main(["--readouts", f"real={out / 'readouts.tsv'}", "--calibration", f"real={out / 'calibration.tsv'}"] + [
        "--knn", f"real={out / 'knn.tsv'}", "--out", str(tmp_path / "summary.tsv")]) == 0  # fmt: skip
    row = read_tsv(tmp_path / "summary.tsv").iloc[0]
    assert row["variant"] == "real" and row["average"] == pytest.approx(
        read_tsv(tmp_path / "m" / "metrics.tsv")["accuracy"].iloc[-1], abs=1e-4
    )
    assert {"brier_scaled", "temperature", "knn_average", "subject_average", "top2_accuracy"} <= set(row.index)
