"""Identity leakage: the vectorised pair search, dlib descriptors, and the check on photos and demo faces."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from conftest import options
from PIL import Image
from scipy.spatial.distance import cdist
from skimage import data

from syndface.align import leakage
from syndface.align.descriptors import face_descriptors
from syndface.align.landmarks import find_face, read_manual_landmarks
from syndface.align.leakage import TEST_GROUP, leakage_pairs, separability_verdict, subject_separability
from syndface.align.load import load_rgb
from syndface.align.options import AlignOptions
from syndface.align.render import render_aligned
from syndface.align.shard import align_shard
from syndface.io import read_tsv, write_tsv

SIZE, ZOOM = 128, 1.108


def brute_force_pairs(x, groups, threshold):
    d = cdist(x.astype(np.float64), x.astype(np.float64))
    pairs = {}
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            differ = groups[i] != groups[j] and not (groups[i] == TEST_GROUP and groups[j] == TEST_GROUP)
            if differ and d[i, j] < threshold:
                pairs[(i, j)] = d[i, j]
    return pairs, d


@pytest.fixture
def planted_vectors():
    gen = np.random.default_rng(0)
    x = gen.normal(0, 0.05, size=(61, 128)).astype(np.float32)
    x[40] = x[3] + 0.001  # planted repeats
    x[50] = x[17] + 0.002
    groups = gen.choice([TEST_GROUP, 0, 1, 2], size=len(x))
    groups[[3, 40, 17, 50]] = [0, 1, TEST_GROUP, 2]
    return x, groups


def test_pair_search_equals_brute_force_across_block_edges(planted_vectors):
    x, groups = planted_vectors
    expected, d = brute_force_pairs(x, groups, threshold=0.78)
    assert (3, 40) in expected and (17, 50) in expected and len(expected) > 20  # random pairs too
    result = leakage_pairs(x, groups, threshold=0.78, block=7)
    found = result.pairs
    assert {(i, j): dist for i, j, dist in found[["i", "j", "distance"]].itertuples(index=False)} == pytest.approx(
        expected
    )
    assert found["distance"].is_monotonic_increasing
    test_train = sum(TEST_GROUP in (groups[i], groups[j]) for i, j in expected)
    assert result.counts == {"test_train": test_train, "cross_fold": len(expected) - test_train}


@pytest.mark.parametrize("keep", [0, 1, 5, 23])
def test_pair_list_keeps_the_closest_and_counts_all(planted_vectors, keep):
    """A large cohort can yield millions of false matches: only the `keep` closest are held, while
    the counts still cover every pair below the threshold."""
    x, groups = planted_vectors
    expected, _ = brute_force_pairs(x, groups, threshold=0.78)
    everything = leakage_pairs(x, groups, threshold=0.78, block=7)
    result = leakage_pairs(x, groups, threshold=0.78, block=7, keep=keep)
    assert result.counts == everything.counts and result.total == len(expected)
    closest = sorted(expected, key=expected.get)[:keep]
    assert list(zip(result.pairs["i"], result.pairs["j"])) == closest
    assert result.pairs["distance"].tolist() == pytest.approx(sorted(expected.values())[:keep])


def test_subject_separability_equals_brute_force(planted_vectors):
    x, _ = planted_vectors
    subjects = np.array([f"s{k // 3}" for k in range(len(x))])
    _, d = brute_force_pairs(x, np.zeros(len(x)), 0)
    upper = np.triu(np.ones_like(d, dtype=bool), k=1)
    same = (subjects[:, None] == subjects[None, :]) & upper
    stats = subject_separability(x, subjects, threshold=0.5, block=5)
    for name, mask in (("same", same), ("different", upper & ~same)):
        assert stats[name]["n"] == mask.sum()
        assert stats[name]["share_below"] == pytest.approx((d[mask] < 0.5).mean())
        assert stats[name]["median"] == pytest.approx(np.median(d[mask]), abs=0.005)


def aligned_astronaut() -> np.ndarray:
    image = data.astronaut()
    points = find_face(image).points
    return render_aligned(image, points, SIZE, ZOOM)


def lfw_face(k: int) -> np.ndarray:
    """A face from skimage's LFW subset (25 px, upscaled): another person than the astronaut."""
    grey = (np.load(f"{data.data_dir}/lfw_subset.npy")[k] * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(grey).resize((SIZE, SIZE), Image.LANCZOS).convert("RGB"))


