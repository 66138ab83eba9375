"""`syndface evaluate-classifier`: the accuracies the paper reports, from one variant's test predictions.

- metrics.tsv: accuracy (recall) of each class over the test split and their unweighted mean,
  the paper's Table 2 "Average" ((68 + 86.4 + 100 + 94) / 4 = 87.1), with 95 % intervals:
  Clopper-Pearson per class; for the mean, MOVER-Wilson (closed form) or a stratified
  bootstrap (classes resampled separately, as the test set was drawn per class);
- per_group.tsv: four-class accuracy per disease x age group (the paper code's
  AccuracyPerGroupFromWhole, Table 1's model columns);
- two_way.tsv: the clinicians' comparison readout. A WS-survey image (a WS or control test
  image of the cohort) counts as answered "WS" when P(WS) > P(control), else "control"; the
  same for 22q (paper, Comparison to Clinical Geneticists). Accuracy per survey x disease x age
  group and over each survey's disease;
- confusion.tsv / confusion.png: the row-normalised confusion matrix (the paper's Figure 3).

Every proportion (a class, a disease x age group, a survey readout) gets the Clopper-Pearson
interval (syndface.intervals): exact coverage, never zero-width at 0/n or n/n, where the former
percentile bootstrap gave [1, 1] for 30/30.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from syndface.intervals import (
    CLASS_MEAN_METHODS,
    class_mean_bootstrap_interval,
    class_mean_mover_interval,
    interval_note,
    proportion_interval,
)
from syndface.io import read_tsv, save_figure, write_tsv
from syndface.log import get_logger
from syndface.seeding import derive_seed
from syndface.taxonomy import AGE_GROUPS, DISEASES, SURVEYS, disease_index

log = get_logger("syndface.classify")

AVERAGE = "average"


def class_recalls(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = len(DISEASES)) -> np.ndarray:
    """Recall of each class; NaN for a class with no true example."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    hits = np.bincount(y_true[y_true == y_pred], minlength=n_classes).astype(float)
    totals = np.bincount(y_true, minlength=n_classes).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, hits / totals, np.nan)


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in y_true (sklearn's balanced_accuracy_score); NaN if empty.
    A prediction of a class absent from y_true is simply an error."""
    recalls = class_recalls(y_true, y_pred)
    return float(np.nanmean(recalls)) if np.isfinite(recalls).any() else float("nan")


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = len(DISEASES)) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class."""
    return np.bincount(np.asarray(y_true) * n_classes + np.asarray(y_pred), minlength=n_classes**2).reshape(
        n_classes, n_classes
    )


def row_normalise(counts: np.ndarray) -> np.ndarray:
    totals = counts.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, counts / totals, np.nan)


