"""clinicians.tsv and Table 1 built from the valid tests: every number equals the library call on the group's data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests
from test_clinicians import make_manifest, make_predictions

from syndface.clinicians.compare import image_table
from syndface.clinicians.inference import random_rater_test, rater_accuracies, rater_level_tests
from syndface.clinicians.simulate import simulate_survey
from syndface.clinicians.tables import answer_table, clinicians_header, group_statistics, table1, table1_header
from syndface.intervals import clustered_proportion_interval, proportion_interval
from syndface.taxonomy import SURVEYS


@pytest.fixture(scope="module")
def survey_run():
    manifest = make_manifest(per_group=6)
    answers = pd.concat([simulate_survey(manifest, s, 10, 25, 0.5, seed=1) for s in SURVEYS], ignore_index=True)
    predictions = {
        "real": make_predictions(manifest, 0.8, 1),
        "real+age_progression": make_predictions(manifest, 0.9, 2),
    }
    images = image_table(answers, predictions)
    long = answer_table(answers, predictions["real"].set_index("image_id"))
    return long, images, group_statistics(long, images, alternative="greater")


def test_group_rows_equal_the_library_calls_on_the_groups_data(survey_run):
    long, images, groups = survey_run
    assert (groups["level"] == "age_group").sum() == 2 * 20 and (groups["level"] == "survey").sum() == 2 * 2
    row = groups.set_index(["level", "variant", "survey", "truth", "age_group"]).loc[
        ("age_group", "real", "WS", "other", "child")
    ]
    part = images[
        (images["variant"] == "real") & (images["survey"] == "WS") & (images["truth"] == "other")
        & (images["age_group"] == "child")
    ]  # fmt: skip
    x, k, m = part["model_correct"].to_numpy(), part["n_correct"].to_numpy(), part["n_raters"].to_numpy()
    assert row["n_images"] == 6 and row["p_count"] == pytest.approx(random_rater_test(x, k, m).p_greater)
    assert (row["human_ci_low"], row["human_ci_high"]) == pytest.approx(clustered_proportion_interval(k, m))
    assert (row["model_ci_low"], row["model_ci_high"]) == pytest.approx(proportion_interval(x.sum(), 6))
    seen = long[(long["survey"] == "WS") & long["image_id"].isin(part["image_id"])]
    raters = rater_level_tests(rater_accuracies(seen, pd.Series(x, index=part["image_id"].to_numpy())), "greater")
    assert row["p_rater_t"] == pytest.approx(raters.p_ttest) and row["p_rater_sign"] == pytest.approx(raters.p_sign)
    assert row["n_raters"] == raters.n_raters


def test_q_values_correct_within_the_five_age_groups_of_a_readout(survey_run):
    _, _, groups = survey_run
    ages = groups[groups["level"] == "age_group"]
    for _, family in ages.groupby(["variant", "survey", "truth"]):
        assert len(family) == 5
        assert family["q_count"].to_numpy() == pytest.approx(multipletests(family["p_count"], method="fdr_bh")[1])
    assert groups.loc[groups["level"] == "survey", "q_count"].isna().all()  # survey rows are no family member


def test_survey_rows_carry_the_papers_t_and_the_mixed_model(survey_run):
    _, _, groups = survey_run
    survey = groups[groups["level"] == "survey"]
    for column in ("p_paper_ttest", "p_mixed", "mixed_log_odds_ratio", "p_count", "p_rater_t"):
        assert survey[column].between(0, 1).all() or column == "mixed_log_odds_ratio", column
    assert survey["n_images"].eq(60).all()


def test_table1_layout_and_header_flag_the_selection(survey_run):
    _, _, groups = survey_run
    table = table1(groups, "real+age_progression", simulated=True, selected_on="test")
    assert len(table) == 20 and table["group"].head(5).eq("disease").all()
    for column in ("human", "human_ci_low", "model_real", "p_real", "q_real", "p_real_raters", "p_best_fake"):
        assert table[column].notna().all(), column
    assert (table["human_ci_high"] > table["human_ci_low"]).all()
    header = " ".join(table1_header("greater", "real+age_progression", "test", simulated=True))
    assert "ON THE TEST IMAGES" in header and "SIMULATED" in header and "unit: image" in header
    assert "within each variant x survey x truth" in header
    validation = " ".join(table1_header("greater", "real+age_progression", "validation", note="history.tsv"))
    assert "chosen on the validation folds (history.tsv)" in validation and "TEST" not in validation
    lines = clinicians_header("two-sided")
    assert any("unit: rater" in line for line in lines) and any("Korn-Graubard" in line for line in lines)


def test_answer_table_marks_right_answers():
    reference = pd.DataFrame({"disease": ["WS", "control"], "age_group": ["infant", "child"]}, index=["w", "c"])
    answers = pd.DataFrame(
        {"rater_id": ["r1", "r1"], "survey": ["WS", "WS"], "image_id": ["w", "c"], "answer": ["WS", "WS"]}
    )
    table = answer_table(answers, reference)
    assert table["correct"].tolist() == [True, False] and table["truth"].tolist() == ["WS", "other"]
    with pytest.raises(ValueError, match="without a prediction"):
        answer_table(answers.assign(image_id=["w", "zz"]), reference)
    assert np.array_equal(table["age_group"], ["infant", "child"])
