"""The manifest: one row per image, checked against schemas/manifest.schema.yaml (shipped with the package).

The schema is the single definition of the columns. `row_problems` applies it row by row (an
input row that breaks it is rejected with the reason), `validate_manifest` column-wise (vectorised,
so a 64k-row manifest checks in well under a second) and adds the checks a row schema cannot
express: unique image ids and no subject in both train and test. Those are table-level errors:
they stop the build, naming the rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from syndface.options import SCHEMA_DIR

REQUIRED_COLUMNS = ("image_id", "path", "disease", "age_group", "source", "subject_id", "split")


class ManifestError(ValueError):
    """A manifest that would make later stages wrong; the message lists every offending row."""


def load_schema(path: str | Path = SCHEMA_DIR / "manifest.schema.yaml") -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def _sample(values, limit: int = 10) -> str:
    values = list(values)
    more = f" ... and {len(values) - limit} more" if len(values) > limit else ""
    return ", ".join(map(str, values[:limit])) + more


def schema_problems(df: pd.DataFrame, schema: dict) -> list[str]:
    """Every way `df` breaks the row schema (required columns, enums, patterns, types)."""
    problems = []
    missing = [c for c in schema.get("required", []) if c not in df.columns]
    if missing:
        problems.append(f"missing required column(s): {', '.join(missing)}")
    for column, spec in schema.get("properties", {}).items():
        if column not in df.columns:
            continue
        values = df[column]
        if column in schema.get("required", []) and values.isna().any():
            rows = df.index[values.isna()]
            problems.append(f"column {column!r} is empty in rows {_sample(rows)}")
        present = values.dropna()
        if "enum" in spec:
            bad = present[~present.isin(spec["enum"])]
            if len(bad):
                problems.append(
                    f"column {column!r} has value(s) {_sample(sorted(set(map(str, bad))))} "
                    f"(rows {_sample(bad.index)}); allowed: {', '.join(map(str, spec['enum']))}"
                )
        if "pattern" in spec:
            ok = present.astype(str).str.match(re.compile(spec["pattern"]))
            bad = present[~ok]
            if len(bad):
                problems.append(f"column {column!r} values {_sample(bad)} do not match {spec['pattern']!r}")
        if spec.get("type") in ("number", "integer"):
            numeric = pd.to_numeric(present, errors="coerce")
            bad = present[numeric.isna()]
            if len(bad):
                problems.append(f"column {column!r} must be a {spec['type']}, got {_sample(bad)}")
    return problems


def _value_problem(column: str, spec: dict, value, hint: Callable[[str, str], str | None] | None) -> str:
    """Why one value breaks its column's schema ('' when it does not)."""
    text = str(value)
    if "enum" in spec and text not in map(str, spec["enum"]):
        advice = hint(column, text) if hint else None
        expected = f"expected one of {', '.join(map(str, spec['enum']))}"
        return f"unknown {column} {text!r} ({advice})" if advice else f"unknown {column} {text!r} ({expected})"
    if "pattern" in spec and not re.match(spec["pattern"], text):
        return f"{column} {text!r} does not match {spec['pattern']!r}"
    if spec.get("type") in ("number", "integer") and pd.isna(pd.to_numeric(pd.Series([text]), errors="coerce")[0]):
        return f"{column} {text!r} is not a {spec['type']}"
    return ""


def row_problems(df: pd.DataFrame, schema: dict, hint: Callable[[str, str], str | None] | None = None) -> pd.Series:
    """Per row, every way it breaks the row schema, joined by '; ' ('' for a sound row).

    `hint(column, value)` may say what to write instead of a value outside a column's enum (the
    paper's spellings); otherwise the message lists the allowed values. Columns the table lacks
    are a table-level problem (`schema_problems`), not reported here.
    """
    out = np.full(len(df), "", dtype=object)
    required = set(schema.get("required", []))
    for column, spec in schema.get("properties", {}).items():
        if column not in df.columns:
            continue
        values = df[column]
        empty = values.isna().to_numpy() | (values.astype(str).str.strip() == "").to_numpy()
        message = np.full(len(df), "", dtype=object)
        if column in required:
            message[empty] = f"empty {column}"
        present = values[~empty]
        reasons = {v: _value_problem(column, spec, v, hint) for v in present.unique()}
        message[~empty] = present.map(reasons).to_numpy(dtype=object)
        out = np.where(message == "", out, np.where(out == "", message, out + "; " + message))
    return pd.Series(out, index=df.index, dtype=object)


def _where(rows: pd.DataFrame) -> list[str]:
    """How a message names rows: input file and line when known, else the manifest row."""
    if {"_input", "_line"} <= set(rows.columns):
        return [f"{Path(str(i)).name}:{int(n)}" for i, n in zip(rows["_input"], rows["_line"])]
    return [f"row {i}" for i in rows.index]


def _named_groups(groups, describe: Callable[[pd.DataFrame], str], limit: int = 10) -> str:
    """`key (description)` for the first `limit` groups, and how many more there are."""
    groups = list(groups)
    named = [f"{key} ({describe(rows)})" for key, rows in groups[:limit]]
    more = f" ... and {len(groups) - limit} more" if len(groups) > limit else ""
    return ", ".join(named) + more


def validate_manifest(df: pd.DataFrame, schema: dict) -> None:
    """Raise ManifestError naming every problem and the rows concerned; return silently if the manifest is sound."""
    problems = schema_problems(df, schema)
    if "image_id" in df.columns:
        dup = df[df["image_id"].duplicated(keep=False)]
        if len(dup):
            named = _named_groups(dup.groupby("image_id", sort=True), lambda rows: ", ".join(_where(rows)))
            problems.append(f"duplicate image_id(s): {named}")
    if {"subject_id", "split", "image_id"} <= set(df.columns):
        splits = df.groupby("subject_id")["split"].nunique()
        both = df[df["subject_id"].isin(splits.index[splits > 1])]
        if len(both):

            def by_split(rows: pd.DataFrame) -> str:
                return "; ".join(f"{split}: {', '.join(part['image_id'])}" for split, part in rows.groupby("split"))

            named = _named_groups(both.groupby("subject_id", sort=True), by_split)
            problems.append(f"subject(s) in both train and test: {named}")
    if problems:
        raise ManifestError("invalid manifest:\n- " + "\n- ".join(problems))
