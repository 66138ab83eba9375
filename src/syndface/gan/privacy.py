"""`syndface privacy-audit`: is any fake a near copy of a face the GAN was trained on?

For every fake, the nearest image of its fold's GAN training set (the training_set.tsv that
train-gan writes) and the distance, by dlib's 128-D face descriptor (Euclidean; dlib's
same-person threshold is 0.6). Where dlib's detector finds no face in the fake, or in none of
the fold's training images, a fallback embedding is used (`--fallback pixels`: RGB downsampled
to --fallback-size px in [0, 1], distance = RMS pixel difference, threshold --pixel-threshold);
the `method` column says which. `--fallback none` leaves those fakes unmatched. A fake found by
dlib is compared only with training images in which dlib also found a face.

A dlib descriptor costs ~0.15 s of one core, so `--sample-per-set N` audits a seeded sample of N
fakes per fold x fake type (0 = all) and `--workers` describes fakes in parallel. `--embedding
pixels` skips dlib altogether: for cohorts whose faces dlib cannot tell apart (the synthetic demo
faces: see the leakage report), the pixel distance is the only honest measure.

Outputs: --out, one row per audited fake (image_id, fold, fake_type, disease, age_group, method,
nearest_image_id, nearest_disease, nearest_age_group, distance, threshold, under_threshold);
--summary, per fold x fake type x method: n, n_under, share_under, min and median distance.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from syndface.gan.options import PrivacyOptions
from syndface.io import read_tsv, write_tsv
from syndface.log import get_logger
from syndface.options import add_options_argument
from syndface.seeding import rng

log = get_logger("syndface.gan.privacy")

DLIB_THRESHOLD = 0.6


@dataclass
class Embeddings:
    """Per image: dlib descriptor [N, 128], whether dlib's detector found the face [N], fallback embedding [N, D] or None."""

    descriptors: np.ndarray
    found: np.ndarray
    pixels: np.ndarray | None


def pixel_embedding(images: Sequence[np.ndarray], size: int) -> np.ndarray:
    """Each image resized to size x size RGB, scaled to [0, 1] and flattened; float32 [N, size*size*3]."""
    from PIL import Image

    out = np.empty((len(images), size * size * 3), np.float32)
    for i, image in enumerate(images):
        small = Image.fromarray(np.asarray(image)).convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        out[i] = np.asarray(small, np.float32).reshape(-1) / 255.0
    return out


