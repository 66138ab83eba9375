"""The saliency commands end to end on a tiny cache and two tiny fold models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import options

from syndface.classify.model import build_classifier, load_classifier, preprocess
from syndface.cli import main as cli
from syndface.io import read_tsv, save_torch, write_tsv
from syndface.saliency.occlusion import fold_mean, occlusion_maps
from syndface.taxonomy import AGE_GROUPS, disease_index

SIZE = 32
# (disease, age_group, split, count)
COHORT = [
    ("WS", "infant", "test", 3),
    ("WS", "older_adult", "test", 3),
    ("WS", "child", "test", 2),
    ("22q", "infant", "test", 2),
    ("22q", "young_adult", "test", 2),
    ("control", "adolescent", "test", 2),
    ("unaffected", "child", "test", 2),
    ("WS", "infant", "train", 2),
]


@pytest.fixture(scope="module")
def study(tmp_path_factory, one_torch_thread):
    root = tmp_path_factory.mktemp("saliency")
    rows = [(d, a, s) for d, a, s, n in COHORT for _ in range(n)]
    generator = np.random.default_rng(0)
    images = generator.integers(0, 256, size=(len(rows), SIZE, SIZE, 3), dtype=np.uint8)
    (root / "cache").mkdir()
    np.save(root / "cache" / "images.npy", images)
    index = pd.DataFrame(rows, columns=["disease", "age_group", "split"])
    index.insert(0, "row", np.arange(len(rows)))
    index.insert(1, "image_id", [f"img{i:03d}" for i in range(len(rows))])
    index["source"] = np.where(index["disease"] == "unaffected", "auxiliary", "cohort")
    index["subject_id"] = [f"s{i}" for i in range(len(rows))]
    write_tsv(index, root / "cache" / "index.tsv")
    models = []
    for fold in range(2):
        torch.manual_seed(fold)
        arch = {"name": "test_efficientnet", "num_classes": 4, "dropout": 0.2, "msd_samples": 5, "image_size": SIZE}
        path = root / f"fold{fold}" / "model.pt"
        path.parent.mkdir()
        save_torch(
            {
                "arch": arch,
                "classes": ["WS", "22q", "control", "unaffected"],
                "state_dict": build_classifier(**arch).state_dict(),
            },
            path,
        )
        models.append(str(path))
    maps_dir = root / "maps"
    args = [
        "--models",
        *models,
        "--cache",
        str(root / "cache"),
        "--num-threads",
        "1",
    ]
    settings = {"saliency.window": 16, "saliency.stride": 8, "saliency.reference_size": SIZE, "device": "cpu"}
    args_with_batch = lambda batch: [*args, *options({**settings, "saliency.batch": batch})]  # noqa: E731
    assert cli(["occlusion-maps", *args_with_batch(4), "--out-dir", str(maps_dir)]) == 0
    return {
        "root": root,
        "images": images,
        "index": index,
        "models": models,
        "maps_dir": maps_dir,
        "args": args_with_batch,
    }


def test_occlusion_maps_are_fold_means_of_the_test_images(study):
    maps = np.load(study["maps_dir"] / "maps.npy")
    index = read_tsv(study["maps_dir"] / "index.tsv")
    expected = study["index"][(study["index"]["split"] == "test") & (study["index"]["disease"] != "unaffected")]
    assert index["image_id"].tolist() == expected["image_id"].tolist()
    assert index["target"].tolist() == [disease_index(d) for d in expected["disease"]]
    assert maps.shape == (len(expected), SIZE, SIZE) and maps.dtype == np.float32
    models = [load_classifier(p)[0] for p in study["models"]]
    first = preprocess(torch.from_numpy(study["images"][index["cache_row"].to_numpy()[:2]]))
    direct = fold_mean(occlusion_maps(models, first, index["target"].to_numpy()[:2], 16, 8)).numpy()
    scale = np.abs(direct).max()
    assert scale > 0 and np.abs(maps[:2] - direct).max() <= 1e-4 * scale


def test_occlusion_maps_resume_after_a_kill(study, tmp_path, monkeypatch):
    real = occlusion_maps
    calls = {"n": 0}

    def dies_on_third_block(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated pre-emption")
        return real(*args, **kwargs)

    monkeypatch.setattr("syndface.saliency.occlusion.occlusion_maps", dies_on_third_block)
    out = tmp_path / "maps"
    with pytest.raises(KeyboardInterrupt):
        cli(["occlusion-maps", *study["args"](2), "--checkpoint-every", "0", "--out-dir", str(out)])
    assert (out / "checkpoint.npz").is_file() and not (out / "maps.npy").exists()
    calls["n"] = -100
    assert cli(["occlusion-maps", *study["args"](2), "--checkpoint-every", "0", "--out-dir", str(out)]) == 0
    n_images = len(read_tsv(study["maps_dir"] / "index.tsv"))
    n_blocks = -(-n_images // 4)  # 4 images per block at batch 2 and 10 forwards per image
    assert calls["n"] == -100 + n_blocks - 2  # the two finished blocks were not recomputed
    reference = np.load(study["maps_dir"] / "maps.npy")
    np.testing.assert_allclose(np.load(out / "maps.npy"), reference, rtol=0, atol=1e-5 * np.abs(reference).max())
    assert not (out / "checkpoint.npz").exists()


def test_composites_files_and_means(study, tmp_path):
    assert (
        cli(
            [
                "saliency-composites",
                "--maps-dir",
                str(study["maps_dir"]),
                "--cache",
                str(study["root"] / "cache"),
                "--out-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    maps = np.load(study["maps_dir"] / "maps.npy")
    index = read_tsv(study["maps_dir"] / "index.tsv")
    for disease in ("WS", "22q", "control"):
        assert (tmp_path / f"{disease}.png").is_file()
        assert all((tmp_path / f"{disease}_{group}.png").is_file() for group in AGE_GROUPS)
        with np.load(tmp_path / f"{disease}.npz") as saved:
            assert saved["maps"].shape == (5, SIZE, SIZE) and saved["faces"].shape == (5, SIZE, SIZE, 3)
            counts = [int(((index["disease"] == disease) & (index["age_group"] == g)).sum()) for g in AGE_GROUPS]
            assert saved["counts"].tolist() == counts
    with np.load(tmp_path / "WS.npz") as saved:
        infants = ((index["disease"] == "WS") & (index["age_group"] == "infant")).to_numpy()
        np.testing.assert_allclose(saved["maps"][0], maps[infants].mean(0), rtol=1e-5, atol=1e-9)
        faces = study["images"][index["cache_row"].to_numpy()[infants]].mean(0)
        np.testing.assert_allclose(saved["faces"][0], faces.round(), atol=0.5 + 1e-9)


def test_permutation_test_table_size_check_and_figures(study, tmp_path):
    args = [
        "permutation-test",
        "--maps-dir",
        str(study["maps_dir"]),
        "--models",
        *study["models"],
        *options(
            {
                "saliency.permutations": 20,
                "saliency.size_check": {"replicates": 30, "permutations": 9},
                "seed": 100,
                "device": "cpu",
                "saliency.embedding": "classifier",
                "saliency.diseases": ["WS", "22q"],
            }
        ),  # fmt: skip
        "--num-threads",
        "1",
    ]
    assert cli([*args, "--out-dir", str(tmp_path)]) == 0
    table = read_tsv(tmp_path / "permutation.tsv")
    assert len(table) == 2 * 10 and "kind" not in table.columns  # every age pair, no null pair any more
    header = "\n".join(line for line in (tmp_path / "permutation.tsv").read_text().splitlines() if line[0] == "#")
    assert header.startswith("# embedding classifier") and "q_within_disease: Benjamini-Hochberg" in header
    assert "WS: size check: " in header and "22q: size check: " in header
    tested = table.dropna(subset=["p_value"])
    assert tested["exact"].all() and not tested["p_at_floor"].any()  # a few images each: every split enumerated
    np.testing.assert_allclose(tested["rank"], 1 - tested["p_value"], atol=1e-12)
    ws = table.set_index(["disease", "group_a", "group_b"])
    assert ws.loc[("WS", "infant", "older_adult"), ["n_a", "n_b", "n_relabellings"]].tolist() == [3, 3, 10]
    assert ws.loc[("WS", "infant", "child"), "n_relabellings"] == 10  # C(5, 2): unequal groups, no mirror
    assert (table[table["n_a"] * table["n_b"] == 0]["p_value"].isna()).all()
    assert tested["q_within_disease"].notna().all() and tested["q_all"].notna().all()
    checks = read_tsv(tmp_path / "size_check.tsv").set_index("disease")
    assert checks.index.tolist() == ["WS", "22q"] and (checks["replicates"] == 30).all() and checks["exact"].all()
    assert (checks["rate_ci_high"] > checks["rate_ci_low"]).all() and checks["passed"].all()
    assert (tmp_path / "permutation_WS.png").is_file() and (tmp_path / "permutation_22q.png").is_file()
    again = tmp_path / "again"
    assert cli([*args, "--out-dir", str(again)]) == 0
    pd.testing.assert_frame_equal(read_tsv(again / "permutation.tsv"), table)
    pd.testing.assert_frame_equal(read_tsv(again / "size_check.tsv"), read_tsv(tmp_path / "size_check.tsv"))


def test_truth_check_on_demo_region_masks(study, tmp_path):
    from syndface.demo.regions import save_npz

    top_left = np.zeros((SIZE, SIZE), np.float32)
    top_left[: SIZE // 2, : SIZE // 2] = 1.0
    top_left[0, 0] = 0.3  # under half the peak: outside the region
    masks = {f"mask/{d}/{g}": top_left for d in ("WS", "22q", "control") for g in AGE_GROUPS}
    save_npz({"size": np.array(SIZE), **masks}, tmp_path / "regions.npz")
    out = tmp_path / "truth_check.tsv"
    assert (
        cli(
            [
                "saliency-truth-check",
                "--maps-dir",
                str(study["maps_dir"]),
                "--regions",
                str(tmp_path / "regions.npz"),
                *options({"align.zoom": 1}),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    table = read_tsv(out)
    index = read_tsv(study["maps_dir"] / "index.tsv")
    groups = index.groupby(["disease", "age_group"]).size()
    per_group = table[table["age_group"] != "all"].set_index(["disease", "age_group"])["n_images"]
    assert per_group.sort_index().to_dict() == groups.sort_index().to_dict()
    assert table[table["age_group"] == "all"].set_index("disease")["n_images"].to_dict() == {
        "WS": 8,
        "22q": 4,
        "control": 2,
    }
    np.testing.assert_allclose(table["region_area"], (SIZE * SIZE / 4 - 1) / SIZE**2, atol=1e-12)
    maps = np.load(study["maps_dir"] / "maps.npy")
    ws = (index["disease"] == "WS").to_numpy()
    region = np.zeros((SIZE, SIZE), bool)
    region[: SIZE // 2, : SIZE // 2] = True
    region[0, 0] = False
    # 16 px windows at stride 8 make maps constant on 8 x 8 blocks: a peak is a tied block, scored by its share inside.
    hits = [(m == m.max())[region].sum() / (m == m.max()).sum() if m.max() > 0 else 0.0 for m in maps[ws]]
    assert table.set_index(["disease", "age_group"]).loc[("WS", "all"), "pointing_hit_rate"] == pytest.approx(
        np.mean(hits)
    )
    # The blob's four tied centre pixels: one, (15, 15), lies in the top-left quadrant.
    np.testing.assert_allclose(table["pointing_hit_rate_blob"], 0.25)


def test_window_scaled_from_the_paper_size():
    from syndface.saliency.maps import scaled_pixels

    assert [scaled_pixels(v, 64, 448) for v in (20, 10, 112, 56)] == [3, 1, 16, 8]
    assert scaled_pixels(20, 448, 448) == 20 and scaled_pixels(1, 64, 448) == 1 and scaled_pixels(7, 64, None) == 7


def test_pixel_embedding_is_the_distance_between_mean_maps(study, tmp_path):
    from syndface.saliency.embedding import map_scale

    args = [
        "permutation-test",
        "--maps-dir",
        str(study["maps_dir"]),
        *options(
            {
                "saliency.embedding": "pixels",
                "saliency.diseases": ["WS"],
                "saliency.permutations": 10,
                "saliency.max_exact": 0,  # Monte Carlo: 10 random splits
                "saliency.size_check": {"replicates": 0, "permutations": 9},
                "seed": 3,
            }
        ),
    ]
    assert cli([*args, "--out-dir", str(tmp_path)]) == 0
    table = read_tsv(tmp_path / "permutation.tsv").set_index(["group_a", "group_b"])
    assert (tmp_path / "permutation.tsv").read_text().startswith("# embedding pixels")
    tested = table.dropna(subset=["p_value"])
    assert not tested["exact"].any() and (tested["n_relabellings"] == 10).all()
    assert ((tested["p_value"] >= 1 / 11) & (tested["p_value"] <= 1)).all()
    np.testing.assert_allclose(tested["rank"], 1 - (tested["p_value"] * 11 - 1) / 10, atol=1e-12)
    assert read_tsv(tmp_path / "size_check.tsv").empty
    assert "size check skipped" in (tmp_path / "size_check.tsv").read_text()
    maps = np.clip(np.load(study["maps_dir"] / "maps.npy"), 0, None)
    index = read_tsv(study["maps_dir"] / "index.tsv")
    ws = (index["disease"] == "WS").to_numpy()
    infant, older = (ws & (index["age_group"] == g).to_numpy() for g in ("infant", "older_adult"))
    expected = np.linalg.norm(maps[infant].mean(0) - maps[older].mean(0)) / map_scale(maps[ws])
    assert table.loc[("infant", "older_adult"), "distance"] == pytest.approx(expected, rel=1e-5)


def test_imagenet_embedding_needs_a_local_weights_file(study, tmp_path):
    with pytest.raises(FileNotFoundError, match="weights file"):
        cli(
            [
                "permutation-test",
                "--maps-dir",
                str(study["maps_dir"]),
                *options({"saliency.embedding": "imagenet", "seed": 1, "device": "cpu"}),
                "--imagenet-weights",
                str(tmp_path / "none.pth"),
                "--out-dir",
                str(tmp_path),
            ]
        )
