"""`syndface make-folds`: k-fold cross-validation over the train split, grouped and stratified.

No subject is in two folds (all images of a subject share one fold), and every disease x age
group stratum is spread as evenly over the folds as the groups allow. Groups are placed
greedily, largest first in a seeded random order, each into the fold where its strata are
currently least filled; single-image groups (most of FairFace) are then water-filled per
stratum in one vectorised pass. `folds.group_by: image_id` reproduces the paper code's per-image
folds.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import pandas as pd

from syndface.io import read_tsv, write_tsv
from syndface.log import get_logger
from syndface.options import Options, add_options_argument, setting
from syndface.seeding import rng
from syndface.taxonomy import AGE_GROUPS, DISEASES

log = get_logger("syndface.folds")

FOLD_COLUMNS = ("image_id", "subject_id", "disease", "age_group", "source", "fold")


@dataclass(frozen=True)
class FoldsOptions(Options):
    n_folds: int = setting("folds.n_folds")
    group_by: str = setting("folds.group_by")
    seed: int = setting("seed")


def assign_folds(strata: np.ndarray, groups: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold index per item, given its stratum code and group label."""
    gen = rng(seed, "folds")
    n_strata = int(strata.max()) + 1 if len(strata) else 0
    group_codes, group_of = np.unique(groups, return_inverse=True)
    sizes = np.bincount(group_of, minlength=len(group_codes))
    counts = np.zeros((n_folds, n_strata))
    folds = np.full(len(strata), -1)

    # Multi-image groups: greedy, largest first, random order among equal sizes.
    multi = np.flatnonzero(sizes > 1)
    order = multi[np.lexsort((gen.random(len(multi)), -sizes[multi]))]
    by_group = np.argsort(group_of, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)])
    totals = np.bincount(strata, minlength=n_strata).astype(float)
    for g in order:
        idx = by_group[starts[g] : starts[g + 1]]
        need = np.bincount(strata[idx], minlength=n_strata)
        cols = np.flatnonzero(need)
        cost = (counts[:, cols] + need[cols]) @ (1.0 / totals[cols]) + counts.sum(1) / len(strata)
        fold = int(np.argmin(cost + 1e-9 * gen.random(n_folds)))
        folds[idx] = fold
        counts[fold] += need

    # Singletons: per stratum, top up the least-filled folds first (water-filling), in random order.
    single = np.flatnonzero(sizes[group_of] == 1)
    single = single[gen.permutation(len(single))]
    for s in range(n_strata):
        idx = single[strata[single] == s]
        if not len(idx):
            continue
        level = counts[:, s].tolist()
        assigned = []
        for r in gen.random(len(idx)).tolist():
            lowest = min(level)
            low = [k for k, v in enumerate(level) if v == lowest]
            fold = low[int(r * len(low))]
            assigned.append(fold)
            level[fold] += 1
        folds[idx] = assigned
        counts[:, s] = level
    return folds


def make_folds(manifest: pd.DataFrame, n_folds: int, seed: int, group_by: str = "subject_id") -> pd.DataFrame:
    train = manifest[manifest["split"] == "train"].reset_index(drop=True)
    test_subjects = set(manifest.loc[manifest["split"] == "test", "subject_id"])
    leaked = sorted(test_subjects & set(train["subject_id"]))
    if leaked:
        raise ValueError(
            f"subject(s) in both test and train: {', '.join(leaked[:10])}; fix the manifest's split column"
        )
    if train.empty:
        raise ValueError("the manifest has no train images")
    strata = (
        train["disease"].map(DISEASES.index) * len(AGE_GROUPS) + train["age_group"].map(AGE_GROUPS.index)
    ).to_numpy()
    train["fold"] = assign_folds(strata, train[group_by].to_numpy(), n_folds, seed)
    return train[list(FOLD_COLUMNS)]


def fold_summary(folds: pd.DataFrame) -> pd.DataFrame:
    """Counts per disease x age group (rows) and fold (columns)."""
    table = folds.pivot_table(
        index=["disease", "age_group"], columns="fold", values="image_id", aggfunc="count", fill_value=0
    )
    table.columns = [f"fold{k}" for k in table.columns]
    order = pd.MultiIndex.from_product([DISEASES, AGE_GROUPS], names=["disease", "age_group"])
    table = table.reindex(order, fill_value=0)
    table = table[table.sum(axis=1) > 0]
    table["total"] = table.sum(axis=1)
    return table.reset_index()


def main(argv: list[str], prog: str = "syndface make-folds") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True)
    add_options_argument(parser, FoldsOptions)
    parser.add_argument("--out", required=True)
    parser.add_argument("--summary", required=True)
    args = parser.parse_args(argv)

    opts = args.options
    folds = make_folds(read_tsv(args.manifest), opts.n_folds, opts.seed, opts.group_by)
    summary = fold_summary(folds)
    write_tsv(summary, args.summary)
    write_tsv(folds, args.out)
    log.info(
        "%d train images in %d folds: %s",
        len(folds),
        opts.n_folds,
        ", ".join(map(str, np.bincount(folds["fold"], minlength=opts.n_folds))),
    )
    return 0
