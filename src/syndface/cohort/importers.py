"""Importers: each turns one supported input table into manifest rows plus rejects.

Every importer returns (rows, rejects). `rows` has the manifest's required columns (plus any
optional ones kept as given, and `_input`/`_line`: where each row came from, for messages;
`build_manifest` drops them); `rejects` lists each input row that could not be mapped with
the reason (columns: input, line, name, reason). Nothing is dropped silently. External tables
are read without comment parsing: a `#` in a file name is part of it.

Supported formats (config `cohort.inputs[].format`):
- `syndface`: the project's own TSV (the manifest's columns; extra columns kept).
- `paper_csv`: the paper's CSV manifests (`name,path,label,fold,is_ext[,softlabel]`); the age
  group is the tail of the file name, fold 5 is the held-out test set, is_ext=1 marks FairFace.
  The labels of its "Split" variant, the disease label with the age token appended
  (`WSolderadult`, `22q11DS2y`, `Controlsyoungchild`, `Normal2y`), import too.
- `fairface`: FairFace label CSVs (`file,age,gender,race,service_test`), all unaffected and
  auxiliary; the age bin is mapped to an age group by a configurable map; `gender` becomes the
  manifest's optional `sex` column (lower-cased), `race` its `ancestry` column (as given), for
  the subgroup tables of `syndface.evaluation`.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import pandas as pd

from syndface.cohort.manifest import REQUIRED_COLUMNS
from syndface.io import read_header_lines, read_tsv
from syndface.seeding import rng
from syndface.taxonomy import AGE_GROUPS

REJECT_COLUMNS = ("input", "line", "name", "reason")
# Where each imported row came from (input file, line), for messages; not part of the manifest.
ORIGIN_COLUMNS = ("_input", "_line")

PAPER_LABELS = {"WS": "WS", "22q11DS": "22q", "Controls": "control", "Normal": "unaffected"}
# File-name age tokens of the paper's data, with the spelling fixes its own scripts applied.
PAPER_AGE_TOKENS = {
    "2y": "infant",
    "<2y": "infant",
    "youngchild": "child",
    "youngchid": "child",
    "adolescence": "adolescent",
    "adolecence": "adolescent",
    "youngadult": "young_adult",
    "olderadult": "older_adult",
}
AGE_TOKEN_CHOICES = "2y|youngchild|adolescence|youngadult|olderadult"
PAPER_TEST_FOLD = 5

EXCLUDE = "exclude"


def _rejects(records: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame.from_records(records, columns=list(REJECT_COLUMNS))


def _rows(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Imported rows; the manifest's columns are present even when every input row was rejected."""
    frame = pd.DataFrame.from_records(records)
    for column in (*REQUIRED_COLUMNS, *ORIGIN_COLUMNS):
        if column not in frame.columns:
            frame[column] = pd.Series(dtype=object)
    return frame


def resolve_path(path: str, image_root: str | None, strip_prefix: str | None) -> str:
    """Re-root a path from another machine: drop `strip_prefix`, then join relative paths to `image_root`."""
    if strip_prefix and path.startswith(strip_prefix):
        path = path[len(strip_prefix) :].lstrip("/")
    if image_root and not os.path.isabs(path):
        path = str(PurePosixPath(image_root) / path)
    return path


