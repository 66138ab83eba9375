"""The Qualtrics importer on a crafted export: three header rows, duplicates, incomplete and unanswered."""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest
from conftest import options

from syndface.clinicians import qualtrics
from syndface.clinicians.qualtrics import QualtricsError, import_qualtrics, pseudonym
from syndface.io import read_tsv

META = ["StartDate", "EndDate", "Status", "Progress", "Finished", "ResponseId", "RecipientEmail"]
QUESTIONS = ["Q1", "Q2", "Q3", "Q4", "Q_age"]  # Q_age: an opinion question, not an image
IMPORT_IDS = {"Q1": "QID11", "Q2": "QID12", "Q3": "QID13", "Q4": "QID14", "Q_age": "QID20"}
WS, OTHER_TEXT = "Williams Syndrome", "Other Condition"

# (start, status, progress, finished, response id, email, Q1..Q4, Q_age), in export order.
RESPONSES = [
    (
        "2021-03-02 09:00:00",
        "IP Address",
        "100",
        "True",
        "R_a1",
        "a@x.org",
        WS,
        OTHER_TEXT,
        "",
        " other condition ",
        "infants",
    ),
    ("2021-03-04 09:00:00", "IP Address", "100", "True", "R_b2", "b@x.org", OTHER_TEXT, OTHER_TEXT, WS, WS, ""),
    ("2021-03-05 09:00:00", "IP Address", "100", "True", "R_a2", "a@x.org", OTHER_TEXT, WS, WS, WS, ""),
    ("2021-03-03 09:00:00", "IP Address", "100", "True", "R_b1", "b@x.org", WS, "", OTHER_TEXT, "", ""),
    ("2021-03-01 09:00:00", "IP Address", "40", "False", "R_c1", "c@x.org", WS, "", "", "", ""),
    ("2021-03-02 10:00:00", "IP Address", "100", "True", "R_c2", "c@x.org", "", WS, "", "", ""),
    ("2021-03-01 08:00:00", "Survey Preview", "100", "True", "R_p", "", WS, WS, WS, WS, ""),
    ("2021-03-06 09:00:00", "IP Address", "100", "True", "R_d1", "d@x.org", "", "", "", "", "older adults"),
]


def write_export(path, responses=RESPONSES, third_row=True) -> None:
    columns = META + QUESTIONS
    texts = [c.replace("Q", "Question ") for c in columns]
    import_ids = [json.dumps({"ImportId": IMPORT_IDS.get(c, c.lower())}) for c in columns]
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerow(texts)
        if third_row:
            writer.writerow(import_ids)
        for start, status, progress, finished, rid, email, *answers in responses:
            writer.writerow([start, start, status, progress, finished, rid, email, *answers])


@pytest.fixture
def export(tmp_path):
    path = tmp_path / "export.csv"
    write_export(path)
    mapping = tmp_path / "map.tsv"
    # Q3 is mapped by its ImportId; a 22q row must be ignored when importing the WS survey.
    pd.DataFrame(
        {
            "question_id": ["Q1", "Q2", "QID13", "Q4", "Q1"],
            "image_id": ["ws_01", "ctl_01", "ws_02", "ctl_02", "q22_01"],
            "survey": ["WS"] * 4 + ["22q"],
        }
    ).to_csv(mapping, sep="\t", index=False)
    return path, mapping


def test_first_completed_response_per_rater_counts_and_the_rest_are_listed(export):
    answers, rejects = import_qualtrics(*export, survey="WS")
    assert sorted(answers["response_id"].unique()) == ["R_a1", "R_b1", "R_c2"]
    reasons = dict(zip(rejects["response_id"], rejects["reason"]))
    assert set(reasons) == {"R_b2", "R_a2", "R_c1", "R_p", "R_d1"}
    # Duplicates are judged by StartDate, not export order: R_b1 started before R_b2.
    assert reasons["R_b2"] == "duplicate: the rater's first completed WS response is R_b1"
    assert reasons["R_a2"] == "duplicate: the rater's first completed WS response is R_a1"
    assert reasons["R_c1"] == "incomplete: Finished=False, Progress=40%"
    assert reasons["R_p"] == "not a respondent: Status Survey Preview"
    assert reasons["R_d1"] == "completed but answered none of the mapped questions"
    # R_c1 was incomplete, so R_c2 is c's first completed response. Unanswered cells give no row:
    # R_a1 left Q3 empty, R_b1 Q2 and Q4, R_c2 answered only Q2.
    assert answers.groupby("response_id").size().to_dict() == {"R_a1": 3, "R_b1": 2, "R_c2": 1}


