import json

import pandas as pd
import pytest
from conftest import DATA

from syndface.cohort import build, importers
from syndface.cohort.manifest import ManifestError, load_schema, validate_manifest
from syndface.cohort.options import ManifestOptions
from syndface.io import read_tsv, write_tsv

SCHEMA = load_schema()
AGE_MAP = ManifestOptions().fairface_age_map


def test_paper_test_csv_gives_the_papers_counts():
    """The paper's own test manifest (fold 5): 50 WS, 50 22q, 81 control, 10,348 FairFace."""
    rows, rejects = importers.import_paper_csv({"path": DATA / "paper_test_manifest.csv.gz"})
    assert rejects.empty
    validate_manifest(rows, SCHEMA)
    counts = rows.groupby(["source", "disease"]).size().to_dict()
    assert counts == {
        ("cohort", "WS"): 50,
        ("cohort", "22q"): 50,
        ("cohort", "control"): 81,
        ("auxiliary", "unaffected"): 10_348,
    }
    assert (rows["split"] == "test").all()
    by_age = rows.groupby(["disease", "age_group"]).size()
    assert by_age["WS"].tolist() == [10] * 5 and by_age["22q"].tolist() == [10] * 5
    order = ["infant", "child", "adolescent", "young_adult", "older_adult"]
    assert by_age["control"][order].tolist() == [14, 19, 18, 17, 13]
    assert by_age["unaffected"][order].tolist() == [149, 1295, 828, 4782, 3294]


def test_paper_csv_rejects_unmappable_rows_with_reasons(tmp_path):
    csv = tmp_path / "paper.csv"
    csv.write_text(
        "name,path,label,fold,is_ext\n"
        "WS_early6_WS2y.png,/data/x/WS_early6_WS2y.png,WS,0,0\n"
        "22q11DS_late47_22q11DSyoungadult.png,/data/x/22q11DS_late47_22q11DSyoungadult.png,22q11DS,5,0\n"
        "33790_01_Normalyoungchild.png,/data/x/33790_01_Normalyoungchild.png,Normal,1,1\n"
        "Controls_x1_Controlsadolecence.png,/data/x/Controls_x1_Controlsadolecence.png,Controls,2,0\n"
        "Foo_x_Foo2y.png,/data/x/Foo_x_Foo2y.png,Foo,0,0\n"
        "WS_early7_WSteen.png,/data/x/WS_early7_WSteen.png,WS,0,0\n"
        "WS_early8_WS2y.png,/data/x/WS_early8_WS2y.png,WS,zero,0\n"
        "WS_early9_22q11DS2y.png,/data/x/WS_early9_22q11DS2y.png,WS,0,0\n"
    )
    rows, rejects = importers.import_paper_csv({"path": csv, "strip_prefix": "/data/x/", "image_root": "imgs"})
    assert rows["image_id"].tolist() == [
        "WS_early6_WS2y",
        "22q11DS_late47_22q11DSyoungadult",
        "33790_01_Normalyoungchild",
        "Controls_x1_Controlsadolecence",
    ]
    assert rows["age_group"].tolist() == ["infant", "young_adult", "child", "adolescent"]
    assert rows["disease"].tolist() == ["WS", "22q", "unaffected", "control"]
    assert rows["split"].tolist() == ["train", "test", "train", "train"]
    assert rows["source"].tolist() == ["cohort", "cohort", "auxiliary", "cohort"]
    assert rows["path"].iloc[0] == "imgs/WS_early6_WS2y.png"
    assert rejects["line"].tolist() == [6, 7, 8, 9]
    reasons = rejects["reason"].tolist()
    assert "unknown label 'Foo'" in reasons[0]
    assert "no age group" in reasons[1] and "no age group" in reasons[3]
    assert "not integers" in reasons[2]


