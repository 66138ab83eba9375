"""Permutation test statistics (against scipy and hand cases) and the planted-truth scores."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from syndface.saliency.permutation import (
    PermutationResult,
    embedding_distances,
    group_means,
    p_value,
    permutation_test,
    random_memberships,
    run_tests,
    size_check,
)
from syndface.saliency.truth import centred_blob, mass_inside, pointing_hits, region, truth_table


def flatten(maps: np.ndarray) -> np.ndarray:
    """Identity embedding: the map itself is the feature vector."""
    return np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)


def test_p_value_and_rank_by_hand():
    result = PermutationResult(distance=5.0, null=np.array([1.0, 5.0, 7.0, 3.0]))
    assert result.p_value == pytest.approx((2 + 1) / (4 + 1))  # 5 and 7 reach the observed 5
    assert result.rank == pytest.approx(2 / 4)  # the paper's mean(observed > permuted)
    assert p_value(10.0, np.zeros(99)) == pytest.approx(1 / 100)


def test_exact_enumeration_matches_scipy():
    """Fed every other split of the pooled values, the +1-corrected p equals scipy's exact p-value."""
    a = np.array([3.1, 2.0, 4.4, 5.2])
    b = np.array([1.0, 1.7, 2.9, 0.4, 2.2])
    pooled = np.concatenate([a, b])[:, None, None]  # 1 x 1 "maps"
    observed = tuple(range(len(a)))
    splits = [s for s in itertools.combinations(range(len(pooled)), len(a)) if s != observed]
    in_a = np.zeros((len(splits), len(pooled)), dtype=bool)
    for row, members in enumerate(splits):
        in_a[row, list(members)] = True
    null = embedding_distances(pooled, in_a, flatten)
    observed_distance = abs(a.mean() - b.mean())
    ours = p_value(observed_distance, null)
    reference = stats.permutation_test(
        (a, b),
        lambda x, y, axis: np.abs(x.mean(axis) - y.mean(axis)),
        vectorized=True,
        alternative="greater",
        n_resamples=np.inf,
    )
    assert ours == pytest.approx(reference.pvalue, abs=1e-12)


def test_group_means_by_one_product_equal_a_loop():
    generator = np.random.default_rng(0)
    maps = generator.normal(size=(7, 3, 4))
    in_a = random_memberships(3, 4, 20, generator)
    mean_a, mean_b = group_means(maps, in_a)
    for p in range(len(in_a)):
        np.testing.assert_allclose(mean_a[p], maps[in_a[p]].mean(0), atol=1e-6)
        np.testing.assert_allclose(mean_b[p], maps[~in_a[p]].mean(0), atol=1e-6)


def test_memberships_keep_group_sizes_and_are_seeded():
    in_a = random_memberships(4, 6, 50, np.random.default_rng(5))
    assert in_a.shape == (50, 10) and (in_a.sum(1) == 4).all()
    assert len({row.tobytes() for row in in_a}) > 40
    assert np.array_equal(in_a, random_memberships(4, 6, 50, np.random.default_rng(5)))
    with pytest.raises(ValueError):
        random_memberships(0, 3, 5, np.random.default_rng(0))


def test_permutation_test_finds_a_moved_region_and_not_a_null_split():
    generator = np.random.default_rng(1)
    noise = generator.normal(scale=0.5, size=(16, 8, 8))
    blob_left, blob_right = np.zeros((8, 8)), np.zeros((8, 8))
    blob_left[2:5, 1:3], blob_right[2:5, 5:7] = 3.0, 3.0
    group_a, group_b = noise[:8] + blob_left, noise[8:] + blob_right
    moved = permutation_test(group_a, group_b, flatten, 200, np.random.default_rng(2))
    assert moved.p_value == pytest.approx(1 / 201)
    same = permutation_test(group_a[:4], group_a[4:], flatten, 200, np.random.default_rng(3))
    assert same.p_value > 0.05


