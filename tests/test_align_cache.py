"""The packed cache (contents, order, memory map, atomic output) and the cohort overview figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from syndface.align import cache, overview
from syndface.align.cache import INDEX_COLUMNS, load_cache
from syndface.io import read_tsv, write_tsv
from syndface.taxonomy import AGE_GROUPS, DISEASES


@pytest.fixture
def aligned_study(tmp_path):
    """Twelve aligned 48-px PNGs (random pixels), a report with one failure, and their manifest."""
    gen = np.random.default_rng(3)
    n = 12
    ids = [f"img{k:02d}" for k in range(n)]
    paths = []
    for image_id in ids:
        path = tmp_path / "aligned" / f"{image_id}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(gen.integers(0, 256, size=(48, 48, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    report = pd.DataFrame({"image_id": ids, "status": "ok", "method": "manual", "aligned_path": paths, "reason": ""})
    report.loc[4, ["status", "aligned_path", "reason"]] = ["failed", "", "unreadable: broken"]
    manifest = pd.DataFrame(
        {
            "image_id": ids[::-1],  # the cache follows the manifest's order, not the report's
            "path": "raw.png",
            "disease": [DISEASES[k % 4] for k in range(n)],
            "age_group": [AGE_GROUPS[k % 5] for k in range(n)],
            "source": "cohort",
            "subject_id": [f"s{k // 2}" for k in range(n)],
            "split": ["train", "test"] * (n // 2),
        }
    )
    write_tsv(report, tmp_path / "report.tsv")
    write_tsv(manifest, tmp_path / "manifest.tsv")
    return tmp_path


def build(root, size):
    out = root / "cache" / f"{size}px"
    argv = [
        "--report",
        str(root / "report.tsv"),
        "--manifest",
        str(root / "manifest.tsv"),
        "--size",
        str(size),
        "--out-dir",
        str(out),
    ]
    assert cache.main(argv) == 0
    return out


def test_cache_holds_the_aligned_pngs_in_manifest_order(aligned_study):
    images, index = load_cache(build(aligned_study, 48))
    assert isinstance(images, np.memmap) and images.dtype == np.uint8 and images.shape == (11, 48, 48, 3)
    assert list(index.columns) == list(INDEX_COLUMNS) and index["row"].tolist() == list(range(11))
    manifest = read_tsv(aligned_study / "manifest.tsv")
    assert index["image_id"].tolist() == [i for i in manifest["image_id"] if i != "img04"]
    assert (
        index.set_index("image_id")["disease"].to_dict()
        == manifest.set_index("image_id").loc[index["image_id"], "disease"].to_dict()
    )
    for row, image_id in zip(index["row"], index["image_id"]):
        assert np.array_equal(images[row], np.asarray(Image.open(aligned_study / "aligned" / f"{image_id}.png")))
    assert not list((aligned_study / "cache" / "48px").glob(".*tmp*"))  # no temporary left behind


def test_cache_at_another_resolution_is_the_lanczos_resize(aligned_study):
    images, index = load_cache(build(aligned_study, 24))
    first = Image.open(aligned_study / "aligned" / f"{index['image_id'].iloc[0]}.png")
    assert images.shape[1:] == (24, 24, 3)
    assert np.array_equal(images[0], np.asarray(first.resize((24, 24), Image.LANCZOS)))


def test_load_cache_refuses_an_index_that_does_not_match(aligned_study):
    out = build(aligned_study, 16)
    index = read_tsv(out / "index.tsv")
    write_tsv(index.iloc[:-1], out / "index.tsv")
    with pytest.raises(ValueError, match="rebuild it"):
        load_cache(out)


def test_overview_picks_a_few_faces_per_group_and_draws_the_grid(aligned_study):
    report = read_tsv(aligned_study / "report.tsv")
    aligned = read_tsv(aligned_study / "manifest.tsv").merge(
        report.loc[report["status"] == "ok", ["image_id", "aligned_path"]], on="image_id"
    )
    picks = overview.pick_examples(aligned, per_cell=1, seed=0)
    assert all(len(group) == 1 for group in picks.values())
    assert set(picks) == set(zip(aligned["disease"], aligned["age_group"]))
    assert {k: g["image_id"].tolist() for k, g in picks.items()} == {
        k: g["image_id"].tolist() for k, g in overview.pick_examples(aligned, 1, 0).items()
    }

    out = aligned_study / "overview.png"
    argv = [
        "--report",
        str(aligned_study / "report.tsv"),
        "--manifest",
        str(aligned_study / "manifest.tsv"),
        "--out",
        str(out),
    ]
    assert overview.main(argv) == 0
    with Image.open(out) as figure:
        assert figure.width > figure.height > 200
