"""Model-vs-clinician tests: the Poisson-binomial count test against scipy and hand enumeration,
the rater-level tests against scipy, the mixed model on planted data, q-values by family."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from syndface.clinicians.calibration import Design, rater_pvalues, replicate_tables, simulate
from syndface.clinicians.inference import (
    mixed_model_test,
    null_probabilities,
    paper_paired_ttest,
    poisson_binomial_pmf,
    poisson_binomial_pvalues,
    random_rater_test,
    rater_accuracies,
    rater_level_tests,
)
from syndface.multiplicity import bh_by_family, family_note


def enumerated_pmf(p: np.ndarray) -> np.ndarray:
    pmf = np.zeros(len(p) + 1)
    for outcome in itertools.product([0, 1], repeat=len(p)):
        o = np.array(outcome)
        pmf[o.sum()] += np.prod(np.where(o == 1, p, 1 - p))
    return pmf


def test_poisson_binomial_pmf_equals_enumeration_and_the_binomial():
    p = np.array([0.9, 0.35, 0.6, 0.75, 0.2, 0.5])
    assert poisson_binomial_pmf(p) == pytest.approx(enumerated_pmf(p), abs=1e-15)
    assert poisson_binomial_pmf(np.full(10, 0.67)) == pytest.approx(stats.binom.pmf(np.arange(11), 10, 0.67))
    batch = poisson_binomial_pmf(np.stack([p, p[::-1]]))  # vectorised over leading axes
    assert batch.shape == (2, 7) and batch[1] == pytest.approx(enumerated_pmf(p))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        poisson_binomial_pmf(np.array([0.5, 1.2]))


@pytest.mark.parametrize("x", [0, 3, 6, 7, 9, 10])
def test_equal_probabilities_give_scipy_binomtest(x):
    greater, less, two_sided = poisson_binomial_pvalues(x, np.full(10, 0.7))
    for alternative, ours in (("greater", greater), ("less", less), ("two-sided", two_sided)):
        assert ours == pytest.approx(stats.binomtest(x, 10, 0.7, alternative=alternative).pvalue, abs=1e-12)


def test_two_sided_rule_by_hand_on_unequal_probabilities():
    p = np.array([0.9, 0.8, 0.85, 0.6, 0.95])
    pmf = enumerated_pmf(p)
    for x in range(6):
        greater, less, two_sided = poisson_binomial_pvalues(x, p)
        assert greater == pytest.approx(pmf[x:].sum()) and less == pytest.approx(pmf[: x + 1].sum())
        assert two_sided == pytest.approx(pmf[pmf <= pmf[x] * (1 + 1e-7)].sum())


def test_small_p_values_keep_their_digits():
    greater, _, _ = poisson_binomial_pvalues(40, np.full(40, 0.5))
    assert greater == pytest.approx(0.5**40, rel=1e-9)


def test_exchangeable_null_puts_the_model_among_the_raters():
    # image 1: 10 of 15 raters right, model right -> 11/16; image 2: 3 of 15, model wrong -> 3/16
    q = null_probabilities([1, 0], [10, 3], [15, 15])
    assert q == pytest.approx([11 / 16, 3 / 16])
    assert null_probabilities([1, 0], [10, 3], [15, 15], "plug-in") == pytest.approx([10 / 15, 3 / 15])
    test = random_rater_test([1, 0], [10, 3], [15, 15])
    pmf = enumerated_pmf(np.array([11 / 16, 3 / 16]))
    assert test.model_correct == 1 and test.expected == pytest.approx(14 / 16)
    assert test.p_greater == pytest.approx(pmf[1:].sum()) and test.p("less") == pytest.approx(pmf[:2].sum())
    assert test.p_min_greater == pytest.approx(11 / 16 * 4 / 16)  # both right: T rises on image 2
    with pytest.raises(ValueError, match="0 \\(wrong\\) or 1"):
        random_rater_test([0.5, 1], [10, 3], [15, 15])
    with pytest.raises(ValueError, match="at least one rater"):
        random_rater_test([1, 1], [0, 3], [0, 15])


def test_a_model_always_right_on_easy_images_cannot_reach_significance():
    """Ten images that 86% of raters get right: even 10/10 is no evidence (the paper's 'other' rows)."""
    k, m = np.full(10, 13), np.full(10, 15)
    test = random_rater_test(np.ones(10), k, m)
    assert test.p_greater == pytest.approx((14 / 16) ** 10) and test.p_greater > 0.05


def test_paper_paired_ttest_equals_scipy():
    gen = np.random.default_rng(2)
    model, human = (gen.random(40) < 0.9).astype(float), gen.beta(6, 3, 40)
    result = paper_paired_ttest(model, human)
    reference = stats.ttest_rel(model, human)
    ci = reference.confidence_interval(0.95)
    assert (result.t_statistic, result.p_value) == pytest.approx((reference.statistic, reference.pvalue))
    assert (result.difference_ci_low, result.difference_ci_high) == pytest.approx((ci.low, ci.high))
    with pytest.raises(ValueError, match="two images"):
        paper_paired_ttest([1.0], [0.5])


def test_rater_level_tests_by_hand_and_against_scipy():
    answers = pd.DataFrame(
        {
            "rater_id": ["a", "a", "b", "b", "c", "c", "c"],
            "image_id": ["i1", "i2", "i1", "i3", "i2", "i3", "i4"],
            "correct": [1, 0, 1, 1, 0, 0, 1],
        }
    )
    model = pd.Series([1, 1, 0, 1], index=["i1", "i2", "i3", "i4"])
    per_rater = rater_accuracies(answers, model).set_index("rater_id")
    assert per_rater.loc["a", ["n_images", "rater_accuracy", "model_accuracy"]].tolist() == [2, 0.5, 1.0]
    assert per_rater.loc["b", ["rater_accuracy", "model_accuracy"]].tolist() == [1.0, 0.5]
    assert per_rater.loc["c", ["rater_accuracy", "model_accuracy"]].tolist() == pytest.approx([1 / 3, 2 / 3])
    tests = rater_level_tests(per_rater.reset_index())
    d = per_rater["model_accuracy"] - per_rater["rater_accuracy"]
    assert (tests.n_model_better, tests.n_rater_better, tests.n_ties) == (2, 1, 0)
    assert tests.p_sign == pytest.approx(stats.binomtest(2, 3, 0.5).pvalue)
    assert tests.p_ttest == pytest.approx(stats.ttest_1samp(d, 0).pvalue)
    assert tests.difference == pytest.approx(d.mean())
    with pytest.raises(ValueError, match="no model answer for image"):
        rater_accuracies(answers, model.drop("i4"))


def test_vectorised_rater_pvalues_equal_the_library_on_each_replicate():
    sim = simulate(Design(0.7, 10, n_raters=12, per_rater=5), "fixed_model", 5, np.random.default_rng(0))
    t_vec, sign_vec = rater_pvalues(sim, "rater_ttest"), rater_pvalues(sim, "rater_sign")
    for r in range(5):
        answers, model = replicate_tables(sim, r)
        tests = rater_level_tests(rater_accuracies(answers, model))
        assert tests.p_ttest == pytest.approx(t_vec[r]) and tests.p_sign == pytest.approx(sign_vec[r])


def test_mixed_model_finds_a_planted_model_effect_and_reports_the_variance_components():
    design = Design(0.7, 60, n_raters=20, per_rater=30, spread=0.8, rater_sd=0.5)
    better = simulate(design, "random_rater", 1, np.random.default_rng(1), model_shift=2.5)
    answers, model = replicate_tables(better, 0)
    result = mixed_model_test(answers, model)
    assert result.log_odds_ratio > 1.0 and result.p_value < 0.01
    assert (result.n_answers, result.n_raters, result.n_images) == (600, 20, 60)
    assert 0.2 < result.image_sd < 2.0
    with pytest.raises(ValueError, match="no model answer"):
        mixed_model_test(answers, model.iloc[1:])


def test_bh_by_family_corrects_within_each_family():
    table = pd.DataFrame(
        {
            "survey": ["WS"] * 4 + ["22q"] * 4,
            "truth": ["WS", "WS", "other", "other"] * 2,
            "p": [0.01, 0.04, 0.03, np.nan, 0.2, 0.001, 0.02, 0.5],
        }
    )
    q = bh_by_family(table, "p", ["survey", "truth"])
    for _, rows in table.groupby(["survey", "truth"]).groups.items():
        p = table.loc[rows, "p"].to_numpy()
        finite = np.isfinite(p)
        assert q.loc[rows][finite].to_numpy() == pytest.approx(multipletests(p[finite], method="fdr_bh")[1])
    assert np.isnan(q.iloc[3])
    everything = bh_by_family(table, "p", [])
    finite = table["p"].notna()
    assert everything[finite].to_numpy() == pytest.approx(multipletests(table["p"][finite], method="fdr_bh")[1])
    assert family_note(["survey", "truth"], "Table 1") == "q = Benjamini-Hochberg within each survey x truth of Table 1"