def jpeg(image: np.ndarray, quality: int = 80) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def test_face_descriptors_of_photos_and_of_no_face():
    astronaut = aligned_astronaut()
    blank = np.full((SIZE, SIZE, 3), 128, dtype=np.uint8)
    x, found = face_descriptors([astronaut, jpeg(np.roll(astronaut, 2, axis=1)), lfw_face(0), blank], zoom=ZOOM)
    assert x.shape == (4, 128) and x.dtype == np.float32 and found.tolist() == [True, True, True, False]
    d = cdist(x, x)
    assert d[0, 1] < 0.2 and d[0, 2] > 0.6  # the same photo re-encoded vs another person


def write_study(root, images: dict[str, np.ndarray], table: pd.DataFrame):
    """Aligned PNGs + report, manifest and folds for check-leakage."""
    (root / "aligned").mkdir()
    paths = {}
    for image_id, image in images.items():
        paths[image_id] = str(root / "aligned" / f"{image_id}.png")
        Image.fromarray(image).save(paths[image_id])
    report = pd.DataFrame({"image_id": list(images), "status": "ok", "aligned_path": [paths[i] for i in images]})
    write_tsv(report, root / "report.tsv")
    write_tsv(table.assign(path="raw"), root / "manifest.tsv")
    train = table[table["split"] == "train"]
    write_tsv(train[["image_id", "subject_id", "fold"]], root / "folds.tsv")


def test_check_leakage_finds_a_repeated_photo_and_reports_images_without_a_face(tmp_path):
    astronaut = aligned_astronaut()
    images = {
        "astro": astronaut,
        "astro_again": jpeg(np.clip(np.roll(astronaut, (3, -2), axis=(0, 1)) * 0.9, 0, 255).astype(np.uint8)),
        "astro_mirror": astronaut[:, ::-1].copy(),
        "lfw_0": lfw_face(0),
        "lfw_1": lfw_face(1),
        "lfw_18": lfw_face(18),
        "blank": np.full((SIZE, SIZE, 3), 90, dtype=np.uint8),
    }
    table = pd.DataFrame(
        {
            "image_id": list(images),
            "subject_id": ["p1", "p2", "p3", "p4", "p5", "p6", "p7"],  # the repeats hide under new subject ids
            "disease": ["WS", "WS", "22q", "control", "control", "unaffected", "unaffected"],
            "split": ["train", "train", "test", "train", "train", "test", "train"],
            "fold": [0, 1, None, 1, 0, None, 2],
        }
    )
    write_study(tmp_path, images, table)
    argv = ["--report", str(tmp_path / "report.tsv"), "--manifest", str(tmp_path / "manifest.tsv"),
            "--folds", str(tmp_path / "folds.tsv"), "--out", str(tmp_path / "leakage.tsv")]  # fmt: skip
    argv_with = lambda settings: [*argv, *options({"align.zoom": ZOOM, **settings})]  # noqa: E731
    assert leakage.main(argv_with({})) == 0
    pairs = read_tsv(tmp_path / "leakage.tsv")
    faces = pairs[(pairs["face_a"] == "detected") & (pairs["face_b"] == "detected")]
    found = {(a, b, k) for a, b, k in faces[["image_id_a", "image_id_b", "kind"]].itertuples(index=False)}
    assert found == {
        ("astro", "astro_again", "cross_fold"),
        ("astro_mirror", "astro", "test_train"),  # the test image is side a
        ("astro_mirror", "astro_again", "test_train"),
    }
    header = (tmp_path / "leakage.tsv").read_text().splitlines()
    assert "# images checked: 7; dlib's detector found the face in 6, not in 1" in header[1]
    assert set(pairs.loc[pairs["image_id_a"].eq("blank") | pairs["image_id_b"].eq("blank"), "face_a"]) <= {
        "detected",
        "frame",
    }
    assert leakage.main(argv_with({"leakage.fail": True})) == 1
    # a capped list keeps the closest pair and says how many it left out; the counts stay whole
    assert leakage.main(argv_with({"leakage.max_pairs": 1})) == 0
    capped = read_tsv(tmp_path / "leakage.tsv")
    assert len(capped) == 1 and capped["distance"].iloc[0] == pairs["distance"].min()
    capped_header = (tmp_path / "leakage.tsv").read_text().splitlines()
    assert capped_header[3] == header[3]  # "pairs below threshold: ..."
    assert f"# listed below: the 1 closest of the {len(pairs)} pairs (leakage.max_pairs)" in capped_header


