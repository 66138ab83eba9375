"""`syndface match-gallery`: k-nearest-neighbour diagnosis against the training gallery.

As GestaltMatcher: a face is placed among the training faces in a model's embedding (here the
fold model's pooled penultimate features) and takes the labels of its nearest neighbours by
cosine distance. Per fold model k the gallery is the images it trained on (the folds table's
images outside fold k; real images only, no fakes) and the queries are the test images; each
query gets the share of its `k` neighbours in each class, averaged over the fold models, and the
class with the largest share (ties: the first in taxonomy order). Beside it, the softmax ensemble's
per-class accuracy on the same images (`--predictions`). The distance of a query to its nearest
gallery image (averaged over folds) says how far it lies from anything the model has seen.

Outputs (--out-dir): knn.tsv (per class and average: kNN accuracy with Clopper-Pearson and
MOVER-Wilson intervals, the softmax ensemble's beside it), knn_predictions.tsv (per test image:
kNN shares per class, prediction, nearest and mean-of-k distances).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.neighbors import KNeighborsClassifier

from syndface.evaluation.features import load_features
from syndface.evaluation.options import GalleryOptions
from syndface.intervals import class_mean_mover_interval, interval_note, proportion_interval
from syndface.io import read_tsv, write_tsv
from syndface.log import get_logger
from syndface.options import add_options_argument
from syndface.taxonomy import DISEASES, disease_index

log = get_logger("syndface.evaluation")
AVERAGE = "average"


def knn_readout(
    gallery: np.ndarray, gallery_labels: np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(queries x classes share of the k nearest gallery images in each class, cosine distance to
    the nearest, mean cosine distance to the k nearest), by scikit-learn's brute-force search."""
    if len(gallery) == 0:
        raise ValueError("the gallery is empty")
    k = min(k, len(gallery))
    knn = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute").fit(gallery, gallery_labels)
    shares = np.zeros((len(queries), len(DISEASES)))
    shares[:, knn.classes_] = knn.predict_proba(queries)
    distances, _ = knn.kneighbors(queries)
    return shares, distances[:, 0], distances.mean(1)


def gallery_queries(
    labels: dict[str, np.ndarray], model_folds: np.ndarray, features: np.ndarray, folds: pd.DataFrame, k: int
) -> pd.DataFrame:
    """Per test image: kNN shares per class averaged over the fold models (each against its own
    training images), the prediction, and the distances averaged over the fold models."""
    fold_of = dict(zip(folds["image_id"].astype(str), folds["fold"].astype(int)))
    image_fold = np.array([fold_of.get(i, -1) for i in labels["image_id"]])
    y = np.array([disease_index(d) for d in labels["disease"]])
    test = labels["split"] == "test"
    if not test.any():
        raise ValueError("the features hold no test image")
    missing = sorted(set(folds["fold"]) - set(model_folds.tolist()))
    if missing:
        raise ValueError(f"no model features for fold(s) {missing} of the folds table")
    shares, nearest, mean_k = [], [], []
    for m, fold in enumerate(model_folds):
        in_gallery = (image_fold >= 0) & (image_fold != fold)
        s, d1, dk = knn_readout(features[m][in_gallery], y[in_gallery], features[m][test], k)
        shares.append(s)
        nearest.append(d1)
        mean_k.append(dk)
    share = np.mean(shares, 0)
    table = pd.DataFrame({f: labels[f][test] for f in ("image_id", "disease", "age_group", "source")})
    for j, c in enumerate(DISEASES):
        table[f"knn_{c}"] = share[:, j].round(6)
    table["pred"] = np.array(DISEASES)[share.argmax(1)]
    table["nearest_distance"] = np.mean(nearest, 0).round(6)
    table["mean_k_distance"] = np.mean(mean_k, 0).round(6)
    return table


def class_accuracy(table: pd.DataFrame, pred_column: str, level: float = 0.95) -> pd.DataFrame:
    """Per class present: n, correct, accuracy with Clopper-Pearson limits; the unweighted mean
    (`average`) with MOVER-Wilson limits."""
    rows = []
    for c in DISEASES:
        part = table[table["disease"] == c]
        if len(part):
            rows.append({"class": c, "n": len(part), "correct": int((part[pred_column] == c).sum())})
    out = pd.DataFrame(rows)
    out["accuracy"] = out["correct"] / out["n"]
    out["ci_low"], out["ci_high"] = proportion_interval(out["correct"].to_numpy(), out["n"].to_numpy(), level)
    low, high = class_mean_mover_interval(out["correct"].to_numpy(), out["n"].to_numpy(), level)
    mean = {"class": AVERAGE, "n": int(out["n"].sum()), "correct": int(out["correct"].sum())}
    mean |= {"accuracy": float(out["accuracy"].mean()), "ci_low": low, "ci_high": high}
    return pd.concat([out, pd.DataFrame([mean])], ignore_index=True)


def knn_table(queries: pd.DataFrame, predictions: pd.DataFrame | None) -> pd.DataFrame:
    """kNN accuracy per class (and the softmax ensemble's on the same images, when given)."""
    table = class_accuracy(queries, "pred").rename(
        columns={c: f"knn_{c}" for c in ("correct", "accuracy", "ci_low", "ci_high")}
    )
    if predictions is not None:
        same = predictions.set_index("image_id").loc[queries["image_id"], ["disease", "pred"]].reset_index()
        softmax = class_accuracy(same, "pred").drop(columns="n")
        table = table.merge(
            softmax.rename(columns={c: f"softmax_{c}" for c in ("correct", "accuracy", "ci_low", "ci_high")}),
            on="class",
        )
    return table.round(4)


def main(argv: list[str], prog: str = "syndface match-gallery") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", required=True, help="results/evaluation/<variant>/features.npz")
    p.add_argument("--folds", required=True, help="the models' folds table (the gallery of fold k: outside fold k)")
    p.add_argument("--predictions", help="the variant's test predictions: its softmax accuracy beside kNN's")
    add_options_argument(p, GalleryOptions)
    p.add_argument("--out-dir", required=True, help="results/evaluation/<variant>")
    args = p.parse_args(argv)
    k = args.options.knn_k

    labels, model_folds, features = load_features(args.features)
    queries = gallery_queries(labels, model_folds, features, read_tsv(args.folds), k)
    predictions = read_tsv(args.predictions) if args.predictions else None
    table = knn_table(queries, predictions)
    out_dir = Path(args.out_dir)
    header = [
        f"k-nearest-neighbour readout (k = {k}, cosine distance on each fold model's penultimate features) of "
        f"{len(queries)} test images against each fold model's own training images, shares averaged over "
        f"{len(model_folds)} fold models; unit: the test image",
        f"intervals: {interval_note('clopper-pearson')} per class; average: {interval_note('mover-wilson')}"
        + ("; softmax_*: the variant's fold ensemble on the same images" if predictions is not None else ""),
    ]
    write_tsv(table, out_dir / "knn.tsv", header_lines=header)
    write_tsv(queries, out_dir / "knn_predictions.tsv", header_lines=header[:1])
    log.info("kNN (k=%d): %s", k, ", ".join(f"{c} {a:.3f}" for c, a in zip(table["class"], table["knn_accuracy"])))
    return 0
