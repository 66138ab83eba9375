"""`syndface summarise-evaluation`: one row per variant, the paper's Average beside the rest.

Columns (each from the variant's tables under results/evaluation/<variant>/): the paper's
`average` with its interval, `accuracy`, top-k accuracy and `macro_f1` (readouts.tsv, per
image), `subject_average` (per subject), the test split's `brier`, `ece` and `nll` as predicted
and after temperature scaling with the fitted `temperature` (calibration.tsv), and the gallery's
kNN `knn_average` where the variant has one (knn.tsv). Intervals and definitions are in those
tables; this one only lines them up.
"""

from __future__ import annotations

import argparse

import pandas as pd

from syndface.classify.table2 import column_name
from syndface.io import read_tsv, variant_paths, write_tsv
from syndface.taxonomy import VARIANTS

SCALED = "temperature-scaled"


def summary_row(readouts: pd.DataFrame, calibration: pd.DataFrame, knn: pd.DataFrame | None) -> dict:
    image = readouts[readouts["readout"] == "image"].set_index("metric")
    subject = readouts[readouts["readout"] == "subject"].set_index("metric")
    top = next(m for m in image.index if m.startswith("top"))
    row = {
        "n_images": int(image.loc["average", "n"]),
        "average": image.loc["average", "value"],
        "average_ci_low": image.loc["average", "ci_low"],
        "average_ci_high": image.loc["average", "ci_high"],
        "accuracy": image.loc["accuracy", "value"],
        top: image.loc[top, "value"],
        "macro_f1": image.loc["macro_f1", "value"],
        "n_subjects": int(subject.loc["average", "n"]),
        "subject_average": subject.loc["average", "value"],
    }
    test = calibration[calibration["split"] == "test"].set_index("readout")
    for readout, suffix in (("as predicted", ""), (SCALED, "_scaled")):
        if readout in test.index:
            row |= {f"{m}{suffix}": test.loc[readout, m] for m in ("brier", "ece", "nll")}
    if SCALED in test.index:
        row["temperature"] = test.loc[SCALED, "temperature"]
    if knn is not None:
        row["knn_average"] = knn.set_index("class").loc["average", "knn_accuracy"]
    return row


def summarise(
    readouts: dict[str, pd.DataFrame], calibration: dict[str, pd.DataFrame], knn: dict[str, pd.DataFrame]
) -> pd.DataFrame:
    if set(readouts) != set(calibration):
        raise ValueError(
            f"readouts of {sorted(readouts)} but calibration of {sorted(calibration)}: give both per variant"
        )
    rows = [
        {"variant": column_name(v), **summary_row(readouts[v], calibration[v], knn.get(v))}
        for v in VARIANTS
        if v in readouts
    ]
    return pd.DataFrame(rows).round(4)


def main(argv: list[str], prog: str = "syndface summarise-evaluation") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--readouts", nargs="+", required=True, metavar="VARIANT=PATH", help="readouts.tsv per variant")
    p.add_argument(
        "--calibration", nargs="+", required=True, metavar="VARIANT=PATH", help="calibration.tsv per variant"
    )
    p.add_argument("--knn", nargs="*", default=[], metavar="VARIANT=PATH", help="knn.tsv of the gallery variants")
    p.add_argument("--out", required=True, help="results/evaluation/summary.tsv")
    args = p.parse_args(argv)

    def read(items: list[str], flag: str) -> dict[str, pd.DataFrame]:
        return {v: read_tsv(path) for v, path in variant_paths(items, flag).items()}

    table = summarise(
        read(args.readouts, "--readouts"), read(args.calibration, "--calibration"), read(args.knn, "--knn")
    )
    write_tsv(
        table,
        args.out,
        header_lines=[
            "evaluation beyond the paper, one row per variant: average = the paper's Average (mean class recall, "
            "= balanced accuracy); "
            "per image unless subject_*; brier/ece/nll on the test split as predicted, *_scaled after temperature "
            "scaling (temperature fitted on out-of-fold predictions); knn_average = the gallery's kNN readout",
            "intervals and definitions: results/evaluation/<variant>/readouts.tsv, calibration.tsv, knn.tsv",
        ],
    )
    return 0