def test_on_demo_faces_planted_repeats_are_found_and_the_verdict_is_honest(tmp_path):
    demo = pytest.importorskip("syndface.demo.cohort")
    cfg = demo.DemoOptions(n_subjects=30, n_auxiliary=10, test_per_group=1, image_size=96, render_scale=2)
    manifest = demo.make_demo_cohort(cfg, tmp_path / "demo")
    several = manifest[manifest.groupby("subject_id")["image_id"].transform("size") >= 2]
    several = several[several["subject_id"].isin(several["subject_id"].unique()[:4])]
    assert several["subject_id"].nunique() == 4 and len(several) >= 8
    # Plant two repeats: a photo re-saved shifted, darker and JPEG-compressed under a new id and subject.
    landmarks = read_manual_landmarks(tmp_path / "demo" / "landmarks.tsv")
    rows = several.copy()
    for k, original in enumerate(several["image_id"].iloc[[0, 3]]):
        photo = load_rgb(several.set_index("image_id").at[original, "path"])
        path = tmp_path / f"repeat{k}.png"
        Image.fromarray(jpeg((np.roll(photo, (2, -3), axis=(0, 1)) * 0.9).astype(np.uint8))).save(path)
        landmarks[f"repeat{k}"] = {name: p + [-3, 2] for name, p in landmarks[original].items()}
        rows = pd.concat(
            [
                rows,
                pd.DataFrame([{"image_id": f"repeat{k}", "path": str(path), "subject_id": f"new{k}", "of": original}]),
            ]
        )
    report = align_shard(rows, landmarks, AlignOptions(size=SIZE, zoom=ZOOM, prefer="manual"), tmp_path / "aligned")
    assert (report["status"] == "ok").all()
    x, found = face_descriptors([load_rgb(p) for p in report["aligned_path"]], zoom=ZOOM)
    ids = rows["image_id"].tolist()
    planted = list(rows.dropna(subset=["of"])[["image_id", "of"]].itertuples(index=False))
    groups = np.arange(len(ids)) % 3
    for repeat, original in planted:  # each repeat sits in another fold than its original
        groups[ids.index(repeat)] = (groups[ids.index(original)] + 1) % 3
    pairs = leakage_pairs(x, groups, threshold=0.6).pairs
    listed = {frozenset((ids[i], ids[j])) for i, j in pairs[["i", "j"]].itertuples(index=False)}
    assert all(frozenset(pair) in listed for pair in planted)

    subjects = rows["subject_id"].to_numpy()
    stats = subject_separability(x, subjects, threshold=0.6)
    d = cdist(x, x)
    different = (subjects[:, None] != subjects[None, :]) & np.triu(np.ones_like(d, dtype=bool), k=1)
    false_match = (d[different] < 0.6).mean()
    assert stats["different"]["share_below"] == pytest.approx(false_match)
    verdict = separability_verdict(stats, len(ids), int(found.sum()))
    assert verdict.startswith("WARNING") == (false_match > leakage.MAX_FALSE_MATCH_SHARE)
