"""The bad-input corpus (tests/badinputs.py) through cohort import, alignment and merge: each bad
item is reported by id and reason, every good image is aligned, and table-level errors stop the
build before any compute, naming the rows."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from badinputs import KIND, SMALL_SIDE, TEST_SPLIT, markdown_table, write_corpus
from conftest import REPO
from PIL import Image

from syndface.align import merge
from syndface.align.cache import cache_index
from syndface.align.landmarks import find_face
from syndface.align.load import load_rgb
from syndface.align.shard import AlignOptions, run_shard
from syndface.cohort.build import build_manifest
from syndface.cohort.manifest import ManifestError, load_schema
from syndface.cohort.options import ManifestOptions
from syndface.io import read_tsv, write_tsv

SCHEMA = load_schema(REPO / "workflow/schemas/manifest.schema.yaml")
OPTIONS = AlignOptions(size=64, zoom=1.0, background="pad", prefer="dlib", upsample=1, max_upsample=2)
SHARD_SIZE = 7


def build(cohort) -> tuple[pd.DataFrame, pd.DataFrame]:
    return build_manifest([{"format": "syndface", "path": str(cohort)}], ManifestOptions().fairface_age_map, 1, SCHEMA)


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    """The corpus imported, written and read back, aligned in shards of 7 and merged."""
    root = tmp_path_factory.mktemp("bad")
    cohort, expected = write_corpus(root)
    manifest, rejects = build(cohort)
    write_tsv(manifest, root / "manifest.tsv")
    manifest = read_tsv(root / "manifest.tsv")
    n_shards = -(-len(manifest) // SHARD_SIZE)
    dirs = [root / f"shard{k:03d}" for k in range(n_shards)]
    for k, shard_dir in enumerate(dirs):
        run_shard(manifest, k, SHARD_SIZE, {}, OPTIONS, shard_dir)
    report, failed, _ = merge.merge_aligned(dirs, manifest)
    write_tsv(report, root / "report.tsv")
    write_tsv(failed, root / "failed.tsv")
    return {
        "expected": expected.set_index("image_id"),
        "manifest": manifest,
        "rejects": rejects,
        "report": read_tsv(root / "report.tsv").set_index("image_id"),
        "failed": read_tsv(root / "failed.tsv"),
    }


def test_rows_outside_the_taxonomy_are_rejected_by_id_with_what_was_expected(aligned):
    expected, rejects = aligned["expected"], aligned["rejects"]
    rejected = expected[expected["outcome"] == "rejected"]
    assert sorted(rejects["name"]) == sorted(rejected.index)
    for name, reason in zip(rejects["name"], rejects["reason"]):
        assert re.search(rejected.loc[name, "reason"], reason), (name, reason)
    assert set(aligned["manifest"]["image_id"]) == set(expected.index[expected["outcome"] != "rejected"])


def test_each_bad_image_is_reported_by_id_and_reason(aligned):
    expected, failed = aligned["expected"], aligned["failed"]
    bad = expected[expected["outcome"] == "failed"]
    assert sorted(failed["image_id"]) == sorted(bad.index)
    for image_id, reason in zip(failed["image_id"], failed["reason"]):
        assert re.search(bad.loc[image_id, "reason"], reason), (image_id, reason)
    assert (aligned["report"].loc[bad.index, "status"] == "failed").all()
    assert failed.set_index("image_id").loc[list(TEST_SPLIT[2:]), "split"].eq("test").all()


def test_every_good_image_is_aligned_and_looks_like_the_reference(aligned):
    expected, report = aligned["expected"], aligned["report"]
    good = expected.index[expected["outcome"] == "aligned"]
    ok = report.loc[good]
    assert (ok["status"] == "ok").all() and (ok["method"] == "dlib").all()
    index = cache_index(report.reset_index(), aligned["manifest"])
    assert sorted(index["image_id"]) == sorted(good)  # all of them go on to the cache and the folds

    faces = {i: np.asarray(Image.open(p), dtype=np.float64) for i, p in zip(ok.index, ok["aligned_path"])}
    assert all(face.shape == (64, 64, 3) for face in faces.values())
    reference = faces["good_png"]
    # Same photo, other encodings: the same aligned face (JPEG and palette quantisation aside).
    assert np.array_equal(faces["odd_path"], reference) and np.array_equal(faces["rgb16"], reference)
    for image_id, tolerance in {
        "good_jpeg": 4,
        "cmyk": 5,
        "exif_rotated": 10,
        "palette_alpha": 12,
        "two_faces": 4,
    }.items():
        assert np.abs(faces[image_id] - reference).mean() < tolerance, image_id
    grey = faces["grey16"]
    assert (
        np.array_equal(grey[..., 0], grey[..., 2])
        and np.abs(grey[..., 0] - reference @ [0.299, 0.587, 0.114]).mean() < 5
    )
    assert report.loc["two_faces", "n_faces"] == 2
    assert report.loc["small_face", "upsample"] == 2 and (ok.drop(index="small_face")["upsample"] == 1).all()
    # The path with '#', spaces and non-ASCII letters came through the cohort TSV, the manifest and the report.
    manifest = aligned["manifest"].set_index("image_id")
    assert manifest.loc["odd_path", "path"].endswith("web/Łódź clinic/img #1 (copy).png")
    # ... and the small face really is too small for upsample 1 alone.
    small = load_rgb(manifest.loc["small_face", "path"])
    assert small.shape[0] == SMALL_SIDE and find_face(small, upsample=1, max_upsample=1).points is None


def test_fail_on_test_error_stops_at_the_failed_test_images_only(aligned):
    failed = aligned["failed"]
    with pytest.raises(merge.AlignmentFailed) as err:
        merge.check_failures(failed, "results/aligned/failed.tsv", fail_on_test_error=True)
    message = str(err.value)
    assert "2 test image(s) failed alignment" in message
    assert "truncated_png: unreadable" in message and "no_face: dlib found no face" in message
    assert "bomb" not in message
    merge.check_failures(failed[failed["split"] == "train"], "f", fail_on_test_error=True)


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda rows: pd.concat([rows, rows.iloc[[0]].assign(subject_id="another")]),
            r"duplicate image_id\(s\): good_png \(cohort\.tsv:2, cohort\.tsv:\d+\)",
        ),
        (
            lambda rows: pd.concat([rows, rows.iloc[[0]].assign(image_id="good_png_again", split="test")]),
            r"subject\(s\) in both train and test: subject_good_png \(test: good_png_again; train: good_png\)",
        ),
        (lambda rows: rows.assign(disease="WSolderadult"), r"no rows left from .*cohort\.tsv.*all \d+ were rejected"),
    ],
    ids=["duplicate image id", "same subject in train and test", "every row rejected"],
)
def test_table_level_errors_stop_the_build_naming_the_rows(tmp_path, change, message):
    cohort, _ = write_corpus(tmp_path)
    rows = pd.read_csv(cohort, sep="\t", dtype=str, keep_default_na=False)
    change(rows).to_csv(cohort, sep="\t", index=False)
    with pytest.raises(ManifestError, match=message):
        build(cohort)


def test_a_decompression_bomb_is_refused_without_decoding_it(tmp_path):
    """In a fresh process, so its peak memory is this load's alone (decoded, the bomb takes ~1 GB)."""
    cohort, _ = write_corpus(tmp_path)
    code = (
        "import sys\n"
        "from syndface.align.load import load_rgb, ImageLoadError\n"
        "try:\n    load_rgb(sys.argv[1])\nexcept ImageLoadError as exc:\n    print(exc)\n"
        # VmHWM: this process image's peak (ru_maxrss would include the parent's, inherited over fork).
        "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')) // 1024)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "images" / "bomb_warning.png")],
        capture_output=True,
        text=True,
        check=True,
    )
    reason, peak_mb = result.stdout.strip().splitlines()
    assert reason.startswith("DecompressionBombWarning") and int(peak_mb) < 250


def test_the_readme_table_lists_every_kind_with_its_outcome():
    assert markdown_table() in (REPO / "README.md").read_text()
    assert {k.name for k in KIND.values()} >= {"duplicate image id", "the same subject in train and test"}
