"""`syndface compare-clinicians`: clinicians versus the model on the survey images (Table 1).

The model answers each survey's own images two-way, as in the paper: in the WS survey whichever
of P(WS) and P(control) is higher (a tie counts as `other`), likewise for 22q
(syndface.readout, shared with evaluate-classifier). Outputs:
- per image (--images): share of raters correct and each variant's answer;
- per variant x survey x truth x age group (--clinicians): human and model accuracy with 95%
  intervals (human: bootstrap over images of the share of raters correct; model: Wilson over
  the images), their difference,
  the paired permutation p-value (per image, human and model values swapped at random) and
  Benjamini-Hochberg q-values across the 20 age-group rows of each variant; plus one overall
  row per variant x survey with the paired t-test (the paper's test), the 95% interval of the
  difference and the Wilcoxon signed-rank test;
- Table 1 (--table1): 10 rows per survey (syndrome and other conditions x 5 age groups) with
  human, model (real images) and model (best fake variant: highest class-mean accuracy in
  Table 2) and their permutation p-values;
- the figure (--figure): human vs model accuracy by age group per survey.
Human accuracy of a group is the mean over its images of the share of raters correct, the
quantity the paired tests compare.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd

from syndface.clinicians.options import CompareOptions
from syndface.clinicians.stats import (
    benjamini_hochberg,
    bootstrap_mean_interval,
    paired_tests,
    permutation_pvalue,
    wilson_interval,
)
from syndface.clinicians.survey import OTHER, is_simulated, read_survey
from syndface.io import read_tsv, save_figure, variant_paths, write_tsv
from syndface.log import get_logger
from syndface.options import add_options_argument
from syndface.readout import survey_readout, truth_of
from syndface.seeding import derive_seed
from syndface.taxonomy import AGE_GROUPS, SURVEYS, VARIANTS

log = get_logger("syndface.clinicians")

ALL = "all"
TRUTH_LABELS = {OTHER: "other conditions"}


def human_table(answers: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """One row per survey image: its truth and age group (from `reference`, indexed by image_id), raters, share correct."""
    unknown = sorted(set(answers["image_id"]) - set(reference.index))
    if unknown:
        raise ValueError(
            f"survey image(s) without a prediction: {', '.join(unknown[:10])}; the survey set must be the predicted test split"
        )
    answers = answers.assign(disease=reference.loc[answers["image_id"], "disease"].to_numpy())
    answers["truth"] = [truth_of(s, d) for s, d in zip(answers["survey"], answers["disease"])]
    answers["correct"] = answers["answer"] == answers["truth"]
    images = (
        answers.groupby(["survey", "image_id", "truth"], sort=False)
        .agg(n_raters=("correct", "size"), n_correct=("correct", "sum"))
        .reset_index()
    )
    images["age_group"] = reference.loc[images["image_id"], "age_group"].to_numpy()
    images["human_accuracy"] = images["n_correct"] / images["n_raters"]
    return images


def image_table(answers: pd.DataFrame, predictions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per variant x survey image: raters, share correct, the model's answer and whether it is right."""
    for variant, table in predictions.items():
        missing = [c for c in ("image_id", "disease", "age_group") if c not in table.columns]
        if missing:
            raise ValueError(
                f"{variant} predictions lack column(s) {', '.join(missing)}; they come from `syndface predict`"
            )
    images = human_table(answers, next(iter(predictions.values())).set_index("image_id"))
    rows = []
    for variant, table in predictions.items():
        absent = sorted(set(images["image_id"]) - set(table["image_id"]))
        if absent:
            raise ValueError(f"{variant} predictions lack survey image(s) {', '.join(absent[:10])}")
        for survey, part in images.groupby("survey", sort=False):
            answer = survey_readout(table, survey, part["image_id"])["answer"].to_numpy()
            rows.append(
                part.assign(
                    variant=variant, model_answer=answer, model_correct=(answer == part["truth"].to_numpy()).astype(int)
                )
            )
    table = pd.concat(rows, ignore_index=True)
    table["survey"] = pd.Categorical(table["survey"], list(SURVEYS), ordered=True)
    table["age_group"] = pd.Categorical(table["age_group"], AGE_GROUPS, ordered=True)
    table = table.sort_values(["variant", "survey", "truth", "age_group", "image_id"], key=_sort_key, kind="stable")
    columns = [
        "variant",
        "survey",
        "image_id",
        "truth",
        "age_group",
        "n_raters",
        "n_correct",
        "human_accuracy",
        "model_answer",
        "model_correct",
    ]
    return table[columns].astype({"survey": str, "age_group": str}).reset_index(drop=True)


