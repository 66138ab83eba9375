"""`syndface evaluate-readouts`: the paper's Average beside other summaries, per image and per subject.

- readouts.tsv: for the per-image readout (each test photo on its own, as the paper) and the
  per-subject readout (each subject's probabilities averaged over their test photos, then the
  argmax), with the unit's count `n`:
  - `average`: the paper's "Average", the unweighted mean of the classes' recalls (= scikit-learn's
    balanced accuracy), MOVER-Wilson interval;
  - `accuracy`: the share of all units right (weighted by class size, so dominated by the largest
    class), Clopper-Pearson;
  - `top<k>_accuracy`: the true class among the k most probable, Clopper-Pearson;
  - `macro_f1`: the unweighted mean F1 over the classes present, a bootstrap interval stratified by
    class (`classifier.bootstrap` resamples, seeded);
- subjects.tsv: per class and their average, recall per image and per subject side by side, with
  the number of subjects that have several test photos.

A subject's photos must share one disease (the manifest guarantees one split per subject); where
every subject has one test photo the two readouts are the same, and the header says so.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from syndface.evaluation import metrics
from syndface.evaluation.options import ReadoutOptions
from syndface.intervals import class_mean_mover_interval, interval_note, proportion_interval
from syndface.io import read_tsv, write_tsv
from syndface.log import get_logger
from syndface.options import add_options_argument
from syndface.seeding import derive_seed
from syndface.taxonomy import DISEASES, disease_index

log = get_logger("syndface.evaluation")
AVERAGE = "average"
PROBABILITIES = [f"p_{d}" for d in DISEASES]


def subject_predictions(predictions: pd.DataFrame, manifest: pd.DataFrame) -> pd.DataFrame:
    """One row per subject: disease, number of test photos, mean probabilities, prediction."""
    subjects = manifest.set_index("image_id")["subject_id"]
    missing = sorted(set(predictions["image_id"]) - set(subjects.index))
    if missing:
        raise ValueError(f"{len(missing)} predicted image(s) are not in the manifest (e.g. {', '.join(missing[:3])})")
    table = predictions.assign(subject_id=subjects.loc[predictions["image_id"]].to_numpy())
    mixed = table.groupby("subject_id")["disease"].nunique()
    if (mixed > 1).any():
        raise ValueError(f"subject(s) with photos of more than one disease: {', '.join(mixed.index[mixed > 1][:5])}")
    grouped = table.groupby("subject_id", sort=False)
    out = grouped.agg(disease=("disease", "first"), n_photos=("image_id", "size"))
    out[PROBABILITIES] = grouped[PROBABILITIES].mean()
    out["pred"] = np.array(DISEASES)[metrics.probability_matrix(out).argmax(1)]
    return out.reset_index()


def readout_rows(table: pd.DataFrame, unit: str, top_k: int, n_boot: int, seed: int, level: float = 0.95) -> list[dict]:
    """The summary metrics of one readout (rows of readouts.tsv)."""
    y = metrics.true_labels(table)
    proba = metrics.probability_matrix(table)
    pred = np.array([disease_index(d) for d in table["pred"]])  # as Table 2 reads it
    n_class = np.bincount(y, minlength=len(DISEASES))
    right = np.bincount(y[pred == y], minlength=len(DISEASES))
    present = n_class > 0
    rows = []

    def add(metric: str, value: float, low: float, high: float, method: str, correct: int | None = None) -> None:
        rows.append(
            {"readout": unit, "metric": metric, "n": len(y), "correct": correct, "value": value}
            | {"ci_low": low, "ci_high": high, "interval": method}
        )

    low, high = class_mean_mover_interval(right[present], n_class[present], level)
    add(AVERAGE, float(np.mean(right[present] / n_class[present])), low, high, "mover-wilson")
    correct = int((pred == y).sum())
    add("accuracy", correct / len(y), *proportion_interval(correct, len(y), level), "clopper-pearson", correct)
    hits = metrics.top_k_hits(y, proba, top_k)
    add(f"top{top_k}_accuracy", hits / len(y), *proportion_interval(hits, len(y), level), "clopper-pearson", hits)
    low, high = metrics.class_stratified_interval(metrics.macro_f1, y, pred, n_boot, seed, level)
    add("macro_f1", metrics.macro_f1(y, pred), low, high, "bootstrap")
    return rows


def recall_columns(table: pd.DataFrame, prefix: str, level: float = 0.95) -> pd.DataFrame:
    """Per class and average: n, recall and its interval, columns prefixed (`image_`, `subject_`)."""
    rows = []
    for c in DISEASES:
        part = table[table["disease"] == c]
        rows.append({"class": c, "n": len(part), "correct": int((part["pred"] == c).sum())})
    out = pd.DataFrame(rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["recall"] = out["correct"] / out["n"]
    out["ci_low"], out["ci_high"] = proportion_interval(out["correct"].to_numpy(), out["n"].to_numpy(), level)
    present = out["n"] > 0
    low, high = class_mean_mover_interval(
        out.loc[present, "correct"].to_numpy(), out.loc[present, "n"].to_numpy(), level
    )
    mean = {"class": AVERAGE, "n": int(out["n"].sum()), "correct": int(out["correct"].sum())}
    mean |= {"recall": float(out.loc[present, "recall"].mean()), "ci_low": low, "ci_high": high}
    out = pd.concat([out, pd.DataFrame([mean])], ignore_index=True)
    return out.rename(columns={c: f"{prefix}{c}" for c in out.columns if c != "class"})


def subjects_table(predictions: pd.DataFrame, subjects: pd.DataFrame) -> pd.DataFrame:
    side = recall_columns(predictions, "image_").merge(recall_columns(subjects, "subject_"), on="class")
    multi = subjects[subjects["n_photos"] > 1].groupby("disease").size()
    side["subjects_with_several_photos"] = [int(multi.get(c, 0)) for c in DISEASES] + [int(multi.sum())]
    return side


def main(argv: list[str], prog: str = "syndface evaluate-readouts") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--predictions", required=True, help="results/predictions/<variant>/test.tsv")
    p.add_argument("--manifest", required=True, help="results/cohort/manifest.tsv (subject ids)")
    add_options_argument(p, ReadoutOptions)
    p.add_argument("--title", default=None, help="table title (default: the variant's folder name)")
    p.add_argument("--out-dir", required=True, help="results/evaluation/<variant>")
    args = p.parse_args(argv)
    opts = args.options
    title = args.title or Path(args.predictions).parent.name
    predictions = read_tsv(args.predictions)
    subjects = subject_predictions(predictions, read_tsv(args.manifest))
    seed = derive_seed(opts.seed, "bootstrap", "macro-f1")
    rows = readout_rows(predictions, "image", opts.top_k, opts.bootstrap, seed)
    rows += readout_rows(subjects, "subject", opts.top_k, opts.bootstrap, seed)
    several = int((subjects["n_photos"] > 1).sum())
    same = "" if several else "; every subject has one test photo, so the per-subject readout equals the per-image one"
    header = [
        f"{title}: {len(predictions)} test images of {len(subjects)} subjects ({several} with several photos{same}); "
        "readout image = each photo (the paper), subject = probabilities averaged over a subject's photos, then argmax; "
        "average = the paper's Average = balanced accuracy (mean recall over the classes present)",
        f"intervals: average {interval_note('mover-wilson')}; accuracy and top-{opts.top_k} {interval_note('clopper-pearson')}; "
        f"macro_f1 {interval_note('bootstrap', n_resamples=opts.bootstrap)}, seed {opts.seed}",
    ]
    out_dir = Path(args.out_dir)
    table = pd.DataFrame(rows).astype({"correct": "Int64"}).round(4)
    write_tsv(table, out_dir / "readouts.tsv", header_lines=header)
    write_tsv(subjects_table(predictions, subjects).round(4), out_dir / "subjects.tsv", header_lines=header[:1])
    log.info(
        "%s: %s",
        title,
        ", ".join(f"{r['readout']} {r['metric']} {r['value']:.3f}" for r in rows if r["readout"] == "image"),
    )
    return 0
