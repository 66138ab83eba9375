"""Shared test helpers: the repository root and a way to run the workflow's Snakemake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def run_snakemake(
    args: list[str], workdir: Path, timeout: float = 600, snakefile: Path = REPO / "Snakefile"
) -> subprocess.CompletedProcess:
    """Run this repository's workflow with `workdir` as working directory; the venv's bin on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(workdir), *args]
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


def options(settings: dict) -> list[str]:
    """`--options` argv for a command from dotted config keys: {"align.size": 48} ->
    ["--options", '{"align": {"size": 48}}']."""
    tree: dict = {}
    for path, value in settings.items():
        *parents, leaf = path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return ["--options", json.dumps(tree)]


TINY_CONFIGS = ["--configfile", str(REPO / "config.yaml"), str(DATA / "tiny.yaml")]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One finished `snakemake all` of the toy-size demo (tests/data/tiny.yaml), shared by the tests
    that read its outputs or plan reruns against it; they must not change it."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    run = run_snakemake(["--cores", "2", *TINY_CONFIGS], workdir, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]
    return workdir