def test_fairface_age_map_exclusion_and_test_share(tmp_path):
    csv = tmp_path / "fairface_label_train.csv"
    lines = ["file,age,gender,race,service_test"]
    bins = ["0-2", "3-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69", "more than 70"]
    for i in range(180):
        lines.append(f"train/{i}.jpg,{bins[i % len(bins)]},Male,White,True")
    lines.append("train/999.jpg,unknown,Female,Black,False")
    csv.write_text("\n".join(lines) + "\n")
    age_map = {**AGE_MAP, "30-39": "exclude"}
    spec = {"path": csv, "image_root": "fairface", "test_fraction": 0.25}
    rows, rejects = importers.import_fairface(spec, age_map, seed=3)
    assert len(rows) == 160 and len(rejects) == 21
    assert set(rejects["reason"]) == {
        "age bin '30-39' excluded by fairface_age_map",
        "age bin 'unknown' not in fairface_age_map",
    }
    assert rows["path"].iloc[1] == "fairface/train/1.jpg" and rows["image_id"].iloc[1] == "fairface_train_1"
    assert (rows["disease"] == "unaffected").all() and (rows["source"] == "auxiliary").all()
    # gender and race reach the manifest as the optional subgroup columns sex and ancestry
    assert rows[["sex", "ancestry"]].iloc[0].tolist() == ["male", "White"] and "gender" not in rows
    # a quarter of every age group is held out, reproducibly
    share = rows.groupby("age_group")["split"].apply(lambda s: (s == "test").mean())
    assert share.between(0.2, 0.3).all()
    again, _ = importers.import_fairface(spec, age_map, seed=3)
    pd.testing.assert_frame_equal(rows, again)
    other, _ = importers.import_fairface(spec, age_map, seed=4)
    assert not other["split"].equals(rows["split"])


def _tsv(tmp_path, rows, name="cohort.tsv"):
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


ROW = dict(
    image_id="a1", path="img/a1.png", disease="WS", age_group="child", source="cohort", subject_id="s1", split="train"
)


def test_syndface_tsv_keeps_extra_columns(tmp_path):
    path = _tsv(tmp_path, [{**ROW, "age_years": 4.5}, {**ROW, "image_id": "007", "subject_id": "s2", "age_years": 30}])
    rows, rejects = importers.import_syndface({"path": path})
    assert rows["image_id"].tolist() == ["a1", "007"] and rows["age_years"].tolist() == [4.5, 30]
    assert rejects.empty


@pytest.mark.parametrize(
    "bad, message",
    [
        ([ROW, ROW], "duplicate image_id"),
        ([{**ROW, "disease": "Williams"}], "'disease' has value(s) Williams"),
        ([{**ROW, "age_group": "teen"}], "allowed: infant, child"),
        ([ROW, {**ROW, "image_id": "a2", "split": "test"}], "subject(s) in both train and test: s1"),
        ([{k: v for k, v in ROW.items() if k != "subject_id"}], "missing required column(s): subject_id"),
    ],
)
def test_bad_manifests_fail_naming_the_problem(tmp_path, bad, message):
    rows, _ = importers.import_syndface({"path": _tsv(tmp_path, bad)})
    with pytest.raises(ManifestError) as err:
        validate_manifest(rows, SCHEMA)
    assert message in str(err.value)


def test_build_manifest_command_writes_manifest_rejects_and_summary(tmp_path):
    cohort = _tsv(tmp_path, [ROW, {**ROW, "image_id": "b", "subject_id": "s9", "disease": "22q", "split": "test"}])
    paper = tmp_path / "paper.csv"
    paper.write_text(
        "name,path,label,fold,is_ext\nWS_e1_WS2y.png,x/WS_e1_WS2y.png,WS,1,0\nX_1_Xfoo.png,x/X.png,Other,0,0\n"
    )
    out = tmp_path / "results"
    inputs = [{"format": "syndface", "path": str(cohort)}, {"format": "paper_csv", "path": str(paper)}]
    argv = [
        "--options",
        json.dumps({"cohort": {"inputs": inputs}, "seed": 1}),
        "--out",
        str(out / "manifest.tsv"),
        "--rejects",
        str(out / "rejects.tsv"),
        "--summary",
        str(out / "summary.tsv"),
    ]
    assert build.main(argv) == 0
    manifest = read_tsv(out / "manifest.tsv")
    assert manifest["image_id"].tolist() == ["a1", "b", "WS_e1_WS2y"]
    assert list(manifest.columns[:7]) == ["image_id", "path", "disease", "age_group", "source", "subject_id", "split"]
    assert read_tsv(out / "rejects.tsv")["reason"].str.contains("unknown label 'Other'").all()
    assert read_tsv(out / "summary.tsv")["n"].sum() == 3


