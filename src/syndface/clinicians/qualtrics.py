"""`syndface import-survey`: a Qualtrics CSV export -> the survey long table, plus rejects.

A Qualtrics export (Data & Analysis -> Export -> CSV, "Use choice text") has three header
rows: the column ids (StartDate, ..., ResponseId, RecipientEmail, ..., Q1, Q2, ...), the
question texts, and the ImportId JSON ({"ImportId":"QID12"}); then one row per response.
A mapping file ties each image question to its image (`question_id`, `image_id`, optionally
`survey`); a question id may be the column id (Q12) or the stable ImportId (QID12).

Only a rater's first completed response per survey counts, as in the paper. Every response
that does not count is written to the rejects table with the reason: previews and tests,
responses without a rater id, incomplete responses, later duplicates, and completed
responses that answered none of the mapped questions. A question left empty in a counted
response is a question the rater was not shown (each rater sees a random subset), so it
yields no row.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os

import pandas as pd

from syndface.clinicians.options import ImportSurveyOptions
from syndface.clinicians.survey import OTHER, SURVEY_COLUMNS, survey_answers, validate_survey
from syndface.io import read_tsv, write_tsv
from syndface.log import get_logger
from syndface.options import add_options_argument
from syndface.taxonomy import SURVEYS

log = get_logger("syndface.clinicians")

# Choice texts of the paper's surveys (matched ignoring case and surrounding spaces).
DEFAULT_ANSWER_TEXTS = {
    "williams syndrome": "WS",
    "22q11.2 deletion syndrome": "22q",
    "other condition": OTHER,
}
# Qualtrics Status values that are not respondents (text and numeric exports).
NOT_RESPONDENTS = {"survey preview", "survey test", "spam", "1", "2", "8"}
METADATA_COLUMNS = ("ResponseId", "StartDate", "Progress", "Finished")
REJECT_COLUMNS = ("response_id", "rater_id", "survey", "start_date", "progress", "finished", "status", "reason")


class QualtricsError(ValueError):
    """An export or mapping this importer cannot read; the message says what to fix."""


def read_qualtrics(path: str | os.PathLike) -> tuple[pd.DataFrame, dict[str, str]]:
    """Responses (one row per respondent, columns = the column ids, all text) and column id -> ImportId."""
    raw = pd.read_csv(path, header=None, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    if len(raw) < 3 or not all(cell.startswith("{") for cell in raw.iloc[2] if cell):
        raise QualtricsError(
            f"{path}: not a Qualtrics CSV export with three header rows (column ids, question texts, "
            'ImportId JSON such as {"ImportId":"QID1"}); export again as CSV with the default header rows'
        )
    columns = raw.iloc[0].tolist()
    dup = sorted({c for c in columns if columns.count(c) > 1})
    if dup:
        raise QualtricsError(f"{path}: repeated column id(s) {', '.join(dup)}; give every question a unique export tag")
    import_ids = {c: json.loads(cell).get("ImportId", "") if cell else "" for c, cell in zip(columns, raw.iloc[2])}
    responses = raw.iloc[3:].reset_index(drop=True)
    responses.columns = columns
    return responses, import_ids


def read_mapping(path: str | os.PathLike, survey: str) -> pd.DataFrame:
    """The mapping rows of `survey`: question_id -> image_id, each unique."""
    mapping = read_tsv(path, dtype=str)
    missing = [c for c in ("question_id", "image_id") if c not in mapping.columns]
    if missing:
        raise QualtricsError(
            f"{path}: missing column(s) {', '.join(missing)}; the mapping has question_id, image_id[, survey]"
        )
    if "survey" in mapping.columns:
        mapping = mapping[mapping["survey"] == survey]
    if mapping.empty:
        raise QualtricsError(f"{path}: no question of the {survey} survey; check its survey column")
    for column in ("question_id", "image_id"):
        dup = sorted(set(mapping.loc[mapping[column].duplicated(), column]))
        if dup:
            raise QualtricsError(f"{path}: {column} repeated in the {survey} survey: {', '.join(dup[:10])}")
    return mapping[["question_id", "image_id"]].reset_index(drop=True)


def resolve_questions(mapping: pd.DataFrame, import_ids: dict[str, str]) -> dict[str, str]:
    """Export column of each mapped question (matched by column id, else by ImportId) -> image_id."""
    by_import_id = {qid: column for column, qid in import_ids.items() if qid}
    columns, unknown = {}, []
    for question, image in zip(mapping["question_id"], mapping["image_id"]):
        column = question if question in import_ids else by_import_id.get(question)
        if column is None:
            unknown.append(question)
        else:
            columns[column] = image
    if unknown:
        raise QualtricsError(
            f"mapped question(s) not in the export: {', '.join(unknown[:10])}"
            f"{' ...' if len(unknown) > 10 else ''}; use the export's column ids (first header row) or ImportIds (QID...)"
        )
    return columns


def answer_label(text: str, answer_texts: dict[str, str]) -> str | None:
    """The label of a choice text (None when the text is not known)."""
    return answer_texts.get(text.strip().lower())


def screen_responses(responses: pd.DataFrame, survey: str, rater_column: str, answered: pd.Series) -> pd.DataFrame:
    """Reason each response does not count ("" for the responses that do), in response order.

    `answered` counts the mapped questions each response answered. Among completed responses
    with a rater id, the earliest StartDate of each rater counts (ties: export order).
    """
    missing = [c for c in (*METADATA_COLUMNS, rater_column) if c not in responses.columns]
    if missing:
        raise QualtricsError(
            f"the export has no column(s) {', '.join(missing)}; pick the rater column with --rater-column"
        )
    reason = pd.Series("", index=responses.index, dtype=object)
    status = responses.get("Status", pd.Series("", index=responses.index)).str.strip()
    not_respondent = status.str.lower().isin(NOT_RESPONDENTS)
    reason[not_respondent] = "not a respondent: Status " + status[not_respondent]
    no_rater = (reason == "") & (responses[rater_column].str.strip() == "")
    reason[no_rater] = f"no rater id in column {rater_column}"
    finished = responses["Finished"].str.strip().str.lower().isin({"true", "1"})
    incomplete = (reason == "") & ~finished
    reason[incomplete] = (
        "incomplete: Finished="
        + responses.loc[incomplete, "Finished"]
        + ", Progress="
        + responses.loc[incomplete, "Progress"]
        + "%"
    )

    candidates = responses.index[reason == ""]
    start = pd.to_datetime(responses.loc[candidates, "StartDate"], errors="coerce")
    if start.isna().any():
        bad = responses.loc[start.index[start.isna()], ["ResponseId", "StartDate"]].iloc[0].tolist()
        raise QualtricsError(
            f"StartDate {bad[1]!r} of response {bad[0]} is not a date; the first response per rater cannot be found"
        )
    order = pd.DataFrame({"start": start, "row": candidates}, index=candidates).sort_values(["start", "row"]).index
    first: dict[str, str] = {}
    for i in order:
        rater = responses.at[i, rater_column].strip()
        if rater in first:
            reason[i] = f"duplicate: the rater's first completed {survey} response is {first[rater]}"
        else:
            first[rater] = responses.at[i, "ResponseId"]
    empty = (reason == "") & (answered == 0)
    reason[empty] = "completed but answered none of the mapped questions"
    return reason


def pseudonym(rater: str) -> str:
    """A stable rater pseudonym, so e-mail addresses never reach results/ (same rater, same id)."""
    return "rater-" + hashlib.sha256(rater.strip().lower().encode()).hexdigest()[:12]


def import_qualtrics(
    export: str | os.PathLike,
    mapping_path: str | os.PathLike,
    survey: str,
    rater_column: str = "RecipientEmail",
    answer_texts: dict[str, str] | None = None,
    keep_rater_ids: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(answers, rejects): the long table of the counted responses and every response that does not count.

    Rater ids are replaced by `pseudonym(...)` unless `keep_rater_ids`."""
    texts = DEFAULT_ANSWER_TEXTS | {k.strip().lower(): v for k, v in (answer_texts or {}).items()}
    allowed = survey_answers(survey)
    responses, import_ids = read_qualtrics(export)
    questions = resolve_questions(read_mapping(mapping_path, survey), import_ids)
    cells = responses[list(questions)].apply(lambda col: col.str.strip())
    reason = screen_responses(responses, survey, rater_column, (cells != "").sum(axis=1))

    counted = reason == ""
    long = cells[counted].assign(
        rater_id=responses.loc[counted, rater_column].str.strip(), response_id=responses.loc[counted, "ResponseId"]
    )
    long = long.melt(id_vars=["rater_id", "response_id"], var_name="question", value_name="text")
    long = long[long["text"] != ""]
    long["answer"] = [answer_label(t, texts) for t in long["text"]]
    unknown = sorted(set(long.loc[long["answer"].isna(), "text"]))
    if unknown:
        raise QualtricsError(
            f"unknown answer text(s) {', '.join(map(repr, unknown))}; known: {', '.join(map(repr, texts))}; "
            "add one with --answer-text 'TEXT=LABEL' (LABEL: WS, 22q or other)"
        )
    wrong = sorted(set(long["answer"]) - set(allowed))
    if wrong:
        raise QualtricsError(f"answer(s) {', '.join(wrong)} cannot occur in the {survey} survey; is --survey right?")
    if not keep_rater_ids:
        long["rater_id"] = long["rater_id"].map(pseudonym)
    long["image_id"] = long["question"].map(questions)
    long["survey"] = survey
    answers = validate_survey(long[[*SURVEY_COLUMNS, "response_id"]].reset_index(drop=True), where=str(export))

    rejected = responses[~counted]
    rejects = pd.DataFrame(
        {
            "response_id": rejected["ResponseId"],
            "rater_id": rejected[rater_column]
            if keep_rater_ids
            else rejected[rater_column].map(lambda r: pseudonym(r) if r.strip() else ""),
            "survey": survey,
            "start_date": rejected["StartDate"],
            "progress": rejected["Progress"],
            "finished": rejected["Finished"],
            "status": rejected.get("Status", ""),
            "reason": reason[~counted],
        },
        columns=list(REJECT_COLUMNS),
    ).reset_index(drop=True)
    return answers, rejects


