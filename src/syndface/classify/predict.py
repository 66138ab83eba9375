"""`syndface predict`: every fold model's softmax on the test split, and the ensemble.

Ensemble rule (paper, Classifier): the mean of the probability vectors of the fold models whose
largest probability is at least `threshold` (paper 0.5). The paper's code used > 0.2, which with
four classes (max >= 0.25) keeps every model: a plain mean. When no model passes, the row gets
the plain mean over all models and `fallback = True`. `pred` is the ensemble's argmax.

Output (results/predictions/<variant>/test.tsv): image_id, disease, age_group, source,
p_fold<k>_<class> for every fold model, p_<class> (ensemble), pred, n_models (models averaged),
fallback.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from syndface.align.cache import load_cache
from syndface.classify.data import ImageSet
from syndface.classify.model import Classifier, load_classifier
from syndface.classify.options import PredictOptions
from syndface.classify.train import predict_probabilities
from syndface.io import write_tsv
from syndface.log import get_logger
from syndface.options import add_options_argument
from syndface.runtime import Precision, configure, resolve_device, resolve_precision
from syndface.taxonomy import DISEASES

log = get_logger("syndface.classify")


def ensemble(probabilities: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Folds x images x classes probabilities -> (ensemble images x classes, models averaged, fallback).

    Per image: the mean over the folds whose max probability is >= threshold; the plain mean over
    all folds (fallback) when none is."""
    confident = probabilities.max(2) >= threshold
    fallback = ~confident.any(0)
    use = np.where(fallback[None, :], True, confident).astype(probabilities.dtype)
    mean = (use[..., None] * probabilities).sum(0) / use.sum(0)[:, None]
    return mean, use.sum(0).astype(int), fallback


def load_fold_model(
    path: str, image_size: int, device: torch.device, precision: Precision, position: int = 0
) -> tuple[Classifier, int]:
    """(a fold model ready to predict `image_size` px images, its fold), refused when it was
    trained at another size or for other classes."""
    model, ckpt = load_classifier(path, device)
    trained = ckpt["arch"].get("image_size")
    if trained is not None and trained != image_size:
        raise ValueError(
            f"{path} was trained at {trained} px but the cache holds {image_size} px images: predict from the {trained} px cache"
        )
    if list(ckpt.get("classes", DISEASES)) != list(DISEASES):
        raise ValueError(f"{path} predicts classes {ckpt['classes']}, not {list(DISEASES)}")
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, int(ckpt.get("fold", position))


def check_one_per_fold(folds: list[int]) -> None:
    if len(set(folds)) != len(folds):
        raise ValueError(f"the models are of folds {folds}: give one model per fold")


def fold_probabilities(
    model_paths: list[str],
    images: ImageSet,
    image_size: int,
    batch_size: int,
    device: torch.device,
    precision: str = "auto",
    wrap: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
) -> tuple[list[int], np.ndarray]:
    """(fold number of each model, folds x images x classes softmax). `wrap` turns each model into
    what predicts (test-time augmentation: syndface.evaluation.tta)."""
    precision = resolve_precision(precision, device)
    folds, out = [], []
    for position, path in enumerate(model_paths):
        model, fold = load_fold_model(path, image_size, device, precision, position)
        folds.append(fold)
        out.append(predict_probabilities(wrap(model) if wrap else model, images, batch_size, precision, device))
        log.info("fold %d model %s: %d test images", folds[-1], path, len(images))
    check_one_per_fold(folds)
    return folds, np.stack(out)


def prediction_table(
    index: pd.DataFrame, folds: list[int], probabilities: np.ndarray, threshold: float
) -> pd.DataFrame:
    mean, n_models, fallback = ensemble(probabilities, threshold)
    table = index[["image_id", "disease", "age_group", "source"]].reset_index(drop=True)
    columns = {f"p_fold{k}_{c}": probabilities[f, :, j] for f, k in enumerate(folds) for j, c in enumerate(DISEASES)}
    columns |= {f"p_{c}": mean[:, j] for j, c in enumerate(DISEASES)}
    table = pd.concat([table, pd.DataFrame(columns).round(6)], axis=1)
    table["pred"] = np.array(DISEASES)[mean.argmax(1)]
    table["n_models"] = n_models
    table["fallback"] = fallback
    return table


def predict_test_split(
    model_paths: list[str],
    cache_dir: str,
    batch_size: int,
    device: torch.device,
    precision: str,
    threshold: float,
    wrap: Callable[[torch.nn.Module], torch.nn.Module] | None = None,
) -> tuple[pd.DataFrame, list[int]]:
    """(the prediction table of the cache's test split, the models' folds)."""
    cache, index = load_cache(cache_dir)
    test = index[index["split"] == "test"]
    if test.empty:
        raise SystemExit(f"{cache_dir} holds no test-split image: nothing to predict")
    images = ImageSet(cache, test["row"].to_numpy())
    folds, probabilities = fold_probabilities(model_paths, images, cache.shape[1], batch_size, device, precision, wrap)
    return prediction_table(test, folds, probabilities, threshold), folds


def ensemble_note(folds: list[int], threshold: float) -> str:
    return (
        f"ensemble of folds {', '.join(map(str, folds))}: mean over fold models with max probability >= {threshold}; "
        "fallback = plain mean over all models where none reaches it"
    )


def fold_models_command(
    argv: list[str],
    prog: str,
    description: str | None,
    options: type,
    out_help: str,
    models_help: str = "the fold models of one variant (results/classifier/<variant>/fold<k>/model.pt)",
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> tuple[argparse.Namespace, torch.device]:
    """The command line shared by the commands that run fold models over a packed cache (predict,
    predict-tta, predict-out-of-fold, export-features): --models, --cache, what `extra` adds,
    --options (validated by `options`), --num-threads, --out. Returns the parsed arguments and
    the device, resolved (GPU build checked) and configured."""
    p = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--models", nargs="+", required=True, help=models_help)
    p.add_argument("--cache", required=True, help="packed cache directory at the models' resolution")
    if extra is not None:
        extra(p)
    add_options_argument(p, options)
    p.add_argument("--num-threads", type=int, default=1)
    p.add_argument("--out", required=True, help=out_help)
    args = p.parse_args(argv)
    device = resolve_device(args.options.device)
    configure(device, args.num_threads)
    return args, device


def main(argv: list[str], prog: str = "syndface predict") -> int:
    args, device = fold_models_command(argv, prog, __doc__, PredictOptions, "results/predictions/<variant>/test.tsv")
    opts = args.options
    table, folds = predict_test_split(
        args.models, args.cache, opts.batch_size, device, opts.precision, opts.ensemble_threshold
    )
    write_tsv(table, args.out, header_lines=[ensemble_note(folds, opts.ensemble_threshold)])
    log.info(
        "%d test images, %d fallback rows, accuracy %.3f -> %s",
        len(table),
        int(table["fallback"].sum()),
        float((table["pred"] == table["disease"]).mean()),
        Path(args.out),
    )
    return 0