def test_duplicate_ids_across_inputs_stop_the_build(tmp_path):
    one = _tsv(tmp_path, [ROW], "one.tsv")
    two = _tsv(tmp_path, [{**ROW, "subject_id": "s5"}], "two.tsv")
    with pytest.raises(ManifestError, match="duplicate image_id.*a1"):
        build.build_manifest(
            [{"format": "syndface", "path": one}, {"format": "syndface", "path": two}], AGE_MAP, 1, SCHEMA
        )


def test_paper_labels_with_the_age_group_appended_import(tmp_path):
    """The paper's "Split" labels (label + age token) import; a label that contradicts the file name does not."""
    csv = tmp_path / "split.csv"
    csv.write_text(
        "name,path,label,fold,is_ext\n"
        "WS_late3_WSolderadult.png,x/WS_late3_WSolderadult.png,WSolderadult,0,0\n"
        "22q11DS_late188_22q11DS2y.png,x/22q11DS_late188_22q11DS2y.png,22q11DS2y,5,0\n"
        "Controls_e1_Controlsyoungchid.png,x/Controls_e1_Controlsyoungchid.png,Controlsyoungchild,1,0\n"
        "33790_01_Normal2y.png,x/33790_01_Normal2y.png,Normal<2y,2,1\n"
        "noage.png,x/noage.png,WSadolecence,3,0\n"
        "WS_late4_WSyoungadult.png,x/WS_late4_WSyoungadult.png,WSolderadult,0,0\n"
        "WS_late5_WSteen.png,x/WS_late5_WSteen.png,WSteen,0,0\n"
    )
    rows, rejects = importers.import_paper_csv({"path": csv})
    assert rows["disease"].tolist() == ["WS", "22q", "control", "unaffected", "WS"]
    assert rows["age_group"].tolist() == ["older_adult", "infant", "child", "infant", "adolescent"]
    assert rejects["line"].tolist() == [7, 8]
    assert "says older_adult but the file name says young_adult" in rejects["reason"].iloc[0]
    assert "unknown label 'WSteen'" in rejects["reason"].iloc[1] and "e.g. WSolderadult" in rejects["reason"].iloc[1]


def test_an_input_whose_every_row_is_rejected_is_a_clear_error(tmp_path):
    paper = tmp_path / "paper.csv"
    paper.write_text(
        "name,path,label,fold,is_ext\na.png,x/a.png,Williams,0,0\nb.png,x/b.png,Williams,0,0\nc.png,x/c.png,22q,1,0\n"
    )
    with pytest.raises(ManifestError) as err:
        build.build_manifest([{"format": "paper_csv", "path": str(paper)}], AGE_MAP, 1, SCHEMA)
    message = str(err.value)
    assert "no rows left from" in message and "all 3 were rejected" in message
    assert "2 x unknown label 'Williams'" in message and "1 x unknown label '22q'" in message
    # A good input beside it does not hide the problem.
    good = _tsv(tmp_path, [ROW])
    with pytest.raises(ManifestError, match="no rows left from .*paper.csv"):
        build.build_manifest(
            [{"format": "syndface", "path": good}, {"format": "paper_csv", "path": str(paper)}], AGE_MAP, 1, SCHEMA
        )
    header_only = tmp_path / "empty.csv"
    header_only.write_text("name,path,label,fold,is_ext\n")
    with pytest.raises(ManifestError, match="has no data rows"):
        build.build_manifest([{"format": "paper_csv", "path": str(header_only)}], AGE_MAP, 1, SCHEMA)


