"""clinicians.tsv and Table 1 with tests valid for a 0/1 model answer (`syndface.clinicians.inference`).

Per variant x survey x truth (syndrome / other conditions) x age group, and per variant x
survey over all its images:
- human accuracy: the mean over the group's images of the share of raters correct (the paper's
  "average accuracy over all 10 test images"), with Korn-Graubard's interval (images as
  clusters of answers);
- model accuracy: the share of the group's images the model answers right, Clopper-Pearson;
- the count test (unit: image): the model's number of correct images against a random rater's,
  exact conditional Poisson-binomial (`p_count`; `p_count_min`, the smallest p these images
  allow, says when a group cannot reach significance at all);
- the rater-level tests (unit: rater): each rater's accuracy on the group's images they saw
  against the model's on the same images, paired t (`p_rater_t`) and exact sign (`p_rater_sign`);
- survey rows only: the paper's paired t over images (`p_paper_ttest`, its test) and the mixed
  model with rater and image random effects (`p_mixed`).
q-values: Benjamini-Hochberg over the age-group rows within each family (default: one
variant x survey x truth, i.e. the 5 age groups of one readout), for the count and rater tests.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from syndface.clinicians.inference import (
    mixed_model_test,
    paper_paired_ttest,
    random_rater_test,
    rater_accuracies,
    rater_level_tests,
)
from syndface.intervals import clustered_proportion_interval, interval_note, proportion_interval
from syndface.multiplicity import bh_by_family, family_note
from syndface.readout import OTHER, truth_of
from syndface.taxonomy import AGE_GROUPS, SURVEYS

ALL = "all"
DEFAULT_FAMILY = ("variant", "survey", "truth")
TRUTH_LABELS = {OTHER: "other conditions"}


def answer_table(answers: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """One row per rater answer with its truth, age group and whether it is right.

    reference: the predictions (or manifest) indexed by image_id, with disease and age_group."""
    unknown = sorted(set(answers["image_id"]) - set(reference.index))
    if unknown:
        raise ValueError(
            f"survey image(s) without a prediction: {', '.join(unknown[:10])}; the survey set must be the predicted test split"
        )
    disease = reference.loc[answers["image_id"], "disease"].to_numpy()
    table = answers[["rater_id", "survey", "image_id", "answer"]].copy()
    table["truth"] = [truth_of(s, d) for s, d in zip(table["survey"], disease)]
    table["age_group"] = reference.loc[answers["image_id"], "age_group"].to_numpy()
    table["correct"] = table["answer"] == table["truth"]
    return table


def _statistics(images: pd.DataFrame, answers: pd.DataFrame, alternative: str, level: float, survey: bool) -> dict:
    """Every statistic of one group (images of one variant, with the raters' answers to them)."""
    x = images["model_correct"].to_numpy(int)
    k, m = images["n_correct"].to_numpy(int), images["n_raters"].to_numpy(int)
    model = pd.Series(x, index=images["image_id"].to_numpy())
    human_low, human_high = clustered_proportion_interval(k, m, level)
    model_low, model_high = proportion_interval(int(x.sum()), len(x), level)
    count = random_rater_test(x, k, m)
    raters = rater_level_tests(rater_accuracies(answers, model), alternative, level)
    row = {
        "n_images": len(x),
        "n_raters": raters.n_raters,
        "n_answers": int(m.sum()),
        "human_accuracy": float(np.mean(k / m)),
        "human_ci_low": human_low,
        "human_ci_high": human_high,
        "model_correct": int(x.sum()),
        "model_accuracy": float(x.mean()),
        "model_ci_low": model_low,
        "model_ci_high": model_high,
        "difference": float(x.mean() - np.mean(k / m)),
        "expected_correct": count.expected,
        "p_count": count.p(alternative),
        "p_count_min": count.p_min_greater,
        "rater_difference": raters.difference,
        "rater_difference_ci_low": raters.difference_ci_low,
        "rater_difference_ci_high": raters.difference_ci_high,
        "p_rater_t": raters.p_ttest,
        "n_model_better": raters.n_model_better,
        "n_rater_better": raters.n_rater_better,
        "n_ties": raters.n_ties,
        "p_rater_sign": raters.p_sign,
    }
    if survey:
        paper = paper_paired_ttest(x, k / m, level)
        mixed = mixed_model_test(answers, model)
        row |= {
            "paper_t": paper.t_statistic,
            "p_paper_ttest": paper.p_value,
            "paper_difference_ci_low": paper.difference_ci_low,
            "paper_difference_ci_high": paper.difference_ci_high,
            "mixed_log_odds_ratio": mixed.log_odds_ratio,
            "mixed_log_odds_ratio_sd": mixed.log_odds_ratio_sd,
            "p_mixed": mixed.p_value,
            "mixed_rater_sd": mixed.rater_sd,
            "mixed_image_sd": mixed.image_sd,
        }
    return row


def group_statistics(
    answers: pd.DataFrame,
    images: pd.DataFrame,
    alternative: str = "two-sided",
    level: float = 0.95,
    family: tuple[str, ...] = DEFAULT_FAMILY,
) -> pd.DataFrame:
    """clinicians.tsv: per variant, a row per survey x truth x age group, then one per survey.

    answers: `answer_table`'s rows; images: `compare.image_table` (one row per variant x survey image)."""
    rows = []
    for variant, by_variant in images.groupby("variant", sort=False):
        for survey in SURVEYS:
            in_survey = by_variant[by_variant["survey"] == survey]
            if in_survey.empty:
                continue
            survey_answers = answers[answers["survey"] == survey]
            for truth in (survey, OTHER):
                for age in AGE_GROUPS:
                    group = in_survey[(in_survey["truth"] == truth) & (in_survey["age_group"] == age)]
                    if group.empty:
                        continue
                    seen = survey_answers[survey_answers["image_id"].isin(group["image_id"])]
                    keys = {
                        "level": "age_group",
                        "variant": variant,
                        "survey": survey,
                        "truth": truth,
                        "age_group": age,
                    }
                    rows.append(keys | _statistics(group, seen, alternative, level, survey=False))
            keys = {"level": "survey", "variant": variant, "survey": survey, "truth": ALL, "age_group": ALL}
            rows.append(keys | _statistics(in_survey, survey_answers, alternative, level, survey=True))
    table = pd.DataFrame(rows)
    by_age = table[table["level"] == "age_group"]
    for p_column, q_column in (("p_count", "q_count"), ("p_rater_t", "q_rater_t")):
        table[q_column] = bh_by_family(by_age, p_column, list(family)).reindex(table.index)
    return table


def clinicians_header(
    alternative: str, family: tuple[str, ...] = DEFAULT_FAMILY, simulated: bool = False, level: float = 0.95
) -> list[str]:
    """Header lines of clinicians.tsv: unit, test, interval and family of every column group."""
    lines = (
        ["human accuracies come from SIMULATED raters (syndface simulate-survey), not clinicians"] if simulated else []
    )
    return lines + [
        f"alternative: {alternative} (greater = model better than the clinicians)",
        f"human_accuracy: mean over images of the share of raters correct; {interval_note('korn-graubard', level)}",
        f"model_accuracy: share of images the model answers right; {interval_note('clopper-pearson', level)}",
        "p_count (unit: image): exact conditional Poisson-binomial test of the model's count of correct images "
        "against a random rater's (null: on every image the model's answer is exchangeable with the raters'); "
        "two-sided = sum of the probabilities of counts no more likely than the observed; "
        "p_count_min = smallest p_count (greater) the group's images allow",
        "p_rater_t, p_rater_sign (unit: rater): each rater's accuracy on the images they saw against the model's on "
        "the same images; paired t test over raters and exact sign test (ties dropped)",
        "survey rows: p_paper_ttest = the paper's paired t test over images of model (0/1) - share correct; "
        "p_mixed = logistic mixed model with rater and image random intercepts (variational variance components, "
        "Laplace SE of the model effect)",
        family_note(list(family), "the age-group rows") + " (q_count for p_count, q_rater_t for p_rater_t)",
    ]


def table1(groups: pd.DataFrame, best_fake: str | None, simulated: bool, selected_on: str = "test") -> pd.DataFrame:
    """The paper's Table 1 (per survey: syndrome and other conditions x 5 age groups) from `group_statistics`."""
    rows = groups[groups["level"] == "age_group"]
    real = rows[rows["variant"] == "real"].set_index(["survey", "truth", "age_group"])
    table = real[["n_images", "human_accuracy", "human_ci_low", "human_ci_high"]].rename(
        columns={"human_accuracy": "human"}
    )
    parts = [("real", real)]
    if best_fake is not None:
        parts.append(
            (
                "best_fake",
                rows[rows["variant"] == best_fake].set_index(["survey", "truth", "age_group"]).reindex(table.index),
            )
        )
    for name, part in parts:
        table[f"model_{name}"] = part["model_accuracy"]
        table[f"model_{name}_ci_low"] = part["model_ci_low"]
        table[f"model_{name}_ci_high"] = part["model_ci_high"]
        table[f"p_{name}"] = part["p_count"]
        table[f"q_{name}"] = part["q_count"]
        table[f"p_{name}_raters"] = part["p_rater_t"]
    if best_fake is not None:
        table["best_fake_variant"] = best_fake
        table["best_fake_selected_on"] = selected_on
    table["simulated"] = simulated
    table = table.reset_index()
    table.insert(1, "group", table["truth"].map(lambda t: TRUTH_LABELS.get(t, "disease")))
    return table


def table1_header(
    alternative: str,
    best_fake: str | None,
    selected_on: str,
    family: tuple[str, ...] = DEFAULT_FAMILY,
    simulated: bool = False,
    level: float = 0.95,
    note: str = "",
) -> list[str]:
    """Header lines of Table 1, naming unit, tests, intervals, the q family and how the best fake was
    chosen (`selected_on`: test, validation or only; `note`: the scores compared)."""
    lines = (
        ["human accuracies come from SIMULATED raters (syndface simulate-survey), not clinicians"] if simulated else []
    )
    detail = f" ({note})" if note else ""
    if best_fake is not None:
        if selected_on == "test":
            lines.append(
                f"best fake variant: {best_fake}, chosen by Table 2's class-mean accuracy ON THE TEST IMAGES{detail}: "
                "its p and q values are optimistic (selection on the data they test)"
            )
        elif selected_on == "only":
            lines.append(f"best fake variant: {best_fake}, the only fake variant (no selection)")
        else:
            lines.append(f"best fake variant: {best_fake}, chosen on the validation folds{detail}")
    return lines + [
        f"human: mean share of raters correct over the group's images, {interval_note('korn-graubard', level)}; "
        f"model_*: share of images right, {interval_note('clopper-pearson', level)}",
        f"p_* (unit: image; {alternative}): exact conditional Poisson-binomial test of the model's count of correct "
        "images against a random rater's; p_*_raters (unit: rater): paired t over raters, model vs rater on the "
        "rater's own images",
        family_note(list(family), "Table 1") + " (q_* for p_*)",
    ]
