"""A cluster pre-empts jobs: kill the whole `snakemake` (SIGKILL, no clean-up) while a classifier
trains and again while a GAN trains, rerun, and the results equal an uninterrupted run's, byte
for byte. Nothing finished is redone, and the killed jobs resume from their checkpoints.

Both runs start from empty folders on this machine, so the comparison also shows that two runs of
one configuration give the same bytes (docs/reproducibility.md lists what cannot).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import DATA, REPO, run_snakemake

from syndface.io import read_tsv

TARGET = "results/table2.tsv"  # classifiers, GANs, fakes and Table 2: the jobs worth resuming
# Longer than the tiny run in a few places, so that each kill lands while a checkpoint exists:
# a classifier writes checkpoint.pt after every epoch (deleted when it ends), a GAN at every snapshot.
OVERLAY = "classifier:\n  epochs: 4\ngan:\n  kimg: 0.12\n  snapshot_kimg: 0.03\n"


def configs(workdir: Path) -> list[str]:
    overlay = workdir.parent / f"{workdir.name}-overlay.yaml"
    overlay.write_text(OVERLAY)
    return ["--configfile", str(REPO / "config.yaml"), str(DATA / "tiny.yaml"), str(overlay)]


def start(workdir: Path) -> subprocess.Popen:
    """Snakemake in its own session, so that one killpg takes it and every job it started."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--cores", "2", TARGET, *configs(workdir)]
    return subprocess.Popen(cmd, cwd=workdir, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip


def kill_when(workdir: Path, ready, timeout: float = 600) -> None:
    """SIGKILL the run's whole process group as soon as `ready(workdir)` holds."""
    process = start(workdir)
    deadline = time.monotonic() + timeout
    try:
        while not ready(workdir):
            if process.poll() is not None:
                pytest.fail(f"the run ended (exit {process.returncode}) before the moment to kill it")
            if time.monotonic() > deadline:
                pytest.fail("the moment to kill never came")
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def classifier_mid_training(workdir: Path) -> bool:
    return any((workdir / "results/classifier").glob("*/fold*/checkpoint.pt"))


def gan_mid_training(workdir: Path) -> bool:
    return any(not (c.parent / "network.pt").exists() for c in (workdir / "results/gan").glob("fold*/checkpoint.pt"))


def unlock_and_rerun(workdir: Path) -> subprocess.CompletedProcess:
    """What a user does after a pre-empted run: release Snakemake's lock, run again."""
    unlock = run_snakemake(["--unlock", TARGET, *configs(workdir)], workdir)
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    return run_snakemake(["--cores", "2", TARGET, *configs(workdir)], workdir, timeout=900)


def result_files(workdir: Path) -> dict[str, object]:
    """Every file under results/ as bytes; but the training histories without their wall-clock
    seconds, and the GANs' resume checkpoints by content (a resumed run pickles equal tensors
    into other bytes; docs/reproducibility.md)."""
    files: dict[str, object] = {}
    for path in sorted((workdir / "results").rglob("*")):
        if path.is_file() and ".tmp" not in path.name:
            relative = path.relative_to(workdir).as_posix()
            if path.name == "history.tsv":
                files[relative] = read_tsv(path).drop(columns="seconds").to_csv(sep="\t").encode()
            elif path.name == "checkpoint.pt":
                files[relative] = Content(torch.load(path, weights_only=True))
            else:
                files[relative] = path.read_bytes()
    return files


class Content:
    """A nested checkpoint compared by value: equal keys, equal values, equal tensors."""

    def __init__(self, value):
        self.value = value

    def __eq__(self, other) -> bool:
        return _same(self.value, other.value)


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and bool(torch.equal(a, b))
    return a == b


def mtimes(workdir: Path, pattern: str) -> dict[str, int]:
    return {p.as_posix(): p.stat().st_mtime_ns for p in workdir.glob(pattern) if p.is_file()}


@pytest.mark.slow
def test_killed_twice_then_rerun_equals_an_uninterrupted_run(tmp_path):
    reference = tmp_path / "uninterrupted"
    reference.mkdir()
    run = run_snakemake(["--cores", "2", TARGET, *configs(reference)], reference, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]

    killed = tmp_path / "killed"
    killed.mkdir()
    kill_when(killed, classifier_mid_training)  # first kill: a classifier between epochs
    done_before = mtimes(killed, "results/folds/*") | mtimes(killed, "results/cohort/*")
    assert done_before and classifier_mid_training(killed)

    unlock = run_snakemake(["--unlock", TARGET, *configs(killed)], killed)
    assert unlock.returncode == 0, unlock.stderr[-2000:]
    kill_when(killed, gan_mid_training)  # second kill: a GAN between snapshots

    finished = unlock_and_rerun(killed)
    assert finished.returncode == 0, finished.stderr[-3000:]
    # Nothing finished before a kill is redone; the killed jobs resumed from their checkpoints.
    assert mtimes(killed, "results/folds/*") | mtimes(killed, "results/cohort/*") == done_before
    classifier_logs = [p.read_text() for p in (killed / "logs/train_classifier").rglob("*.log")]
    assert any("resuming from" in text for text in classifier_logs)
    gan_logs = [p.read_text() for p in (killed / "logs/train_gan").glob("fold*.log")]
    assert any("resumed from" in text for text in gan_logs)

    a, b = result_files(reference), result_files(killed)
    assert sorted(a) == sorted(b)
    differ = [name for name in a if a[name] != b[name]]
    assert not differ, f"files that differ from the uninterrupted run: {differ}"
