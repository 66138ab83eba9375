"""`syndface build-manifest`: import every configured input into one validated manifest."""

from __future__ import annotations

import argparse
import json

import pandas as pd

from syndface.cohort.importers import DEFAULT_FAIRFACE_AGE_MAP, check_age_map, import_input
from syndface.cohort.manifest import REQUIRED_COLUMNS, load_schema, validate_manifest
from syndface.io import write_tsv
from syndface.log import get_logger
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


def main(argv: list[str], prog: str = "syndface build-manifest") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--inputs", required=True, help="JSON list of input specs (config cohort.inputs)")
    parser.add_argument(
        "--fairface-age-map",
        default=json.dumps(DEFAULT_FAIRFACE_AGE_MAP),
        help="JSON object: FairFace age bin -> age group or 'exclude'",
    )
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--schema", required=True, help="workflow/schemas/manifest.schema.yaml")
    parser.add_argument("--out", required=True)
    parser.add_argument("--rejects", required=True)
    parser.add_argument("--summary", required=True)
    args = parser.parse_args(argv)

    manifest, rejects = build_manifest(
        json.loads(args.inputs), json.loads(args.fairface_age_map), args.seed, load_schema(args.schema)
    )
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
