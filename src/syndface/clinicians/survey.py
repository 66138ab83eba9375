"""The survey long table: one row per rater answer, `rater_id, survey, image_id, answer`.

`survey` is WS or 22q (each syndrome was surveyed against its own "other conditions" images);
`answer` is the survey's syndrome or `other`. Real surveys come from `syndface import-survey`
(Qualtrics) or are written by hand; the demo's come from `syndface simulate-survey` and carry
`simulated=True`. Further columns (response_id, simulated) are kept as given.
"""

from __future__ import annotations

import os

import pandas as pd

from syndface.io import read_tsv
from syndface.readout import OTHER
from syndface.taxonomy import SURVEYS

SURVEY_COLUMNS = ("rater_id", "survey", "image_id", "answer")


def survey_answers(survey: str) -> tuple[str, str]:
    """The two answers a survey allows: its syndrome and `other`."""
    if survey not in SURVEYS:
        raise ValueError(f"unknown survey {survey!r}; allowed: {', '.join(SURVEYS)}")
    return (survey, OTHER)


def validate_survey(answers: pd.DataFrame, where: str = "survey table") -> pd.DataFrame:
    """Check the long table and return it; the error lists every problem found."""
    missing = [c for c in SURVEY_COLUMNS if c not in answers.columns]
    if missing:
        raise ValueError(
            f"{where}: missing column(s) {', '.join(missing)}; a survey table has columns {', '.join(SURVEY_COLUMNS)}"
        )
    problems = []
    empty = answers[list(SURVEY_COLUMNS)].isna().any(axis=1)
    if empty.any():
        problems.append(f"{int(empty.sum())} row(s) with an empty cell, first at row {int(empty.idxmax())}")
    bad_survey = sorted(set(answers["survey"].dropna()) - set(SURVEYS))
    if bad_survey:
        problems.append(f"unknown survey(s) {', '.join(map(str, bad_survey))}; allowed: {', '.join(SURVEYS)}")
    known = answers[answers["survey"].isin(list(SURVEYS))]
    allowed = known["answer"] == known["survey"]
    allowed |= known["answer"] == OTHER
    if not allowed.all():
        bad = known.loc[~allowed, ["survey", "answer"]].drop_duplicates().itertuples(index=False)
        listed = ", ".join(f"{a!r} in the {s} survey" for s, a in bad)
        problems.append(f"answer(s) {listed}; an answer is the survey's syndrome or {OTHER!r}")
    dup = answers.duplicated(["rater_id", "survey", "image_id"], keep=False)
    if dup.any():
        first = answers.loc[dup, ["rater_id", "survey", "image_id"]].iloc[0].tolist()
        problems.append(f"{int(dup.sum())} rows answer the same image twice for one rater, e.g. {first}")
    if problems:
        raise ValueError(f"{where} is invalid:\n- " + "\n- ".join(problems))
    return answers


def read_survey(paths: list[str | os.PathLike]) -> pd.DataFrame:
    """Read and concatenate survey long tables (e.g. the WS and the 22q survey) and validate them."""
    tables = [read_tsv(p) for p in paths]
    for path, table in zip(paths, tables):
        validate_survey(table, where=str(path))
    answers = pd.concat(tables, ignore_index=True)
    return validate_survey(answers, where=" + ".join(map(str, paths)))


def is_simulated(answers: pd.DataFrame) -> bool:
    """True when any answer comes from simulated raters (the demo), so outputs can say so."""
    return "simulated" in answers.columns and answers["simulated"].astype(str).str.lower().eq("true").any()
