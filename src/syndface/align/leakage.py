"""`syndface check-leakage`: the same person in two folds, or in test and train.

Public collections repeat people under different file names, and the paper split per image.
Every aligned image gets dlib's 128-D descriptor (`syndface.align.descriptors`); each pair of
images in different training folds ("cross_fold") or in the test set and the training set
("test_train") closer than `leakage.threshold` (0.6 is dlib's same-person threshold) is counted, and
the closest `leakage.max_pairs` of them are listed in `--out`, closest first.

The header also says how far the check can be trusted on this cohort: how many images dlib's
detector recognised as faces (the others were described from the aligned frame, column
face_a/face_b = "frame"), and, from the subjects the manifest knows, how often pairs of the
same subject and of different subjects fall below the threshold. If different subjects often
do, the descriptors cannot separate these faces and the header and log say so.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from syndface.align.descriptors import file_descriptors
from syndface.align.options import LeakageOptions
from syndface.io import read_tsv, write_tsv
from syndface.log import get_logger
from syndface.options import add_options_argument

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


@dataclass
class LeakagePairs:
    """The pairs found by `leakage_pairs`: `pairs` (columns i, j, distance; closest first), at most
    `keep` of them, and `counts`, the number of every pair below the threshold by kind."""

    pairs: pd.DataFrame
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _closest(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], keep: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (i, j, distance) parts joined, cut to the `keep` smallest distances (all if None)."""
    if not parts:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64), np.array([], dtype=np.float32)
    i, j, d = (np.concatenate(column) for column in zip(*parts))
    if keep is not None and len(d) > keep:
        top = np.argpartition(d, keep)[:keep]  # the keep smallest sit before position keep
        i, j, d = i[top], j[top], d[top]
    return i, j, d


def leakage_pairs(
    x: np.ndarray, groups: np.ndarray, threshold: float, block: int = 1024, keep: int | None = None
) -> LeakagePairs:
    """Pairs (i, j), i < j, closer than `threshold`, in different folds or test vs train.

    `groups[i]` is image i's fold, or TEST_GROUP for a test image. Every pair is counted; the
    `keep` closest (all if None) are kept, so memory stays bounded however many pairs a large
    cohort yields (dlib's false matches grow with the square of the number of images).
    """
    groups = np.asarray(groups)
    counts = {"cross_fold": 0, "test_train": 0}
    held: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (i, j, float32 distance) per block
    for start, d in distance_blocks(x, block):
        rows = np.arange(start, start + len(d))[:, None]
        cols = np.arange(start, len(x))[None, :]
        g_row, g_col = groups[rows], groups[cols]
        row_test, col_test = g_row == TEST_GROUP, g_col == TEST_GROUP
        leaking = (d < threshold) & (cols > rows) & (g_row != g_col) & ~(row_test & col_test)
        r, c = np.nonzero(leaking)
        n_test_train = int(np.count_nonzero(row_test[r, 0] | col_test[0, c]))
        counts["test_train"] += n_test_train
        counts["cross_fold"] += len(r) - n_test_train
        held.append((r + start, c + start, d[r, c]))
        if keep is not None:  # trim as we go: what is held never exceeds keep plus one block's pairs
            held = [_closest(held, keep)]
    kept_i, kept_j, _ = _closest(held, keep)
    x64 = np.asarray(x, dtype=np.float64)
    distance = np.linalg.norm(x64[kept_i] - x64[kept_j], axis=1) if len(kept_i) else np.array([], dtype=float)
    pairs = pd.DataFrame({"i": kept_i, "j": kept_j, "distance": distance})
    return LeakagePairs(pairs.sort_values(["distance", "i", "j"], kind="stable", ignore_index=True), counts)


def subject_separability(
    x: np.ndarray, subjects: np.ndarray, threshold: float, block: int = 1024
) -> dict[str, dict[str, float]]:
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


