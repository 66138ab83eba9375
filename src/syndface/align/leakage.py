"""`syndface check-leakage`: the same person in two folds, or in test and train.

Public collections repeat people under different file names, and the paper split per image.
Every aligned image gets dlib's 128-D descriptor (`syndface.align.descriptors`); each pair of
images in different training folds ("cross_fold") or in the test set and the training set
("test_train") closer than `--threshold` (0.6 is dlib's same-person threshold) is listed in
`--out`, closest first.

The header also says how far the check can be trusted on this cohort: how many images dlib's
detector recognised as faces (the others were described from the aligned frame, column
face_a/face_b = "frame"), and, from the subjects the manifest knows, how often pairs of the
same subject and of different subjects fall below the threshold. If different subjects often
do, the descriptors cannot separate these faces and the header and log say so.
"""

from __future__ import annotations

import argparse
from typing import Iterator

import numpy as np
import pandas as pd

from syndface.align.descriptors import file_descriptors
from syndface.align.render import PAPER_ZOOM
from syndface.io import read_tsv, write_tsv
from syndface.log import get_logger

log = get_logger("syndface.align")

TEST_GROUP = -1  # group code of test images; training images carry their fold (0..K-1)
PAIR_COLUMNS = (
    "image_id_a", "image_id_b", "kind", "distance", "group_a", "group_b",
    "subject_id_a", "subject_id_b", "disease_a", "disease_b", "face_a", "face_b",
)  # fmt: skip
# Above this share of different-subject pairs under the threshold, a "match" means little.
MAX_FALSE_MATCH_SHARE = 0.05
HISTOGRAM_STEP = 0.005  # distance resolution of the reported medians


def distance_blocks(x: np.ndarray, block: int = 1024) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (start, D) with D[r, c] = |x[start + r] - x[start + c]| for the rows of each block
    against every later-or-equal row (columns start..N-1), so each pair i < j is seen once."""
    x = np.asarray(x, dtype=np.float32)
    sq = np.einsum("ij,ij->i", x, x)
    for start in range(0, len(x), block):
        stop = min(start + block, len(x))
        d2 = sq[start:stop, None] + sq[None, start:] - 2.0 * (x[start:stop] @ x[start:].T)
        yield start, np.sqrt(np.maximum(d2, 0.0))


def leakage_pairs(x: np.ndarray, groups: np.ndarray, threshold: float, block: int = 1024) -> pd.DataFrame:
    """Pairs (i, j), i < j, closer than `threshold`, in different folds or test vs train.

    `groups[i]` is image i's fold, or TEST_GROUP for a test image. Returns columns i, j, distance.
    """
    groups = np.asarray(groups)
    found_i, found_j = [], []
    for start, d in distance_blocks(x, block):
        rows = np.arange(start, start + len(d))[:, None]
        cols = np.arange(start, len(x))[None, :]
        g_row, g_col = groups[rows], groups[cols]
        leaking = (d < threshold) & (cols > rows) & (g_row != g_col) & ~((g_row == TEST_GROUP) & (g_col == TEST_GROUP))
        r, c = np.nonzero(leaking)
        found_i.append(r + start)
        found_j.append(c + start)
    i = np.concatenate(found_i) if found_i else np.array([], dtype=int)
    j = np.concatenate(found_j) if found_j else np.array([], dtype=int)
    x64 = np.asarray(x, dtype=np.float64)
    distance = np.linalg.norm(x64[i] - x64[j], axis=1) if len(i) else np.array([], dtype=float)
    return pd.DataFrame({"i": i, "j": j, "distance": distance}).sort_values("distance", kind="stable", ignore_index=True)


def subject_separability(x: np.ndarray, subjects: np.ndarray, threshold: float, block: int = 1024) -> dict[str, dict[str, float]]:
    """For pairs of the same subject and of different subjects: count, median distance, share < threshold."""
    subjects = pd.factorize(np.asarray(subjects))[0]
    n_bins = int(np.ceil(4.0 / HISTOGRAM_STEP))  # distances of unit-scale descriptors stay far below 4
    counts = {"same": np.zeros(n_bins, np.int64), "different": np.zeros(n_bins, np.int64)}
    below = {"same": 0, "different": 0}
    for start, d in distance_blocks(x, block):
        rows = np.arange(start, start + len(d))[:, None]
        cols = np.arange(start, len(x))[None, :]
        later = cols > rows
        same = subjects[rows] == subjects[cols]
        for name, mask in (("same", later & same), ("different", later & ~same)):
            values = d[mask]
            below[name] += int((values < threshold).sum())
            counts[name] += np.bincount(np.minimum(values / HISTOGRAM_STEP, n_bins - 1).astype(int), minlength=n_bins)
    stats = {}
    for name, hist in counts.items():
        n = int(hist.sum())
        median = float((np.searchsorted(np.cumsum(hist), (n + 1) / 2) + 0.5) * HISTOGRAM_STEP) if n else float("nan")
        stats[name] = {"n": n, "median": median, "share_below": below[name] / n if n else float("nan")}
    return stats


def leakage_table(images: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """The report rows of `pairs` (positions into `images`); a test image is always side a."""
    i, j = pairs["i"].to_numpy(), pairs["j"].to_numpy()
    swap = images["group"].to_numpy()[j] == TEST_GROUP
    i, j = np.where(swap, j, i), np.where(swap, i, j)
    a, b = images.iloc[i].reset_index(drop=True), images.iloc[j].reset_index(drop=True)
    table = pd.DataFrame({"image_id_a": a["image_id"], "image_id_b": b["image_id"]})
    table["kind"] = np.where(a["group"] == TEST_GROUP, "test_train", "cross_fold")
    table["distance"] = pairs["distance"].round(4)
    for side, frame in (("a", a), ("b", b)):
        table[f"group_{side}"] = np.where(frame["group"] == TEST_GROUP, "test", "fold" + frame["group"].astype(str))
        table[f"subject_id_{side}"] = frame["subject_id"]
        table[f"disease_{side}"] = frame["disease"]
        table[f"face_{side}"] = np.where(frame["found"], "detected", "frame")
    return table[list(PAIR_COLUMNS)]


def checked_images(report: pd.DataFrame, manifest: pd.DataFrame, folds: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The aligned test images and fold-assigned train images (with group), and counts of those left out."""
    ok = report.loc[report["status"] == "ok", ["image_id", "aligned_path"]]
    images = manifest[["image_id", "subject_id", "disease", "split"]].merge(ok, on="image_id", how="inner")
    images = images.merge(folds[["image_id", "fold"]], on="image_id", how="left")
    no_fold = (images["split"] == "train") & images["fold"].isna()
    images = images[~no_fold].copy()
    images["group"] = np.where(images["split"] == "test", TEST_GROUP, images["fold"].fillna(TEST_GROUP)).astype(int)
    left_out = {"failed_alignment": int((report["status"] != "ok").sum()), "train_without_fold": int(no_fold.sum())}
    return images.reset_index(drop=True), left_out


