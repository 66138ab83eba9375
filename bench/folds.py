"""Folds at the paper's size: time and balance of syndface.folds.assign_folds (scikit-learn's StratifiedGroupKFold).

A synthetic train table the size of the paper's (62,088 FairFace singletons with the paper's
age mix + 1,894 cohort images of subjects with 1-5 images at neighbouring ages: ~64k images,
~63k groups), strata = disease x age group. Prints the CPU time (best of --repeats) and the
balance: per stratum the spread (max - min) of its counts over the folds, and the fold sizes.
No subject may be in two folds (checked). The numbers that chose StratifiedGroupKFold over the
earlier greedy placement are in syndface/folds.py's docstring.

    python bench/folds.py [--folds 5] [--seed 1] [--repeats 3] [--fairface 62088] [--cohort 1894]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from syndface.folds import assign_folds
from syndface.taxonomy import AGE_GROUPS, DISEASES

# FairFace train images per age group in the paper's fold-0 training folds (notes/paper-code-facts.md s1)
FAIRFACE_AGE_SHARE = np.array([557, 5496, 3242, 19201, 12938], float)  # infant, child, adolescent, young, older


def synthetic_table(seed: int, n_fairface: int = 62_088, n_cohort: int = 1_894) -> tuple[np.ndarray, np.ndarray]:
    """(stratum, group) per image."""
    gen = np.random.default_rng(seed)
    unaffected = DISEASES.index("unaffected") * len(AGE_GROUPS)
    strata = [unaffected + gen.choice(len(AGE_GROUPS), n_fairface, p=FAIRFACE_AGE_SHARE / FAIRFACE_AGE_SHARE.sum())]
    groups = [np.arange(n_fairface)]
    subject, images = n_fairface, 0
    while images < n_cohort:
        disease = gen.choice(3, p=[0.3, 0.3, 0.4])  # WS, 22q, control
        first, count = gen.integers(len(AGE_GROUPS)), min(gen.integers(1, 6), n_cohort - images)
        ages = np.minimum(first + np.arange(count) // 2, len(AGE_GROUPS) - 1)
        strata.append(disease * len(AGE_GROUPS) + ages)
        groups.append(np.full(count, subject))
        subject, images = subject + 1, images + count
    return np.concatenate(strata), np.concatenate(groups)


def balance(strata: np.ndarray, groups: np.ndarray, folds: np.ndarray, n_folds: int) -> dict[str, float]:
    split_groups = np.unique(np.stack([groups, folds]), axis=1)
    assert len(np.unique(split_groups[0])) == split_groups.shape[1], "a group is in two folds"
    counts = np.zeros((int(strata.max()) + 1, n_folds), int)
    np.add.at(counts, (strata, folds), 1)
    counts = counts[counts.sum(1) > 0]
    spread = counts.max(1) - counts.min(1)
    relative = spread / (counts.sum(1) / n_folds)
    sizes = np.bincount(folds, minlength=n_folds)
    return {
        "max stratum spread (images)": int(spread.max()),
        "mean stratum spread (images)": float(spread.mean()),
        "max spread / stratum's mean per fold": float(relative.max()),
        "fold size spread (images)": int(sizes.max() - sizes.min()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fairface", type=int, default=62_088, help="single-image unaffected groups")
    parser.add_argument("--cohort", type=int, default=1_894, help="cohort images (subjects of 1-5 images)")
    args = parser.parse_args()
    strata, groups = synthetic_table(args.seed, args.fairface, args.cohort)
    print(f"{len(strata)} images, {len(np.unique(groups))} groups, {len(np.unique(strata))} strata, {args.folds} folds")
    best = float("inf")
    for _ in range(args.repeats):
        start = time.process_time()
        folds = assign_folds(strata, groups, args.folds, args.seed)
        best = min(best, time.process_time() - start)
    stats = ", ".join(f"{k} {v:.3g}" for k, v in balance(strata, groups, folds, args.folds).items())
    print(f"assign_folds: {best:.2f} s CPU; {stats}")


if __name__ == "__main__":
    main()
