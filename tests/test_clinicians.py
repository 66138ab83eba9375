"""Clinicians vs model: the per-image table, the best fake variant, the command's outputs and headers,
and the simulated survey against its targets (the statistics: test_clinicians_tables.py,
test_clinicians_inference.py, test_clinicians_calibration.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import options

from syndface.clinicians import compare, simulate
from syndface.clinicians.compare import best_fake_variant, choose_best_fake, image_table
from syndface.clinicians.paper import PAPER_HUMAN_ACCURACY, PAPER_OVERALL_HUMAN_ACCURACY
from syndface.clinicians.simulate import image_probabilities, simulate_survey
from syndface.clinicians.survey import read_survey
from syndface.io import read_tsv, write_tsv
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


def history(score: float) -> pd.DataFrame:
    return pd.DataFrame({"epoch": [1, 2], "val_balanced_accuracy": [0.1, score], "kept": [False, True]})


def test_best_fake_is_chosen_on_validation_histories_or_flagged_on_the_test_images(tmp_path):
    variants = ["real", "real+age_progression", "real+blended_55"]
    items = []
    for variant, scores in (("real+age_progression", (0.6, 0.7)), ("real+blended_55", (0.8, 0.7))):
        for fold, score in enumerate(scores):
            path = tmp_path / f"{variant}{fold}.tsv"
            write_tsv(history(score), path)
            items.append(f"{variant}={path}")
    chosen = choose_best_fake(variants, "validation", histories=items)
    assert (chosen.variant, chosen.selected_on) == ("real+blended_55", "validation")
    assert "real+age_progression 0.6500, real+blended_55 0.7500" in chosen.note
    with pytest.raises(ValueError, match="lack the fake variant"):
        choose_best_fake(variants, "validation", histories=items[:2])
    with pytest.raises(ValueError, match="pass --histories"):
        choose_best_fake(variants, "validation")
    with pytest.raises(ValueError, match="FAKE_VARIANT=PATH"):
        choose_best_fake(variants, "validation", histories=[f"real={tmp_path / 'x.tsv'}"])
    table2 = pd.DataFrame(
        {"class": ["WS", "average"], "real": [0.5, 0.5], "+age_progression": [0.9, 0.9], "+blended_55": [0.6, 0.6]}
    )
    write_tsv(table2, tmp_path / "table2.tsv")
    on_test = choose_best_fake(variants, "test", table2_path=tmp_path / "table2.tsv")
    assert (on_test.variant, on_test.selected_on) == ("real+age_progression", "test")
    assert choose_best_fake(variants[:2], "validation").selected_on == "only"
    assert choose_best_fake(["real"], "validation").variant is None


@pytest.fixture(scope="module")
def survey_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    manifest = make_manifest(per_group=6)
    answers = pd.concat([simulate_survey(manifest, s, 8, 25, 0.5, seed=1) for s in SURVEYS], ignore_index=True)
    answers.to_csv(root / "survey.tsv", sep="\t", index=False)
    args = ["--survey", str(root / "survey.tsv")]
    for seed, variant in enumerate(("real", "real+age_progression", "real+blended_55")):
        path = root / f"{variant}.tsv"
        make_predictions(manifest, 0.8, seed).to_csv(path, sep="\t", index=False)
        args += ["--predictions", f"{variant}={path}"]
    histories = []
    for variant, score in (("real+age_progression", 0.7), ("real+blended_55", 0.6)):
        for fold in range(2):
            path = root / f"{variant}_fold{fold}_history.tsv"
            write_tsv(history(score), path)
            histories.append(f"{variant}={path}")
    return root, args, histories


def test_compare_command_writes_table1_clinicians_and_figure_with_their_tests_named(tmp_path, survey_files):
    _, args, histories = survey_files
    outputs = {
        k: tmp_path / f"{k}.{ext}"
        for k, ext in (("table1", "tsv"), ("clinicians", "tsv"), ("images", "tsv"), ("figure", "png"))
    }
    args = [*args, "--histories", *histories, *options({"clinicians.q_family": ["variant", "survey"]})]
    for name, path in outputs.items():
        args += [f"--{name}", str(path)]
    assert compare.main(args) == 0
    table1 = read_tsv(outputs["table1"])
    assert len(table1) == 20 and (table1["best_fake_variant"] == "real+age_progression").all()
    assert (table1["best_fake_selected_on"] == "validation").all()
    header = "\n".join(line for line in outputs["table1"].read_text().splitlines() if line.startswith("#"))
    assert "SIMULATED" in header and "chosen on the validation folds" in header and "unit: image" in header
    assert "within each variant x survey of Table 1" in header and "Clopper-Pearson" in header
    clinicians = read_tsv(outputs["clinicians"])
    ages = clinicians[clinicians["level"] == "age_group"]
    assert ages.groupby(["variant", "survey"]).size().eq(10).all()  # q families of 10 rows: both truths
    assert {"p_count", "q_count", "p_rater_t", "p_rater_sign", "p_paper_ttest", "p_mixed"} <= set(clinicians.columns)
    assert "Poisson-binomial" in outputs["clinicians"].read_text()
    assert outputs["figure"].read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="include real="):
        compare.parse_predictions([f"real+age_progression={tmp_path / 'real+age_progression.tsv'}"])


def test_compare_command_flags_a_best_fake_chosen_on_the_test_images(tmp_path, survey_files):
    root, args, _ = survey_files
    table2 = pd.DataFrame({"class": ["average"], "real": [0.5], "+age_progression": [0.6], "+blended_55": [0.7]})
    write_tsv(table2, root / "table2.tsv")
    out = tmp_path / "table1.tsv"
    args = [*args, "--table2", str(root / "table2.tsv"), *options({"clinicians.best_fake_selection": "test"})]
    assert compare.main([*args, "--table1", str(out), "--clinicians", str(tmp_path / "c.tsv")]) == 0
    assert (read_tsv(out)["best_fake_variant"] == "real+blended_55").all()
    assert "ON THE TEST IMAGES" in out.read_text()


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
