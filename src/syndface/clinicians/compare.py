"""`syndface compare-clinicians`: clinicians versus the model on the survey images (Table 1).

The model answers each survey's own images two-way, as in the paper: in the WS survey whichever
of P(WS) and P(control) is higher (a tie counts as `other`), likewise for 22q
(syndface.readout, shared with evaluate-classifier). The statistics are
`syndface.clinicians.tables` (tests from `syndface.clinicians.inference`, each shown to hold its
level by simulation in tests/test_clinicians_calibration.py). Outputs:
- per image (--images): raters, share of raters correct and each variant's answer;
- per variant x survey x truth x age group and per variant x survey (--clinicians): human
  accuracy (Korn-Graubard interval, images as clusters) and model accuracy (Clopper-Pearson);
  the exact conditional Poisson-binomial count test (unit: image) and the rater-level paired t
  and sign tests (unit: rater), with Benjamini-Hochberg q-values over `clinicians.q_family`;
  per survey also the paper's paired t test over images and a logistic mixed model with rater
  and image random intercepts;
- Table 1 (--table1): 10 rows per survey (syndrome and other conditions x 5 age groups) with
  human, model (real images) and model (best fake variant), their p- and q-values;
- the figure (--figure): human vs model accuracy by age group per survey.
Every table's header names its unit, test, interval and q family.

The best fake variant (`clinicians.best_fake_selection`): `validation` (default) picks the one
whose fold models have the highest validation balanced accuracy at their kept epoch
(--histories, `syndface.classify.selection`), so no test image takes part in the choice;
`test` picks the highest Table 2 average (--table2), the paper's choice, flagged in Table 1's
header because its p-values are then optimistic.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pandas as pd

from syndface.classify.selection import SELECTION_NOTE, best_fake_from_histories
from syndface.clinicians.options import CompareOptions
from syndface.clinicians.survey import OTHER, is_simulated, read_survey
from syndface.clinicians.tables import answer_table, clinicians_header, group_statistics, table1, table1_header
from syndface.io import read_tsv, save_figure, variant_paths, write_tsv
from syndface.log import get_logger
from syndface.options import add_options_argument
from syndface.readout import survey_readout
from syndface.taxonomy import AGE_GROUPS, SURVEYS, VARIANTS, variant_fake_type

log = get_logger("syndface.clinicians")

SIMULATED_NOTE = "human accuracies come from SIMULATED raters (syndface simulate-survey), not clinicians"


def human_table(answers: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """One row per survey image: its truth and age group (from `reference`, indexed by image_id), raters, share correct."""
    long = answer_table(answers, reference)
    images = (
        long.groupby(["survey", "image_id", "truth", "age_group"], sort=False)
        .agg(n_raters=("correct", "size"), n_correct=("correct", "sum"))
        .reset_index()
    )
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


def parse_predictions(items: list[str]) -> dict[str, str]:
    """`variant=path` items -> {variant: path}; `real` must be among them."""
    paths = variant_paths(items, "--predictions")
    if "real" not in paths:
        raise ValueError(
            "--predictions must include real=results/predictions/real/test.tsv (Table 1's real-images model)"
        )
    return paths


def parse_histories(items: list[str]) -> dict[str, list[str]]:
    """`variant=path` items, one per fold model of a fake variant -> {variant: [paths]}."""
    out: dict[str, list[str]] = {}
    for item in items:
        variant, sep, path = item.partition("=")
        if not sep or not path or variant_fake_type(variant) is None:
            raise ValueError(
                f"--histories {item!r} is not FAKE_VARIANT=PATH "
                "(e.g. real+age_progression=results/classifier/real+age_progression/fold0/history.tsv)"
            )
        out.setdefault(variant, []).append(path)
    return out


@dataclass(frozen=True)
class BestFake:
    variant: str | None  # None: no fake variant given
    selected_on: str  # validation, test, or only (a single fake variant: nothing to choose)
    note: str  # how it was chosen, with the scores compared


def choose_best_fake(
    variants: list[str], selection: str, table2_path: str | None = None, histories: list[str] | None = None
) -> BestFake:
    """Table 1's best fake variant among the given predictions, chosen on `selection` (validation or test)."""
    fakes = [v for v in variants if v != "real"]
    if not fakes:
        return BestFake(None, selection, "no fake variant given")
    if selection == "validation":
        if not histories:
            if len(fakes) > 1:
                raise ValueError(
                    "several fake variants given: pass --histories (their fold models' history.tsv) to choose on "
                    "the validation folds, or choose on the test images (clinicians.best_fake_selection: test, --table2)"
                )
            return BestFake(fakes[0], "only", "the only fake variant given")
        paths = parse_histories(histories)
        missing = sorted(set(fakes) - set(paths), key=VARIANTS.index)
        if missing:
            raise ValueError(f"--histories lack the fake variant(s) {', '.join(missing)}")
        best, scores = best_fake_from_histories({v: [read_tsv(p) for p in paths[v]] for v in fakes})
        listed = ", ".join(f"{v} {scores[v]:.4f}" for v in fakes)
        return BestFake(best, "validation", f"{SELECTION_NOTE}: {listed}")
    if selection != "test":
        raise ValueError(f"unknown best-fake selection {selection!r}; allowed: validation, test")
    if table2_path is None:
        if len(fakes) > 1:
            raise ValueError("several fake variants given: pass --table2 to pick the best one as the paper did")
        return BestFake(fakes[0], "only", "the only fake variant given")
    best = best_fake_variant(read_tsv(table2_path))
    if best not in variants:
        raise ValueError(
            f"Table 2's best fake variant is {best}; pass --predictions {best}=results/predictions/{best}/test.tsv"
        )
    return BestFake(best, "test", "highest class-mean accuracy in Table 2")


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
        "--histories",
        nargs="+",
        default=[],
        metavar="VARIANT=PATH",
        help="history.tsv of every fold model of every fake variant (best_fake_selection validation)",
    )
    parser.add_argument(
        "--table2", help="results/table2.tsv: picks the best fake variant on the test images (best_fake_selection test)"
    )
    add_options_argument(parser, CompareOptions)
    parser.add_argument("--table1", required=True, help="output: Table 1 (TSV)")
    parser.add_argument("--clinicians", required=True, help="output: per age group and overall statistics (TSV)")
    parser.add_argument("--images", help="output: per image human share correct and model answers (TSV)")
    parser.add_argument("--figure", help="output: human vs model accuracy by age group (PNG/PDF/SVG)")
    args = parser.parse_args(argv)
    opts = args.options
    family = tuple(opts.q_family)

    paths = parse_predictions(args.predictions)
    best = choose_best_fake(list(paths), opts.best_fake_selection, args.table2, args.histories)
    answers = read_survey(args.survey)
    simulated = is_simulated(answers)
    predictions = {variant: read_tsv(path) for variant, path in paths.items()}
    images = image_table(answers, predictions)
    long = answer_table(answers, predictions["real"].set_index("image_id"))
    groups = group_statistics(long, images, opts.alternative, family=family)
    table = table1(groups, best.variant, simulated, best.selected_on)

    if args.images:
        write_tsv(images, args.images, header_lines=[SIMULATED_NOTE] if simulated else [])
    write_tsv(groups, args.clinicians, header_lines=clinicians_header(opts.alternative, family, simulated))
    write_tsv(
        table,
        args.table1,
        header_lines=table1_header(opts.alternative, best.variant, best.selected_on, family, simulated, note=best.note),
    )
    if args.figure:
        from syndface.clinicians.figure import plot_accuracy_by_age  # matplotlib only when a figure is asked for

        variants = ["real"] + ([best.variant] if best.variant else [])
        save_figure(plot_accuracy_by_age(groups, variants, simulated), args.figure)
    if best.variant:
        log.info("best fake variant: %s (%s)", best.variant, best.note)
    for row in groups[groups["level"] == "survey"].itertuples():
        log.info(
            "%s %s survey: human %.3f vs model %.3f (count test p_count=%.3g, paper's t p_paper_ttest=%.3g, "
            "mixed model p_mixed=%.3g)",
            row.variant,
            row.survey,
            row.human_accuracy,
            row.model_accuracy,
            row.p_count,
            row.p_paper_ttest,
            row.p_mixed,
        )
    return 0