def labels_and_predictions(predictions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.array([disease_index(d) for d in predictions["disease"]])
    y_pred = np.array([disease_index(d) for d in predictions["pred"]])
    return y_true, y_pred


def class_metrics(
    predictions: pd.DataFrame, n_boot: int, seed: int, class_mean_interval: str = "mover-wilson", level: float = 0.95
) -> pd.DataFrame:
    """Per-class accuracy with Clopper-Pearson intervals, and the unweighted mean over the classes
    present with a MOVER-Wilson or stratified-bootstrap (`n_boot` resamples) interval."""
    if class_mean_interval not in CLASS_MEAN_METHODS:
        raise ValueError(
            f"unknown class-mean interval {class_mean_interval!r}; allowed: {', '.join(CLASS_MEAN_METHODS)}"
        )
    y_true, y_pred = labels_and_predictions(predictions)
    n = np.bincount(y_true, minlength=len(DISEASES))
    correct = np.bincount(y_true[y_true == y_pred], minlength=len(DISEASES))
    present = n > 0
    accuracy = class_recalls(y_true, y_pred)
    low, high = proportion_interval(correct, n, level)
    if class_mean_interval == "mover-wilson":
        mean_low, mean_high = class_mean_mover_interval(correct[present], n[present], level)
    else:
        hits = [(y_pred[y_true == c] == c) for c in np.flatnonzero(present)]
        mean_low, mean_high = class_mean_bootstrap_interval(
            hits, n_boot, derive_seed(seed, "bootstrap", "class-mean"), level
        )
    return pd.DataFrame(
        {
            "class": [*DISEASES, AVERAGE],
            "n": [*n, int(n.sum())],
            "correct": [*correct, int(correct.sum())],
            "accuracy": [*accuracy, float(accuracy[present].mean())],
            "ci_low": [*low, mean_low],
            "ci_high": [*high, mean_high],
        }
    )


def group_metrics(predictions: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Four-class accuracy of each disease x age group present in the test split, Clopper-Pearson intervals."""
    y_true, y_pred = labels_and_predictions(predictions)
    frame = pd.DataFrame(
        {
            "disease": predictions["disease"].to_numpy(),
            "age_group": predictions["age_group"].to_numpy(),
            "correct": y_true == y_pred,
        }
    )
    rows = [(d, a) for d in DISEASES for a in AGE_GROUPS]
    stats = frame.groupby(["disease", "age_group"])["correct"].agg(["size", "sum"]).reindex(rows).dropna()
    out = stats.reset_index().rename(columns={"size": "n", "sum": "correct"})
    out[["n", "correct"]] = out[["n", "correct"]].astype(int)
    out["accuracy"] = out["correct"] / out["n"]
    out["ci_low"], out["ci_high"] = proportion_interval(out["correct"].to_numpy(), out["n"].to_numpy(), level)
    return out


def two_way_answers(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per survey and survey image (cohort test images of the syndrome or control): the model's answer
    is whichever of P(syndrome), P(control) is higher."""
    test = predictions[predictions["source"] == "cohort"]
    parts = []
    for survey, (syndrome, control) in SURVEYS.items():
        images = test[test["disease"].isin([syndrome, control])]
        says_syndrome = images[f"p_{syndrome}"].to_numpy() > images[f"p_{control}"].to_numpy()
        answer = np.where(says_syndrome, syndrome, control)
        parts.append(
            pd.DataFrame(
                {
                    "survey": survey,
                    "image_id": images["image_id"].to_numpy(),
                    "disease": images["disease"].to_numpy(),
                    "age_group": images["age_group"].to_numpy(),
                    "p_syndrome": images[f"p_{syndrome}"].to_numpy(),
                    "p_control": images[f"p_{control}"].to_numpy(),
                    "answer": answer,
                    "correct": answer == images["disease"].to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def two_way_metrics(answers: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Two-way accuracy per survey x disease x age group, and per survey x disease over all ages ("all"),
    with Clopper-Pearson intervals."""
    by_group = answers.groupby(["survey", "disease", "age_group"])["correct"].agg(["size", "sum"]).reset_index()
    overall = (
        answers.groupby(["survey", "disease"])["correct"].agg(["size", "sum"]).reset_index().assign(age_group="all")
    )
    order = {name: i for i, name in enumerate([*SURVEYS, *DISEASES, *AGE_GROUPS, "all"])}
    stats = pd.concat([by_group, overall], ignore_index=True)
    stats = stats.sort_values(["survey", "disease", "age_group"], key=lambda s: s.map(order)).reset_index(drop=True)
    out = stats.rename(columns={"size": "n", "sum": "correct"})
    out["accuracy"] = out["correct"] / out["n"]
    out["ci_low"], out["ci_high"] = proportion_interval(out["correct"].to_numpy(), out["n"].to_numpy(), level)
    return out[["survey", "disease", "age_group", "n", "correct", "accuracy", "ci_low", "ci_high"]]


def confusion_table(predictions: pd.DataFrame) -> pd.DataFrame:
    y_true, y_pred = labels_and_predictions(predictions)
    counts = confusion_counts(y_true, y_pred)
    table = pd.DataFrame(row_normalise(counts), columns=list(DISEASES))
    table.insert(0, "n", counts.sum(1))
    table.insert(0, "true", list(DISEASES))
    return table


def confusion_figure(table: pd.DataFrame, title: str):
    """Heat map of the row-normalised confusion matrix in percent, as the paper's Figure 3."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = table[list(DISEASES)].to_numpy(float) * 100
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    image = ax.imshow(np.nan_to_num(values), cmap="Blues", vmin=0, vmax=100)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if np.isfinite(values[i, j]):
                ax.text(
                    j,
                    i,
                    f"{values[i, j]:.1f}",
                    ha="center",
                    va="center",
                    color="white" if values[i, j] > 60 else "black",
                    fontsize=9,
                )
    labels = [f"{d}\n(n={n})" for d, n in zip(DISEASES, table["n"])]
    ax.set_xticks(range(len(DISEASES)), DISEASES)
    ax.set_yticks(range(len(DISEASES)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="% of true class")
    return fig


def metrics_header(
    title: str, n_images: int, class_mean_interval: str, n_boot: int, seed: int, level: float = 0.95
) -> list[str]:
    """Header lines of metrics.tsv, per_group.tsv and two_way.tsv: unit and interval methods."""
    mean_note = interval_note(class_mean_interval, level, n_boot)
    if class_mean_interval == "bootstrap":
        mean_note += f", seed {seed}"
    return [
        f"{title}: {n_images} test images; unit: the image; accuracy = recall (share of a class's images predicted as it)",
        f"intervals: {interval_note('clopper-pearson', level)} per class or group; average (unweighted class mean): {mean_note}",
    ]


def evaluate(
    predictions: pd.DataFrame,
    out_dir: str | Path,
    n_boot: int,
    seed: int,
    title: str,
    class_mean_interval: str = "mover-wilson",
) -> pd.DataFrame:
    """Write the five evaluation outputs of one variant; returns metrics.tsv's table."""
    out_dir = Path(out_dir)
    header = metrics_header(title, len(predictions), class_mean_interval, n_boot, seed)
    metrics = class_metrics(predictions, n_boot, seed, class_mean_interval)
    write_tsv(metrics, out_dir / "metrics.tsv", header_lines=header)
    write_tsv(group_metrics(predictions), out_dir / "per_group.tsv", header_lines=header)
    write_tsv(
        two_way_metrics(two_way_answers(predictions)),
        out_dir / "two_way.tsv",
        header_lines=header
        + ["answer = whichever of P(syndrome), P(control) is higher, over the survey's cohort test images"],
    )
    confusion = confusion_table(predictions)
    write_tsv(
        confusion,
        out_dir / "confusion.tsv",
        header_lines=[f"{title}: rows = true class (fractions of n), columns = predicted class"],
    )
    save_figure(confusion_figure(confusion, title), out_dir / "confusion.png")
    return metrics


def main(argv: list[str], prog: str = "syndface evaluate-classifier") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--predictions", required=True, help="results/predictions/<variant>/test.tsv")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% intervals")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--title", default=None, help="figure title (default: the variant's folder name)")
    p.add_argument("--out-dir", required=True, help="results/evaluation/<variant>")
    args = p.parse_args(argv)
    predictions = read_tsv(args.predictions)
    missing = [
        c
        for c in ("image_id", "disease", "age_group", "source", "pred", *(f"p_{d}" for d in DISEASES))
        if c not in predictions.columns
    ]
    if missing:
        raise SystemExit(f"{args.predictions} lacks column(s) {', '.join(missing)}: write it with `syndface predict`")
    title = args.title or Path(args.predictions).parent.name
    metrics = evaluate(predictions, args.out_dir, args.bootstrap, args.seed, title)
    log.info("%s: %s", title, ", ".join(f"{c} {a:.3f}" for c, a in zip(metrics["class"], metrics["accuracy"])))
    return 0
