"""Test-set accounting: how many test images each number stands on, and which ones are missing.

A test image that fails alignment never reaches the cache, so it drops out of the predictions and
of every accuracy's denominator. Here the manifest's test split is the reference: per class (and
per disease x age group, and per clinician survey) the number of test images in the manifest
(`n_test`), how many were evaluated (`n`, the predictions' rows) and how many were excluded
(`n_excluded`), and one row per excluded image with the reason (from results/aligned/failed.tsv
when the image failed alignment there).
"""

from __future__ import annotations

import pandas as pd

from syndface.taxonomy import AGE_GROUPS, DISEASES, SURVEYS

EXCLUDED_COLUMNS = ("image_id", "disease", "age_group", "source", "reason")
NOT_IN_CACHE = "not in the predictions: absent from the packed cache (no alignment report says why)"


def test_images(manifest: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """The manifest's test images with an `evaluated` flag. Predictions of an image that is not a
    test image of this manifest mean the two files belong to different runs: ValueError."""
    test = manifest.loc[manifest["split"] == "test", ["image_id", "disease", "age_group", "source"]]
    foreign = sorted(set(predictions["image_id"]) - set(test["image_id"]))
    if foreign:
        raise ValueError(
            f"{len(foreign)} predicted image(s) are not test images of the manifest ({', '.join(foreign[:10])}): "
            "the predictions and the manifest come from different runs"
        )
    return test.assign(evaluated=test["image_id"].isin(set(predictions["image_id"]))).reset_index(drop=True)


def excluded_images(tests: pd.DataFrame, failed: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per test image that was not evaluated, with the reason (alignment's, when known)."""
    missing = tests.loc[~tests["evaluated"], ["image_id", "disease", "age_group", "source"]]
    reasons = {} if failed is None else dict(zip(failed["image_id"], failed["reason"]))
    reason = [f"alignment failed: {reasons[i]}" if i in reasons else NOT_IN_CACHE for i in missing["image_id"]]
    return missing.assign(reason=reason)[list(EXCLUDED_COLUMNS)].reset_index(drop=True)


def _counts(tests: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    grouped = tests.groupby(keys)["evaluated"].agg(n_test="size", n="sum").reset_index()
    grouped["n_excluded"] = grouped["n_test"] - grouped["n"]
    return grouped


def class_counts(tests: pd.DataFrame, total_row: str) -> pd.DataFrame:
    """class, n_test, n, n_excluded for every disease (zeros where it has no test image) and a total row."""
    counts = _counts(tests, ["disease"]).set_index("disease").reindex(list(DISEASES), fill_value=0)
    counts.loc[total_row] = counts.sum()
    return counts.rename_axis("class").reset_index().astype({"n_test": int, "n": int, "n_excluded": int})


def group_counts(tests: pd.DataFrame) -> pd.DataFrame:
    """disease, age_group, n_test, n, n_excluded for every disease x age group with a test image."""
    counts = _counts(tests, ["disease", "age_group"])
    order = {name: i for i, name in enumerate([*DISEASES, *AGE_GROUPS])}
    return counts.sort_values(["disease", "age_group"], key=lambda s: s.map(order)).reset_index(drop=True)


def survey_counts(tests: pd.DataFrame) -> pd.DataFrame:
    """survey, disease, age_group (and "all"), n_test, n, n_excluded over the surveys' cohort test images."""
    cohort = tests[tests["source"] == "cohort"]
    parts = []
    for survey, pair in SURVEYS.items():
        images = cohort[cohort["disease"].isin(pair)]
        by_age = _counts(images, ["disease", "age_group"])
        overall = _counts(images, ["disease"]).assign(age_group="all")
        parts.append(pd.concat([by_age, overall], ignore_index=True).assign(survey=survey))
    out = pd.concat(parts, ignore_index=True)
    return out[["survey", "disease", "age_group", "n_test", "n", "n_excluded"]]


def with_test_counts(table: pd.DataFrame, counts: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """`table` with `n_test` and `n_excluded` next to its `n`; rows for groups whose every test image
    was excluded are added (n = 0, accuracy empty), so no group disappears from a table."""
    merged = table.merge(counts, on=keys, how="outer", suffixes=("", "_counted"), indicator=True)
    disagree = merged[(merged["_merge"] == "both") & (merged["n"] != merged["n_counted"])]
    if len(disagree):
        raise ValueError(f"evaluated counts disagree with the predictions for {disagree[keys].to_dict('records')[:5]}")
    unknown = merged[merged["_merge"] == "left_only"]
    if len(unknown):
        raise ValueError(f"groups without manifest test images: {unknown[keys].to_dict('records')[:5]}")
    merged["n"] = merged["n_counted"].astype(int)
    if "correct" in merged.columns:
        merged["correct"] = merged["correct"].fillna(0).astype(int)
    merged = merged.drop(columns=["n_counted", "_merge"])
    columns = list(table.columns)
    at = columns.index("n")
    columns[at:at] = ["n_test"]
    columns.insert(columns.index("n") + 1, "n_excluded")
    order = {name: i for i, name in enumerate([*SURVEYS, *DISEASES, *AGE_GROUPS, "all", "average"])}
    return merged.sort_values(keys, key=lambda s: s.map(order)).reset_index(drop=True)[columns]
