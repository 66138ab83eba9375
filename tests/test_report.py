"""The report made to share: `snakemake --report` opened in headless Chromium (Debian's).

The report is a single-page app: the test adds a small probe script to a copy of it that walks
the app's own menu (every category and subcategory) and shows every figure the way a click
would, then reads what Chromium rendered from its DOM dump.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml
from apt_packages import Unavailable, ensure
from conftest import DATA, REPO, SLURM_TINY_CONFIGS, FinishedRun, run_snakemake, run_snakemake_from_repo, workflow_rules

SECTIONS = {"1. Cohort", "2. Classifier", "3. GAN fakes", "4. Saliency", "5. Clinicians", "6. Beyond the paper"}
BEYOND = {
    "Calibration",
    "Subgroups: age, sex, ancestry",
    "Top-k, macro F1, per subject",
    "Embedding gallery (kNN)",
    "Held-out label (open set)",
    "Summary: beside the paper's Average",
}
FACE_FIGURES = {"Figure 1: aligned faces", "Figure 4: composites"}
OTHER_FIGURES = {"Figure 2: fake images", "Figure 3: confusion matrices", "Figure 5: permutation test"}

PROBE = """
<script>
(function () {
  const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
  async function probe() {
    for (let i = 0; i < 400 && !app; i++) await sleep(50);  // React mounts the app after load
    await sleep(200);
    const seen = {categories: {}, images: {}, captions: {}, description: document.body.innerText};
    for (const category of Object.keys(categories)) {
      app.showCategory(category);
      await sleep(100);
      seen.categories[category] = {menu: document.body.innerText, subcategories: {}};
      for (const subcategory of Object.keys(categories[category])) {
        app.showCategory(category);  // back to the category first, as a click on the menu does
        await sleep(50);
        app.setView({navbarMode: "subcategory", category: category, subcategory: subcategory});
        await sleep(100);
        seen.categories[category].subcategories[subcategory] = document.body.innerText;
      }
    }
    for (const [path, entry] of Object.entries(results)) {
      seen.captions[path] = entry.caption;
      if (!entry.mime_type.startsWith("image/")) continue;
      app.setView({content: "img", contentPath: entry.data_uri, resultPath: path});
      await sleep(100);
      const img = Array.from(document.images).find((im) => im.src === entry.data_uri);
      if (img && !img.complete) await new Promise((done) => { img.onload = img.onerror = done; });
      seen.images[path] = img ? [img.naturalWidth, img.naturalHeight] : null;
    }
    const out = document.createElement("pre");
    out.id = "syndface-probe";
    out.textContent = JSON.stringify(seen);
    document.body.appendChild(out);
  }
  window.addEventListener("load", () => probe().catch((error) => {
    const out = document.createElement("pre");
    out.id = "syndface-probe";
    out.textContent = JSON.stringify({error: String(error)});
    document.body.appendChild(out);
  }));
})();
</script>
"""


@pytest.fixture(scope="session")
def chromium():
    try:
        ensure(["chromium"], ["chromium"])
    except Unavailable as error:
        pytest.skip(f"no headless browser: {error}")
    return "chromium"


@pytest.fixture(scope="session")
def finished_tiny_run(request, tmp_path_factory):
    """A finished tiny demo: the SLURM test's run where SLURM is available, else a local one."""
    try:
        return request.getfixturevalue("slurm_tiny_run")
    except pytest.skip.Exception:
        workdir = tmp_path_factory.mktemp("tiny_run")
        run = run_snakemake(["--cores", "2", "--configfile", *map(str, SLURM_TINY_CONFIGS)], workdir, timeout=900)
        assert run.returncode == 0, run.stderr[-4000:]
        return FinishedRun(workdir, run.stdout + run.stderr, 0.0, via_slurm=False)


def _render(chromium: str, report, tmp_path) -> dict:
    html = report.read_text()
    end = html.rindex("</body>")
    probed = tmp_path / "probed.html"
    probed.write_text(html[:end] + PROBE + html[end:])
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1400,1000",
        "--virtual-time-budget=60000",
    ]
    shown = subprocess.run(
        ["timeout", "-s", "KILL", "120", chromium, *flags, "--dump-dom", probed.as_uri()],
        capture_output=True,
        text=True,
    )
    assert shown.returncode == 0, shown.stderr[-3000:]
    found = re.search(r'<pre id="syndface-probe">(.*?)</pre>', shown.stdout, re.S)
    assert found, "the report's app never finished rendering (no probe output in the DOM)"
    seen = json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    assert "error" not in seen, seen
    return seen


