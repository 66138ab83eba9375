"""`syndface evaluate-classifier`: the accuracies the paper reports, from one variant's test predictions.

- metrics.tsv: accuracy (recall) of each class over the test split and their unweighted mean,
  the paper's Table 2 "Average" ((68 + 86.4 + 100 + 94) / 4 = 87.1), with 95 % intervals:
  Clopper-Pearson per class; for the mean, MOVER-Wilson (closed form) or a stratified
  bootstrap (classes resampled separately, as the test set was drawn per class);
- per_group.tsv: four-class accuracy per disease x age group (the paper code's
  AccuracyPerGroupFromWhole, Table 1's model columns);
- two_way.tsv: the clinicians' comparison readout (syndface.readout, shared with
  compare-clinicians). A survey image counts as answered with the syndrome when
  P(syndrome) > P(control), else "other" (paper, Comparison to Clinical Geneticists); over each
  survey's own images when the survey tables are given, else over every cohort test image of
  the syndrome and of control. Accuracy per survey x disease x age group and over each survey's
  disease;
- confusion.tsv / confusion.png: the row-normalised confusion matrix (the paper's Figure 3).

Every proportion (a class, a disease x age group, a survey readout) gets the Clopper-Pearson
interval (syndface.intervals): exact coverage, never zero-width at 0/n or n/n, where the former
percentile bootstrap gave [1, 1] for 30/30.

Given the manifest (and alignment's failed.tsv), every table also carries `n_test` (the test
images of the manifest) and `n_excluded` beside `n` (those evaluated), and excluded.tsv lists
each test image that was not evaluated with the reason (see `syndface.classify.accounting`).

"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, recall_score

from syndface.classify import accounting
from syndface.classify.options import EvaluateOptions
from syndface.clinicians.survey import read_survey
from syndface.intervals import (
    CLASS_MEAN_METHODS,
    class_mean_bootstrap_interval,
    class_mean_mover_interval,
    interval_note,
    proportion_interval,
)
from syndface.io import read_tsv, save_figure, write_tsv
from syndface.log import get_logger
from syndface.options import add_options_argument
from syndface.readout import survey_image_ids, survey_readout
from syndface.seeding import derive_seed
from syndface.taxonomy import AGE_GROUPS, DISEASES, SURVEYS, disease_index

log = get_logger("syndface.classify")

AVERAGE = "average"


def class_recalls(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = len(DISEASES)) -> np.ndarray:
    """Recall of each class; NaN for a class with no true example."""
    return recall_score(y_true, y_pred, labels=np.arange(n_classes), average=None, zero_division=np.nan)


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in y_true, as the paper code's sklearn `balanced_accuracy_score`
    (its `bal_acc_ourdata`): predicting a class absent from y_true (unaffected on the cohort's images) is
    simply an error, not a class of its own. NaN without images (sklearn would raise)."""
    if len(y_true) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "y_pred contains classes not in y_true", UserWarning)
        return float(balanced_accuracy_score(y_true, y_pred))


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = len(DISEASES)) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class."""
    return confusion_matrix(y_true, y_pred, labels=np.arange(n_classes))


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
    counts = confusion_counts(y_true, y_pred)
    n, correct = counts.sum(1), np.diag(counts)
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
            "accuracy": [*accuracy, balanced_accuracy(y_true, y_pred)],
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


def two_way_answers(predictions: pd.DataFrame, surveys: pd.DataFrame | None = None) -> pd.DataFrame:
    """The model's two-way answer per survey and survey image (syndface.readout). `surveys`: the
    survey answer tables (survey, image_id, ...), whose images each survey's readout is over; None =
    every cohort test image of the syndrome and of control, for each survey."""
    shown = survey_image_ids(surveys) if surveys is not None else {}
    return pd.concat(
        [
            survey_readout(predictions, survey, shown.get(survey))
            for survey in SURVEYS
            if surveys is None or survey in shown
        ],
        ignore_index=True,
    )


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
    manifest: pd.DataFrame | None = None,
    failed: pd.DataFrame | None = None,
    surveys: pd.DataFrame | None = None,
    class_mean_interval: str = "mover-wilson",
) -> pd.DataFrame:
    """Write the evaluation outputs of one variant; returns metrics.tsv's table.

    With the manifest, the tables carry the test-set accounting and excluded.tsv is written.
    `surveys`: the clinician survey answer tables, so two_way.tsv reads each survey over its own
    images (without them, every cohort test image of the syndrome and of control).
    """
    out_dir = Path(out_dir)
    header = metrics_header(title, len(predictions), class_mean_interval, n_boot, seed)
    metrics = class_metrics(predictions, n_boot, seed, class_mean_interval)
    per_group = group_metrics(predictions)
    two_way = two_way_metrics(two_way_answers(predictions, surveys))
    if manifest is not None:
        tests = accounting.test_images(manifest, predictions)
        excluded = accounting.excluded_images(tests, failed)
        metrics = accounting.with_test_counts(metrics, accounting.class_counts(tests, AVERAGE), ["class"])
        per_group = accounting.with_test_counts(per_group, accounting.group_counts(tests), ["disease", "age_group"])
        two_way = accounting.with_test_counts(
            two_way, accounting.survey_counts(tests), ["survey", "disease", "age_group"]
        )
        header.append(
            f"{len(predictions)} of the manifest's {len(tests)} test images evaluated, {len(excluded)} excluded "
            "(n_test = in the manifest, n = evaluated, n_excluded = not evaluated; reasons in excluded.tsv)"
        )
        write_tsv(excluded, out_dir / "excluded.tsv", header_lines=[f"{title}: test images not evaluated"])
        if len(excluded):
            log.warning(
                "%s: %d of %d test images were not evaluated (listed in %s)",
                title,
                len(excluded),
                len(tests),
                out_dir / "excluded.tsv",
            )
    write_tsv(metrics, out_dir / "metrics.tsv", header_lines=header)
    write_tsv(per_group, out_dir / "per_group.tsv", header_lines=header)
    over = (
        "each survey's own images (its answer table)"
        if surveys is not None
        else "every cohort test image of the syndrome and of control (no survey tables given)"
    )
    write_tsv(
        two_way,
        out_dir / "two_way.tsv",
        header_lines=header + [f"answer = whichever of P(syndrome), P(control) is higher, over {over}"],
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
    p.add_argument("--manifest", help="results/cohort/manifest.tsv: count the test images not evaluated")
    p.add_argument("--failed", help="results/aligned/failed.tsv: why they were not (with --manifest)")
    p.add_argument(
        "--surveys", nargs="+", help="survey answer tables: two_way.tsv over each survey's own images (else all)"
    )
    add_options_argument(p, EvaluateOptions)
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
    manifest = read_tsv(args.manifest) if args.manifest else None
    failed = read_tsv(args.failed) if args.failed else None
    surveys = read_survey(args.surveys) if args.surveys else None
    opts = args.options
    metrics = evaluate(
        predictions, args.out_dir, opts.bootstrap, opts.seed, title, manifest, failed, surveys, opts.class_mean_interval
    )
    log.info("%s: %s", title, ", ".join(f"{c} {a:.3f}" for c, a in zip(metrics["class"], metrics["accuracy"])))
    return 0
