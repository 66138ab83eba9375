"""GAN quality tooling (issue 15): FID/KID per snapshot and the snapshot choice, per-fold seeds,
per-image seeded noise, batch balance, the Inception extractor from a local file, label fidelity."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import torch
from tiny import ARCH, cache_index, make_folds, tiny_trainer, write_untrained_classifier

from syndface.gan import fakes, fidelity, metrics, train
from syndface.gan.networks import Generator, label_vectors, seeded_noise
from syndface.gan.options import GanOptions
from syndface.seeding import seed_everything


@pytest.fixture
def folds() -> pd.DataFrame:
    return make_folds()


# --- per-fold seeds and per-image noise (the two tests of the acceptance) ---------------


def fold_trainer(folds: pd.DataFrame, fold: int) -> train.GanTrainer:
    """The trainer train-gan builds for `fold` (its options from fold_train_options), on tiny data."""
    cfg = GanOptions.parse({"seed": 1, "gan": {"batch": 4, "mbstd_group": 2, "unaffected_per_age": 2}})
    index = cache_index(folds)
    images = np.random.default_rng(0).integers(0, 256, (len(index), 8, 8, 3), dtype=np.uint8)
    ts = train.gan_training_set(index, folds, fold, 2, 2, seed=1)
    opts = train.fold_train_options(cfg, fold)
    return train.GanTrainer(ARCH, opts, *train.training_tensors(images, ts), torch.device("cpu"))


def test_two_folds_gans_start_from_different_weights(folds):
    a, b, a_again = fold_trainer(folds, 0), fold_trainer(folds, 1), fold_trainer(folds, 0)
    assert a.opts.seed != b.opts.seed
    for name, tensor in a.G.state_dict().items():
        assert torch.equal(tensor, a_again.G.state_dict()[name]), name  # a fold's start is reproducible
    differing = [n for n, t in a.G.state_dict().items() if t.numel() > 1 and not torch.equal(t, b.G.state_dict()[n])]
    assert "mapping.fc0.weight" in differing and "synthesis.b8.conv1.weight" in differing
    assert not torch.equal(a.D.state_dict()["b8.conv0.weight"], b.D.state_dict()["b8.conv0.weight"])
    assert not torch.equal(a._draw(8), b._draw(8))  # and they draw their own batches


def noisy_generator(strength: float = 0.02) -> Generator:
    """A 16 px generator whose noise inputs matter: trained networks learn small noise strengths,
    a fresh one has them at 0, so every layer's is set to `strength` here."""
    seed_everything(0)
    G = Generator(ARCH.__class__(**{**ARCH.as_dict(), "resolution": 16})).eval()
    for name, param in G.named_parameters():
        if name.endswith("noise_strength"):
            param.data.fill_(strength)
    return G


def low_pass(x: np.ndarray) -> np.ndarray:
    """4x4 box averages of a 16 px image: the layout of the face, not its texture."""
    return x.reshape(4, 4, 4, 4, 3).mean(axis=(1, 3))


def test_two_fakes_of_one_identity_differ_in_noise_but_not_in_identity():
    """Criterion, over three identity pairs: rendered with random noise from two noise seeds, one
    identity (same z and label) gives two different images whose mean |difference| is below a
    third of that between two identities (different z, same noise seed), and below a fifth after
    a 4x4 box low-pass. (Measured: 0.15 and 0.09.) Rendering is reproducible and batch-independent."""
    G = noisy_generator()
    labels = label_vectors(["WS"] * 3, ["child"] * 3)
    ratios, low_ratios = [], []
    for a, b in [(11, 12), (13, 14), (15, 16)]:
        z = fakes.latents(np.array([a, a, b]), G.arch.z_dim)
        images = fakes.render(G, z, labels, psi=1.0, noise="random", seeds=[1, 2, 1]).astype(np.float64)
        same, other = np.abs(images[0] - images[1]).mean(), np.abs(images[0] - images[2]).mean()
        assert same > 0.5  # the noise is there (in uint8 steps)
        ratios.append(same / other)
        low = [np.abs(low_pass(images[0]) - low_pass(images[i])).mean() for i in (1, 2)]
        low_ratios.append(low[0] / low[1])
    assert np.mean(ratios) < 1 / 3 and np.mean(low_ratios) < 1 / 5
    again = fakes.render(G, z[:1], labels[:1], psi=1.0, noise="random", seeds=[1], batch=1)
    assert np.array_equal(again[0], images[0].astype(np.uint8))
    const = fakes.render(G, z[:2], labels[:2], psi=1.0, noise="const")
    assert np.array_equal(const[0], const[1])  # one constant field: no per-image texture
    with pytest.raises(ValueError, match="one noise seed per image"):
        fakes.render(G, z, labels, psi=1.0, noise="random", seeds=[1])


