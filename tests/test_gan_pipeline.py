"""GAN training set, resumable training, the train-gan / generate-fakes commands and the privacy audit (tiny, CPU)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import options
from tiny import ARCH, cache_index, make_folds, tiny_trainer, write_cache, write_untrained_classifier

from syndface.gan import fakes, fidelity, figures, privacy, train
from syndface.gan.networks import Generator, load_network
from syndface.io import read_tsv, write_tsv
from syndface.seeding import seed_everything
from syndface.taxonomy import AFFECTED, AGE_GROUPS, DISEASES, FAKE_TYPES


@pytest.fixture
def folds() -> pd.DataFrame:
    return make_folds()


def test_training_set_excludes_the_held_out_fold_and_oversamples(folds):
    index = cache_index(folds, drop=("22q-child-f0-0",))
    ts = train.gan_training_set(index, folds, fold=1, oversample=6, unaffected_per_age=4, seed=1)
    fold_of = dict(zip(folds["image_id"], folds["fold"]))
    assert not any(fold_of[i] == 1 for i in ts["image_id"])
    affected = ts[ts["disease"].isin(AFFECTED)]
    expected = set(folds.loc[(folds["fold"] != 1) & folds["disease"].isin(AFFECTED), "image_id"]) - {"22q-child-f0-0"}
    assert set(affected["image_id"]) == expected and (affected["copies"] == 6).all()
    unaffected = ts[ts["disease"] == "unaffected"]
    assert (unaffected.groupby("age_group").size() == 4).all() and (unaffected["copies"] == 1).all()
    rows = dict(zip(index["image_id"], index["row"]))
    assert (ts["row"] == ts["image_id"].map(rows)).all()
    assert ts.equals(train.gan_training_set(index, folds, 1, 6, 4, seed=1))
    assert not ts.equals(train.gan_training_set(index, folds, 1, 6, 4, seed=2))
    everyone = train.gan_training_set(index, folds, 1, 6, 100, seed=1)
    assert (everyone["disease"] == "unaffected").sum() == 2 * 3 * len(AGE_GROUPS)
    with pytest.raises(ValueError, match="fold 7 is not in the folds table"):
        train.gan_training_set(index, folds, 7, 6, 4, seed=1)


def test_resume_equals_uninterrupted_training(tmp_path, folds):
    # 3 steps of 4 images; regularisation on steps 0 and 2; the "kill" comes after step 0.
    whole, signature = tiny_trainer(folds, kimg=0.012)
    train.train_gan(whole, tmp_path / "whole", signature, snapshot_kimg=0.004, grid_seed=1)
    first, signature = tiny_trainer(folds, kimg=0.004)
    train.train_gan(first, tmp_path / "split", signature, snapshot_kimg=0.004, grid_seed=1)
    second, signature = tiny_trainer(folds, kimg=0.012)
    assert train.resume_if_possible(second, tmp_path / "split" / "checkpoint.pt", signature)
    assert second.nimg == 4
    train.train_gan(second, tmp_path / "split", signature, snapshot_kimg=0.004, grid_seed=1)
    a = torch.load(tmp_path / "whole" / "network.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "network.pt", weights_only=True)
    assert a["training"]["kimg"] == b["training"]["kimg"] == 0.012
    assert a["training"]["ada_p"] == 1.0
    for net in ("G", "G_ema", "D"):
        for name, tensor in a[net].items():
            assert torch.equal(tensor, b[net][name]), f"{net}.{name}"
    assert len(list((tmp_path / "whole" / "samples").glob("kimg*.png"))) == 3


def test_checkpoint_of_other_settings_is_refused(tmp_path, folds):
    trainer, signature = tiny_trainer(folds, kimg=0.004)
    train.train_gan(trainer, tmp_path, signature, snapshot_kimg=0.004, grid_seed=1)
    other, other_signature = tiny_trainer(folds, kimg=0.008, lr=0.001)
    with pytest.raises(RuntimeError, match=r"different settings \(options\)"):
        train.resume_if_possible(other, tmp_path / "checkpoint.pt", other_signature)


def test_a_kill_between_snapshots_resumes_from_the_last_one_to_the_same_weights(tmp_path, folds):
    """5 steps, snapshots after steps 2 and 4; the kill comes after step 3, whose work is lost and redone."""
    whole, signature = tiny_trainer(folds, kimg=0.020)
    assert train.train_gan(whole, tmp_path / "whole", signature, snapshot_kimg=0.008, grid_seed=1)
    killed, signature = tiny_trainer(folds, kimg=0.020)
    assert not train.train_gan(killed, tmp_path / "killed", signature, 0.008, 1, stop_after_steps=3)
    assert killed.nimg == 12 and not (tmp_path / "killed" / "network.pt").exists()
    rerun, signature = tiny_trainer(folds, kimg=0.020)  # a new process: fresh networks and generators
    assert train.resume_if_possible(rerun, tmp_path / "killed" / "checkpoint.pt", signature)
    assert rerun.nimg == 8
    assert train.train_gan(rerun, tmp_path / "killed", signature, snapshot_kimg=0.008, grid_seed=1)
    a = torch.load(tmp_path / "whole" / "network.pt", weights_only=True)
    b = torch.load(tmp_path / "killed" / "network.pt", weights_only=True)
    assert a["training"]["steps"] == b["training"]["steps"] == 5
    for net in ("G", "G_ema", "D"):
        for name, tensor in a[net].items():
            assert torch.equal(tensor, b[net][name]), f"{net}.{name}"
    for grid in sorted((tmp_path / "whole" / "samples").glob("*.png")):
        assert grid.read_bytes() == (tmp_path / "killed" / "samples" / grid.name).read_bytes(), grid.name


def test_network_and_checkpoint_record_version_and_precision_and_refuse_others(tmp_path, folds, monkeypatch):
    trainer, signature = tiny_trainer(folds, kimg=0.004)
    train.train_gan(trainer, tmp_path, signature, snapshot_kimg=0.004, grid_seed=1)
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    network = torch.load(tmp_path / "network.pt", weights_only=True)
    from syndface import __version__

    assert saved["syndface_version"] == network["training"]["syndface_version"] == __version__
    assert saved["precision"] == network["training"]["precision"] == "fp32"
    assert network["training"]["options"] == signature["options"]
    other, signature = tiny_trainer(folds, kimg=0.008)
    other.precision = dataclasses.replace(other.precision, name="bf16")
    with pytest.raises(RuntimeError, match="precision: fp32 there, bf16 here"):
        train.resume_if_possible(other, tmp_path / "checkpoint.pt", signature)
    monkeypatch.setattr(train, "__version__", "9.9.9")
    other, signature = tiny_trainer(folds, kimg=0.008)
    with pytest.raises(RuntimeError, match=r"syndface_version: .* there, 9\.9\.9 here"):
        train.resume_if_possible(other, tmp_path / "checkpoint.pt", signature)


def test_commands_train_a_gan_and_write_every_fake_type(tmp_path, folds):
    write_cache(folds, tmp_path / "cache")
    write_tsv(folds, tmp_path / "folds.tsv")
    gan = tmp_path / "gan" / "fold1"
    settings = {
        "gan.resolution": 8, "gan.channel_base": 64, "gan.channel_max": 8, "gan.z_dim": 8, "gan.w_dim": 8,
        "gan.mapping_layers": 2, "gan.mbstd_group": 2, "gan.kimg": 0.008, "gan.batch": 4,
        "gan.snapshot_kimg": 0.004, "gan.unaffected_per_age": 2, "gan.pl_weight": 2, "gan.ema_kimg": 20,
        "gan.ada_kimg": 500, "seed": 1, "device": "cpu",
    }  # fmt: skip
    settings |= {"gan.select": "best_kid", "gan.metric_fakes": 12, "gan.snapshots_kept": 1}
    classifiers = [write_untrained_classifier(tmp_path / "classifier" / f"fold{k}" / "model.pt", k) for k in range(3)]
    argv = ["--cache", str(tmp_path / "cache"), "--folds", str(tmp_path / "folds.tsv"), "--fold", "1",
            "--classifier", str(classifiers[1]), "--out-dir", str(gan), *options(settings)]  # fmt: skip
    assert train.main(argv) == 0
    G, ckpt = load_network(gan / "network.pt")
    assert G.arch == ARCH and ckpt["training"]["data"]["fold"] == 1
    assert (gan / "checkpoint.pt").exists() and len(list((gan / "samples").glob("*.png"))) == 2
    assert not set(read_tsv(gan / "training_set.tsv")["image_id"]) & set(folds.loc[folds["fold"] == 1, "image_id"])
    # Two snapshots measured; network.pt holds the one with the lowest KID, and says so.
    metrics = read_tsv(gan / "metrics.tsv")
    assert list(metrics["kimg"]) == [0.004, 0.008] and metrics[["fid", "kid_mean", "kid_std"]].notna().all().all()
    assert (metrics["n_fake"] == 12).all() and (metrics["extractor"] == "classifier").all()
    best = metrics.loc[metrics["kid_mean"].idxmin()]
    assert ckpt["selected"]["kimg"] == best["kimg"] and metrics.loc[metrics["selected"], "kimg"].item() == best["kimg"]
    kept = torch.load(gan / "snapshots" / f"kimg{best['kimg']:09.3f}.pt", weights_only=True)["G_ema"]
    assert all(torch.equal(kept[name], ckpt["G_ema"][name]) for name in kept)
    assert len(list((gan / "snapshots").glob("*.pt"))) <= 2 and (gan / "metrics.png").is_file()
    assert f"kimg {best['kimg']:g} (gan.select best_kid)" in (gan / "metrics.tsv").read_text().splitlines()[1]

    grid, strips = tmp_path / "grid.png", tmp_path / "strips.png"
    figure_argv = ["--network", str(gan / "network.pt"), "--fold", "1", "--grid", str(grid),
                   "--progression", str(strips), *options({"seed": 1, "device": "cpu"})]  # fmt: skip
    assert figures.main(figure_argv) == 0 and grid.is_file() and strips.is_file()

    assert (
        fakes.main(
            [
                "--network",
                str(gan / "network.pt"),
                "--folds",
                str(tmp_path / "folds.tsv"),
                "--fold",
                "1",
                "--fake-types",
                *FAKE_TYPES,
                *options({"seed": 1, "device": "cpu"}),
                "--out-dir",
                str(tmp_path / "fakes" / "fold1"),
            ]
        )
        == 0
    )
    for fake_type in FAKE_TYPES:
        out = tmp_path / "fakes" / "fold1" / fake_type
        manifest = read_tsv(out / "manifest.tsv")
        assert list(manifest.columns) == list(fakes.MANIFEST_COLUMNS)
        assert all(Path(p).is_file() for p in manifest["path"]) and (out / "sample_grid.png").is_file()
        assert (manifest["fold"] == 1).all() and (manifest["fake_type"] == fake_type).all()
    assert (tmp_path / "fakes" / "fold1" / "age_progression" / "progression_strips.png").is_file()
    for fake_type in ("age_progression", "blended_55"):
        out = tmp_path / f"fidelity_{fake_type}.tsv"
        fidelity_argv = ["--fakes", str(tmp_path / "fakes" / "fold1" / fake_type / "manifest.tsv"),
                         "--classifiers", *map(str, classifiers), "--cache", str(tmp_path / "cache"),
                         "--folds", str(tmp_path / "folds.tsv"), *options({"device": "cpu"}),
                         "--out", str(out), "--figure", str(out.with_suffix(".png"))]  # fmt: skip
        assert fidelity.main(fidelity_argv) == 0 and out.with_suffix(".png").is_file()
        table = read_tsv(out)
        assert set(table["fold"].astype(str)) == {"1", "all"} and (table["fake_type"] == fake_type).all()
        assert table[["share_intended", "real_share_intended"]].apply(lambda c: c.between(0, 1)).all().all()
    with pytest.raises(SystemExit, match="fold 1's GAN, not fold 0's"):
        fakes.main(
            [
                "--network",
                str(gan / "network.pt"),
                "--folds",
                str(tmp_path / "folds.tsv"),
                "--fold",
                "0",
                "--fake-types",
                "unrelated",
                *options({"seed": 1, "device": "cpu"}),
                "--out-dir",
                str(tmp_path / "x"),
            ]
        )


def test_fake_counts_fill_rare_ages_and_ignore_the_held_out_fold(folds):
    # Fold 0 held out: WS has 2 + 1 images per age in folds 1-2 except infant (2 + 1 = 3 vs 4) -> n = 19 -> ceil(19/5) = 4.
    cells = fakes.images_per_cell(folds, fold=0)
    assert cells == {"WS": math.ceil(19 / 5), "22q": 4, "control": 4}
    extra = pd.concat([folds, folds[folds["fold"] == 0].assign(image_id=lambda d: d["image_id"] + "-extra")])
    assert fakes.images_per_cell(extra, fold=0) == cells


@pytest.mark.parametrize("fake_type", FAKE_TYPES)
def test_fake_plans_have_the_paper_counts_and_soft_labels(folds, fake_type):
    plan, labels = fakes.fake_plan(folds, fold=0, fake_type=fake_type, seed=1)
    cells = fakes.images_per_cell(folds, 0)
    counts = plan.groupby(["disease", "age_group"]).size()
    soft = plan[list(fakes.SOFT_LABEL_COLUMNS)].to_numpy()
    assert np.allclose(soft.sum(1), 1) and np.allclose(labels[:, :4].sum(1), 1) and np.allclose(labels[:, 4:].sum(1), 1)
    assert plan["image_id"].is_unique and len(plan) == len(labels)
    assert set(plan["disease"]) == set(AFFECTED)
    if fake_type.startswith("blended"):
        c = {"blended_55": 0.55, "blended_75": 0.75}[fake_type]
        for d in AFFECTED:
            assert (counts[d] == 3 * math.ceil(cells[d] / 3)).all()
        main = soft[np.arange(len(plan)), [DISEASES.index(d) for d in plan["disease"]]]
        other = soft[np.arange(len(plan)), [DISEASES.index(d) for d in plan["blend_with"]]]
        assert np.allclose(main, c) and np.allclose(other, round(1 - c, 3))
        assert torch.allclose(labels[:, :4], torch.tensor(soft, dtype=torch.float32))
        assert (plan.groupby("identity")["blend_with"].nunique() == 3).all()
        assert (plan.groupby("identity")["seed"].nunique() == 1).all()
    else:
        for d in AFFECTED:
            assert (counts[d] == cells[d]).all() and len(counts[d]) == len(AGE_GROUPS)
        assert np.array_equal(soft, labels[:, :4].numpy())
    if fake_type == "age_progression":
        t = plan["age_mix"].to_numpy()
        assert np.allclose(labels[:, 4].numpy(), 1 - t) and np.allclose(labels[:, 8].numpy(), t)
        assert list(plan["age_group"].iloc[:5]) == list(AGE_GROUPS)
    if fake_type in ("age_related", "age_progression"):
        assert (plan.groupby("identity")["seed"].nunique() == 1).all() and (plan.groupby("identity").size() == 5).all()
    if fake_type == "unrelated":
        assert plan["seed"].is_unique
    again, _ = fakes.fake_plan(folds, 0, fake_type, seed=1)
    assert again.equals(plan)
    assert not fakes.fake_plan(folds, 0, fake_type, seed=2)[0]["seed"].equals(plan["seed"])


def test_rendering_is_deterministic_and_psi_zero_collapses_to_the_label():
    seed_everything(0)
    G = Generator(ARCH).eval()
    G.mapping.w_avg.normal_()
    plan = pd.DataFrame({"seed": [11, 12, 13]})
    z = fakes.latents(plan["seed"].to_numpy(), ARCH.z_dim)
    assert torch.equal(z[0], torch.from_numpy(np.random.default_rng(11).standard_normal(8).astype(np.float32)))
    labels = torch.zeros(3, 9)
    labels[:, 0] = labels[:, 4] = 1
    a, b = fakes.render(G, z, labels, psi=0.6), fakes.render(G, z, labels, psi=0.6)
    assert a.shape == (3, 8, 8, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert not np.array_equal(a[0], a[1])
    flat = fakes.render(G, z, labels, psi=0.0)
    assert np.array_equal(flat[0], flat[1]) and np.array_equal(flat[1], flat[2])


def test_privacy_audit_finds_the_copied_face_and_says_which_embedding():
    rng = np.random.default_rng(0)
    train_images = {f"t{i}": rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for i in range(4)}
    training = pd.DataFrame(
        {
            "gan_fold": [0, 0, 0, 1],
            "image_id": ["t0", "t1", "t2", "t3"],
            "disease": ["WS", "22q", "control", "WS"],
            "age_group": ["child"] * 4,
        }
    )
    fake_images = [train_images["t1"], rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), train_images["t2"]]
    fakes_df = pd.DataFrame(
        {
            "image_id": ["a", "b", "c"],
            "fold": [0, 0, 1],
            "fake_type": "unrelated",
            "disease": "WS",
            "age_group": "child",
        }
    )
    ids = list(training["image_id"])
    # Descriptors: dlib "finds" faces in fake a and in t0, t1; the 128-D vectors are hand-set.
    train_desc = np.zeros((4, 128), np.float32)
    train_desc[1, 0] = 0.5
    fake_desc = np.zeros((3, 128), np.float32)
    fake_desc[0, 0] = 0.45
    train_emb = privacy.Embeddings(
        train_desc, np.array([True, True, False, False]), privacy.pixel_embedding([train_images[i] for i in ids], 8)
    )
    fake_emb = privacy.Embeddings(fake_desc, np.array([True, False, True]), privacy.pixel_embedding(fake_images, 8))
    result = privacy.audit(fakes_df, fake_emb, training, train_emb, pixel_threshold=0.05)
    a, b, c = result.itertuples()
    assert (a.method, a.nearest_image_id, a.under_threshold) == ("dlib", "t1", True)
    assert a.distance == pytest.approx(0.05)
    assert b.method == "pixels" and b.distance > 0.05 and not b.under_threshold
    # Fold 1's training set is t3 only and has no dlib face: its fakes fall back to pixels, never see t2.
    assert (c.method, c.nearest_image_id) == ("pixels", "t3")
    summary = privacy.summarise(result)
    assert summary.set_index(["fold", "method"]).loc[(0, "dlib"), "share_under"] == 1.0
    with pytest.raises(ValueError, match="no GAN training set given for fold 1"):
        privacy.audit(fakes_df, fake_emb, training[training["gan_fold"] == 0], train_emb, 0.05)


def test_privacy_audit_pixels_only_finds_a_copied_training_image(tmp_path):
    """`fakes.privacy.embedding: pixels` (the demo's setting) never calls dlib and still catches a copy."""
    from PIL import Image

    gen = np.random.default_rng(3)
    images = gen.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    cache = tmp_path / "cache"
    cache.mkdir()
    np.save(cache / "images.npy", images)
    write_tsv(
        pd.DataFrame(
            {
                "row": range(3),
                "image_id": ["t0", "t1", "t2"],
                "disease": "WS",
                "age_group": "child",
                "source": "cohort",
                "subject_id": ["s0", "s1", "s2"],
                "split": "train",
            }
        ),
        cache / "index.tsv",
    )
    training = tmp_path / "training_set.tsv"
    write_tsv(
        pd.DataFrame(
            {"image_id": ["t0", "t1", "t2"], "disease": "WS", "age_group": "child", "copies": 1, "gan_fold": 0}
        ),
        training,
    )
    paths = [tmp_path / "copy.png", tmp_path / "new.png"]
    Image.fromarray(images[1]).save(paths[0])
    Image.fromarray(gen.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(paths[1])
    fakes_tsv = tmp_path / "fakes.tsv"
    write_tsv(
        pd.DataFrame(
            {
                "image_id": ["copy", "new"],
                "path": list(map(str, paths)),
                "fold": 0,
                "fake_type": "unrelated",
                "disease": "WS",
                "age_group": "child",
            }
        ),
        fakes_tsv,
    )
    out, summary = tmp_path / "privacy.tsv", tmp_path / "summary.tsv"
    assert (
        privacy.main(
            [
                "--fakes",
                str(fakes_tsv),
                "--training-sets",
                str(training),
                "--cache",
                str(cache),
                *options({"fakes.privacy.embedding": "pixels", "fakes.privacy.pixel_size": 16}),
                "--out",
                str(out),
                "--summary",
                str(summary),
            ]
        )
        == 0
    )
    result = read_tsv(out).set_index("image_id")
    assert set(result["method"]) == {"pixels"}
    assert result.loc["copy", "nearest_image_id"] == "t1" and result.loc["copy", "distance"] == pytest.approx(
        0, abs=1e-6
    )
    assert bool(result.loc["copy", "under_threshold"]) and not bool(result.loc["new", "under_threshold"])
    assert "dlib was not used" in out.read_text().splitlines()[0]
