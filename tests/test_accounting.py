"""Test-set accounting: every manifest test image is either evaluated or listed as excluded with a
reason, in every evaluation table and Table 2; `fail_on_test_error` stops the run at the merge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from syndface.align import merge
from syndface.align.geometry import LANDMARK_COLUMNS
from syndface.align.shard import REPORT_COLUMNS
from syndface.classify import accounting, evaluate, table2
from syndface.io import read_tsv, write_tsv
from syndface.taxonomy import DISEASES


def manifest() -> pd.DataFrame:
    """Test split: WS 3 (infant, infant, child), 22q 2 (both adolescent), control 2, unaffected 3; 2 train images."""
    rows = [
        ("ws1", "WS", "infant", "cohort", "test"),
        ("ws2", "WS", "infant", "cohort", "test"),
        ("ws3", "WS", "child", "cohort", "test"),
        ("q1", "22q", "adolescent", "cohort", "test"),
        ("q2", "22q", "adolescent", "cohort", "test"),
        ("c1", "control", "infant", "cohort", "test"),
        ("c2", "control", "child", "cohort", "test"),
        ("u1", "unaffected", "young_adult", "auxiliary", "test"),
        ("u2", "unaffected", "young_adult", "auxiliary", "test"),
        ("u3", "unaffected", "older_adult", "auxiliary", "test"),
        ("t1", "WS", "infant", "cohort", "train"),
        ("t2", "22q", "child", "cohort", "train"),
    ]
    frame = pd.DataFrame(rows, columns=["image_id", "disease", "age_group", "source", "split"])
    return frame.assign(path=frame["image_id"] + ".png", subject_id=frame["image_id"])


def predictions(ids: list[str]) -> pd.DataFrame:
    """Every listed test image predicted as its own class, except c2 (predicted WS)."""
    rows = manifest().set_index("image_id").loc[ids].reset_index()
    probabilities = np.full((len(rows), len(DISEASES)), 0.1)
    pred = ["WS" if i == "c2" else d for i, d in zip(rows["image_id"], rows["disease"])]
    for k, p in enumerate(pred):
        probabilities[k, DISEASES.index(p)] = 0.7
    table = rows[["image_id", "disease", "age_group", "source"]].copy()
    for j, d in enumerate(DISEASES):
        table[f"p_{d}"] = probabilities[:, j]
    table["pred"] = pred
    return table


# q1 and q2 failed alignment (so the 22q adolescents vanish entirely), u3 is missing with no report.
EVALUATED = ["ws1", "ws2", "ws3", "c1", "c2", "u1", "u2"]
FAILED = pd.DataFrame(
    {"image_id": ["q1", "q2", "t2"], "n_faces": [0, 0, 0], "reason": ["dlib found no face", "unreadable: x", "y"]}
)


def test_every_table_counts_manifest_evaluated_and_excluded_test_images(tmp_path):
    metrics = evaluate.evaluate(predictions(EVALUATED), tmp_path, 20, 1, "real", manifest(), FAILED)
    counts = metrics.set_index("class")[["n_test", "n", "n_excluded", "correct"]]
    assert counts.loc["WS"].tolist() == [3, 3, 0, 3]
    assert counts.loc["22q"].tolist() == [2, 0, 2, 0]
    assert counts.loc["control"].tolist() == [2, 2, 0, 1]
    assert counts.loc["unaffected"].tolist() == [3, 2, 1, 2]
    assert counts.loc["average"].tolist() == [10, 7, 3, 6]
    assert np.isnan(metrics.set_index("class").loc["22q", "accuracy"])
    assert read_tsv(tmp_path / "metrics.tsv").columns.tolist()[:5] == ["class", "n_test", "n", "n_excluded", "correct"]

    per_group = read_tsv(tmp_path / "per_group.tsv").set_index(["disease", "age_group"])
    # A group whose every test image was excluded keeps its row.
    assert per_group.loc[("22q", "adolescent"), ["n_test", "n", "n_excluded"]].tolist() == [2, 0, 2]
    assert np.isnan(per_group.loc[("22q", "adolescent"), "accuracy"])
    assert per_group.loc[("WS", "infant"), ["n_test", "n", "n_excluded"]].tolist() == [2, 2, 0]
    assert per_group["n_test"].sum() == 10

    two_way = read_tsv(tmp_path / "two_way.tsv").set_index(["survey", "disease", "age_group"])
    assert two_way.loc[("22q", "22q", "all"), ["n_test", "n", "n_excluded"]].tolist() == [2, 0, 2]
    assert two_way.loc[("WS", "control", "all"), ["n_test", "n", "n_excluded"]].tolist() == [2, 2, 0]

    excluded = read_tsv(tmp_path / "excluded.tsv")
    assert excluded["image_id"].tolist() == ["q1", "q2", "u3"]
    assert excluded["reason"].tolist() == [
        "alignment failed: dlib found no face",
        "alignment failed: unreadable: x",
        accounting.NOT_IN_CACHE,
    ]
    assert "7 of the manifest's 10 test images evaluated, 3 excluded" in (tmp_path / "metrics.tsv").read_text()


def test_without_exclusions_the_counts_agree_and_table2_carries_them(tmp_path):
    every = [i for i in manifest().query("split == 'test'")["image_id"]]
    for variant in ("real", "real+unrelated"):
        evaluate.evaluate(predictions(every), tmp_path / variant, 20, 1, variant, manifest(), FAILED)
    assert read_tsv(tmp_path / "real" / "excluded.tsv").empty
    metrics = {v: read_tsv(tmp_path / v / "metrics.tsv") for v in ("real", "real+unrelated")}
    table = table2.make_table2(metrics).set_index("class")
    assert table.columns.tolist() == ["n_test", "n_evaluated", "n_excluded", "real", "+unrelated"]
    assert table["n_test"].tolist() == [3, 2, 2, 3, 10] and (table["n_excluded"] == 0).all()

    evaluate.evaluate(predictions(EVALUATED), tmp_path / "short", 20, 1, "short", manifest(), FAILED)
    with pytest.raises(ValueError, match="evaluated on different test images"):
        table2.make_table2({"real": metrics["real"], "real+unrelated": read_tsv(tmp_path / "short" / "metrics.tsv")})
    evaluate.evaluate(predictions(every), tmp_path / "plain", 20, 1, "plain")
    with pytest.raises(ValueError, match="only some variants"):
        table2.make_table2({"real": metrics["real"], "real+unrelated": read_tsv(tmp_path / "plain" / "metrics.tsv")})


def test_predictions_of_another_manifest_are_refused(tmp_path):
    other = predictions(EVALUATED)
    other.loc[0, "image_id"] = "stranger"
    with pytest.raises(ValueError, match="not test images of the manifest.*stranger"):
        evaluate.evaluate(other, tmp_path, 20, 1, "real", manifest(), FAILED)


def shard_dir(root, name: str, statuses: dict[str, str]) -> str:
    rows = [
        {
            "image_id": i,
            "status": s,
            "method": "dlib" if s == "ok" else "",
            "n_faces": 1 if s == "ok" else 0,
            "upsample": 1 if s == "ok" else None,
            "aligned_path": f"{i}.png" if s == "ok" else "",
            "reason": "" if s == "ok" else f"no face in {i}",
            **dict.fromkeys(LANDMARK_COLUMNS, 1.0 if s == "ok" else None),
        }
        for i, s in statuses.items()
    ]
    write_tsv(
        pd.DataFrame(rows, columns=list(REPORT_COLUMNS)), root / name / "report.tsv", header_lines=["settings: s"]
    )
    return str(root / name)


def test_fail_on_test_error_stops_at_a_failed_test_image_only(tmp_path):
    ids = manifest()["image_id"].tolist()
    train_fails = {i: "failed" if i == "t2" else "ok" for i in ids}
    dirs = [
        shard_dir(tmp_path, "a", dict(list(train_fails.items())[:6])),
        shard_dir(tmp_path, "b", dict(list(train_fails.items())[6:])),
    ]
    report, failed, settings = merge.merge_aligned(dirs, manifest())
    assert settings == "s" and len(report) == len(ids)
    assert failed.columns.tolist() == ["image_id", "split", "disease", "age_group", "n_faces", "reason"]
    assert failed.values.tolist() == [["t2", "train", "22q", "child", 0, "no face in t2"]]
    merge.check_failures(failed, "failed.tsv", fail_on_test_error=True)  # a train image: the run goes on
    with pytest.raises(merge.AlignmentFailed, match="1 image.*fail_on_error"):
        merge.check_failures(failed, "failed.tsv", fail_on_error=True)

    test_fails = {**train_fails, "q1": "failed"}
    dirs = [shard_dir(tmp_path, "c", test_fails)]
    _, failed, _ = merge.merge_aligned(dirs, manifest())
    merge.check_failures(failed, "failed.tsv")  # both switches off: listed, not fatal
    with pytest.raises(merge.AlignmentFailed) as err:
        merge.check_failures(failed, "results/aligned/failed.tsv", fail_on_test_error=True)
    assert "1 test image(s) failed alignment" in str(err.value) and "q1: no face in q1" in str(err.value)
    assert "t2" not in str(err.value) and "results/aligned/failed.tsv" in str(err.value)
    with pytest.raises(ValueError, match="needs the failed images' split"):
        merge.check_failures(merge.failed_images(merge.merge_reports(dirs)[0]), "f", fail_on_test_error=True)
    with pytest.raises(ValueError, match="in no shard"):
        merge.merge_aligned([shard_dir(tmp_path, "d", {"ws1": "ok"})], manifest())