def test_syndface_rows_outside_the_schema_are_rejected_with_what_to_write(tmp_path):
    rows = [
        ROW,
        {**ROW, "image_id": "b", "subject_id": "s2", "disease": "Williams"},
        {**ROW, "image_id": "c", "subject_id": "s3", "age_group": "teen"},
        {**ROW, "image_id": "d", "subject_id": "s4", "disease": "WSolderadult"},
        {**ROW, "image_id": "e", "subject_id": "s5", "disease": "22q11DS", "age_group": "youngchild"},
        {**ROW, "image_id": "f#1", "subject_id": "s6"},
        {**ROW, "image_id": "g", "subject_id": "s7", "split": ""},
    ]
    path = tmp_path / "cohort.tsv"
    write_tsv(pd.DataFrame(rows), path, header_lines=["exported by hand"])
    manifest, rejects = build.build_manifest([{"format": "syndface", "path": str(path)}], AGE_MAP, 1, SCHEMA)
    assert manifest["image_id"].tolist() == ["a1"] and "_line" not in manifest.columns
    assert rejects["name"].tolist() == ["b", "c", "d", "e", "f#1", "g"]
    assert rejects["line"].tolist() == [4, 5, 6, 7, 8, 9]  # one provenance line, the header, then the data
    reasons = dict(zip(rejects["name"], rejects["reason"]))
    assert reasons["b"] == "unknown disease 'Williams' (expected one of WS, 22q, control, unaffected)"
    assert "expected one of infant, child, adolescent, young_adult, older_adult" in reasons["c"]
    assert "write disease WS and age_group older_adult" in reasons["d"]
    assert "write 22q" in reasons["e"] and "write child" in reasons["e"]
    assert "image_id 'f#1' does not match" in reasons["f#1"]
    assert reasons["g"] == "empty split"


def test_table_level_errors_name_the_rows(tmp_path):
    rows = [ROW, {**ROW, "subject_id": "s2"}, {**ROW, "image_id": "a2", "split": "test"}]
    path = _tsv(tmp_path, rows)
    with pytest.raises(ManifestError) as err:
        build.build_manifest([{"format": "syndface", "path": str(path)}], AGE_MAP, 1, SCHEMA)
    assert "duplicate image_id(s): a1 (cohort.tsv:2, cohort.tsv:3)" in str(err.value)
    assert "subject(s) in both train and test: s1 (test: a2; train: a1)" in str(err.value)


def test_external_tables_are_read_without_comment_parsing(tmp_path):
    """A '#' in a name or path is data in every input format (a comment parser would cut the row)."""
    paper = tmp_path / "paper.csv"
    paper.write_text(
        "name,path,label,fold,is_ext\nWS_e#1_WS2y.png,web/img #1/WS_e#1_WS2y.png,WS,5,0\n", encoding="utf-8"
    )
    rows, rejects = importers.import_paper_csv({"path": paper})
    assert rejects.empty
    assert rows[["image_id", "path", "age_group", "split"]].values.tolist() == [
        ["WS_e_1_WS2y", "web/img #1/WS_e#1_WS2y.png", "infant", "test"]
    ]
    fairface = tmp_path / "fairface.csv"
    fairface.write_text("file,age,gender,race,service_test\ntrain/1#2.jpg,3-9,Male,White,True\n")
    rows, _ = importers.import_fairface({"path": fairface}, AGE_MAP, seed=1)
    assert rows[["image_id", "path", "ancestry"]].values.tolist() == [["fairface_train_1_2", "train/1#2.jpg", "White"]]
    own = tmp_path / "own.tsv"
    own.write_text(
        "# exported 2024\nimage_id\tpath\tdisease\tage_group\tsource\tsubject_id\tsplit\n"
        "a1\timg/a#1.png\tWS\tchild\tcohort\t#7\ttrain\n"
    )
    manifest, _ = build.build_manifest([{"format": "syndface", "path": str(own)}], AGE_MAP, 1, SCHEMA)
    assert manifest[["path", "subject_id", "split"]].values.tolist() == [["img/a#1.png", "#7", "train"]]