def test_region_mass_and_pointing_by_hand():
    mask = np.zeros((4, 4))
    mask[0, :2] = 1.0
    mask[1, :2] = 0.4  # below half the peak: outside the region
    inside = region(mask, 0.5)
    assert inside.sum() == 2
    maps = np.array(
        [
            [[3, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 4]],  # peak outside; 4 of 8 inside
            [[0, 5, 0, 0], [-9, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],  # all positive mass inside
            [[-1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, -2]],  # no positive mass
        ],
        dtype=float,
    )
    np.testing.assert_allclose(mass_inside(maps, inside), [0.5, 1.0, np.nan])
    assert pointing_hits(maps, inside).tolist() == [0.0, 1.0, 0.0]
    tied = np.zeros((1, 4, 4))
    tied[0, 0, 0] = tied[0, 3, 3] = 2.0  # one of two tied maxima inside
    assert pointing_hits(tied, inside).tolist() == [0.5]
    with pytest.raises(ValueError):
        region(np.zeros((4, 4)), 0.5)


def test_truth_table_compares_with_the_centred_blob():
    import pandas as pd

    size = 9
    off_centre = np.zeros((size, size))
    off_centre[0:2, 0:3] = 1.0
    centre = np.zeros((size, size))
    centre[3:6, 3:6] = 1.0
    masks = {("WS", "infant"): off_centre, ("WS", "child"): centre}
    maps = np.zeros((3, size, size))
    maps[0, 0, 1] = 1.0  # infant map on its region
    maps[1, 8, 8] = 1.0  # infant map elsewhere
    maps[2, 4, 4] = 1.0  # child map on its (central) region
    index = pd.DataFrame({"disease": ["WS"] * 3, "age_group": ["infant", "infant", "child"]})
    table = truth_table(maps, index, masks, threshold=0.5, sigma_fraction=0.15).set_index("age_group")
    assert table.loc["infant", "pointing_hit_rate"] == 0.5 and table.loc["infant", "pointing_hit_rate_blob"] == 0.0
    assert table.loc["child", "pointing_hit_rate"] == 1.0 and table.loc["child", "pointing_hit_rate_blob"] == 1.0
    assert table.loc["infant", "region_area"] == pytest.approx(6 / 81)
    blob = centred_blob(size, 0.15)
    assert table.loc["child", "mass_inside_blob"] == pytest.approx(blob[3:6, 3:6].sum() / blob.sum())
    assert table.loc["all", "n_images"] == 3 and table.loc["all", "pointing_hit_rate"] == pytest.approx(2 / 3)


# --- exact enumeration, q-values, the size check ----------------------------------------------


def test_permutation_test_enumerates_every_split_when_few_and_equals_scipy():
    generator = np.random.default_rng(7)
    a, b = generator.normal(0.8, 1, 6), generator.normal(0, 1, 6)
    result = permutation_test(a[:, None, None], b[:, None, None], flatten, 50, generator, max_exact=100_000)
    reference = stats.permutation_test(
        (a, b),
        lambda x, y, axis: np.abs(x.mean(axis) - y.mean(axis)),
        vectorized=True,
        alternative="greater",
        n_resamples=np.inf,
    )
    assert result.exact and len(result.null) == 462  # C(12, 6) / 2: a split and its mirror are one
    assert result.p_value == pytest.approx(reference.pvalue, abs=1e-12)
    assert not result.at_floor


def test_smallest_exact_p_of_6_vs_6_is_below_alpha():
    """Two clearly separated groups of six: p = 1/462 (the old 100 random draws gave at best 1/101)."""
    generator = np.random.default_rng(0)
    a = generator.normal(0, 0.1, (6, 4, 4))
    result = permutation_test(a + 5.0, a, flatten, 100, generator, max_exact=100_000)
    assert result.p_value == pytest.approx(1 / 462)


def test_monte_carlo_above_the_bound_flags_the_floor():
    generator = np.random.default_rng(0)
    a = generator.normal(0, 0.1, (8, 4, 4))
    result = permutation_test(a + 5.0, a, flatten, 99, generator, max_exact=1000)  # 6435 splits > 1000
    assert not result.exact and result.at_floor and result.p_value == pytest.approx(1 / 100)


def demo_maps(per_group: int = 6, effect: float = 1.5, seed: int = 0):
    """Maps of two diseases whose bright spot moves with age (a true age effect)."""
    import pandas as pd

    from syndface.taxonomy import AGE_GROUPS

    generator = np.random.default_rng(seed)
    maps, rows = [], []
    for disease in ("WS", "22q"):
        for g, age in enumerate(AGE_GROUPS):
            for _ in range(per_group):
                m = generator.normal(0, 1, (6, 6))
                m[g, :] += effect
                maps.append(m)
                rows.append({"disease": disease, "age_group": age})
    return np.stack(maps), pd.DataFrame(rows)


def test_run_tests_exact_with_q_values_within_and_across_diseases():
    from statsmodels.stats.multitest import multipletests

    maps, index = demo_maps()
    table = run_tests(maps, index, ["WS", "22q"], flatten, 20, seed=1, max_exact=100_000)
    assert len(table) == 20
    assert table["exact"].all() and (table["n_relabellings"] == 462).all() and not table["p_at_floor"].any()
    for _, part in table.groupby("disease"):
        assert part["q_within_disease"].to_numpy() == pytest.approx(multipletests(part["p_value"], method="fdr_bh")[1])
    assert table["q_all"].to_numpy() == pytest.approx(multipletests(table["p_value"], method="fdr_bh")[1])
    assert (table["p_value"] < 0.05).mean() > 0.8  # the planted age effect is found


def test_size_check_passes_for_the_test_and_fails_for_a_liberal_one():
    maps, index = demo_maps()
    check = size_check(maps, index, "WS", flatten, 1000, 20, 0.05, seed=2, max_exact=100_000)
    assert check.exact and check.passed and check.rejections <= check.bound
    assert 0.02 < check.rate < 0.08  # near alpha: exact permutation tests of continuous statistics

    class Halved:
        def __init__(self, p, exact):
            self.p_value, self.exact = p, exact

    def liberal(*args):  # a test reporting half its p-value (a one-/two-sided mix-up)
        result = permutation_test(*args)
        return Halved(result.p_value / 2, result.exact)

    failing = size_check(maps, index, "WS", flatten, 1000, 20, 0.05, seed=2, max_exact=100_000, test=liberal)
    assert not failing.passed and failing.rejections > failing.bound
    with pytest.raises(ValueError, match="two age groups"):
        size_check(maps[:6], index.iloc[:6], "WS", flatten, 10, 20, 0.05, seed=2)


def test_size_check_table_and_header_name_the_method():
    from syndface.saliency.permutation import SizeCheck, permutation_header, size_check_table

    checks = [SizeCheck("WS", 200, 9, 21, 0.05, True), SizeCheck("22q", 200, 30, 21, 0.05, True)]
    table = size_check_table(checks).set_index("disease")
    assert table.loc["WS", "passed"] and not table.loc["22q", "passed"]
    assert table.loc["WS", "rate"] == pytest.approx(0.045) and table.loc["WS", "rate_ci_low"] > 0.02
    header = permutation_header("pixels", "maps: scaled", 100, 100_000, 1, 0.05, checks)
    text = "\n".join(header)
    assert "exact (share of all splits" in text and "q_all" in text and "unit: the image" in text
    assert "9/200" in text and "REJECTS TOO OFTEN" in text
