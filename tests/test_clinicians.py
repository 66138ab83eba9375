"""Clinicians vs model: statistics against scipy/statsmodels, the permutation test by enumeration,
the simulated survey against its targets, and Table 1's layout."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from conftest import options
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from syndface.clinicians import compare, simulate
from syndface.clinicians.compare import best_fake_variant, group_table, image_table, table1
from syndface.clinicians.paper import PAPER_HUMAN_ACCURACY, PAPER_OVERALL_HUMAN_ACCURACY
from syndface.clinicians.simulate import image_probabilities, simulate_survey
from syndface.clinicians.stats import (
    benjamini_hochberg,
    bootstrap_mean_interval,
    paired_tests,
    permutation_pvalue,
    wilson_interval,
)
from syndface.clinicians.survey import read_survey
from syndface.io import read_tsv
from syndface.seeding import derive_seed
from syndface.taxonomy import AGE_GROUPS, DISEASES, SURVEYS


def make_manifest(per_group: int) -> pd.DataFrame:
    rows = [
        {
            "image_id": f"{d}_{a}_{k}",
            "path": "x.png",
            "disease": d,
            "age_group": a,
            "source": "cohort",
            "subject_id": f"s_{d}_{a}_{k}",
            "split": "test",
        }
        for d in DISEASES
        for a in AGE_GROUPS
        for k in range(per_group)
    ]
    return pd.DataFrame(rows)


def make_predictions(manifest: pd.DataFrame, accuracy: float, seed: int) -> pd.DataFrame:
    """Probabilities whose argmax is the true class with probability ~`accuracy`."""
    gen = np.random.default_rng(seed)
    probs = gen.dirichlet(np.ones(len(DISEASES)), len(manifest))
    truth = manifest["disease"].map(DISEASES.index).to_numpy()
    probs[np.arange(len(manifest)), truth] += 2.0 * (gen.random(len(manifest)) < accuracy)
    probs /= probs.sum(1, keepdims=True)
    table = manifest[["image_id", "disease", "age_group", "source"]].copy()
    for i, d in enumerate(DISEASES):
        table[f"p_{d}"] = probs[:, i]
    return table


# --- the paper's numbers ---------------------------------------------------------------------


def test_paper_human_column_reproduces_the_papers_overall_accuracies():
    assert len(PAPER_HUMAN_ACCURACY) == 20
    assert PAPER_HUMAN_ACCURACY[("WS", "WS", "infant")] == 0.673
    assert PAPER_HUMAN_ACCURACY[("WS", "WS", "adolescent")] == 0.807  # printed 0.0807 in Table 1
    assert PAPER_HUMAN_ACCURACY[("22q", "22q", "older_adult")] == 0.507
    for survey, overall in PAPER_OVERALL_HUMAN_ACCURACY.items():
        values = [v for (s, _, _), v in PAPER_HUMAN_ACCURACY.items() if s == survey]
        assert np.mean(values) == pytest.approx(overall, abs=5e-4)


# --- statistics against scipy / statsmodels ---------------------------------------------------


def enumerated_pvalue(model, human, alternative="two-sided") -> float:
    """Share of all 2^n per-image swaps whose mean(model - human) is at least as extreme."""
    d = np.asarray(model, float) - np.asarray(human, float)
    observed = d.mean()
    null = np.array([np.mean(d * np.array(signs)) for signs in itertools.product([1, -1], repeat=len(d))])
    tol = 1e-12
    if alternative == "greater":
        return float(np.mean(null >= observed - tol))
    return float(np.mean(np.abs(null) >= abs(observed) - tol))


def test_permutation_pvalue_on_a_hand_made_case():
    # d = (0.5, 0.75, 0.5): only "no swap" and "swap all" reach |mean d| = 1.75/3 -> p = 2/8.
    assert permutation_pvalue([1, 1, 1], [0.5, 0.25, 0.5], n_permutations=1000, seed=0) == pytest.approx(0.25)
    assert permutation_pvalue([1, 1, 1], [0.5, 0.25, 0.5], 1000, 0, alternative="greater") == pytest.approx(0.125)


@pytest.mark.parametrize("alternative", ["two-sided", "greater"])
def test_permutation_pvalue_equals_enumeration_of_all_swaps(alternative):
    model = np.array([1, 0, 1, 1, 1, 0, 1])
    human = np.array([0.4, 0.3, 0.9, 0.55, 0.2, 0.1, 0.7])
    exact = enumerated_pvalue(model, human, alternative)
    assert permutation_pvalue(model, human, 1000, seed=3, alternative=alternative) == pytest.approx(exact)


def test_random_permutation_pvalue_is_seeded_and_near_the_exact_one():
    gen = np.random.default_rng(5)
    model = (gen.random(12) < 0.8).astype(float)
    human = gen.random(12)
    exact = enumerated_pvalue(model, human)  # 4096 swaps, more than the 999 drawn
    p = permutation_pvalue(model, human, 999, seed=11)
    assert p == permutation_pvalue(model, human, 999, seed=11)
    assert abs(p - exact) < 4 * np.sqrt(exact * (1 - exact) / 999) + 1e-3


def test_paired_tests_equal_scipy_on_the_same_vectors():
    gen = np.random.default_rng(2)
    model = (gen.random(40) < 0.9).astype(float)
    human = gen.beta(6, 3, 40)
    tests = paired_tests(model, human)
    ttest = stats.ttest_rel(model, human)
    wilcoxon = stats.wilcoxon(model, human)
    ci = ttest.confidence_interval(0.95)
    assert tests.t_statistic == pytest.approx(ttest.statistic) and tests.p_ttest == pytest.approx(ttest.pvalue)
    assert tests.wilcoxon_statistic == pytest.approx(wilcoxon.statistic) and tests.p_wilcoxon == pytest.approx(
        wilcoxon.pvalue
    )
    assert (tests.difference_ci_low, tests.difference_ci_high) == pytest.approx((ci.low, ci.high))
    assert tests.difference == pytest.approx(model.mean() - human.mean())
    assert np.isnan(paired_tests([1, 0], [1, 0]).p_wilcoxon)


def test_benjamini_hochberg_and_wilson_equal_statsmodels():
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.5, 0.002])
    finite = np.isfinite(p)
    expected = multipletests(p[finite], method="fdr_bh")[1]
    got = benjamini_hochberg(p)
    assert np.isnan(got[3]) and got[finite] == pytest.approx(expected)
    assert wilson_interval(10, 10) == pytest.approx(proportion_confint(10, 10, method="wilson"))


# --- per image and per group ------------------------------------------------------------------


def test_image_table_shares_and_model_correctness_by_hand():
    predictions = pd.DataFrame(
        {
            "image_id": ["w", "c"],
            "disease": ["WS", "control"],
            "age_group": ["infant", "infant"],
            "p_WS": [0.6, 0.6],
            "p_22q": [0.1, 0.1],
            "p_control": [0.2, 0.2],
        }
    )
    answers = pd.DataFrame(
        {
            "rater_id": ["r1", "r2", "r3", "r1", "r2"],
            "survey": "WS",
            "image_id": ["w", "w", "w", "c", "c"],
            "answer": ["WS", "other", "WS", "other", "other"],
        }
    )
    images = image_table(answers, {"real": predictions}).set_index("image_id")
    assert images.loc["w", ["n_raters", "n_correct"]].tolist() == [3, 2]
    assert images.loc["w", "human_accuracy"] == pytest.approx(2 / 3) and images.loc["c", "human_accuracy"] == 1.0
    assert (
        images.loc["w", "model_correct"] == 1 and images.loc["c", "model_correct"] == 0
    )  # the model says WS for the control
    with pytest.raises(ValueError, match="without a prediction: zz"):
        image_table(pd.concat([answers, answers.iloc[:1].assign(image_id="zz")]), {"real": predictions})


@pytest.fixture(scope="module")
def demo_run():
    manifest = make_manifest(per_group=6)
    answers = pd.concat([simulate_survey(manifest, s, 8, 25, 0.5, seed=1) for s in SURVEYS], ignore_index=True)
    predictions = {
        "real": make_predictions(manifest, 0.8, 1),
        "real+age_progression": make_predictions(manifest, 0.9, 2),
    }
    images = image_table(answers, predictions)
    return manifest, answers, predictions, images, group_table(images, n_permutations=200, seed=4)


def test_group_statistics_equal_the_library_calls_on_the_groups_vectors(demo_run):
    _, _, _, images, groups = demo_run
    rows = groups[(groups["level"] == "age_group") & (groups["variant"] == "real")]
    assert len(rows) == 20
    row = rows[(rows["survey"] == "22q") & (rows["truth"] == "other") & (rows["age_group"] == "child")].iloc[0]
    part = images[
        (images["variant"] == "real")
        & (images["survey"] == "22q")
        & (images["truth"] == "other")
        & (images["age_group"] == "child")
    ]
    model, human = part["model_correct"].to_numpy(float), part["human_accuracy"].to_numpy(float)
    assert (
        row["n_images"] == 6
        and row["human_accuracy"] == pytest.approx(human.mean())
        and row["model_accuracy"] == pytest.approx(model.mean())
    )
    seed = derive_seed(4, "compare-clinicians", "real", "22q", "other", "child")
    assert row["p_permutation"] == permutation_pvalue(model, human, 200, seed)
    assert rows["p_permutation_bh"].to_numpy() == pytest.approx(
        multipletests(rows["p_permutation"], method="fdr_bh")[1]
    )

    overall = groups[(groups["level"] == "survey") & (groups["variant"] == "real") & (groups["survey"] == "WS")].iloc[0]
    part = images[(images["variant"] == "real") & (images["survey"] == "WS")]
    model, human = part["model_correct"].to_numpy(float), part["human_accuracy"].to_numpy(float)
    assert overall["n_images"] == 60
    assert overall["p_ttest"] == pytest.approx(stats.ttest_rel(model, human).pvalue)
    assert overall["p_wilcoxon"] == pytest.approx(stats.wilcoxon(model, human).pvalue)
    assert overall["difference"] == pytest.approx(model.mean() - human.mean())


def test_best_fake_variant_from_the_papers_table2():
    paper = pd.DataFrame(
        {
            "class": ["22q", "control", "unaffected", "WS", "average"],
            "real": [68, 86.4, 100, 94, 87.1],
            "+unrelated": [76, 81.5, 100, 96, 88.375],
            "+age_related": [74, 82.5, 100, 96, 88.175],
            "+age_progression": [76, 82.7, 100, 100, 90.35],
            "+age_progression_ci_low": [99, 99, 99, 99, 99],
            "+blended_55": [68, 85.2, 100, 96, 87.3],
            "+blended_75": [76, 85.2, 100, 96, 89.3],
        }
    )
    assert best_fake_variant(paper) == "real+age_progression"
    assert (
        best_fake_variant(paper.rename(columns=lambda c: "real" + c if c.startswith("+") else c))
        == "real+age_progression"
    )
    with pytest.raises(ValueError, match="'average'"):
        best_fake_variant(paper.iloc[:4])


def test_table1_has_ten_rows_per_syndrome_block(demo_run):
    *_, groups = demo_run
    table = table1(groups, "real+age_progression", simulated=True)
    assert len(table) == 20
    assert table.groupby("survey").size().to_dict() == {"WS": 10, "22q": 10}
    first = table[table["survey"] == "WS"].head(5)
    assert first["group"].tolist() == ["disease"] * 5 and first["age_group"].tolist() == list(AGE_GROUPS)
    for column in ("human", "model_real", "p_real", "q_real", "model_best_fake", "p_best_fake", "q_best_fake"):
        assert table[column].notna().all(), column
    assert table["simulated"].all()


def test_compare_command_writes_table1_clinicians_and_figure(tmp_path, demo_run):
    manifest, answers, predictions, *_ = demo_run
    survey = tmp_path / "survey.tsv"
    answers.to_csv(survey, sep="\t", index=False)
    args = ["--survey", str(survey), *options({"clinicians.permutations": 50, "seed": 1})]
    for variant, table in predictions.items():
        path = tmp_path / f"{variant}.tsv"
        table.to_csv(path, sep="\t", index=False)
        args += ["--predictions", f"{variant}={path}"]
    outputs = {
        k: tmp_path / f"{k}.{ext}"
        for k, ext in (("table1", "tsv"), ("clinicians", "tsv"), ("images", "tsv"), ("figure", "png"))
    }
    for name, path in outputs.items():
        args += [f"--{name}", str(path)]
    assert compare.main(args) == 0
    assert len(read_tsv(outputs["table1"])) == 20
    assert "SIMULATED" in outputs["table1"].read_text().splitlines()[0]
    assert outputs["figure"].read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="include real="):
        compare.parse_predictions([f"real+age_progression={tmp_path / 'real+age_progression.tsv'}"])


# --- the simulated survey ---------------------------------------------------------------------


def test_image_probabilities_average_to_the_target():
    probs = image_probabilities(0.673, 10, 0.8, np.random.default_rng(0))
    assert probs.mean() == pytest.approx(0.673) and probs.std() > 0.05
    assert image_probabilities(0.5, 4, 0.0, np.random.default_rng(0)) == pytest.approx([0.5] * 4)


def test_simulated_raters_follow_the_survey_design():
    manifest = make_manifest(per_group=10)
    answers = simulate_survey(manifest, "WS", n_raters=6, images_per_rater=25, spread=0.5, seed=3)
    assert answers["simulated"].all() and set(answers["answer"]) <= {"WS", "other"}
    shown = answers.merge(manifest, on="image_id")
    per_rater = shown.groupby(["rater_id", "disease", "age_group"]).size()
    assert (per_rater == 5).all() and len(per_rater) == 6 * 2 * 5  # 5 WS + 5 control per age group
    assert not answers.duplicated(["rater_id", "image_id"]).any()
    # Seeded, and each rater has its own stream: more raters leave the first ones unchanged.
    more = simulate_survey(manifest, "WS", n_raters=9, images_per_rater=25, spread=0.5, seed=3)
    pd.testing.assert_frame_equal(more[more["rater_id"].isin(answers["rater_id"])].reset_index(drop=True), answers)
    assert not simulate_survey(manifest, "WS", 6, 25, 0.5, seed=4).equals(answers)
    with pytest.raises(ValueError, match="multiple of 5"):
        simulate_survey(manifest, "WS", 6, 24, 0.5, seed=3)
    with pytest.raises(ValueError, match="no other test image of age group infant"):
        simulate_survey(
            manifest[~((manifest["disease"] == "control") & (manifest["age_group"] == "infant"))],
            "WS",
            6,
            25,
            0.5,
            seed=3,
        )


def test_large_simulation_reproduces_the_papers_accuracies():
    manifest = make_manifest(per_group=10)
    n_raters = 400
    answers = pd.concat([simulate_survey(manifest, s, n_raters, 25, 0.5, seed=1) for s in SURVEYS], ignore_index=True)
    answers = answers.merge(manifest[["image_id", "disease", "age_group"]], on="image_id")
    answers["truth"] = np.where(answers["disease"] == "control", "other", answers["disease"])
    accuracy = (
        (answers["answer"] == answers["truth"])
        .groupby([answers["survey"], answers["truth"], answers["age_group"]])
        .mean()
    )
    n = n_raters * 5
    for key, target in PAPER_HUMAN_ACCURACY.items():
        assert abs(accuracy[key] - target) < 4 * np.sqrt(target * (1 - target) / n), key


def test_survey_table_checks(tmp_path):
    path = tmp_path / "s.tsv"
    pd.DataFrame(
        {"rater_id": ["r1", "r1"], "survey": ["WS", "WS"], "image_id": ["a", "a"], "answer": ["WS", "22q"]}
    ).to_csv(path, sep="\t", index=False)
    with pytest.raises(ValueError) as error:
        read_survey([path])
    assert "'22q' in the WS survey" in str(error.value) and "same image twice" in str(error.value)


def test_simulate_command_says_it_is_simulated(tmp_path):
    manifest = tmp_path / "manifest.tsv"
    make_manifest(per_group=5).to_csv(manifest, sep="\t", index=False)
    out = tmp_path / "survey.tsv"
    assert (
        simulate.main(["--manifest", str(manifest), *options({"seed": 1, "clinicians.raters": 30}), "--out", str(out)])
        == 0
    )
    assert out.read_text().startswith("# SIMULATED survey")
    answers = read_survey([out])
    assert answers.groupby("survey")["rater_id"].nunique().to_dict() == {"WS": 30, "22q": 30}


def test_human_interval_resamples_images():
    shares = np.random.default_rng(0).uniform(0.3, 0.9, size=400)
    low, high = bootstrap_mean_interval(shares, 4000, seed=1)
    half = 1.96 * shares.std(ddof=1) / np.sqrt(len(shares))
    # large n: the percentile bootstrap agrees with the normal interval of a mean
    assert low == pytest.approx(shares.mean() - half, abs=0.15 * half)
    assert high == pytest.approx(shares.mean() + half, abs=0.15 * half)
    assert bootstrap_mean_interval(shares, 4000, seed=1) == (low, high)
    assert bootstrap_mean_interval(np.full(6, 0.5), 100, seed=1) == (0.5, 0.5)