def parse_answer_text(item: str) -> tuple[str, str]:
    text, sep, label = item.rpartition("=")
    if not sep or not text.strip() or label not in (*SURVEYS, OTHER):
        raise argparse.ArgumentTypeError(
            f"expected TEXT=LABEL with LABEL one of {', '.join((*SURVEYS, OTHER))}, got {item!r}"
        )
    return text, label


def main(argv: list[str], prog: str = "syndface import-survey") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--qualtrics", required=True, help="Qualtrics CSV export (three header rows)")
    parser.add_argument("--mapping", required=True, help="TSV: question_id, image_id[, survey]")
    parser.add_argument("--index", type=int, default=0, help="which entry of clinicians.qualtrics this export is")
    add_options_argument(parser, ImportSurveyOptions)
    parser.add_argument(
        "--answer-text",
        action="append",
        type=parse_answer_text,
        default=[],
        metavar="TEXT=LABEL",
        help="extra choice text, e.g. 'Williams syndrome (WS)=WS'; repeatable",
    )
    parser.add_argument(
        "--keep-rater-ids",
        action="store_true",
        help="write rater ids as given (default: pseudonyms, so no e-mail address reaches results/)",
    )
    parser.add_argument("--out", required=True, help="survey long table (TSV)")
    parser.add_argument("--rejects", required=True, help="responses that do not count, with the reason (TSV)")
    args = parser.parse_args(argv)
    entries = args.options.qualtrics
    if not 0 <= args.index < len(entries):
        parser.error(f"--index {args.index}: clinicians.qualtrics has {len(entries)} entries")
    entry = entries[args.index]
    survey = entry["survey"]

    answers, rejects = import_qualtrics(
        args.qualtrics, args.mapping, survey, entry["rater_column"], dict(args.answer_text), args.keep_rater_ids
    )
    write_tsv(rejects, args.rejects)
    write_tsv(answers, args.out, header_lines=[f"{survey} survey answers imported from {args.qualtrics}"])
    log.info("%s survey: %d answers from %d raters", survey, len(answers), answers["rater_id"].nunique())
    if len(rejects):
        log.warning("%d response(s) do not count; listed with the reason in %s", len(rejects), args.rejects)
        for reason, n in rejects["reason"].str.split(":").str[0].value_counts().items():
            log.warning("  %4d x %s", n, reason)
    return 0