def checked_images(
    report: pd.DataFrame, manifest: pd.DataFrame, folds: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The aligned test images and fold-assigned train images (with group), and counts of those left out."""
    ok = report.loc[report["status"] == "ok", ["image_id", "aligned_path"]]
    images = manifest[["image_id", "subject_id", "disease", "split"]].merge(ok, on="image_id", how="inner")
    images = images.merge(folds[["image_id", "fold"]], on="image_id", how="left")
    no_fold = (images["split"] == "train") & images["fold"].isna()
    images = images[~no_fold].copy()
    images["group"] = np.where(images["split"] == "test", TEST_GROUP, images["fold"].fillna(TEST_GROUP)).astype(int)
    left_out = {"failed_alignment": int((report["status"] != "ok").sum()), "train_without_fold": int(no_fold.sum())}
    return images.reset_index(drop=True), left_out


def header_lines(
    images: pd.DataFrame,
    left_out: dict[str, int],
    found: LeakagePairs,
    separability: dict,
    threshold: float,
    zoom: float,
) -> list[str]:
    n, n_found = len(images), int(images["found"].sum())
    kinds = found.counts
    lines = [
        f"identity leakage: dlib 128-D descriptors of the aligned images (zoom {zoom:.6g}), pairs closer than {threshold} (dlib's same-person threshold is 0.6)",
        f"images checked: {n}; dlib's detector found the face in {n_found}, not in {n - n_found} (those are described from the aligned frame box: face_* = frame)",
        f"not checked: {left_out['failed_alignment']} failed alignment, {left_out['train_without_fold']} train image(s) without a fold",
        f"pairs below threshold: {kinds['cross_fold']} across training folds, {kinds['test_train']} between test and train",
    ]
    if len(found.pairs) < found.total:
        lines.append(f"listed below: the {len(found.pairs)} closest of the {found.total} pairs (leakage.max_pairs)")
    same, diff = separability["same"], separability["different"]
    if same["n"]:
        lines.append(
            f"same-subject pairs (manifest): {same['n']}, median distance {same['median']:.3f}, {same['share_below']:.1%} below threshold"
        )
    else:
        lines.append(
            "same-subject pairs (manifest): none (every subject has one image), so how often repeats are found is unknown"
        )
    if diff["n"]:
        lines.append(
            f"different-subject pairs: {diff['n']}, median distance {diff['median']:.3f}, {diff['share_below']:.1%} below threshold"
        )
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
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--report", required=True, help="results/aligned/report.tsv")
    parser.add_argument("--manifest", required=True, help="results/cohort/manifest.tsv")
    parser.add_argument("--folds", required=True, help="results/folds/folds.tsv")
    add_options_argument(parser, LeakageOptions)
    parser.add_argument(
        "--workers", type=int, default=1, help="processes computing descriptors (~0.15 s per image each)"
    )
    parser.add_argument("--out", required=True, help="results/folds/leakage.tsv")
    args = parser.parse_args(argv)
    opts = args.options

    images, left_out = checked_images(read_tsv(args.report), read_tsv(args.manifest), read_tsv(args.folds))
    log.info("describing %d aligned images with %d worker(s)", len(images), args.workers)
    x, found = file_descriptors(
        list(images["aligned_path"]), zoom=opts.zoom, upsample=opts.upsample, workers=args.workers
    )
    images["found"] = found
    found_pairs = leakage_pairs(x, images["group"].to_numpy(), opts.threshold, keep=opts.max_pairs or None)
    table = leakage_table(images, found_pairs.pairs)
    separability = subject_separability(x, images["subject_id"].to_numpy(), opts.threshold)
    header = header_lines(images, left_out, found_pairs, separability, opts.threshold, opts.zoom)
    write_tsv(table, args.out, header_lines=header)
    for line in header:
        (log.warning if line.startswith("WARNING") else log.info)("%s", line)
    if found_pairs.total:
        log.warning(
            "%d pair(s) below %.2f; closest: %s",
            found_pairs.total,
            opts.threshold,
            "; ".join(
                f"{a}~{b} ({d:.3f}, {k})"
                for a, b, d, k in table[["image_id_a", "image_id_b", "distance", "kind"]]
                .head(10)
                .itertuples(index=False)
            ),
        )
        if opts.fail:
            log.error(
                "identity leakage found and leakage.fail is set: remove or regroup the listed images (same subject_id keeps them in one fold)"
            )
            return 1
    return 0