def header_lines(images: pd.DataFrame, left_out: dict[str, int], table: pd.DataFrame, separability: dict, threshold: float, zoom: float) -> list[str]:
    n, n_found = len(images), int(images["found"].sum())
    kinds = table["kind"].value_counts()
    lines = [
        f"identity leakage: dlib 128-D descriptors of the aligned images (zoom {zoom:.6g}), pairs closer than {threshold} (dlib's same-person threshold is 0.6)",
        f"images checked: {n}; dlib's detector found the face in {n_found}, not in {n - n_found} (those are described from the aligned frame box: face_* = frame)",
        f"not checked: {left_out['failed_alignment']} failed alignment, {left_out['train_without_fold']} train image(s) without a fold",
        f"pairs below threshold: {kinds.get('cross_fold', 0)} across training folds, {kinds.get('test_train', 0)} between test and train",
    ]
    same, diff = separability["same"], separability["different"]
    if same["n"]:
        lines.append(f"same-subject pairs (manifest): {same['n']}, median distance {same['median']:.3f}, {same['share_below']:.1%} below threshold")
    else:
        lines.append("same-subject pairs (manifest): none (every subject has one image), so how often repeats are found is unknown")
    if diff["n"]:
        lines.append(f"different-subject pairs: {diff['n']}, median distance {diff['median']:.3f}, {diff['share_below']:.1%} below threshold")
    lines.append(separability_verdict(separability, n, n_found))
    return lines


def separability_verdict(separability: dict, n: int, n_found: int) -> str:
    diff = separability["different"]
    prefix = "dlib's detector recognised none of these images as a face; " if n and n_found == 0 else ""
    if not diff["n"]:
        return f"{prefix}too few images to judge whether the descriptors separate subjects"
    if diff["share_below"] > MAX_FALSE_MATCH_SHARE:
        return (
            f"WARNING: {prefix}dlib's descriptors do NOT separate this cohort's subjects ({diff['share_below']:.1%} of "
            "different-subject pairs fall below the threshold): a listed pair is not evidence of a repeated person here"
        )
    warning = "WARNING: " if prefix else ""
    return f"{warning}{prefix}descriptors separate subjects: {diff['share_below']:.1%} of different-subject pairs fall below the threshold"


def main(argv: list[str], prog: str = "syndface check-leakage") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", required=True, help="results/aligned/report.tsv")
    parser.add_argument("--manifest", required=True, help="results/cohort/manifest.tsv")
    parser.add_argument("--folds", required=True, help="results/folds/folds.tsv")
    parser.add_argument("--threshold", type=float, default=0.6, help="descriptor distance below which two images count as one person (dlib: 0.6)")
    parser.add_argument("--zoom", type=float, default=PAPER_ZOOM, help="the zoom the images were aligned with (locates the face where dlib's detector does not)")
    parser.add_argument("--upsample", type=int, default=1, help="dlib detector upsampling")
    parser.add_argument("--workers", type=int, default=1, help="processes computing descriptors (~0.15 s per image each)")
    parser.add_argument("--out", required=True, help="results/folds/leakage.tsv")
    parser.add_argument("--fail", action="store_true", help="exit with an error if any pair is found")
    args = parser.parse_args(argv)

    images, left_out = checked_images(read_tsv(args.report), read_tsv(args.manifest), read_tsv(args.folds))
    log.info("describing %d aligned images with %d worker(s)", len(images), args.workers)
    x, found = file_descriptors(list(images["aligned_path"]), zoom=args.zoom, upsample=args.upsample, workers=args.workers)
    images["found"] = found
    table = leakage_table(images, leakage_pairs(x, images["group"].to_numpy(), args.threshold))
    separability = subject_separability(x, images["subject_id"].to_numpy(), args.threshold)
    header = header_lines(images, left_out, table, separability, args.threshold, args.zoom)
    write_tsv(table, args.out, header_lines=header)
    for line in header:
        (log.warning if line.startswith("WARNING") else log.info)("%s", line)
    if len(table):
        log.warning("%d pair(s) below %.2f; closest: %s", len(table), args.threshold, "; ".join(f"{a}~{b} ({d:.3f}, {k})" for a, b, d, k in table[["image_id_a", "image_id_b", "distance", "kind"]].head(10).itertuples(index=False)))
        if args.fail:
            log.error("identity leakage found and --fail is set: remove or regroup the listed images (same subject_id keeps them in one fold)")
            return 1
    return 0
