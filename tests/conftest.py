"""Shared test helpers: the repository root and a way to run the workflow's Snakemake."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def run_snakemake(args: list[str], workdir: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run this repository's workflow with `workdir` as working directory; the venv's bin on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), *args]
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tests run torch on one thread: two threads on a shared 2-core machine spin against each
    other (25x slower seen here), and CI has 2 cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SLURM_OVERLAY = REPO / "tests" / "slurm" / "profile"
TINY_CONFIGS = [REPO / "config.yaml", DATA / "tiny.yaml", DATA / "tiny_slurm.yaml"]


@pytest.fixture(scope="session")
def local_slurm(tmp_path_factory):
    """A real single-node SLURM (tests/slurm_cluster.py), started on first use and stopped after
    the session's last test: once the SLURM client tools are installed, a `snakemake` call waits
    ~10 s whenever /etc/slurm names a controller that does not answer."""
    from apt_packages import Unavailable
    from slurm_cluster import LocalSlurm

    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except Unavailable as error:
        pytest.skip(f"no local SLURM on this machine: {error}")
    yield cluster
    cluster.stop()


@dataclass
class FinishedRun:
    workdir: Path
    log: str
    seconds: float
    via_slurm: bool


def run_snakemake_from_repo(args: list[str], workdir: Path, timeout: float) -> subprocess.CompletedProcess:
    """Snakemake as a user starts it, from the project root (so `--profile slurm` resolves to the
    ./slurm link), writing into `workdir`. SIGKILL at the timeout: a wrong status command makes
    the SLURM executor wait for ever and ignore SIGTERM."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = ["timeout", "-s", "KILL", str(int(timeout)), sys.executable, "-m", "snakemake", "--directory", str(workdir)]
    return subprocess.run([*cmd, *args], cwd=REPO, env=env, capture_output=True, text=True)


@pytest.fixture(scope="session")
def slurm_tiny_run(local_slurm, tmp_path_factory):
    """The tiny demo, `all`, through `--profile slurm` + the test overlay on the local SLURM."""
    workdir = tmp_path_factory.mktemp("slurm_run")
    profiles = ["--profile", "slurm", "--profile", str(SLURM_OVERLAY.relative_to(REPO))]
    start = time.monotonic()
    run = run_snakemake_from_repo([*profiles, "--configfile", *map(str, TINY_CONFIGS)], workdir, timeout=900)
    seconds = time.monotonic() - start
    assert run.returncode == 0, run.stderr[-6000:]
    print(f"tiny demo through SLURM: {seconds:.0f} s")
    return FinishedRun(workdir, run.stdout + run.stderr, seconds, via_slurm=True)
