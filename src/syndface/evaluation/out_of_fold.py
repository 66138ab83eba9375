"""`syndface predict-out-of-fold`: each fold model's softmax on its own validation fold.

Fold k's model never trained on fold k's images, so together the fold models predict every
cohort and auxiliary train image once, out of fold: predictions to calibrate on (temperature
scaling) without touching the test split. Fakes are never in a validation fold.

Output (results/evaluation/<variant>/out_of_fold.tsv): image_id, disease, age_group, source,
fold, p_<class> (that fold's model), pred.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from syndface.align.cache import load_cache
from syndface.classify.data import ImageSet, split_fold
from syndface.classify.predict import check_one_per_fold, fold_models_command, load_fold_model
from syndface.classify.train import predict_probabilities
from syndface.evaluation.options import InferenceOptions
from syndface.io import read_tsv, write_tsv
from syndface.log import get_logger
from syndface.runtime import resolve_precision
from syndface.taxonomy import DISEASES

log = get_logger("syndface.evaluation")


def out_of_fold_predictions(
    model_paths: list[str],
    cache: np.ndarray,
    index: pd.DataFrame,
    folds: pd.DataFrame,
    batch_size: int,
    device,
    precision: str = "auto",
) -> pd.DataFrame:
    """One row per validation image of every fold: the probabilities of the model that held it out."""
    precision = resolve_precision(precision, device)
    tables, seen = [], []
    for position, path in enumerate(model_paths):
        model, fold = load_fold_model(path, cache.shape[1], device, precision, position)
        seen.append(fold)
        _, val = split_fold(index, folds, fold)
        proba = predict_probabilities(model, ImageSet(cache, val["row"].to_numpy()), batch_size, precision, device)
        table = val[["image_id", "disease", "age_group", "source"]].reset_index(drop=True).assign(fold=fold)
        table = pd.concat([table, pd.DataFrame(proba, columns=[f"p_{c}" for c in DISEASES]).round(6)], axis=1)
        table["pred"] = np.array(DISEASES)[proba.argmax(1)]
        tables.append(table)
        log.info("fold %d model %s: %d validation images", fold, path, len(val))
    check_one_per_fold(seen)
    missing = sorted(set(folds["fold"]) - set(seen))
    if missing:
        raise ValueError(f"no model for fold(s) {missing} of the folds table: give one model per fold")
    return pd.concat(tables, ignore_index=True)


def main(argv: list[str], prog: str = "syndface predict-out-of-fold") -> int:
    def folds_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--folds", required=True, help="results/folds/folds.tsv (the models' folds)")

    out_help = "results/evaluation/<variant>/out_of_fold.tsv"
    args, device = fold_models_command(argv, prog, __doc__, InferenceOptions, out_help, extra=folds_flag)
    opts = args.options
    cache, index = load_cache(args.cache)
    table = out_of_fold_predictions(
        args.models, cache, index, read_tsv(args.folds), opts.batch_size, device, opts.precision
    )
    write_tsv(
        table,
        args.out,
        header_lines=[
            "out-of-fold predictions: every train image by the fold model that held it out (its validation fold)"
        ],
    )
    log.info("%d out-of-fold predictions, accuracy %.3f", len(table), float((table["pred"] == table["disease"]).mean()))
    return 0
