"""`syndface calibrate-classifier`: how far one variant's probabilities can be taken at their word.

From the test predictions (and the fold models' out-of-fold validation predictions):
- calibration.tsv: Brier score, expected calibration error (top label, `ece_bins` equal-mass
  bins), negative log-likelihood and accuracy of the fold ensemble on the test split; with
  `temperature_scaling`, one temperature T fitted on the out-of-fold predictions (never on the
  test split) and the same scores of the ensemble of temperature-scaled fold models (each fold
  model's test probabilities scaled, then the ensemble rule of `syndface predict` applied as
  before), and the out-of-fold scores before and after (after = in-sample, where T was fitted);
- reliability.tsv: per readout and bin, confidence range and mean, accuracy with its
  Clopper-Pearson interval;
- reliability.png: the reliability diagram (accuracy against mean confidence per bin, before and
  after scaling; the diagonal is perfect calibration).
Definitions in `syndface.evaluation.metrics`.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pandas as pd

from syndface.evaluation import metrics
from syndface.evaluation.options import CalibrationOptions
from syndface.intervals import interval_note
from syndface.io import read_tsv, save_figure, write_tsv
from syndface.log import get_logger
from syndface.options import add_options_argument

log = get_logger("syndface.evaluation")

AS_PREDICTED = "as predicted"
SCALED = "temperature-scaled"
FOLD_COLUMN = re.compile(r"^p_fold(\d+)_(.+)$")


def fold_probability_stack(predictions: pd.DataFrame) -> tuple[list[int], np.ndarray]:
    """(folds, folds x images x classes) from the `p_fold<k>_<class>` columns of a test.tsv."""
    folds = sorted({int(m.group(1)) for c in predictions.columns if (m := FOLD_COLUMN.match(c))})
    if not folds:
        raise ValueError("the predictions carry no p_fold<k>_<class> columns: write them with `syndface predict`")
    return folds, np.stack([metrics.probability_matrix(predictions, f"p_fold{k}_") for k in folds])


def scaled_ensemble(predictions: pd.DataFrame, temperature: float, threshold: float) -> np.ndarray:
    """The ensemble rule of `syndface predict` over temperature-scaled fold-model probabilities."""
    from syndface.classify.predict import ensemble

    _, stack = fold_probability_stack(predictions)
    mean, _, _ = ensemble(metrics.temperature_scale(stack, temperature), threshold)
    return mean


def scores(y: np.ndarray, proba: np.ndarray, n_bins: int) -> dict[str, float]:
    return {
        "n": len(y),
        "accuracy": float((proba.argmax(1) == y).mean()),
        "brier": metrics.brier_score(y, proba),
        "ece": metrics.expected_calibration_error(y, proba, n_bins),
        "nll": metrics.negative_log_likelihood(y, proba),
    }


def calibrate(
    predictions: pd.DataFrame, out_of_fold: pd.DataFrame | None, n_bins: int, scale: bool, threshold: float
) -> tuple[pd.DataFrame, pd.DataFrame, float | None]:
    """(calibration table, reliability bins, fitted temperature or None)."""
    if scale and out_of_fold is None:
        raise ValueError("temperature scaling needs the out-of-fold predictions (syndface predict-out-of-fold)")
    y_test = metrics.true_labels(predictions)
    readouts = [("test", AS_PREDICTED, 1.0, y_test, metrics.probability_matrix(predictions))]
    temperature = None
    if out_of_fold is not None:
        y_val, p_val = metrics.true_labels(out_of_fold), metrics.probability_matrix(out_of_fold)
        readouts.insert(0, ("out_of_fold", AS_PREDICTED, 1.0, y_val, p_val))
        if scale:
            temperature = metrics.fit_temperature(y_val, p_val)
            readouts.insert(
                1, ("out_of_fold", SCALED, temperature, y_val, metrics.temperature_scale(p_val, temperature))
            )
            readouts.append(("test", SCALED, temperature, y_test, scaled_ensemble(predictions, temperature, threshold)))
    rows, bins = [], []
    for split, readout, t, y, proba in readouts:
        rows.append({"split": split, "readout": readout, "temperature": round(t, 4), **scores(y, proba, n_bins)})
        bins.append(metrics.reliability_table(y, proba, n_bins).assign(split=split, readout=readout))
    table = pd.DataFrame(rows)
    reliability = pd.concat(bins, ignore_index=True)
    reliability = reliability[["split", "readout", *[c for c in reliability.columns if c not in ("split", "readout")]]]
    return table.round(4), reliability.round(4), temperature


def reliability_figure(reliability: pd.DataFrame, table: pd.DataFrame, title: str):
    """Accuracy against mean confidence per equal-mass bin of the test split, with intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls=":", label="perfect calibration")
    test = reliability[reliability["split"] == "test"]
    for (readout, part), colour in zip(test.groupby("readout", sort=False), ("tab:blue", "tab:orange")):
        row = table[(table["split"] == "test") & (table["readout"] == readout)].iloc[0]
        label = f"{readout}: ECE {row['ece']:.3f}, Brier {row['brier']:.3f}"
        if readout == SCALED:
            label += f" (T = {row['temperature']:.2f})"
        yerr = np.vstack([part["accuracy"] - part["ci_low"], part["ci_high"] - part["accuracy"]])
        ax.errorbar(
            part["confidence"], part["accuracy"], yerr=yerr, fmt="o-", ms=4, capsize=2, color=colour, label=label
        )
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("mean confidence (top label) per bin")
    ax.set_ylabel("accuracy per bin (95% Clopper-Pearson)")
    n_bins = int(test.groupby("readout")["bin"].max().max()) if len(test) else 0
    ax.set_title(f"{title}: test split, {n_bins} equal-mass bins", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def main(argv: list[str], prog: str = "syndface calibrate-classifier") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--predictions", required=True, help="results/predictions/<variant>/test.tsv")
    p.add_argument("--out-of-fold", help="results/evaluation/<variant>/out_of_fold.tsv (needed to fit a temperature)")
    add_options_argument(p, CalibrationOptions)
    p.add_argument("--title", default=None, help="figure title (default: the variant's folder name)")
    p.add_argument("--out-dir", required=True, help="results/evaluation/<variant>")
    args = p.parse_args(argv)
    opts = args.options
    predictions = read_tsv(args.predictions)
    out_of_fold = read_tsv(args.out_of_fold) if args.out_of_fold else None
    title = args.title or Path(args.predictions).parent.name
    table, reliability, temperature = calibrate(
        predictions, out_of_fold, opts.ece_bins, opts.temperature_scaling, opts.ensemble_threshold
    )
    header = [
        f"calibration of {title}: Brier score (multiclass, 0 best - 2 worst), ECE (top label, {opts.ece_bins} "
        "equal-mass bins), NLL (mean -log p of the true class), accuracy; unit: the image",
        "split out_of_fold: every train image by the fold model that held it out; test: the fold ensemble",
    ]
    if (
        temperature is not None
        and not metrics.TEMPERATURE_BOUNDS[0] * 1.01 < temperature < metrics.TEMPERATURE_BOUNDS[1] / 1.01
    ):
        log.warning(
            "%s: the fitted temperature %.3g is at the edge of the search range %s",
            title,
            temperature,
            metrics.TEMPERATURE_BOUNDS,
        )
        header.append(
            f"the fitted temperature lies at the edge of the searched range {metrics.TEMPERATURE_BOUNDS}: the out-of-fold "
            "predictions carry (almost) no information about the class, scaling flattens them towards uniform"
        )
    if temperature is not None:
        header.append(
            f"temperature T = {temperature:.4f} fitted by maximum likelihood on the {len(out_of_fold)} "
            "out-of-fold predictions (never on test): p -> softmax(log p / T) per fold model, then the ensemble rule; "
            "the out_of_fold temperature-scaled row is in-sample"
        )
    out_dir = Path(args.out_dir)
    write_tsv(table, out_dir / "calibration.tsv", header_lines=header)
    write_tsv(
        reliability,
        out_dir / "reliability.tsv",
        header_lines=[
            *header[:1],
            f"per bin: accuracy with {interval_note('clopper-pearson')}; gap = accuracy - confidence",
        ],
    )
    save_figure(reliability_figure(reliability, table, title), out_dir / "reliability.png")
    test = table[table["split"] == "test"]
    log.info(
        "%s: %s",
        title,
        "; ".join(f"{r} Brier {b:.3f} ECE {e:.3f}" for r, b, e in zip(test["readout"], test["brier"], test["ece"])),
    )
    return 0
