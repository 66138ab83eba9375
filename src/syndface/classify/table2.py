"""`syndface make-table2`: the paper's Table 2 from the per-variant metrics.tsv files.

Rows WS, 22q, control, unaffected, average (the unweighted class mean); one column per variant
given, in the paper's order: real, +unrelated, +age_related, +age_progression, +blended_55,
+blended_75. Values are accuracies as fractions; --ci adds each column's 95 % interval.
"""

from __future__ import annotations

import argparse

import pandas as pd

from syndface.classify.evaluate import AVERAGE
from syndface.intervals import interval_note
from syndface.io import read_tsv, write_tsv
from syndface.taxonomy import DISEASES, VARIANTS, variant_fake_type

ROWS = (*DISEASES, AVERAGE)


def column_name(variant: str) -> str:
    """`real` -> `real`; `real+unrelated` -> `+unrelated`."""
    fake_type = variant_fake_type(variant)
    return "real" if fake_type is None else f"+{fake_type}"


def parse_metrics_args(items: list[str]) -> dict[str, str]:
    """[`variant=path`, ...] -> {variant: path}, each variant once."""
    out: dict[str, str] = {}
    for item in items:
        variant, sep, path = item.partition("=")
        if not sep or not path:
            raise ValueError(f"--metrics {item!r} is not VARIANT=PATH (e.g. real=results/evaluation/real/metrics.tsv)")
        variant_fake_type(variant)
        if variant in out:
            raise ValueError(f"variant {variant!r} is given twice")
        out[variant] = path
    return out


def make_table2(metrics: dict[str, pd.DataFrame], with_ci: bool = False) -> pd.DataFrame:
    """Table 2 from {variant: metrics table}; columns in the paper's variant order."""
    table = pd.DataFrame({"class": list(ROWS)})
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
    p.add_argument("--ci", action="store_true", help="add <column>_ci_low/_ci_high columns")
    p.add_argument("--out", required=True, help="results/table2.tsv")
    args = p.parse_args(argv)
    paths = parse_metrics_args(args.metrics)
    table = make_table2({variant: read_tsv(path) for variant, path in paths.items()}, args.ci)
    write_tsv(
        table,
        args.out,
        header_lines=["Table 2: test accuracy (recall) per class and their unweighted mean (average), as fractions"],
    )
    return 0