def test_seeded_noise_is_per_image_and_per_layer():
    G = noisy_generator()
    noise = seeded_noise(G, [5, 6, 5])
    assert [n.shape[-1] for n in noise] == G.synthesis.noise_shapes() == [4, 8, 8, 16, 16]
    assert all(torch.equal(n[0], n[2]) and not torch.equal(n[0], n[1]) for n in noise)


# --- batch balance ------------------------------------------------------------------------------


def test_paper_text_batches_are_half_unaffected_and_uniform_follows_the_data(folds):
    trainer, _ = tiny_trainer(folds, kimg=0.004)
    unaffected = set(trainer.pools[1].tolist())
    assert trainer.opts.balance == "paper_text"
    for _ in range(20):
        picks = trainer._draw(8).tolist()
        assert sum(p in unaffected for p in picks) == 4
    uniform, _ = tiny_trainer(folds, kimg=0.004)
    uniform.opts = train.TrainOptions(**{**uniform.opts.__dict__, "balance": "uniform"})
    share = np.mean([p in unaffected for _ in range(400) for p in uniform._draw(8).tolist()])
    expected = len(unaffected) / len(uniform.items)  # 10 of 94 items at oversample 2
    assert abs(share - expected) < 0.03 and expected < 0.2
    ts = train.gan_training_set(cache_index(folds), folds, 0, 2, 0, seed=1)
    images = np.zeros((len(cache_index(folds)), 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="gan.unaffected_per_age > 0 or gan.balance uniform"):
        train.GanTrainer(ARCH, train.TrainOptions(batch=4), *train.training_tensors(images, ts), torch.device("cpu"))


# --- FID / KID ----------------------------------------------------------------------------------


def poly_mmd(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the kernel (x.y / d + 1)^3, written out (the KID of Binkowski et al.)."""
    d, m = x.shape[1], len(x)
    kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3), ((y @ y.T / d + 1) ** 3), ((x @ y.T / d + 1) ** 3)
    return (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()


def test_fid_and_kid_match_their_formulas():
    gen = np.random.default_rng(0)
    real = gen.normal(size=(60, 5))
    fake = gen.normal(size=(60, 5)) * 1.5 + 0.7
    scores = metrics.fid_kid(torch.from_numpy(real), torch.from_numpy(fake), seed=1)
    mu1, mu2 = real.mean(0), fake.mean(0)
    s1, s2 = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    fid = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert scores["fid"] == pytest.approx(fid, rel=1e-6)
    # 60 images -> every subset is all of them: the mean is the full-sample MMD^2 and the std 0.
    assert scores["kid_mean"] == pytest.approx(poly_mmd(real, fake), rel=1e-6) and scores["kid_std"] < 1e-9
    assert abs(metrics.fid_kid(torch.from_numpy(real), torch.from_numpy(real), seed=1)["fid"]) < 1e-6
    alike = metrics.fid_kid(torch.from_numpy(real), torch.from_numpy(gen.normal(size=(60, 5))), seed=1)
    assert abs(alike["kid_mean"]) < 0.1 * scores["kid_mean"] and alike["fid"] < 0.2 * scores["fid"]


def test_measuring_leaves_torchs_generator_alone():
    gen = np.random.default_rng(0)
    real, fake = torch.from_numpy(gen.normal(size=(30, 4))), torch.from_numpy(gen.normal(size=(40, 4)))
    torch.manual_seed(3)
    before = torch.get_rng_state()
    first = metrics.fid_kid(real, fake, seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    assert first == metrics.fid_kid(real, fake, seed=7)


def test_snapshot_choice_and_what_stays_on_disk():
    history = [
        {"kimg": 0.5, "fid": 30.0, "kid_mean": 0.02},
        {"kimg": 1.0, "fid": 20.0, "kid_mean": 0.03},
        {"kimg": 1.5, "fid": 25.0, "kid_mean": 0.01},
        {"kimg": 2.0, "fid": 22.0, "kid_mean": 0.04},
    ]
    assert metrics.choose(history, "last")["kimg"] == 2.0
    assert metrics.choose(history, "best_fid")["kimg"] == 1.0
    assert metrics.choose(history, "best_kid")["kimg"] == 1.5
    assert metrics.kept_snapshots(history, 1, "best_fid") == {2.0, 1.0}
    assert metrics.kept_snapshots(history, 2, "best_kid") == {1.5, 2.0}
    with pytest.raises(ValueError, match="needs fid"):
        metrics.choose([{"kimg": 1.0, "fid": math.nan}], "best_fid")


def tiny_evaluator(trainer: train.GanTrainer, tmp_path) -> metrics.SnapshotEvaluator:
    extractor = metrics.make_extractor(
        "classifier", torch.device("cpu"), write_untrained_classifier(tmp_path / "c.pt", 0)
    )
    unique = torch.unique(trainer.items)
    reals = trainer.images[unique]
    labels = trainer.labels[[int(torch.nonzero(trainer.items == i)[0]) for i in unique]]
    return metrics.SnapshotEvaluator(extractor, reals, labels, 8, ARCH.z_dim, seed=3, device=torch.device("cpu"))


def test_metrics_leave_training_unchanged_and_resume_keeps_their_history(tmp_path, folds):
    """5 steps with snapshots after steps 2, 4 and 5 (the end); the kill comes after step 3."""
    plain, signature = tiny_trainer(folds, kimg=0.020)
    assert train.train_gan(plain, tmp_path / "plain", signature, snapshot_kimg=0.008, grid_seed=1)
    whole, signature = tiny_trainer(folds, kimg=0.020)
    run = dict(snapshot_kimg=0.008, grid_seed=1, select="best_fid", snapshots_kept=1)
    assert train.train_gan(whole, tmp_path / "whole", signature, evaluator=tiny_evaluator(whole, tmp_path), **run)
    killed, signature = tiny_trainer(folds, kimg=0.020)
    evaluator = tiny_evaluator(killed, tmp_path)
    assert not train.train_gan(killed, tmp_path / "split", signature, stop_after_steps=3, evaluator=evaluator, **run)
    resumed, signature = tiny_trainer(folds, kimg=0.020)
    assert train.resume_if_possible(resumed, tmp_path / "split" / "checkpoint.pt", signature)
    assert [row["kimg"] for row in resumed.history] == [0.008]
    assert train.train_gan(resumed, tmp_path / "split", signature, evaluator=tiny_evaluator(resumed, tmp_path), **run)
    assert whole.history == resumed.history and [row["kimg"] for row in whole.history] == [0.008, 0.016, 0.02]
    a, b, c = (torch.load(tmp_path / d / "network.pt", weights_only=True) for d in ("plain", "whole", "split"))
    for name, tensor in a["G"].items():  # measuring changed no training draw
        assert torch.equal(tensor, b["G"][name]) and torch.equal(tensor, c["G"][name]), name
    best = min(whole.history, key=lambda row: row["fid"])
    assert b["selected"]["kimg"] == c["selected"]["kimg"] == best["kimg"]
    kept = sorted(p.name for p in (tmp_path / "whole" / "snapshots").glob("*.pt"))
    assert kept == sorted({f"kimg{k:09.3f}.pt" for k in (best["kimg"], 0.02)})
    table = pd.read_csv(tmp_path / "whole" / "metrics.tsv", sep="\t", comment="#")
    assert list(table["kimg"]) == [0.008, 0.016, 0.02] and table["selected"].sum() == 1


def test_a_changed_extractor_remeasures_the_kept_snapshots(tmp_path, folds):
    trainer, signature = tiny_trainer(folds, kimg=0.012)
    run = dict(snapshot_kimg=0.004, grid_seed=1, select="best_kid", snapshots_kept=5)
    assert train.train_gan(trainer, tmp_path, signature, evaluator=tiny_evaluator(trainer, tmp_path), **run)
    first = [row["kid_mean"] for row in trainer.history]
    again, signature = tiny_trainer(folds, kimg=0.012)
    other = tiny_evaluator(again, tmp_path)
    other.extractor = metrics.make_extractor(
        "classifier", torch.device("cpu"), write_untrained_classifier(tmp_path / "other.pt", 0, seed=9)
    )
    other.real_features = metrics.extract(other.extractor, again.images[torch.unique(again.items)], torch.device("cpu"))
    train.resume_if_possible(again, tmp_path / "checkpoint.pt", {**signature, "metrics": {"changed": True}})
    assert again.metrics_changed
    train.remeasure_snapshots(again, tmp_path, other)
    assert [row["kimg"] for row in again.history] == [0.004, 0.008, 0.012]
    assert [row["kid_mean"] for row in again.history] != first


def test_inception_features_load_a_local_file_and_refuse_what_is_not_one(tmp_path, monkeypatch):
    """A randomly initialised Inception-v3 saved as a state dict stands in for the real FID weights
    (not available offline); the extractor must load it from the path and never download."""
    import torch_fidelity.feature_extractor_inceptionv3 as fx

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download Inception weights")

    monkeypatch.setattr(fx, "load_state_dict_from_url", lambda *a, **k: None)
    monkeypatch.setattr(fx.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state, *a, **k: None)
    torch.manual_seed(0)
    state = fx.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]).state_dict()
    monkeypatch.undo()
    monkeypatch.setattr(fx, "load_state_dict_from_url", no_download)
    weights = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, weights)
    extractor = metrics.make_extractor("inception", torch.device("cpu"), inception_weights=str(weights))
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    features = extractor(images)
    assert features.shape == (2, 2048) and torch.isfinite(features).all()
    assert torch.equal(extractor(images), features)
    with pytest.raises(FileNotFoundError, match="gan.inception_weights"):
        metrics.make_extractor("inception", torch.device("cpu"), inception_weights=str(tmp_path / "missing.pth"))
    pickled = tmp_path / "code.pth"
    torch.save({"state": state, "object": metrics.SnapshotEvaluator}, pickled)
    with pytest.raises(Exception, match="[Ww]eights only load failed"):
        metrics.make_extractor("inception", torch.device("cpu"), inception_weights=str(pickled))


# --- label fidelity -----------------------------------------------------------------------------


def test_fidelity_table_counts_the_intended_disease_and_blend_probabilities():
    fakes_table = pd.DataFrame(
        {
            "image_id": list("abcd"),
            "fold": [0, 0, 1, 1],
            "fake_type": "blended_75",
            "disease": ["WS", "WS", "WS", "22q"],
            "age_group": ["infant"] * 4,
            "blend_with": ["22q", "22q", "22q", "WS"],
            "label_WS": [0.75, 0.75, 0.75, 0.25],
            "label_22q": [0.25, 0.25, 0.25, 0.75],
            "label_control": 0.0,
            "label_unaffected": 0.0,
        }
    )
    probs = np.array([[0.7, 0.2, 0.1, 0.0], [0.3, 0.6, 0.1, 0.0], [0.9, 0.1, 0.0, 0.0], [0.1, 0.1, 0.8, 0.0]])
    real = pd.DataFrame(
        {
            "fold": ["0", "all"],
            "disease": "WS",
            "age_group": "infant",
            "real_n": [4, 8],
            "real_share_intended": [0.5, 0.75],
        }
    )
    table = fidelity.fidelity_table(fakes_table, probs, real)
    ws = table[(table["disease"] == "WS")].set_index("fold")
    assert ws.loc["0", "n"] == 2 and ws.loc["0", "share_intended"] == 0.5
    assert ws.loc["0", "mean_p_intended"] == pytest.approx(0.5) and ws.loc["0", "mean_p_blend_with"] == pytest.approx(
        0.4
    )
    assert ws.loc["all", "n"] == 3 and ws.loc["all", "share_intended"] == pytest.approx(2 / 3)
    assert ws.loc["all", "c"] == 0.75 and ws.loc["all", "real_share_intended"] == 0.75
    q = table[table["disease"] == "22q"].set_index("fold")
    assert q.loc["1", "share_intended"] == 0 and q.loc["1", "mean_p_blend_with"] == pytest.approx(0.1)
    assert list(table["fold"]) == ["0", "1", "1", "all", "all"]
