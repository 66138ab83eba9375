"""`syndface export-features`: every fold model's penultimate features of every cached image.

The pooled backbone features (what the classifier head reads; 1,792 per image for
EfficientNet-B4) of train and test images, one matrix per fold model, for the gallery readout
(`syndface match-gallery`, `syndface place-held-out`). Stored with the images' labels, so the
readouts need only this file and the folds table.

Output (.npz): `image_id`, `disease`, `age_group`, `source`, `split` (one entry per cached image),
`model_fold` (the fold of each model) and `features` (models x images x features, float32; the
paper's 64k images x 5 folds x 1,792 take 2.3 GB).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from syndface.align.cache import load_cache
from syndface.classify.data import ImageSet
from syndface.classify.predict import check_one_per_fold, fold_models_command, load_fold_model
from syndface.classify.train import batched_outputs
from syndface.evaluation.options import InferenceOptions
from syndface.io import save_npz
from syndface.log import get_logger
from syndface.runtime import resolve_precision

log = get_logger("syndface.evaluation")
LABEL_FIELDS = ("image_id", "disease", "age_group", "source", "split")


def fold_features(
    model_paths: list[str], images: ImageSet, image_size: int, batch_size: int, device, precision: str = "auto"
) -> tuple[list[int], np.ndarray]:
    """(fold of each model, models x images x features)."""
    precision = resolve_precision(precision, device)
    folds, out = [], []
    for position, path in enumerate(model_paths):
        model, fold = load_fold_model(path, image_size, device, precision, position)
        folds.append(fold)
        width = model.backbone.num_features
        out.append(batched_outputs(model.features, images, batch_size, precision, device, width))
        log.info("fold %d model %s: %d x %d features", fold, path, len(images), width)
    check_one_per_fold(folds)
    return folds, np.stack(out)


def load_features(path: str | Path) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """(labels: field -> one entry per image, model folds, models x images x features)."""
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in (*LABEL_FIELDS, "model_fold", "features") if k not in data.files]
        if missing:
            raise ValueError(f"{path} lacks {', '.join(missing)}: write it with `syndface export-features`")
        return {k: data[k] for k in LABEL_FIELDS}, data["model_fold"], data["features"]


def main(argv: list[str], prog: str = "syndface export-features") -> int:
    args, device = fold_models_command(
        argv, prog, __doc__, InferenceOptions, "features.npz", models_help="the fold models"
    )
    opts = args.options
    cache, index = load_cache(args.cache)
    folds, features = fold_features(
        args.models, ImageSet(cache, index["row"].to_numpy()), cache.shape[1], opts.batch_size, device, opts.precision
    )
    labels = {k: index[k].astype(str).to_numpy(dtype=str) for k in LABEL_FIELDS}
    save_npz({**labels, "model_fold": np.array(folds), "features": features.astype(np.float32)}, args.out)
    log.info("features of %d images from %d fold models -> %s", features.shape[1], len(folds), args.out)
    return 0
