"""Config checking with messages a user can act on.

Snakemake's `validate` says that a config is wrong; `explain` says where and how to fix it:
the key (as a dotted path), the bad value and what is allowed, with a spelling suggestion for
misspelt keys. The Snakefile runs both before any job.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import yaml


class ConfigError(ValueError):
    pass


def _key(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def _allowed_keys(schema: dict) -> list[str]:
    return list(schema.get("properties", {}))


def _describe(error: jsonschema.ValidationError) -> list[str]:
    key = _key(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = _allowed_keys(schema)
        messages = []
        for extra in sorted(set(error.instance) - set(allowed)):
            full = f"{key}.{extra}" if error.absolute_path else extra
            if not allowed:  # a map whose values are checked elsewhere
                continue
            hint = difflib.get_close_matches(extra, allowed, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            messages.append(f"unknown key {full!r} (allowed here: {', '.join(allowed)}){suggestion}")
        return messages
    if error.validator == "enum":
        return [f"{key}: {error.instance!r} is not allowed; allowed: {', '.join(map(str, error.validator_value))}"]
    if error.validator == "required":
        return [f"{key}: {error.message}"]
    if error.validator == "type":
        return [f"{key}: {error.instance!r} should be of type {error.validator_value}"]
    return [f"{key}: {error.instance!r}: {error.message}"]


def explain(config: dict, schema: dict) -> list[str]:
    """One human-readable line per problem; empty when the config is valid."""
    validator = jsonschema.Draft202012Validator(schema)
    lines: list[str] = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        for sub in error.context or [error]:
            lines.extend(_describe(sub))
    return list(dict.fromkeys(lines))


def check(config: dict, schema_path: str | Path) -> None:
    """Raise ConfigError listing every problem of `config` against the schema file."""
    with open(schema_path) as fh:
        schema = yaml.safe_load(fh)
    problems = explain(config, schema)
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))