def _sort_key(column: pd.Series) -> pd.Series:
    """Sort key: the syndrome before `other`, variants in taxonomy order; other columns as they are."""
    if column.name == "truth":
        return column.eq(OTHER)
    if column.name == "variant":
        return column.map(lambda v: VARIANTS.index(v) if v in VARIANTS else len(VARIANTS))
    return column


def _summary(images: pd.DataFrame, n_permutations: int, seed: int, alternative: str, keys: tuple) -> dict:
    """Accuracies, intervals and the permutation p-value of one set of paired images."""
    model = images["model_correct"].to_numpy(float)
    human = images["human_accuracy"].to_numpy(float)
    n_answers = int(images["n_raters"].sum())
    human_low, human_high = bootstrap_mean_interval(human, 2000, derive_seed(seed, "human-interval", *keys))
    model_low, model_high = wilson_interval(int(model.sum()), len(model))
    return {
        "n_images": len(model),
        "n_answers": n_answers,
        "human_accuracy": human.mean(),
        "human_ci_low": human_low,
        "human_ci_high": human_high,
        "model_accuracy": model.mean(),
        "model_ci_low": model_low,
        "model_ci_high": model_high,
        "difference": model.mean() - human.mean(),
        "p_permutation": permutation_pvalue(
            model, human, n_permutations, derive_seed(seed, "compare-clinicians", *keys), alternative
        ),
    }


