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
