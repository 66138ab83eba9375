"""Atomic file output and the project's table conventions (TSV, string ids, provenance lines).

A project table is UTF-8 TSV: optional provenance lines, each `# ` + text, above the header, then
the header and the data. Only those leading `#` lines are provenance; nothing after the header is
ever treated as a comment, so a `#` inside a field (web file names such as `img/a#1.png`) is data.
Fields holding a tab, a newline or a quote are quoted by pandas and read back unchanged.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

# Columns that hold identifiers: never let pandas turn "007" into 7.
ID_COLUMNS = ("image_id", "subject_id", "rater_id", "question_id")
# Further columns always read as text (a path such as `2024.01` is not a number).
TEXT_COLUMNS = (*ID_COLUMNS, "path", "aligned_path")
PROVENANCE_PREFIX = "#"
ENCODING = "utf-8"
# Reading also accepts a byte-order mark (spreadsheet exports write one).
READ_ENCODING = "utf-8-sig"


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
    """Write a table as UTF-8 TSV atomically; `header_lines` become `# ` provenance lines above the header."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding=ENCODING) as fh:
            for line in header_lines or []:
                # One provenance line per entry: a newline inside would turn the rest into a data row.
                fh.write(f"{PROVENANCE_PREFIX} {' '.join(str(line).splitlines())}\n")
            df.to_csv(fh, sep="\t", index=False, lineterminator="\n")


def _provenance(fh) -> list[str]:
    """The leading `#` lines of an open text file, consumed (the file is left at the header)."""
    lines = []
    while True:
        start = fh.tell()
        line = fh.readline()
        if not line.startswith(PROVENANCE_PREFIX):
            fh.seek(start)
            return lines
        lines.append(line.rstrip("\r\n")[1:].removeprefix(" "))


def read_header_lines(path: str | os.PathLike) -> list[str]:
    """The provenance lines above a table's header, without their `# ` prefix."""
    with open(path, encoding=READ_ENCODING, newline="") as fh:
        return _provenance(fh)


def read_tsv(path: str | os.PathLike, **kwargs: Any) -> pd.DataFrame:
    """Read a project TSV: leading provenance lines skipped, everything after them read as data
    (no comment parsing), id and path columns kept as strings, only empty fields missing."""
    kwargs.setdefault("dtype", {c: str for c in TEXT_COLUMNS})
    kwargs.setdefault("keep_default_na", False)
    kwargs.setdefault("na_values", [""])
    with open(path, encoding=READ_ENCODING, newline="") as fh:
        _provenance(fh)
        return pd.read_csv(fh, sep="\t", **kwargs)


def count_rows(path: str | os.PathLike) -> int:
    """Data rows of a project TSV (provenance and header excluded; a quoted field may span lines)."""
    return len(read_tsv(path, usecols=[0], dtype=str))


def write_json(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    """torch.save atomically. Written through a file object: given a path, torch names the archive's
    root folder after the file, here the temporary name with the process id, and no two runs would
    give the same bytes."""
    import torch

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)


def save_npz(arrays: dict[str, Any], path: str | os.PathLike, *, compressed: bool = False) -> None:
    """Like np.savez(_compressed), atomically and byte-identical across runs: numpy stamps each zip
    member with the current time; here every member has a fixed date and the names are sorted."""
    import numpy as np

    compression = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=compression) as zf:
            for name in sorted(arrays):
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, np.asarray(arrays[name]), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = compression
                zf.writestr(info, buffer.getvalue())


# Figure metadata that would differ between runs or installations: PDF/SVG carry the creation
# date; every format names the matplotlib version that wrote it.
REPRODUCIBLE_METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
    "svg": {"Creator": None, "Date": None},
}


def save_figure(fig: Any, path: str | os.PathLike, **kwargs: Any) -> None:
    """Save a matplotlib figure atomically (format from the file suffix) and close it.

    The same figure gives the same bytes on every run: no date or version in the metadata, and
    SVG element ids drawn from a fixed salt instead of a random one.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    kwargs.setdefault("dpi", 150)
    kwargs.setdefault("bbox_inches", "tight")
    kwargs.setdefault("metadata", REPRODUCIBLE_METADATA.get(fmt))
    with atomic_path(path) as tmp, matplotlib.rc_context({"svg.hashsalt": "syndface"}):
        fig.savefig(tmp, format=fmt, **kwargs)
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
