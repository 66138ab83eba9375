"""Same machine, same seed, same bytes: two runs of a tiny chain (classifier training, prediction,
evaluation, Table 2; GAN training and fakes) on the CPU write byte-identical files. The second run
is another process with its own working directory and PYTHONHASHSEED, as two workflow runs are:
process ids, set orders and clocks differ between them.

The one exception, pinned here so a new one cannot slip in: each classifier's history.tsv (and
checkpoint.pt, kept here to show it) holds the wall-clock seconds per epoch; everything else in
them is identical too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from tiny import SIZE, classifier_config, make_folds, tiny_trainer, write_classifier_cache

from syndface.align.cache import load_cache
from syndface.classify import evaluate, predict, table2
from syndface.classify.data import ImageSet
from syndface.classify.train import CHECKPOINT_FILE, train_classifier
from syndface.gan import fakes, train
from syndface.gan.networks import load_network
from syndface.io import read_tsv, write_tsv

# Files whose bytes legitimately differ between runs, and the columns that make them differ.
TIMED = {"history.tsv": ["seconds"]}


def classifier_chain(cache: Path, out: Path) -> None:
    models = []
    for fold in (0, 1):
        cfg = classifier_config(cache, fold=fold, epochs=2, augment="paper")
        models.append(str(train_classifier(cfg, out / f"fold{fold}", keep_checkpoint=fold == 0)))
    images, index = load_cache(cache)
    test = index[index["split"] == "test"]
    folds, probabilities = predict.fold_probabilities(
        models, ImageSet(images, test["row"].to_numpy()), SIZE, 8, torch.device("cpu")
    )
    write_tsv(predict.prediction_table(test, folds, probabilities, 0.5), out / "test.tsv")
    manifest = index.drop(columns="row").assign(path="x.png")
    evaluate.evaluate(read_tsv(out / "test.tsv"), out / "evaluation", 100, 1, "real", manifest)
    table = table2.make_table2({"real": read_tsv(out / "evaluation" / "metrics.tsv")}, with_ci=True)
    write_tsv(table, out / "table2.tsv")


def gan_chain(out: Path) -> None:
    folds = make_folds()
    trainer, signature = tiny_trainer(folds, kimg=0.008)
    train.train_gan(trainer, out / "gan", signature, snapshot_kimg=0.004, grid_seed=1)
    G, _ = load_network(str(out / "gan" / "network.pt"))
    for fake_type in ("age_progression", "blended_55"):
        fakes.generate_fakes(G, folds, 0, fake_type, 0.6, 1, out / "fakes" / fake_type)


def run_chains(cache: str) -> None:
    """One run, in the current directory (the entry point of the subprocesses)."""
    torch.set_num_threads(1)
    classifier_chain(Path(cache), Path("results"))
    gan_chain(Path("results"))


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_runs_write_the_same_bytes(tmp_path, monkeypatch):
    cache = write_classifier_cache(tmp_path / "cache")
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
    monkeypatch.chdir(tmp_path / "a")
    run_chains(str(cache))
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_determinism as t; t.run_chains(sys.argv[1])"
    # Another string hashing than this process's (random here unless PYTHONHASHSEED is set).
    other_hash_seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    env = {**os.environ, "PYTHONHASHSEED": other_hash_seed}
    subprocess.run([sys.executable, "-c", code, str(cache)], cwd=tmp_path / "b", env=env, check=True)
    a, b = files(tmp_path / "a" / "results"), files(tmp_path / "b" / "results")
    assert a.keys() == b.keys()
    kinds = {Path(name).suffix for name in a}
    assert {".pt", ".tsv", ".png"} <= kinds and len(a) > 100
    differ = sorted(name for name in a if a[name] != b[name])
    assert differ == ["fold0/checkpoint.pt", "fold0/history.tsv", "fold1/history.tsv"]
    for name in differ:
        if name.endswith(".tsv"):
            timed = TIMED[Path(name).name]
            assert (
                read_tsv(tmp_path / "a" / "results" / name)
                .drop(columns=timed)
                .equals(read_tsv(tmp_path / "b" / "results" / name).drop(columns=timed))
            )
        else:
            ckpt_a, ckpt_b = (torch.load(tmp_path / r / "results" / name, weights_only=True) for r in "ab")
            for row in ckpt_a["state"]["history"] + ckpt_b["state"]["history"]:
                row.pop("seconds")
            assert ckpt_a["state"] == ckpt_b["state"] and ckpt_a["config"] == ckpt_b["config"]
            assert all(torch.equal(v, ckpt_b["model"][k]) for k, v in ckpt_a["model"].items())
    assert not (tmp_path / "a" / "results" / "fold1" / CHECKPOINT_FILE).exists()
