"""The packed training cache of one resolution: `images.npy` + `index.tsv` in one directory.

`images.npy` is uint8 N x size x size x 3 (RGB) of every successfully aligned image, in
manifest order; row i of `index.tsv` (row, image_id, disease, age_group, source, subject_id,
split) describes image i. Training reads it memory-mapped, so no epoch decodes or resizes a
PNG. `syndface build-cache` writes it through a memory map into a temporary file that is
renamed into place, so 62k x 448^2 images never sit in RAM and a killed job leaves nothing.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from syndface.images import read_resized
from syndface.io import atomic_path, read_tsv, write_tsv
from syndface.log import get_logger, progress

log = get_logger("syndface.align")

INDEX_COLUMNS = ("row", "image_id", "disease", "age_group", "source", "subject_id", "split")
IMAGES_FILE, INDEX_FILE = "images.npy", "index.tsv"


def load_cache(cache_dir: str | os.PathLike) -> tuple[np.ndarray, pd.DataFrame]:
    """(images memory-mapped read-only, index table) of a cache directory."""
    cache_dir = Path(cache_dir)
    images = np.load(cache_dir / IMAGES_FILE, mmap_mode="r")
    index = read_tsv(cache_dir / INDEX_FILE)
    if len(index) != len(images) or not np.array_equal(index["row"].to_numpy(), np.arange(len(images))):
        raise ValueError(
            f"{cache_dir}: index.tsv ({len(index)} rows) does not match images.npy ({len(images)} images); rebuild it with `syndface build-cache`"
        )
    return images, index


def cache_index(report: pd.DataFrame, manifest: pd.DataFrame) -> pd.DataFrame:
    """Index of the cache: the successfully aligned images in manifest order, with their labels and paths."""
    ok = report.loc[report["status"] == "ok", ["image_id", "aligned_path"]]
    index = manifest.merge(ok, on="image_id", how="inner", validate="one_to_one")
    unknown = sorted(set(ok["image_id"]) - set(manifest["image_id"]))
    if unknown:
        raise ValueError(
            f"{len(unknown)} aligned image(s) are not in the manifest ({', '.join(unknown[:10])}): the report belongs to another manifest"
        )
    index.insert(0, "row", np.arange(len(index)))
    return index


def write_cache(index: pd.DataFrame, size: int, out_dir: str | os.PathLike) -> None:
    """Fill images.npy row by row through a memory map, then write index.tsv."""
    out_dir = Path(out_dir)
    with atomic_path(out_dir / IMAGES_FILE) as tmp:
        images = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(index), size, size, 3))
        for row, path in progress(zip(index["row"], index["aligned_path"]), len(index), "cached", log):
            images[row] = read_resized(path, size)
        images.flush()
        del images
    write_tsv(index[list(INDEX_COLUMNS)], out_dir / INDEX_FILE)


def main(argv: list[str], prog: str = "syndface build-cache") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--report", required=True, help="results/aligned/report.tsv")
    parser.add_argument("--manifest", required=True, help="results/cohort/manifest.tsv")
    parser.add_argument("--size", type=int, required=True, help="side of the cached images in pixels")
    parser.add_argument("--out-dir", required=True, help="cache directory (results/cache/<size>px)")
    args = parser.parse_args(argv)

    report = read_tsv(args.report)
    index = cache_index(report, read_tsv(args.manifest))
    if index.empty:
        raise SystemExit(f"{args.report} lists no successfully aligned image: nothing to cache")
    with Image.open(index["aligned_path"].iloc[0]) as first:
        if first.width < args.size:
            log.warning(
                "cache size %d px is larger than the aligned images (%d px): they are upsampled; align at a larger size instead",
                args.size,
                first.width,
            )
    n_failed = int((report["status"] != "ok").sum())
    log.info(
        "caching %d aligned images at %d px (%d failed alignment and are left out)", len(index), args.size, n_failed
    )
    write_cache(index, args.size, args.out_dir)
    return 0