def group_table(images: pd.DataFrame, n_permutations: int, seed: int, alternative: str = "two-sided") -> pd.DataFrame:
    """Per variant: a row per survey x truth x age group (q-values across them), then an overall row per survey."""
    rows = []
    for variant, by_variant in images.groupby("variant", sort=False):
        age_rows = []
        for survey in SURVEYS:
            for truth in (survey, OTHER):
                for age in AGE_GROUPS:
                    group = by_variant[
                        (by_variant["survey"] == survey)
                        & (by_variant["truth"] == truth)
                        & (by_variant["age_group"] == age)
                    ]
                    if group.empty:
                        continue
                    keys = (variant, survey, truth, age)
                    age_rows.append(
                        {"level": "age_group", "variant": variant, "survey": survey, "truth": truth, "age_group": age}
                        | _summary(group, n_permutations, seed, alternative, keys)
                    )
        q = benjamini_hochberg(np.array([r["p_permutation"] for r in age_rows]))
        for row, q_value in zip(age_rows, q):
            row["p_permutation_bh"] = q_value
        rows += age_rows
        for survey in SURVEYS:
            group = by_variant[by_variant["survey"] == survey]
            if group.empty:
                continue
            keys = (variant, survey, ALL, ALL)
            tests = paired_tests(group["model_correct"].to_numpy(float), group["human_accuracy"].to_numpy(float))
            row = {"level": "survey", "variant": variant, "survey": survey, "truth": ALL, "age_group": ALL}
            rows.append(row | _summary(group, n_permutations, seed, alternative, keys) | vars(tests))
    columns = [
        "level", "variant", "survey", "truth", "age_group", "n_images", "n_answers",
        "human_accuracy", "human_ci_low", "human_ci_high", "model_accuracy", "model_ci_low", "model_ci_high",
        "difference", "p_permutation", "p_permutation_bh", "difference_ci_low", "difference_ci_high",
        "t_statistic", "p_ttest", "wilcoxon_statistic", "p_wilcoxon",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def best_fake_variant(table2: pd.DataFrame) -> str:
    """The fake variant with the highest class-mean ("average") accuracy in Table 2; ties: taxonomy order.

    Accepts the variant columns spelt `real+age_progression` or, as the paper prints them,
    `+age_progression`; other columns (labels, intervals) are ignored.
    """
    columns = {}
    for column in table2.columns:
        name = column if column in VARIANTS else f"real{column}"
        if name in VARIANTS and name != "real":
            columns[name] = column
    is_average = table2.astype(str).apply(lambda col: col.str.strip().str.lower() == "average").any(axis=1)
    if not columns or is_average.sum() != 1:
        raise ValueError(
            "Table 2 needs one row labelled 'average' and fake-variant columns such as '+age_progression'; make it with `syndface make-table2`"
        )
    average = table2.loc[is_average, list(columns.values())].iloc[0].astype(float)
    ordered = sorted(columns, key=VARIANTS.index)
    return max(ordered, key=lambda name: (average[columns[name]], -VARIANTS.index(name)))


def table1(groups: pd.DataFrame, best_fake: str | None, simulated: bool) -> pd.DataFrame:
    """The paper's Table 1: per survey, syndrome and other conditions x 5 age groups."""
    rows = groups[groups["level"] == "age_group"]
    real = rows[rows["variant"] == "real"].set_index(["survey", "truth", "age_group"])
    table = real[["n_images", "human_accuracy"]].rename(columns={"human_accuracy": "human"})
    table["model_real"] = real["model_accuracy"]
    table["p_real"] = real["p_permutation"]
    table["q_real"] = real["p_permutation_bh"]
    if best_fake is not None:
        fake = rows[rows["variant"] == best_fake].set_index(["survey", "truth", "age_group"]).reindex(table.index)
        table["model_best_fake"] = fake["model_accuracy"]
        table["p_best_fake"] = fake["p_permutation"]
        table["q_best_fake"] = fake["p_permutation_bh"]
        table["best_fake_variant"] = best_fake
    table["simulated"] = simulated
    table = table.reset_index()
    table.insert(1, "group", table["truth"].map(lambda t: TRUTH_LABELS.get(t, "disease")))
    return table


def parse_predictions(items: list[str]) -> dict[str, str]:
    """`variant=path` items -> {variant: path}; `real` must be among them."""
    paths = variant_paths(items, "--predictions")
    if "real" not in paths:
        raise ValueError(
            "--predictions must include real=results/predictions/real/test.tsv (Table 1's real-images model)"
        )
    return paths


def choose_best_fake(variants: list[str], table2_path: str | os.PathLike | None) -> str | None:
    """The best fake variant by Table 2, which must be among the given predictions; None without fake predictions."""
    fakes = [v for v in variants if v != "real"]
    if table2_path is None:
        if len(fakes) > 1:
            raise ValueError("several fake variants given: pass --table2 to pick the best one as the paper does")
        return fakes[0] if fakes else None
    best = best_fake_variant(read_tsv(table2_path))
    if best not in variants:
        raise ValueError(
            f"Table 2's best fake variant is {best}; pass --predictions {best}=results/predictions/{best}/test.tsv"
        )
    return best


def main(argv: list[str], prog: str = "syndface compare-clinicians") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--survey", nargs="+", required=True, help="survey long table(s): rater_id, survey, image_id, answer"
    )
    parser.add_argument(
        "--predictions",
        action="append",
        required=True,
        metavar="VARIANT=PATH",
        help="predictions of a variant; repeatable; real=... is required",
    )
    parser.add_argument(
        "--table2", help="results/table2.tsv: picks the best fake variant (highest class-mean accuracy)"
    )
    add_options_argument(parser, CompareOptions)
    parser.add_argument("--table1", required=True, help="output: Table 1 (TSV)")
    parser.add_argument("--clinicians", required=True, help="output: per age group and overall statistics (TSV)")
    parser.add_argument("--images", help="output: per image human share correct and model answers (TSV)")
    parser.add_argument("--figure", help="output: human vs model accuracy by age group (PNG/PDF/SVG)")
    args = parser.parse_args(argv)
    opts = args.options

    paths = parse_predictions(args.predictions)
    best_fake = choose_best_fake(list(paths), args.table2)
    answers = read_survey(args.survey)
    simulated = is_simulated(answers)
    predictions = {variant: read_tsv(path) for variant, path in paths.items()}
    images = image_table(answers, predictions)
    groups = group_table(images, opts.permutations, opts.seed, opts.alternative)
    table = table1(groups, best_fake, simulated)

    note = (
        ["human accuracies come from SIMULATED raters (syndface simulate-survey), not clinicians"] if simulated else []
    )
    if args.images:
        write_tsv(images, args.images, header_lines=note)
    write_tsv(
        groups,
        args.clinicians,
        header_lines=note
        + [
            f"permutation tests: {opts.permutations} swap patterns, {opts.alternative}; q = Benjamini-Hochberg across the age-group rows of a variant"
        ],
    )
    best_note = [f"best fake variant (Table 2 class-mean accuracy): {best_fake}"] if best_fake else []
    write_tsv(
        table,
        args.table1,
        header_lines=note
        + best_note
        + ["p = paired permutation test of model vs human accuracy over the group's images"],
    )
    if args.figure:
        from syndface.clinicians.figure import plot_accuracy_by_age  # matplotlib only when a figure is asked for

        save_figure(plot_accuracy_by_age(groups, ["real"] + ([best_fake] if best_fake else []), simulated), args.figure)
    for row in groups[groups["level"] == "survey"].itertuples():
        log.info(
            "%s %s survey: human %.3f vs model %.3f (t-test p=%.3g, Wilcoxon p=%.3g)",
            row.variant,
            row.survey,
            row.human_accuracy,
            row.model_accuracy,
            row.p_ttest,
            row.p_wilcoxon,
        )
    return 0
