"""The images one fold model trains and validates on, straight from the packed uint8 cache.

Fold k's model trains on the cached train images of every other fold, plus (for a `real+<type>`
variant) the fakes of fold k's GAN, which never saw fold k; it validates on fold k's real images.
Fakes are PNGs at the GAN's resolution: they are loaded once and resized to the training size
like the cache was, so no epoch decodes an image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from syndface.align.cache import load_cache
from syndface.images import read_resized
from syndface.io import read_tsv
from syndface.log import get_logger, progress
from syndface.taxonomy import DISEASES, disease_index

log = get_logger("syndface.classify")

LABEL_COLUMNS = tuple(f"label_{d}" for d in DISEASES)


class ImageSet:
    """uint8 images addressed 0..n-1: chosen rows of the cache's memory map, then in-memory images."""

    def __init__(self, cache: np.ndarray, rows: np.ndarray, extra: np.ndarray | None = None):
        self.cache = cache
        self.rows = np.asarray(rows, dtype=np.int64)
        self.extra = extra if extra is not None else np.empty((0, *cache.shape[1:]), np.uint8)
        if self.extra.shape[1:] != cache.shape[1:]:
            raise ValueError(f"extra images are {self.extra.shape[1:]}, the cache holds {cache.shape[1:]}")

    def __len__(self) -> int:
        return len(self.rows) + len(self.extra)

    def gather(self, indices: np.ndarray) -> np.ndarray:
        """The images at `indices`, in that order, as one N x S x S x 3 uint8 array."""
        indices = np.asarray(indices)
        out = np.empty((len(indices), *self.cache.shape[1:]), np.uint8)
        real = indices < len(self.rows)
        if real.any():
            rows = self.rows[indices[real]]
            order = np.argsort(rows, kind="stable")  # ascending rows read the memory map front to back
            out[np.flatnonzero(real)[order]] = self.cache[rows[order]]
        if (~real).any():
            out[~real] = self.extra[indices[~real] - len(self.rows)]
        return out


@dataclass
class FoldData:
    train: ImageSet
    train_targets: np.ndarray  # N x C float32 target probabilities (one-hot for hard labels)
    val: ImageSet
    val_labels: np.ndarray  # class index per validation image
    val_cohort: np.ndarray  # True for the cohort's own images (source == cohort)


def one_hot(labels: np.ndarray, n_classes: int = len(DISEASES)) -> np.ndarray:
    return np.eye(n_classes, dtype=np.float32)[labels]


def split_fold(index: pd.DataFrame, folds: pd.DataFrame, fold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train rows, validation rows) of the cache index for fold `fold`; test images are in neither."""
    if fold not in set(folds["fold"]):
        raise ValueError(f"fold {fold} is not in the folds table (folds: {sorted(set(folds['fold']))})")
    joined = index.merge(folds[["image_id", "fold"]], on="image_id", how="inner", validate="one_to_one")
    missing = len(folds) - len(joined)
    if missing:
        log.warning(
            "%d image(s) of the folds table are not in the cache (failed alignment); they are left out", missing
        )
    if (joined["split"] != "train").any():
        bad = joined.loc[joined["split"] != "train", "image_id"].head(5).tolist()
        raise ValueError(
            f"the folds table lists test-split images ({', '.join(bad)}): rebuild it with `syndface make-folds`"
        )
    return joined[joined["fold"] != fold], joined[joined["fold"] == fold]


def resolve_image_path(path: str, manifest: Path) -> Path:
    """A manifest path as written, or relative to the manifest's folder."""
    candidate = Path(path)
    if candidate.is_absolute() or candidate.exists():
        return candidate
    return manifest.parent / candidate


def fake_targets(fakes: pd.DataFrame, label_mode: str) -> np.ndarray:
    """Target probabilities of fake images: their soft-label columns, or one-hot of `disease`."""
    hard = one_hot(np.array([disease_index(d) for d in fakes["disease"]]))
    if label_mode == "hard" or not set(LABEL_COLUMNS) <= set(fakes.columns):
        return hard
    soft = fakes[list(LABEL_COLUMNS)].to_numpy(np.float32)
    sums = soft.sum(1)
    if (soft < 0).any() or not np.allclose(sums, 1.0, atol=1e-3):
        bad = fakes["image_id"].iloc[np.flatnonzero((soft < 0).any(1) | ~np.isclose(sums, 1.0, atol=1e-3))[:5]].tolist()
        raise ValueError(
            f"soft labels must be non-negative and sum to 1 ({', '.join(LABEL_COLUMNS)}); bad rows: {', '.join(bad)}"
        )
    return soft / sums[:, None]


def load_fakes(
    manifest_path: str | os.PathLike, fold: int, image_size: int, label_mode: str
) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images resized to image_size, target probabilities) of a fake-image manifest of fold `fold`."""
    manifest_path = Path(manifest_path)
    fakes = read_tsv(manifest_path)
    for column in ("image_id", "path", "disease"):
        if column not in fakes.columns:
            raise ValueError(f"{manifest_path}: fake manifest lacks column {column!r}")
    if "fold" in fakes.columns and (fakes["fold"] != fold).any():
        raise ValueError(
            f"{manifest_path} holds fakes of GAN fold(s) {sorted(set(fakes['fold']))}, not {fold}: a fold-{fold} model may only train on its own GAN's fakes"
        )
    targets = fake_targets(fakes, label_mode)
    images = np.empty((len(fakes), image_size, image_size, 3), np.uint8)
    paths = (resolve_image_path(p, manifest_path) for p in fakes["path"])
    for i, path in enumerate(progress(paths, len(fakes), "fakes loaded", log)):
        images[i] = read_resized(str(path), image_size)
    return images, targets


def load_fold_data(
    cache_dir: str | os.PathLike,
    folds_path: str | os.PathLike,
    fold: int,
    image_size: int,
    fakes_path: str | os.PathLike | None = None,
    label_mode: str = "hard",
) -> FoldData:
    cache, index = load_cache(cache_dir)
    if cache.shape[1] != image_size:
        raise ValueError(
            f"{cache_dir} holds {cache.shape[1]} px images but the model trains at {image_size} px: "
            f"build a {image_size} px cache (`syndface build-cache --size {image_size}`) or change the image size"
        )
    train_rows, val_rows = split_fold(index, read_tsv(folds_path), fold)
    if val_rows.empty or not (val_rows["source"] == "cohort").any():
        raise ValueError(f"fold {fold} has no cohort images to validate on: check the folds table")
    train_targets = one_hot(np.array([disease_index(d) for d in train_rows["disease"]]))
    extra = None
    if fakes_path:
        extra, fake_t = load_fakes(fakes_path, fold, image_size, label_mode)
        train_targets = np.concatenate([train_targets, fake_t])
    data = FoldData(
        train=ImageSet(cache, train_rows["row"].to_numpy(), extra),
        train_targets=train_targets,
        val=ImageSet(cache, val_rows["row"].to_numpy()),
        val_labels=np.array([disease_index(d) for d in val_rows["disease"]]),
        val_cohort=(val_rows["source"] == "cohort").to_numpy(),
    )
    counts = ", ".join(f"{d} {n:g}" for d, n in zip(DISEASES, train_targets.sum(0)))
    log.info(
        "fold %d: %d train images (%d fakes; per class %s), %d validation images (%d cohort)",
        fold,
        len(data.train),
        0 if extra is None else len(extra),
        counts,
        len(data.val),
        int(data.val_cohort.sum()),
    )
    return data