def nearest(queries: np.ndarray, references: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Index of and Euclidean distance to the nearest reference row for each query row."""
    refs = torch.from_numpy(np.ascontiguousarray(references, np.float32))
    index, dist = [np.zeros(0, np.int64)], [np.zeros(0, np.float32)]
    for i in range(0, len(queries), chunk):
        best = torch.cdist(torch.from_numpy(np.ascontiguousarray(queries[i : i + chunk], np.float32)), refs).min(dim=1)
        index.append(best.indices.numpy())
        dist.append(best.values.numpy())
    return np.concatenate(index), np.concatenate(dist)


def _assign(
    out: pd.DataFrame,
    queries: np.ndarray,
    query_emb: np.ndarray,
    refs: np.ndarray,
    ref_emb: np.ndarray,
    training: pd.DataFrame,
    method: str,
    threshold: float,
    scale: float = 1.0,
) -> None:
    """Fill the match columns of `out` rows `queries` with their nearest among `training` rows `refs`."""
    if not len(queries):
        return
    idx, dist = nearest(query_emb, ref_emb)
    match = training.iloc[refs[idx]]
    out.loc[queries, "method"] = method
    for column in ("image_id", "disease", "age_group"):
        out.loc[queries, f"nearest_{column}"] = match[column].to_numpy()
    out.loc[queries, "distance"] = dist * scale
    out.loc[queries, "threshold"] = threshold


def audit(
    fakes: pd.DataFrame,
    fake_emb: Embeddings,
    training: pd.DataFrame,
    train_emb: Embeddings,
    pixel_threshold: float = 0.05,
) -> pd.DataFrame:
    """One row per fake (rows of `fake_emb` follow `fakes`); `training` lists every fold's GAN training
    images (gan_fold, image_id, disease, age_group), rows of `train_emb` following it."""
    out = fakes[["image_id", "fold", "fake_type", "disease", "age_group"]].reset_index(drop=True)
    out = out.assign(
        method="none", nearest_image_id="", nearest_disease="", nearest_age_group="", distance=np.nan, threshold=np.nan
    )
    for fold in sorted(out["fold"].unique()):
        refs = np.flatnonzero(training["gan_fold"].to_numpy() == fold)
        if not len(refs):
            raise ValueError(f"no GAN training set given for fold {fold}; pass results/gan/fold{fold}/training_set.tsv")
        queries = np.flatnonzero(out["fold"].to_numpy() == fold)
        refs_with_face = refs[train_emb.found[refs]]
        if len(refs_with_face) < len(refs):
            log.info(
                "fold %s: dlib finds no face in %d of %d training images; fakes meet those only through the fallback",
                fold,
                len(refs) - len(refs_with_face),
                len(refs),
            )
        by_dlib = queries[fake_emb.found[queries]] if len(refs_with_face) else queries[:0]
        _assign(
            out,
            by_dlib,
            fake_emb.descriptors[by_dlib],
            refs_with_face,
            train_emb.descriptors[refs_with_face],
            training,
            "dlib",
            DLIB_THRESHOLD,
        )
        if fake_emb.pixels is not None and train_emb.pixels is not None:
            rest = np.setdiff1d(queries, by_dlib)
            # RMS pixel difference = Euclidean distance / sqrt(dimensions).
            _assign(
                out,
                rest,
                fake_emb.pixels[rest],
                refs,
                train_emb.pixels[refs],
                training,
                "pixels",
                pixel_threshold,
                scale=1 / np.sqrt(fake_emb.pixels.shape[1]),
            )
    out["under_threshold"] = out["distance"] < out["threshold"]
    return out


def summarise(result: pd.DataFrame) -> pd.DataFrame:
    """Per fold x fake type x method: how many fakes fall under the same-face threshold."""
    summary = (
        result.groupby(["fold", "fake_type", "method"], sort=True)
        .agg(
            n=("image_id", "size"),
            n_under=("under_threshold", "sum"),
            min_distance=("distance", "min"),
            median_distance=("distance", "median"),
        )
        .reset_index()
    )
    summary["share_under"] = summary["n_under"] / summary["n"]
    return summary[["fold", "fake_type", "method", "n", "n_under", "share_under", "min_distance", "median_distance"]]


def sample_fakes(fakes: pd.DataFrame, per_set: int, seed: int) -> pd.DataFrame:
    """A seeded sample of `per_set` fakes per fold x fake type (all when per_set is 0)."""
    if per_set <= 0:
        return fakes.reset_index(drop=True)
    parts = []
    for (fold, fake_type), group in fakes.groupby(["fold", "fake_type"], sort=True):
        pick = rng(seed, "privacy-sample", fold, fake_type).choice(
            len(group), size=min(per_set, len(group)), replace=False
        )
        parts.append(group.iloc[np.sort(pick)])
    return pd.concat(parts, ignore_index=True)


def describe_arrays(images: Sequence[np.ndarray], workers: int, chunk: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """dlib descriptors of in-memory images (`face_descriptors`), over `workers` processes."""
    import multiprocessing

    from syndface.align.descriptors import face_descriptors

    chunks = [[np.asarray(x) for x in images[i : i + chunk]] for i in range(0, len(images), chunk)]
    if workers <= 1 or len(chunks) <= 1:
        results = [face_descriptors(c) for c in chunks]
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            results = pool.map(face_descriptors, chunks)
    if not results:
        return np.zeros((0, 128), np.float32), np.zeros(0, bool)
    return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])


def _no_faces(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors of images dlib is not asked about: every image goes to the pixel embedding."""
    return np.zeros((n, 128), np.float32), np.zeros(n, bool)


def main(argv: list[str], prog: str = "syndface privacy-audit") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--fakes", nargs="+", required=True, help="fake manifest.tsv files (any folds and types)")
    parser.add_argument(
        "--training-sets", nargs="+", required=True, help="results/gan/fold{k}/training_set.tsv of those folds"
    )
    parser.add_argument(
        "--cache", required=True, help="packed cache holding the training images (any resolution; larger suits dlib)"
    )
    add_options_argument(parser, PrivacyOptions)
    parser.add_argument(
        "--fallback", choices=("pixels", "none"), default="pixels", help="embedding where dlib finds no face"
    )
    parser.add_argument(
        "--pixel-threshold", type=float, default=0.05, help="RMS pixel difference (0-1 scale) counted as a copy"
    )
    parser.add_argument("--workers", type=int, default=1, help="processes computing dlib descriptors")
    parser.add_argument("--out", required=True)
    parser.add_argument("--summary", required=True)
    args = parser.parse_args(argv)
    opts = args.options

    from PIL import Image

    from syndface.align.cache import load_cache
    from syndface.align.descriptors import file_descriptors

    fakes = sample_fakes(
        pd.concat([read_tsv(p) for p in args.fakes], ignore_index=True), opts.sample_per_set, opts.seed
    )
    training = pd.concat([read_tsv(p) for p in args.training_sets], ignore_index=True)
    images, index = load_cache(args.cache)
    rows = dict(zip(index["image_id"], index["row"]))
    missing = sorted(set(training["image_id"]) - set(rows))
    if missing:
        raise SystemExit(f"{len(missing)} GAN training image(s) are not in {args.cache}: {', '.join(missing[:10])}")
    log.info(
        "auditing %d fakes against %d training images (%d distinct)",
        len(fakes),
        len(training),
        training["image_id"].nunique(),
    )

    # Each training image is described once, however many folds' training sets hold it.
    ids, row_of = np.unique(training["image_id"].to_numpy(), return_inverse=True)
    train_pixels = [images[rows[i]] for i in ids]
    use_dlib = opts.embedding == "dlib"
    use_pixels = args.fallback == "pixels" or not use_dlib
    descriptors, found = describe_arrays(train_pixels, args.workers) if use_dlib else _no_faces(len(train_pixels))
    train_emb = Embeddings(
        descriptors[row_of],
        found[row_of],
        pixel_embedding(train_pixels, opts.pixel_size)[row_of] if use_pixels else None,
    )
    descriptors, found = (
        file_descriptors(list(fakes["path"]), workers=args.workers) if use_dlib else _no_faces(len(fakes))
    )
    fake_pixels = (
        pixel_embedding([np.asarray(Image.open(p).convert("RGB")) for p in fakes["path"]], opts.pixel_size)
        if use_pixels
        else None
    )
    result = audit(fakes, Embeddings(descriptors, found, fake_pixels), training, train_emb, args.pixel_threshold)

    summary = summarise(result)
    write_tsv(summary, args.summary)
    pixels = f"RMS pixel difference at {opts.pixel_size} px, threshold {args.pixel_threshold}"
    header = (
        f"nearest GAN training image per fake: dlib descriptor distance (same person < {DLIB_THRESHOLD}) or, where dlib "
        f"finds no face, the {args.fallback} fallback ({pixels})"
        if use_dlib
        else f"nearest GAN training image per fake by pixels only ({pixels}); dlib was not used (fakes.privacy.embedding: pixels)"
    )
    write_tsv(result, args.out, header_lines=[header])
    for r in summary.itertuples():
        log.info(
            "fold %s %s (%s): %d/%d under threshold (%.1f%%), min distance %.3f",
            r.fold,
            r.fake_type,
            r.method,
            r.n_under,
            r.n,
            100 * r.share_under,
            r.min_distance,
        )
    return 0
