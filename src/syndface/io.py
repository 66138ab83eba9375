"""Atomic file output and the project's table conventions (TSV, string ids)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

# Columns that hold identifiers: never let pandas turn "007" into 7.
ID_COLUMNS = ("image_id", "subject_id", "rater_id", "question_id")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; move it into place only if the block succeeds.

    Readers never see a half-written file, and a killed job leaves no output that
    Snakemake would mistake for a finished one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_tsv(df: pd.DataFrame, path: str | os.PathLike, *, header_lines: list[str] | None = None) -> None:
    """Write a table as TSV atomically; optional `# ` comment lines go above the header."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            for line in header_lines or []:
                fh.write(f"# {line}\n")
            df.to_csv(fh, sep="\t", index=False, lineterminator="\n")


def read_tsv(path: str | os.PathLike, **kwargs: Any) -> pd.DataFrame:
    """Read a project TSV: `#` comment lines skipped, id columns kept as strings."""
    kwargs.setdefault("dtype", {c: str for c in ID_COLUMNS})
    kwargs.setdefault("keep_default_na", False)
    kwargs.setdefault("na_values", [""])
    return pd.read_csv(path, sep="\t", comment="#", **kwargs)


def write_json(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_figure(fig: Any, path: str | os.PathLike, **kwargs: Any) -> None:
    """Save a matplotlib figure atomically (format from the file suffix) and close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    kwargs.setdefault("dpi", 150)
    kwargs.setdefault("bbox_inches", "tight")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", **kwargs)
    plt.close(fig)


def variant_paths(items: list[str], flag: str) -> dict[str, str]:
    """`VARIANT=PATH` command-line items -> {variant: path}, each variant once and known."""
    from syndface.taxonomy import variant_fake_type

    out: dict[str, str] = {}
    for item in items:
        variant, sep, path = item.partition("=")
        if not sep or not path:
            raise ValueError(f"{flag} {item!r} is not VARIANT=PATH (e.g. real=results/predictions/real/test.tsv)")
        variant_fake_type(variant)
        if variant in out:
            raise ValueError(f"{flag}: variant {variant!r} is given twice")
        out[variant] = path
    return out
