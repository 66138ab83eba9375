"""`syndface build-manifest`: import every configured input into one validated manifest."""

from __future__ import annotations

import argparse

import pandas as pd

from syndface.cohort.importers import (
    ORIGIN_COLUMNS,
    REJECT_COLUMNS,
    check_age_map,
    import_input,
    paper_spelling_hint,
)
from syndface.cohort.manifest import REQUIRED_COLUMNS, ManifestError, load_schema, row_problems, validate_manifest
from syndface.cohort.options import ManifestOptions
from syndface.io import write_tsv
from syndface.log import get_logger
from syndface.options import add_options_argument
from syndface.taxonomy import AGE_GROUPS, DISEASES

log = get_logger("syndface.cohort")


def screen_rows(rows: pd.DataFrame, schema: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows that fit the row schema, rejects naming each other row and why)."""
    reasons = row_problems(rows, schema, hint=paper_spelling_hint)
    bad = reasons != ""
    names = rows["image_id"].where(rows["image_id"].notna() & (rows["image_id"].astype(str) != ""), rows["path"])
    rejects = pd.DataFrame(
        {
            "input": rows.loc[bad, "_input"],
            "line": rows.loc[bad, "_line"],
            "name": names[bad],
            "reason": reasons[bad],
        },
        columns=list(REJECT_COLUMNS),
    )
    return rows[~bad], rejects


def reason_summary(rejects: pd.DataFrame, limit: int = 5) -> str:
    """The commonest reject reasons with their counts, one per line."""
    counts = rejects["reason"].value_counts()
    lines = [f"  {n:6d} x {reason}" for reason, n in counts.head(limit).items()]
    if len(counts) > limit:
        lines.append(f"  ... and {len(counts) - limit} other reason(s)")
    return "\n".join(lines)


def build_manifest(
    inputs: list[dict], fairface_age_map: dict[str, str], seed: int, schema: dict
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Concatenate the imported inputs in config order and validate the result.

    A row that cannot be mapped or breaks the row schema is rejected with its reason. An input
    that loses every row is an error (a wrong format, label spelling or column is far likelier
    than an input meant to contribute nothing), as are the table-level problems of
    `validate_manifest`; each message names the rows and says what was expected.
    """
    if not inputs:
        raise ManifestError("no cohort inputs are configured (cohort.inputs is empty)")
    check_age_map(fairface_age_map)
    tables, rejects = [], []
    for spec in inputs:
        rows, rej = import_input(spec, fairface_age_map, seed)
        missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
        if missing:
            raise ManifestError(
                f"{spec['path']} ({spec['format']}): missing required column(s) {', '.join(missing)}; "
                f"a {spec['format']} table needs {', '.join(REQUIRED_COLUMNS)}"
            )
        rows, bad = screen_rows(rows, schema)
        rej = pd.concat([rej, bad], ignore_index=True) if len(bad) else rej
        log.info("%s (%s): %d rows imported, %d rejected", spec["path"], spec["format"], len(rows), len(rej))
        if rows.empty:
            raise ManifestError(
                f"no rows left from {spec['path']} (format {spec['format']}): "
                + (
                    f"all {len(rej)} were rejected:\n{reason_summary(rej)}\n"
                    "Check the input's format and spelling against the reasons (the README lists what each format expects)."
                    if len(rej)
                    else "the table has no data rows."
                )
            )
        tables.append(rows)
        rejects.append(rej)
    manifest = pd.concat(tables, ignore_index=True)
    extra = [c for c in manifest.columns if c not in REQUIRED_COLUMNS and c not in ORIGIN_COLUMNS]
    validate_manifest(manifest, schema)
    return manifest[list(REQUIRED_COLUMNS) + extra], pd.concat(rejects, ignore_index=True)


def summarise(manifest: pd.DataFrame) -> pd.DataFrame:
    """Image counts per split x source x disease x age group, in taxonomy order."""
    counts = manifest.groupby(["split", "source", "disease", "age_group"]).size().rename("n").reset_index()
    counts["disease"] = pd.Categorical(counts["disease"], DISEASES, ordered=True)
    counts["age_group"] = pd.Categorical(counts["age_group"], AGE_GROUPS, ordered=True)
    return counts.sort_values(["split", "source", "disease", "age_group"]).reset_index(drop=True)


def resolve_demo(inputs: list[dict], demo_cohort: str | None) -> list[dict]:
    """`format: demo` entries -> our TSV format at the generated demo table."""
    if any(spec["format"] == "demo" for spec in inputs) and not demo_cohort:
        raise ValueError("cohort.inputs lists format demo: give the generated table with --demo-cohort")
    return [
        {**spec, "format": "syndface", "path": demo_cohort} if spec["format"] == "demo" else spec for spec in inputs
    ]


def main(argv: list[str], prog: str = "syndface build-manifest") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    add_options_argument(parser, ManifestOptions)
    parser.add_argument("--demo-cohort", help="the generated demo table (results/demo/cohort.tsv) for format demo")
    parser.add_argument("--out", required=True)
    parser.add_argument("--rejects", required=True)
    parser.add_argument("--summary", required=True)
    args = parser.parse_args(argv)

    opts = args.options
    inputs = resolve_demo(opts.inputs, args.demo_cohort)
    manifest, rejects = build_manifest(inputs, opts.fairface_age_map, opts.seed, load_schema())
    write_tsv(rejects, args.rejects)
    write_tsv(summarise(manifest), args.summary)
    write_tsv(manifest, args.out)
    if len(rejects):
        log.warning(
            "%d input rows could not be mapped; they are listed with the reason in %s", len(rejects), args.rejects
        )
        for reason, n in rejects["reason"].value_counts().items():
            log.warning("  %5d x %s", n, reason)
    log.info(
        "manifest: %d images (%s)",
        len(manifest),
        ", ".join(f"{k}={v}" for k, v in manifest["disease"].value_counts().items()),
    )
    return 0