def _make_report(run: FinishedRun, tmp_path, extra_config: dict | None = None):
    configs = list(SLURM_TINY_CONFIGS)
    if extra_config:
        configs.append(tmp_path / "extra.yaml")
        configs[-1].write_text(yaml.safe_dump(extra_config))
    report = tmp_path / "report.html"
    made = run_snakemake_from_repo(
        ["--report", str(report), "--configfile", *map(str, configs)], run.workdir, timeout=300
    )
    assert made.returncode == 0, made.stderr[-4000:]
    return report


@pytest.mark.slow
def test_report_renders_the_papers_sections_and_every_figure(finished_tiny_run, chromium, tmp_path):
    seen = _render(chromium, _make_report(finished_tiny_run, tmp_path), tmp_path)
    assert set(seen["categories"]) == SECTIONS
    for section in SECTIONS:
        assert section in seen["categories"][section]["menu"]  # the menu shows it
    subcategories = {sub for cat in seen["categories"].values() for sub in cat["subcategories"]}
    assert (
        FACE_FIGURES | OTHER_FIGURES | BEYOND | {"Table 1: clinicians vs model", "Table 2: accuracy per class"}
        <= subcategories
    )
    # each subcategory page lists its results, one row per file (fake types and diseases told apart)
    pages = {sub: text for cat in seen["categories"].values() for sub, text in cat["subcategories"].items()}
    assert (
        "composites/WS.png" in pages["Figure 4: composites"] and "composites/22q.png" in pages["Figure 4: composites"]
    )
    # fake grids are labelled by fold and fake type (one grid per job)
    assert re.search(r"^0\tunrelated\t", pages["Figure 2: fake images"], re.M)
    assert (
        "real+unrelated" in pages["Figure 3: confusion matrices"]
        and "table2.tsv" in pages["Table 2: accuracy per class"]
    )

    images = {path.split("results/", 1)[-1]: size for path, size in seen["images"].items()}
    expected = {
        "cohort/overview.png",
        "evaluation/real/confusion.png",
        "evaluation/real+unrelated/confusion.png",
        "fakes/fold0/unrelated/sample_grid.png",
        "fakes/fold1/unrelated/sample_grid.png",
        "fakes/fidelity_unrelated.png",
        *(f"gan/fold{k}/{name}.png" for k in (0, 1) for name in ("metrics", "grid", "progression")),
        "saliency/real/composites/WS.png",
        "saliency/real/composites/22q.png",
        "saliency/real/permutation_WS.png",
        "saliency/real/permutation_22q.png",
        "clinicians.png",
        *(
            f"evaluation/{v}/{name}"
            for v in ("real", "real+unrelated")
            for name in ("reliability.png", "recall_by_age.png")
        ),
        "evaluation/held_out/control/distances.png",
    }
    assert set(images) == expected
    for name, size in images.items():
        assert size is not None and size[0] > 50 and size[1] > 50, (name, size)  # decoded and drawn
    assert all(caption and caption.strip() for caption in seen["captions"].values())
    assert "Faces shown" in seen["description"]


@pytest.mark.slow
def test_switch_keeps_real_faces_out_of_the_report(finished_tiny_run, chromium, tmp_path):
    seen = _render(chromium, _make_report(finished_tiny_run, tmp_path, {"report": {"show_faces": False}}), tmp_path)
    assert set(seen["categories"]) == SECTIONS
    subcategories = {sub for cat in seen["categories"].values() for sub in cat["subcategories"]}
    assert not FACE_FIGURES & subcategories and OTHER_FIGURES <= subcategories
    paths = " ".join(seen["images"])
    assert "overview.png" not in paths and "composites" not in paths and "sample_grid.png" in paths
    assert "Real faces withheld" in seen["description"]


@pytest.mark.parametrize(
    "cohort, setting, faces",
    [
        ([{"format": "demo"}], "auto", True),
        ([{"format": "syndface", "path": "cohort.tsv"}], "auto", False),  # a real cohort: off by default
        ([{"format": "demo"}, {"format": "fairface", "path": "fairface.csv"}], "auto", False),
        ([{"format": "syndface", "path": "cohort.tsv"}], True, True),
        ([{"format": "demo"}], "false", False),  # as --config report='{show_faces: false}' passes it
    ],
)
def test_faces_are_reported_only_for_the_demo_unless_asked(tmp_path, cohort, setting, faces):
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"cohort": {"inputs": cohort}, "report": {"show_faces": setting}}))
    rules = workflow_rules([REPO / "config.yaml", DATA / "tiny.yaml", site], tmp_path)
    assert rules["plot_cohort_overview"]["report_outputs"] == (["results/cohort/overview.png"] if faces else [])
    assert bool(rules["saliency_composites"]["report_outputs"]) == faces
    assert rules["make_table2"]["report_outputs"] == ["results/table2.tsv"]  # tables always
