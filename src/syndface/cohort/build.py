"""`syndface build-manifest`: import every configured input into one validated manifest."""

from __future__ import annotations

import argparse

import pandas as pd

from syndface.cohort.importers import check_age_map, import_input
from syndface.cohort.manifest import REQUIRED_COLUMNS, load_schema, validate_manifest
from syndface.cohort.options import ManifestOptions
from syndface.io import write_tsv
from syndface.log import get_logger
from syndface.options import add_options_argument
from syndface.taxonomy import AGE_GROUPS, DISEASES

log = get_logger("syndface.cohort")


def build_manifest(
    inputs: list[dict], fairface_age_map: dict[str, str], seed: int, schema: dict
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Concatenate the imported inputs in config order and validate the result."""
    check_age_map(fairface_age_map)
    tables, rejects = [], []
    for spec in inputs:
        rows, rej = import_input(spec, fairface_age_map, seed)
        log.info("%s (%s): %d rows imported, %d rejected", spec["path"], spec["format"], len(rows), len(rej))
        tables.append(rows)
        rejects.append(rej)
    manifest = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=list(REQUIRED_COLUMNS))
    extra = [c for c in manifest.columns if c not in REQUIRED_COLUMNS]
    manifest = manifest[list(REQUIRED_COLUMNS) + extra]
    validate_manifest(manifest, schema)
    return manifest, pd.concat(rejects, ignore_index=True)


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
