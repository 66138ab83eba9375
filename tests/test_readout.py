"""The two-way survey readout: one rule, each survey over its own images, the same in evaluate-classifier
and compare-clinicians."""

from __future__ import annotations

import pandas as pd
import pytest

from syndface.classify.evaluate import two_way_answers, two_way_metrics
from syndface.clinicians.compare import image_table
from syndface.readout import OTHER, survey_image_ids, survey_readout, truth_of


def predictions() -> pd.DataFrame:
    """Two WS, two 22q and three control test images (c1 shown in both surveys, c0 only in the WS
    survey, c2 only in the 22q survey, as the paper's two 50-control sets overlapped), one unaffected."""
    rows = [
        # image_id, disease, p_WS, p_22q, p_control
        ("w0", "WS", 0.6, 0.1, 0.2),
        ("w1", "WS", 0.2, 0.1, 0.2),  # tie -> other (wrong)
        ("q0", "22q", 0.1, 0.5, 0.3),
        ("q1", "22q", 0.1, 0.2, 0.6),  # control wins -> other (wrong)
        ("c0", "control", 0.5, 0.1, 0.3),  # says WS against control (wrong in the WS survey)
        ("c1", "control", 0.1, 0.1, 0.7),
        ("c2", "control", 0.1, 0.6, 0.2),  # says 22q against control (wrong in the 22q survey)
        ("u0", "unaffected", 0.1, 0.1, 0.1),
    ]
    frame = pd.DataFrame(rows, columns=["image_id", "disease", "p_WS", "p_22q", "p_control"])
    frame["p_unaffected"] = 1 - frame[["p_WS", "p_22q", "p_control"]].sum(axis=1)
    frame["age_group"] = "child"
    frame["source"] = ["cohort"] * 7 + ["auxiliary"]
    return frame


def surveys() -> pd.DataFrame:
    shown = {"WS": ["w0", "w1", "c0", "c1"], "22q": ["q0", "q1", "c1", "c2"]}
    rows = []
    for survey, images in shown.items():
        for rater in ("r1", "r2"):
            for image in images:
                truth = truth_of(survey, predictions().set_index("image_id").loc[image, "disease"])
                rows.append((rater, survey, image, truth if rater == "r1" else OTHER))
    return pd.DataFrame(rows, columns=["rater_id", "survey", "image_id", "answer"])


def test_the_higher_of_syndrome_and_control_answers_and_a_tie_is_other():
    ws = survey_readout(predictions(), "WS", ["w0", "w1", "c0", "c1"]).set_index("image_id")
    assert ws["answer"].to_dict() == {"w0": "WS", "w1": OTHER, "c0": "WS", "c1": OTHER}
    assert ws["truth"].to_dict() == {"w0": "WS", "w1": "WS", "c0": OTHER, "c1": OTHER}
    assert ws["correct"].tolist() == [True, False, False, True]


def test_each_survey_is_read_over_its_own_controls_not_every_test_control():
    answers = two_way_answers(predictions(), surveys())
    shown = answers.groupby("survey")["image_id"].apply(list).to_dict()
    assert shown == {"22q": ["q0", "q1", "c1", "c2"], "WS": ["w0", "w1", "c0", "c1"]}
    metrics = two_way_metrics(answers).set_index(["survey", "disease", "age_group"])
    # WS survey controls c0 (wrong) and c1 (right); reading every test control would add c2 (right: 0.2 > 0.1).
    assert metrics.loc[("WS", "control", "all"), "accuracy"] == 0.5
    assert metrics.loc[("22q", "control", "all"), "accuracy"] == 0.5  # c1 right, c2 wrong; c0 is no 22q image
    # Without survey tables: every cohort test control in both surveys (the demo's simulated surveys show all).
    fallback = two_way_answers(predictions())
    assert sorted(fallback.loc[fallback["survey"] == "WS", "image_id"]) == ["c0", "c1", "c2", "w0", "w1"]


def test_evaluate_classifier_and_compare_clinicians_give_every_survey_image_the_same_answer():
    evaluated = two_way_answers(predictions(), surveys()).set_index(["survey", "image_id"])["answer"]
    compared = image_table(surveys(), {"real": predictions()}).set_index(["survey", "image_id"])
    compared = compared["model_answer"].loc[evaluated.index]
    assert compared.tolist() == evaluated.tolist()


def test_survey_images_come_from_the_answer_table_and_must_be_predicted():
    assert survey_image_ids(surveys()) == {"WS": ["w0", "w1", "c0", "c1"], "22q": ["q0", "q1", "c1", "c2"]}
    with pytest.raises(ValueError, match="predictions lack WS survey image\\(s\\) zz"):
        survey_readout(predictions(), "WS", ["w0", "zz"])
    with pytest.raises(ValueError, match="cannot be in the WS survey"):
        survey_readout(predictions(), "WS", ["q0"])
