"""`syndface make-table2`: the paper's Table 2 from the per-variant metrics.tsv files.

Rows WS, 22q, control, unaffected, average (the unweighted class mean); one column per variant
given, in the paper's order: real, +unrelated, +age_related, +age_progression, +blended_55,
+blended_75. Values are accuracies as fractions, each with its 95 % interval from the metrics
(`<column>_ci_low`, `<column>_ci_high`); the header names the unit and the interval methods
(Clopper-Pearson per class; classifier.class_mean_interval for the average).

When the metrics carry the test-set accounting (`evaluate` given the manifest), three columns
follow `class`: `n_test` (test images in the manifest), `n_evaluated` and `n_excluded` (the
reasons are in each variant's excluded.tsv). Every variant predicts the same test images, so the
counts are one set of columns; variants that disagree are an error.
"""

from __future__ import annotations

import argparse

import pandas as pd

from syndface.classify.evaluate import AVERAGE
from syndface.classify.options import Table2Options
from syndface.intervals import interval_note
from syndface.io import read_tsv, variant_paths, write_tsv
from syndface.options import add_options_argument
from syndface.taxonomy import DISEASES, VARIANTS, variant_fake_type

ROWS = (*DISEASES, AVERAGE)
COUNT_COLUMNS = {"n_test": "n_test", "n": "n_evaluated", "n_excluded": "n_excluded"}


def column_name(variant: str) -> str:
    """`real` -> `real`; `real+unrelated` -> `+unrelated`."""
    fake_type = variant_fake_type(variant)
    return "real" if fake_type is None else f"+{fake_type}"


def make_table2(metrics: dict[str, pd.DataFrame], with_ci: bool = False) -> pd.DataFrame:
    """Table 2 from {variant: metrics table}; columns in the paper's variant order."""
    table = pd.DataFrame({"class": list(ROWS)})
    counted = {v: m for v, m in metrics.items() if set(COUNT_COLUMNS) <= set(m.columns)}
    if counted:
        if len(counted) != len(metrics):
            raise ValueError(
                f"only some variants' metrics carry test counts ({', '.join(counted)}): evaluate them all with the manifest"
            )
        counts = {v: m.set_index("class").loc[list(ROWS), list(COUNT_COLUMNS)] for v, m in counted.items()}
        first, reference = next(iter(counts.items()))
        for variant, frame in counts.items():
            if not frame.equals(reference):
                raise ValueError(
                    f"variants {first} and {variant} were evaluated on different test images "
                    f"({reference['n'].tolist()} vs {frame['n'].tolist()} per class): re-run their predictions"
                )
        for column, name in COUNT_COLUMNS.items():
            table[name] = reference[column].astype(int).to_numpy()
    for variant in (v for v in VARIANTS if v in metrics):
        frame = metrics[variant].set_index("class")
        missing = [r for r in ROWS if r not in frame.index]
        if missing:
            raise ValueError(
                f"metrics of {variant} lack row(s) {', '.join(missing)}: write them with `syndface evaluate-classifier`"
            )
        name = column_name(variant)
        table[name] = frame.loc[list(ROWS), "accuracy"].to_numpy()
        if with_ci:
            table[f"{name}_ci_low"] = frame.loc[list(ROWS), "ci_low"].to_numpy()
            table[f"{name}_ci_high"] = frame.loc[list(ROWS), "ci_high"].to_numpy()
    return table.round(4)


TTA_SUFFIX = " (TTA)"


def add_tta_columns(table: pd.DataFrame, tta: dict[str, pd.DataFrame], with_ci: bool = False) -> pd.DataFrame:
    """Table 2 with a "<column> (TTA)" column (and its interval) after the variants' own for each
    variant in `tta`, from its test-time-augmented metrics; they must count the table's images."""
    table = table.copy()
    for variant in (v for v in VARIANTS if v in tta):
        part = make_table2({variant: tta[variant]}, with_ci)
        counts = [c for c in COUNT_COLUMNS.values() if c in table.columns]
        if counts != [c for c in COUNT_COLUMNS.values() if c in part.columns] or not part[counts].equals(table[counts]):
            raise ValueError(f"the TTA metrics of {variant} count other test images than Table 2's: re-run them")
        name = column_name(variant)
        for column in (c for c in part.columns if c == name or c.startswith(f"{name}_ci_")):
            table[name + TTA_SUFFIX + column[len(name) :]] = part[column]
    return table


def table2_header(
    class_mean_interval: str, with_ci: bool, n_boot: int | None = None, seed: int | None = None, level: float = 0.95
) -> list[str]:
    """Header lines of Table 2: the unit, what each row is and, with intervals, their methods."""
    lines = [
        "Table 2: test accuracy (recall) per class and their unweighted mean (average), as fractions",
        "unit: the test image; each variant's fold ensemble on the same held-out test split; no test between variants",
    ]
    if with_ci:
        mean_note = interval_note(class_mean_interval, level, n_boot)
        if class_mean_interval == "bootstrap" and seed is not None:
            mean_note += f", seed {seed}"
        lines.append(
            f"<column>_ci_low/_ci_high: {interval_note('clopper-pearson', level)} per class; average: {mean_note}"
        )
    return lines


def main(argv: list[str], prog: str = "syndface make-table2") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--metrics",
        nargs="+",
        required=True,
        metavar="VARIANT=PATH",
        help="e.g. real=results/evaluation/real/metrics.tsv real+age_progression=...",
    )
    p.add_argument(
        "--tta",
        nargs="*",
        default=[],
        metavar="VARIANT=PATH",
        help="test-time-augmented metrics of a variant (syndface predict-tta, evaluate-classifier): column '<variant> (TTA)'",
    )
    add_options_argument(p, Table2Options)
    p.add_argument("--out", required=True, help="results/table2.tsv")
    args = p.parse_args(argv)
    opts = args.options
    paths = variant_paths(args.metrics, "--metrics")
    table = make_table2({variant: read_tsv(path) for variant, path in paths.items()}, with_ci=True)
    header = table2_header(opts.class_mean_interval, with_ci=True, n_boot=opts.bootstrap, seed=opts.seed)
    tta = {variant: read_tsv(path) for variant, path in variant_paths(args.tta, "--tta").items()}
    if tta:
        table = add_tta_columns(table, tta, with_ci=True)
        header.append(
            f"{', '.join(column_name(v) + TTA_SUFFIX for v in tta)}: the same fold models with test-time augmentation "
            "(classifier.tta; predictions and header in results/evaluation/<variant>/tta/), beyond the paper"
        )
    write_tsv(table, args.out, header_lines=header)
    return 0
