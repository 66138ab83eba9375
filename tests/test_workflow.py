"""The workflow as a user drives it: dry-runs, lint, config errors, the paper-size plan."""

import re
import time

import pandas as pd
import pytest
import yaml
from conftest import DATA, REPO, TINY_CONFIGS, run_snakemake

from syndface.io import read_tsv


def _job_counts(stdout: str) -> dict[str, int]:
    """Parse Snakemake's 'Job stats' table."""
    table = stdout.split("Job stats:")[-1]
    counts = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}
    counts.pop("total", None)
    return counts


def _write_config(tmp_path, overrides: dict, name="config.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(overrides))
    return path


def test_default_config_dry_run_plans_the_demo(tmp_path):
    result = run_snakemake(["-n", "--configfile", str(REPO / "config.yaml")], tmp_path)
    assert result.returncode == 0, result.stderr
    jobs = _job_counts(result.stdout)
    assert jobs["make_demo_cohort"] == 1 and jobs["build_manifest"] == 1 and jobs["make_folds"] == 1


def test_lint_is_clean(tmp_path):
    result = run_snakemake(["--lint"], REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


@pytest.mark.parametrize(
    "override, expected",
    [
        (
            {"folds": {"n_fold": 5, "group_by": "subject_id"}},
            "unknown key 'folds.n_fold' (allowed here: n_folds, group_by); did you mean 'n_folds'?",
        ),
        (
            {"folds": {"n_folds": 5, "group_by": "person"}},
            "folds.group_by: 'person' is not allowed; allowed: subject_id, image_id",
        ),
        (
            {"cohort": {"inputs": [{"format": "demo"}], "fairface_age_map": {"0-2": "toddler"}}},
            "cohort.fairface_age_map.0-2: 'toddler' is not allowed",
        ),
        (
            {"classifier": {"class_weights": {"Williams": 10}}},
            "unknown key 'classifier.class_weights.Williams' (allowed here: WS, 22q, control, unaffected)",
        ),
        (
            {"saliency": {"diseases": ["WS", "DiGeorge"]}},
            "saliency.diseases[1]: 'DiGeorge' is not allowed; allowed: WS, 22q, control, unaffected",
        ),
        ({"classifier": {"epoch": 3}}, "did you mean 'epochs'?"),
    ],
)
def test_bad_config_stops_before_any_job_naming_the_key(tmp_path, override, expected):
    bad = _write_config(tmp_path, override, "bad.yaml")
    result = run_snakemake(["--cores", "1", "--configfile", str(REPO / "config.yaml"), str(bad)], tmp_path)
    assert result.returncode != 0
    assert expected in result.stderr
    assert not (tmp_path / "results").exists()


PAPER_COHORT_TRAIN = {  # 1,713 train images of the paper's own cohort (WS, 22q, Controls)
    ("WS", "WS"): 480,
    ("22q11DS", "22q11DS"): 551,
    ("Controls", "Controls"): 682,
}
AGE_TOKENS = ["2y", "youngchild", "adolescence", "youngadult", "olderadult"]


def _paper_size_inputs(root):
    """The paper's data layout at full size: its real test CSV, a train CSV of the paper's
    counts (1,713 cohort + 51,740 FairFace), and an empty placeholder file per image."""
    prefix = "/data/duongdb/WS22qOther_08102021/Align512BlankBackgroundCenter/"
    rows = []
    for (label, _), n in PAPER_COHORT_TRAIN.items():
        for i in range(n):
            name = f"{label}_train{i}_{label}{AGE_TOKENS[i % 5]}.png"
            rows.append((name, prefix + name, label, i % 5, 0))
    for i in range(51_740):
        name = f"{200_000 + i}_02_Normal{AGE_TOKENS[i % 5]}.png"
        rows.append((name, prefix + name, "Normal", i % 5, 1))
    data = root / "data"
    (data / "images").mkdir(parents=True)
    pd.DataFrame(rows, columns=["name", "path", "label", "fold", "is_ext"]).to_csv(
        data / "train+blankcenter+WS+22q11DS+Control+Normal+Whole.csv", index=False
    )
    test = pd.read_csv(DATA / "paper_test_manifest.csv.gz")
    test.to_csv(data / "test+blankcenter+WS+22q11DS+Control+Normal.csv", index=False)
    for name in [r[0] for r in rows] + test["name"].tolist():
        (data / "images" / name).touch()
    return len(rows) + len(test)


@pytest.mark.slow
def test_paper_config_plans_in_shards_quickly(tmp_path):
    n_images = _paper_size_inputs(tmp_path)
    assert n_images == 1_894 + 62_088
    configs = ["--configfile", str(REPO / "config.yaml"), str(REPO / "config/paper.yaml")]
    built = run_snakemake(["results/cohort/manifest.tsv", "--cores", "1", *configs], tmp_path)
    assert built.returncode == 0, built.stderr
    manifest = read_tsv(tmp_path / "results/cohort/manifest.tsv")
    assert len(manifest) == n_images
    assert manifest.groupby("source").size().to_dict() == {"auxiliary": 62_088, "cohort": 1_894}

    start = time.monotonic()
    plan = run_snakemake(["-n", *configs], tmp_path)
    seconds = time.monotonic() - start
    assert plan.returncode == 0, plan.stderr
    jobs = _job_counts(plan.stdout)
    print(f"paper-size dry-run: {seconds:.1f} s, {sum(jobs.values())} jobs: {jobs}")
    # The pretrained weights (EfficientNet-B4 for classifier and embedding, FFHQ-256, Inception-v3
    # for the GANs' FID) are fetched first.
    assert jobs["fetch_weights"] == 3
    # No stage plans one job per image: the whole study is a few hundred jobs at most.
    assert sum(jobs.values()) < 1_000
    assert max(jobs.values()) < 200


@pytest.mark.slow
def test_whole_study_runs_end_to_end_on_a_tiny_demo(tiny_run):
    """`snakemake all` on a toy-size demo: every stage runs and writes what its rules promise."""
    results = tiny_run / "results"

    manifest = read_tsv(results / "cohort/manifest.tsv")
    report = read_tsv(results / "aligned/report.tsv")
    assert set(report["image_id"]) == set(manifest["image_id"]) and (report["method"] == "manual").all()
    assert len(list((results / "aligned/shards").iterdir())) == -(-len(manifest) // 80)
    assert (results / "cohort/overview.png").stat().st_size > 0
    assert (results / "folds/leakage.tsv").exists()

    table2 = read_tsv(results / "table2.tsv").set_index("class")
    assert list(table2.index) == ["WS", "22q", "control", "unaffected", "average"]
    assert [c for c in table2.columns if "_ci_" not in c] == [
        "n_test", "n_evaluated", "n_excluded", "real", "+age_progression", "+blended_55", "real (TTA)"
    ]  # fmt: skip
    assert (table2["n_excluded"] == 0).all() and table2.loc["average", "n_test"] == (manifest["split"] == "test").sum()
    assert table2.loc["average", "real"] == pytest.approx(
        table2.loc[["WS", "22q", "control", "unaffected"], "real"].mean(),
        abs=1e-4,  # the table's 4 decimals
    )

    for variant in ("real", "real+age_progression", "real+blended_55"):
        assert (results / f"evaluation/{variant}/confusion.png").exists()
        predictions = read_tsv(results / f"predictions/{variant}/test.tsv")
        assert len(predictions) == (manifest["split"] == "test").sum()
    fakes = read_tsv(results / "fakes/fold0/blended_55/manifest.tsv")
    assert set(fakes[["label_WS", "label_22q", "label_control", "label_unaffected"]].max(axis=1)) == {0.55}
    assert (results / "fakes/privacy.tsv").exists()

    table1 = read_tsv(results / "table1.tsv")
    assert len(table1) == 20 and "SIMULATED" in (results / "table1.tsv").read_text()
    for name in ("permutation.tsv", "truth_check.tsv", "composites/WS.png", "permutation_22q.png"):
        assert (results / "saliency/real" / name).exists()

    evaluation = results / "evaluation"
    for variant in ("real", "real+age_progression", "real+blended_55"):
        for name in ("calibration.tsv", "reliability.png", "subgroups.tsv", "recall_by_age.png", "subjects.tsv"):
            assert (evaluation / variant / name).stat().st_size > 0, (variant, name)
    assert set(read_tsv(evaluation / "real/subgroups.tsv")["attribute"]) == {"age_group", "sex", "ancestry"}
    subjects = read_tsv(evaluation / "real/subjects.tsv").set_index("class")
    assert subjects.loc["average", "subjects_with_several_photos"] > 0  # tiny.yaml repeats test photos
    assert subjects.loc["average", "subject_n"] < subjects.loc["average", "image_n"]
    summary = read_tsv(evaluation / "summary.tsv")
    assert summary["variant"].tolist() == ["real", "+age_progression", "+blended_55"]
    assert summary["average"].tolist() == pytest.approx(
        table2.loc["average", ["real", "+age_progression", "+blended_55"]].tolist(), abs=1e-4
    )
    assert read_tsv(evaluation / "real/knn.tsv")["class"].iloc[-1] == "average"
    placement = read_tsv(evaluation / "held_out/control/placement.tsv")
    n_control = ((manifest["disease"] == "control") & (manifest["split"] == "test")).sum()
    assert placement.loc[placement["age_group"] == "all", "landed"].sum() == n_control
    assert (evaluation / "held_out/control/distances.png").stat().st_size > 0
    held_out_folds = read_tsv(evaluation / "held_out/control/folds.tsv")
    assert (
        "control" not in set(held_out_folds["disease"])
        and len(list((evaluation / "held_out/control").glob("fold*/model.pt"))) == 2
    )

    rerun = run_snakemake(["-n", *TINY_CONFIGS], tiny_run)
    assert "Nothing to be done" in rerun.stdout + rerun.stderr


def _header(path) -> str:
    return "\n".join(line for line in path.read_text().splitlines() if line.startswith("#"))


def _intervals_have_width(table: pd.DataFrame, estimate: str, low: str, high: str) -> None:
    """Every interval contains its estimate and has width, also at 0/n and n/n."""
    rows = table.dropna(subset=[estimate])
    assert len(rows), estimate
    assert (rows[high] > rows[low]).all(), rows[[estimate, low, high]][rows[high] <= rows[low]]
    assert ((rows[low] <= rows[estimate] + 1e-12) & (rows[estimate] <= rows[high] + 1e-12)).all(), estimate


@pytest.mark.slow
def test_tables_name_their_tests_and_no_interval_is_zero_width(tiny_run):
    """Table 1, Table 2, clinicians.tsv and permutation.tsv say in their header which unit, test,
    interval and q family they use; no interval is zero-width, including the groups the model gets
    all right or all wrong (plenty with the tiny run's 2 images per group)."""
    results = tiny_run / "results"

    table2 = read_tsv(results / "table2.tsv")
    header = _header(results / "table2.tsv")
    assert "unit: the test image" in header and "Clopper-Pearson exact 95% interval per class" in header
    assert "average: MOVER-Wilson" in header
    for column in ("real", "+age_progression", "+blended_55"):
        _intervals_have_width(table2, column, f"{column}_ci_low", f"{column}_ci_high")

    table1 = read_tsv(results / "table1.tsv")
    header = _header(results / "table1.tsv")
    for phrase in (
        "SIMULATED",
        "Korn-Graubard",
        "Clopper-Pearson",
        "unit: image",
        "Poisson-binomial",
        "unit: rater",
        "q = Benjamini-Hochberg within each variant x survey x truth of Table 1",
        "chosen on the validation folds",
    ):
        assert phrase in header, phrase
    assert table1["best_fake_selected_on"].eq("validation").all()
    _intervals_have_width(table1, "human", "human_ci_low", "human_ci_high")
    for name in ("model_real", "model_best_fake"):
        _intervals_have_width(table1, name, f"{name}_ci_low", f"{name}_ci_high")
    assert table1["model_real"].isin([0.0, 1.0]).any()  # the 0/n or n/n case is there to check

    clinicians = read_tsv(results / "clinicians.tsv")
    header = _header(results / "clinicians.tsv")
    for phrase in ("p_count (unit: image)", "(unit: rater)", "p_paper_ttest = the paper's", "p_mixed = logistic mixed"):
        assert phrase in header, phrase
    assert "q = Benjamini-Hochberg within each variant x survey x truth" in header
    _intervals_have_width(clinicians, "human_accuracy", "human_ci_low", "human_ci_high")
    _intervals_have_width(clinicians, "model_accuracy", "model_ci_low", "model_ci_high")
    surveys = clinicians[clinicians["level"] == "survey"]
    assert surveys[["p_count", "p_paper_ttest", "p_mixed"]].notna().all().all()

    permutation = read_tsv(results / "saliency/real/permutation.tsv")
    header = _header(results / "saliency/real/permutation.tsv")
    for phrase in ("unit: the image", "p_value: exact", "q_within_disease: Benjamini-Hochberg", "q_all:"):
        assert phrase in header, phrase
    assert len(permutation) == 3 * 10 and "kind" not in permutation.columns
    checks = read_tsv(results / "saliency/real/size_check.tsv")
    assert checks["disease"].tolist() == ["WS", "22q", "control"] and checks["passed"].all()
    assert all(f"{d}: size check: " in header for d in checks["disease"])
    _intervals_have_width(checks, "rate", "rate_ci_low", "rate_ci_high")


def test_table2_target_plans_only_what_table2_needs(tmp_path):
    result = run_snakemake(["-n", "results/table2.tsv", "--configfile", str(REPO / "config.yaml")], tmp_path)
    assert result.returncode == 0, result.stderr
    jobs = _job_counts(result.stdout)
    assert jobs["make_table2"] == 1 and jobs["build_manifest"] == 1
    unrelated = {
        "occlusion_maps",
        "permutation_test",
        "compare_clinicians",
        "simulate_survey",
        "check_leakage",
        "plot_cohort_overview",
        "privacy_audit",
        "saliency_truth_check",
        "saliency_composites",
    }
    assert not unrelated & set(jobs)