def import_syndface(spec: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The project's own TSV, as given; its values are checked row by row in `build_manifest`."""
    table = read_tsv(spec["path"])
    if "path" in table.columns:
        table["path"] = [
            resolve_path(p, spec.get("image_root"), spec.get("strip_prefix")) if isinstance(p, str) else p
            for p in table["path"]
        ]
    first_line = len(read_header_lines(spec["path"])) + 2  # provenance lines, then the header
    table["_input"] = str(spec["path"])
    table["_line"] = np.arange(first_line, first_line + len(table))
    return table, _rejects([])


def parse_paper_label(label: str) -> tuple[str, str | None] | None:
    """(the paper's disease label, age group or None) of a label of its Whole or Split variant:
    `WS` -> (WS, None), `WSolderadult` -> (WS, older_adult), `22q11DS<2y` -> (22q11DS, infant).
    None when the label is neither."""
    for base in sorted(PAPER_LABELS, key=len, reverse=True):
        if label == base:
            return base, None
        if label.startswith(base) and label[len(base) :] in PAPER_AGE_TOKENS:
            return base, PAPER_AGE_TOKENS[label[len(base) :]]
    return None


def paper_spelling_hint(column: str, value: str) -> str | None:
    """What to write instead, when a syndface table holds one of the paper's spellings."""
    if column == "disease":
        parsed = parse_paper_label(value)
        if parsed is None:
            return None
        base, age_group = parsed
        disease = PAPER_LABELS[base]
        if age_group is not None:
            return (
                f"the paper's label with its age group appended: write disease {disease} and age_group {age_group}, "
                "or import the table with format paper_csv"
            )
        return f"the paper's spelling of {disease}: write {disease}"
    if column == "age_group" and value in PAPER_AGE_TOKENS:
        return f"the paper's age token: write {PAPER_AGE_TOKENS[value]}"
    return None


def paper_age_group(name: str, label: str) -> str | None:
    """Age group from a paper file name such as `22q11DS_late188_22q11DS2y.png` (label 22q11DS).

    The last `_` token is `{label}{age token}`; FairFace rows read `33790_01_Normalyoungchild.png`.
    """
    tail = PurePosixPath(name).stem.split("_")[-1]
    if not tail.startswith(label):
        return None
    return PAPER_AGE_TOKENS.get(tail[len(label) :])


def import_paper_csv(spec: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    source_name = str(spec["path"])
    table = pd.read_csv(spec["path"], dtype=str, keep_default_na=False, encoding="utf-8-sig")
    missing = [c for c in ("name", "path", "label", "fold", "is_ext") if c not in table.columns]
    if missing:
        raise ValueError(f"{source_name}: not a paper manifest, missing column(s) {', '.join(missing)}")
    rows, rejects = [], []
    for line, rec in enumerate(table.to_dict("records"), start=2):
        name, label = rec["name"].strip(), rec["label"].strip()

        def reject(reason: str, line: int = line, name: str = name) -> None:
            rejects.append({"input": source_name, "line": line, "name": name, "reason": reason})

        parsed = parse_paper_label(label)
        if parsed is None:
            reject(
                f"unknown label {label!r} (expected one of {', '.join(PAPER_LABELS)}, "
                f"or one of them followed by an age token {AGE_TOKEN_CHOICES}, e.g. WSolderadult)"
            )
            continue
        base, label_age = parsed
        name_age = paper_age_group(name, base)
        if label_age is not None and name_age is not None and label_age != name_age:
            reject(f"the label {label!r} says {label_age} but the file name says {name_age}")
            continue
        age_group = label_age or name_age
        if age_group is None:
            reject(
                f"no age group: the label {label!r} carries none and the file name does not end in "
                f"_{base}<{AGE_TOKEN_CHOICES}>"
            )
            continue
        try:
            fold, is_ext = int(rec["fold"]), int(rec["is_ext"])
        except ValueError:
            reject(f"fold {rec['fold']!r} / is_ext {rec['is_ext']!r} are not integers")
            continue
        if is_ext not in (0, 1):
            reject(f"is_ext must be 0 or 1, got {is_ext}")
            continue
        # The file name's stem, made file-name safe (web names carry '#', spaces, ...); the paper's own are.
        image_id = re.sub(r"[^A-Za-z0-9._+-]+", "_", PurePosixPath(name).stem).lstrip("._+-")
        row = {
            "image_id": image_id,
            "path": resolve_path(rec["path"], spec.get("image_root"), spec.get("strip_prefix")),
            "disease": PAPER_LABELS[base],
            "age_group": age_group,
            "source": "auxiliary" if is_ext else "cohort",
            # The paper has no subject ids: every image counts as its own subject (its folds were per image).
            "subject_id": image_id,
            "split": "test" if fold == PAPER_TEST_FOLD else "train",
            "paper_fold": fold,
        }
        if "softlabel" in rec:
            row["paper_softlabel"] = rec["softlabel"]
        row.update(_input=source_name, _line=line)
        rows.append(row)
    return _rows(rows), _rejects(rejects)


FAIRFACE_TRAITS = {"gender": "sex", "race": "ancestry"}


def fairface_traits(rec: dict[str, str]) -> dict[str, str]:
    """A FairFace row's `gender` and `race` as the manifest's `sex` (female/male) and `ancestry`
    (FairFace's race group, e.g. East Asian); `service_test` as given."""
    out = {name: rec[column].strip() for column, name in FAIRFACE_TRAITS.items() if column in rec}
    if "sex" in out:
        out["sex"] = out["sex"].lower()
    if "service_test" in rec:
        out["service_test"] = rec["service_test"]
    return out


def import_fairface(spec: dict[str, Any], age_map: dict[str, str], seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    source_name = str(spec["path"])
    table = pd.read_csv(spec["path"], dtype=str, keep_default_na=False, encoding="utf-8-sig")
    missing = [c for c in ("file", "age") if c not in table.columns]
    if missing:
        raise ValueError(f"{source_name}: not a FairFace label file, missing column(s) {', '.join(missing)}")
    rows, rejects = [], []
    for line, rec in enumerate(table.to_dict("records"), start=2):
        file, age_bin = rec["file"].strip(), rec["age"].strip()
        group = age_map.get(age_bin)
        if group is None:
            rejects.append(
                {
                    "input": source_name,
                    "line": line,
                    "name": file,
                    "reason": f"age bin {age_bin!r} not in fairface_age_map",
                }
            )
            continue
        if group == EXCLUDE:
            rejects.append(
                {
                    "input": source_name,
                    "line": line,
                    "name": file,
                    "reason": f"age bin {age_bin!r} excluded by fairface_age_map",
                }
            )
            continue
        image_id = "fairface_" + re.sub(r"[^A-Za-z0-9]+", "_", str(PurePosixPath(file).with_suffix("")))
        rows.append(
            {
                "image_id": image_id,
                "path": resolve_path(file, spec.get("image_root"), spec.get("strip_prefix")),
                "disease": "unaffected",
                "age_group": group,
                "source": "auxiliary",
                "subject_id": image_id,
                "split": "train",
                "fairface_age": age_bin,
                **fairface_traits(rec),
                "_input": source_name,
                "_line": line,
            }
        )
    frame = _rows(rows)
    fraction = float(spec.get("test_fraction", 0.0))
    if len(frame) and fraction > 0:
        # The paper held out one sixth of FairFace per age group as test images.
        gen = rng(seed, "fairface-test", source_name)
        for _, idx in frame.groupby("age_group").groups.items():
            n_test = int(round(fraction * len(idx)))
            frame.loc[gen.choice(np.asarray(idx), size=n_test, replace=False), "split"] = "test"
    return frame, _rejects(rejects)


def import_input(
    spec: dict[str, Any], fairface_age_map: dict[str, str], seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    fmt = spec.get("format")
    if fmt == "syndface":
        return import_syndface(spec)
    if fmt == "paper_csv":
        return import_paper_csv(spec)
    if fmt == "fairface":
        return import_fairface(spec, fairface_age_map, seed)
    raise ValueError(f"unknown cohort input format {fmt!r}; allowed: syndface, paper_csv, fairface")


def check_age_map(age_map: dict[str, str]) -> None:
    bad = {k: v for k, v in age_map.items() if v not in AGE_GROUPS and v != EXCLUDE}
    if bad:
        raise ValueError(
            f"fairface_age_map maps to unknown age group(s) {bad}; allowed: {', '.join(AGE_GROUPS)}, {EXCLUDE}"
        )
