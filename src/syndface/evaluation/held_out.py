"""`syndface make-held-out-folds`: the folds table without one disease, to train blind to it.

The open-set experiment trains the real-only fold models on this table: the same folds, the
same images, minus every image of the held-out disease (in training and in validation). The
classifier keeps its four outputs; the held-out class simply has no training image, so its
output is pushed down by every other image and is (almost) never predicted, while the
checkpoint, the class order and every reader of it stay as they are. (A three-output network
would need a class map through prediction, ensembling and evaluation for the same effect on
the penultimate features, which is what the gallery readout uses.)
"""

from __future__ import annotations

import argparse

import pandas as pd

from syndface.io import read_tsv, write_tsv
from syndface.log import get_logger
from syndface.taxonomy import DISEASES

log = get_logger("syndface.evaluation")


def held_out_folds(folds: pd.DataFrame, disease: str) -> pd.DataFrame:
    """`folds` without `disease`'s images; every fold must keep cohort images to validate on."""
    if disease not in DISEASES:
        raise ValueError(f"unknown disease {disease!r}; allowed: {', '.join(DISEASES)}")
    kept = folds[folds["disease"] != disease]
    if kept["disease"].nunique() < 2:
        raise ValueError(f"without {disease} the folds table keeps fewer than two classes: nothing to classify")
    empty = sorted(set(folds["fold"]) - set(kept.loc[kept["source"] == "cohort", "fold"]))
    if empty:
        raise ValueError(f"without {disease}, fold(s) {empty} have no cohort image to validate on")
    return kept.reset_index(drop=True)


def main(argv: list[str], prog: str = "syndface make-held-out-folds") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--folds", required=True, help="results/folds/folds.tsv")
    p.add_argument("--disease", required=True, choices=DISEASES, help="the disease to leave out of training")
    p.add_argument("--out", required=True, help="results/evaluation/held_out/<disease>/folds.tsv")
    args = p.parse_args(argv)
    folds = read_tsv(args.folds)
    kept = held_out_folds(folds, args.disease)
    write_tsv(
        kept,
        args.out,
        header_lines=[f"{args.folds} without the {len(folds) - len(kept)} images of {args.disease} (held-out label)"],
    )
    log.info("%d of %d fold images kept without %s", len(kept), len(folds), args.disease)
    return 0
