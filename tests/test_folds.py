import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from syndface import folds
from syndface.taxonomy import AGE_GROUPS, DISEASES


def _manifest(n_subjects=400, seed=0):
    """Subjects with 1-3 images at neighbouring ages, unbalanced classes, plus test subjects."""
    gen = np.random.default_rng(seed)
    rows = []
    for s in range(n_subjects):
        disease = gen.choice(DISEASES, p=[0.15, 0.15, 0.2, 0.5])
        first = gen.integers(0, 5)
        split = "test" if s % 10 == 0 else "train"
        for k in range(gen.integers(1, 4)):
            age = AGE_GROUPS[min(4, first + k)]
            rows.append(
                dict(
                    image_id=f"s{s}_{k}",
                    path="x",
                    disease=disease,
                    age_group=age,
                    source="cohort",
                    subject_id=f"s{s}",
                    split=split,
                )
            )
    return pd.DataFrame(rows)


def test_no_subject_in_two_folds_and_only_train_images():
    manifest = _manifest()
    table = folds.make_folds(manifest, 5, seed=7)
    assert set(table["image_id"]) == set(manifest.loc[manifest["split"] == "train", "image_id"])
    assert table.groupby("subject_id")["fold"].nunique().max() == 1
    assert sorted(table["fold"].unique()) == [0, 1, 2, 3, 4]


def test_strata_are_balanced_across_folds():
    table = folds.make_folds(_manifest(800), 5, seed=7)
    per_stratum = table.groupby(["disease", "age_group", "fold"]).size().unstack(fill_value=0)
    # Each subject contributes at most 3 images, so a stratum can be off by a few images, never more.
    spread = per_stratum.max(axis=1) - per_stratum.min(axis=1)
    assert spread.max() <= 4
    sizes = table["fold"].value_counts()
    assert sizes.max() - sizes.min() <= 0.1 * sizes.mean()


def test_singletons_are_exactly_balanced():
    n = 1003
    strata = np.repeat(np.arange(4), [500, 300, 200, 3])
    table = folds.assign_folds(strata, np.arange(n), 5, seed=1)
    counts = pd.crosstab(strata, table)
    assert ((counts.max(axis=1) - counts.min(axis=1)) <= 1).all()


def test_folds_are_deterministic_per_seed():
    manifest = _manifest()
    a = folds.make_folds(manifest, 5, seed=7)
    b = folds.make_folds(manifest, 5, seed=7)
    c = folds.make_folds(manifest, 5, seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert not a["fold"].equals(c["fold"])


def test_per_image_folds_reproduce_the_paper_code_option():
    manifest = _manifest()
    table = folds.make_folds(manifest, 5, seed=7, group_by="image_id")
    assert table.groupby("subject_id")["fold"].nunique().max() > 1


def test_test_subject_in_train_is_refused():
    manifest = _manifest()
    leak = manifest[manifest["split"] == "train"].iloc[[0]].assign(image_id="leak", split="test")
    with pytest.raises(ValueError, match=f"subject\\(s\\) in both test and train: {leak['subject_id'].iloc[0]}"):
        folds.make_folds(pd.concat([manifest, leak]), 5, seed=1)


def test_summary_counts_every_image():
    table = folds.make_folds(_manifest(), 5, seed=7)
    summary = folds.fold_summary(table)
    assert summary["total"].sum() == len(table)
    assert [c for c in summary.columns if c.startswith("fold")] == [f"fold{k}" for k in range(5)]


def test_fewer_subjects_than_folds_is_refused_with_the_key_to_change():
    with pytest.raises(ValueError, match="3 subject\\(s\\) cannot fill 5 folds; lower folds.n_folds"):
        folds.assign_folds(np.zeros(6, int), np.repeat([1, 2, 3], 2), 5, seed=1)


def test_the_paper_size_benchmark_runs_and_reports_balance():
    bench = Path(__file__).resolve().parents[1] / "bench" / "folds.py"
    args = [sys.executable, str(bench), "--fairface", "600", "--cohort", "200", "--repeats", "1"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout
    assert re.search(r"assign_folds: \d+\.\d+ s CPU; max stratum spread \(images\) \d+", out), out
