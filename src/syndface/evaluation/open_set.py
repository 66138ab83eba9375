"""`syndface place-held-out`: where the test faces of a disease the models never saw land.

The open-set question a clinic meets daily: a face of a syndrome the model was not trained on.
The real-only fold models retrained without disease D (`syndface make-held-out-folds`) embed
every image; each test image is placed among each model's training images (k nearest
neighbours, cosine; `syndface.evaluation.gallery`). Reported:

- placement.tsv: the classes D's test images are given by kNN, over all ages and per age group,
  as shares with Clopper-Pearson intervals, the cell size beside each and cells under
  `min_cell_size` flagged `small`;
- distances.tsv: per true class of the test images, the cosine distance to the nearest training
  image (mean over fold models): n, mean, quartiles; for every seen class and for all seen
  classes together, how well that distance tells D's images from theirs: the area under the ROC
  curve (scikit-learn; 0.5 = no better than chance, 1 = D always farther) and the one-sided
  Mann-Whitney p-value (scipy; H1: D's images lie farther; AUROC = U / (n_D n_seen));
- distances.png: the distance distributions (empirical CDFs), D's drawn thick.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score

from syndface.evaluation.features import load_features
from syndface.evaluation.gallery import gallery_queries
from syndface.evaluation.options import HeldOutOptions
from syndface.intervals import interval_note, proportion_interval
from syndface.io import read_tsv, save_figure, write_tsv
from syndface.log import get_logger
from syndface.options import add_options_argument
from syndface.taxonomy import AGE_GROUPS, DISEASES

log = get_logger("syndface.evaluation")
ALL = "all"
SEEN = "seen"


def placement_table(queries: pd.DataFrame, disease: str, min_cell: int, level: float = 0.95) -> pd.DataFrame:
    """Where the held-out disease's test images land, overall and per age group."""
    held = queries[queries["disease"] == disease]
    if held.empty:
        raise ValueError(f"no test image of the held-out disease {disease}")
    rows = []
    for age in (ALL, *AGE_GROUPS):
        part = held if age == ALL else held[held["age_group"] == age]
        if part.empty:
            continue
        for c in DISEASES:
            rows.append({"age_group": age, "landed_as": c, "n": len(part), "landed": int((part["pred"] == c).sum())})
    table = pd.DataFrame(rows)
    table["share"] = table["landed"] / table["n"]
    table["ci_low"], table["ci_high"] = proportion_interval(table["landed"].to_numpy(), table["n"].to_numpy(), level)
    table["small"] = table["n"] < min_cell
    return table


def distance_table(queries: pd.DataFrame, disease: str) -> pd.DataFrame:
    """Nearest-training-image distance per true class; AUROC and one-sided Mann-Whitney p of the
    held-out disease against each seen class and against all of them."""
    held = queries.loc[queries["disease"] == disease, "nearest_distance"].to_numpy()
    groups = [(c, queries.loc[queries["disease"] == c, "nearest_distance"].to_numpy()) for c in DISEASES]
    groups = [(c, d) for c, d in groups if len(d)]
    groups.append((SEEN, queries.loc[queries["disease"] != disease, "nearest_distance"].to_numpy()))
    rows = []
    for name, d in groups:
        row = {
            "class": name,
            "role": "held_out" if name == disease else "seen",
            "n": len(d),
            "mean": d.mean(),
            "q25": np.quantile(d, 0.25),
            "median": np.median(d),
            "q75": np.quantile(d, 0.75),
            "auroc_vs_held_out": np.nan,
            "p_value": np.nan,
        }
        if name != disease and len(d) and len(held):
            truth = np.r_[np.ones(len(held)), np.zeros(len(d))]
            row["auroc_vs_held_out"] = roc_auc_score(truth, np.r_[held, d])
            row["p_value"] = stats.mannwhitneyu(held, d, alternative="greater").pvalue
        rows.append(row)
    return pd.DataFrame(rows)


def distance_figure(queries: pd.DataFrame, disease: str, auroc: float):
    """Empirical CDFs of the nearest-training-image distance per true class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    for c in DISEASES:
        d = np.sort(queries.loc[queries["disease"] == c, "nearest_distance"].to_numpy())
        if not len(d):
            continue
        held = c == disease
        ax.step(
            d,
            np.arange(1, len(d) + 1) / len(d),
            where="post",
            lw=2.6 if held else 1.2,
            color="black" if held else None,
            ls="--" if held else "-",
            label=f"{c} ({'held out' if held else 'seen'}, n={len(d)})",
        )
    ax.set_xlabel("cosine distance to the nearest training image\n(mean over fold models)")
    ax.set_ylabel("share of test images")
    ax.set_title(f"{disease} held out of training: AUROC vs seen classes {auroc:.2f}", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def main(argv: list[str], prog: str = "syndface place-held-out") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", required=True, help="features.npz of the models trained without the disease")
    p.add_argument("--folds", required=True, help="their folds table (results/evaluation/held_out/<disease>/folds.tsv)")
    p.add_argument("--disease", required=True, choices=DISEASES, help="the disease held out of training")
    add_options_argument(p, HeldOutOptions)
    p.add_argument("--out-dir", required=True, help="results/evaluation/held_out/<disease>")
    args = p.parse_args(argv)
    opts, disease = args.options, args.disease

    labels, model_folds, features = load_features(args.features)
    folds = read_tsv(args.folds)
    if (folds["disease"] == disease).any():
        raise SystemExit(f"{args.folds} still holds {disease} images: make it with `syndface make-held-out-folds`")
    queries = gallery_queries(labels, model_folds, features, folds, opts.knn_k)
    placement = placement_table(queries, disease, opts.min_cell_size)
    distances = distance_table(queries, disease)
    auroc = float(distances.loc[distances["class"] == SEEN, "auroc_vs_held_out"].iloc[0])
    out_dir = Path(args.out_dir)
    setting = (
        f"{disease} held out: real-only fold models trained without its images; its {int((queries['disease'] == disease).sum())} "
        f"test images placed by k nearest neighbours (k = {opts.knn_k}, cosine, penultimate features) among each fold "
        f"model's training images, shares averaged over {len(model_folds)} fold models"
    )
    write_tsv(
        placement.round(4),
        out_dir / "placement.tsv",
        header_lines=[
            setting,
            f"share = landed / n per age group ('all' = every age); {interval_note('clopper-pearson')}; "
            f"small = fewer than {opts.min_cell_size} images (shown, not hidden)",
        ],
    )
    distances = distances.round({c: 6 for c in distances.columns if c != "p_value"})
    distances["p_value"] = [float(f"{p:.4g}") for p in distances["p_value"]]
    write_tsv(
        distances,
        out_dir / "distances.tsv",
        header_lines=[
            setting,
            "distance = cosine distance of a test image to its nearest training image (mean over fold models); "
            f"auroc_vs_held_out: that distance as a detector of {disease} against the row's class (seen = all seen "
            "classes); p_value: one-sided Mann-Whitney U test that held-out images lie farther",
        ],
    )
    write_tsv(queries, out_dir / "knn_predictions.tsv", header_lines=[setting])
    save_figure(distance_figure(queries, disease, auroc), out_dir / "distances.png")
    overall = placement[placement["age_group"] == ALL]
    log.info(
        "%s held out lands as %s; distance AUROC vs seen %.3f",
        disease,
        ", ".join(f"{c} {s:.2f}" for c, s in zip(overall["landed_as"], overall["share"])),
        auroc,
    )
    return 0