def test_answers_are_mapped_to_images_and_labels(export):
    answers, _ = import_qualtrics(*export, survey="WS", keep_rater_ids=True)
    got = {(r, i): a for r, i, a in zip(answers["rater_id"], answers["image_id"], answers["answer"])}
    assert got == {
        ("a@x.org", "ws_01"): "WS",
        ("a@x.org", "ctl_01"): "other",
        ("a@x.org", "ctl_02"): "other",  # " other condition ": case and spaces ignored
        ("b@x.org", "ws_01"): "WS",
        ("b@x.org", "ws_02"): "other",  # mapped through ImportId QID13
        ("c@x.org", "ctl_01"): "WS",
    }
    assert set(answers["survey"]) == {"WS"}


def test_rater_emails_are_pseudonymised_by_default(export):
    answers, rejects = import_qualtrics(*export, survey="WS")
    assert not answers["rater_id"].str.contains("@").any() and not rejects["rater_id"].str.contains("@").any()
    assert set(answers["rater_id"]) == {pseudonym("a@x.org"), pseudonym("b@x.org"), pseudonym("c@x.org")}
    # the same rater keeps one pseudonym across answers and rejects (R_a2 is a's duplicate)
    assert rejects.set_index("response_id").at["R_a2", "rater_id"] == pseudonym("A@x.org ")


def test_rater_column_is_configurable(tmp_path, export):
    path, mapping = export
    answers, rejects = import_qualtrics(path, mapping, survey="WS", rater_column="ResponseId", keep_rater_ids=True)
    # Every response is its own rater now, so no duplicates; incomplete, preview and empty ones stay out.
    assert sorted(answers["rater_id"].unique()) == ["R_a1", "R_a2", "R_b1", "R_b2", "R_c2"]
    assert not rejects["reason"].str.startswith("duplicate").any()


def test_unknown_answer_text_fails_until_it_is_mapped(tmp_path):
    path, mapping = tmp_path / "e.csv", tmp_path / "m.tsv"
    rows = [
        ("2021-03-02 09:00:00", "IP Address", "100", "True", "R_1", "a@x.org", "WS (Williams)", OTHER_TEXT, "", "", "")
    ]
    write_export(path, rows)
    pd.DataFrame({"question_id": ["Q1", "Q2"], "image_id": ["i1", "i2"]}).to_csv(mapping, sep="\t", index=False)
    with pytest.raises(QualtricsError, match="unknown answer text.*'WS \\(Williams\\)'"):
        import_qualtrics(path, mapping, survey="WS")
    answers, _ = import_qualtrics(path, mapping, survey="WS", answer_texts={"WS (Williams)": "WS"})
    assert answers["answer"].tolist() == ["WS", "other"]
    with pytest.raises(QualtricsError, match="cannot occur in the 22q survey"):
        import_qualtrics(path, mapping, survey="22q", answer_texts={"WS (Williams)": "WS"})


def test_bad_exports_and_mappings_fail_with_a_fix(tmp_path, export):
    path, mapping = export
    two_rows = tmp_path / "legacy.csv"
    write_export(two_rows, third_row=False)
    with pytest.raises(QualtricsError, match="three header rows"):
        import_qualtrics(two_rows, mapping, survey="WS")
    bad_map = tmp_path / "bad.tsv"
    pd.DataFrame({"question_id": ["Q1", "Q99"], "image_id": ["a", "b"]}).to_csv(bad_map, sep="\t", index=False)
    with pytest.raises(QualtricsError, match="not in the export: Q99"):
        import_qualtrics(path, bad_map, survey="WS")
    with pytest.raises(QualtricsError, match="no column.*Email"):
        import_qualtrics(path, mapping, survey="WS", rater_column="Email")


def test_command_writes_answers_and_rejects(tmp_path, export):
    path, mapping = export
    out, rejects = tmp_path / "long.tsv", tmp_path / "rejects.tsv"
    argv = [
        "--qualtrics",
        str(path),
        "--mapping",
        str(mapping),
        *options(
            {
                "clinicians.qualtrics": [
                    {"export": str(path), "mapping": str(mapping), "survey": "WS", "rater_column": "RecipientEmail"}
                ]
            }
        ),
        "--out",
        str(out),
        "--rejects",
        str(rejects),
    ]
    assert qualtrics.main(argv) == 0
    assert read_tsv(out).columns.tolist()[:4] == ["rater_id", "survey", "image_id", "answer"]
    assert len(read_tsv(out)) == 6 and len(read_tsv(rejects)) == 5
