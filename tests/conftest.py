"""Shared test helpers: the repository root and a way to run the workflow's Snakemake."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
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


RULES_SCRIPT = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.io import is_flagged
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

workdir, configfiles = Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]]
with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
    workflow = api.workflow(
        resource_settings=ResourceSettings(),
        config_settings=ConfigSettings(configfiles=configfiles),
        snakefile=Path("Snakefile").absolute(),
        workdir=workdir,
    )._workflow
    rules = {
        rule.name: {
            "local": rule.name in workflow._localrules,
            "conda": str(rule.conda_env) if rule.conda_env else None,
            "report_outputs": [str(f) for f in rule.output if is_flagged(f, "report")],
        }
        for rule in workflow.rules
    }
print(json.dumps(rules))
"""


def workflow_rules(configfiles: list[Path], workdir: Path) -> dict[str, dict]:
    """Snakemake's own view of each rule, parsed with these config files: whether it runs on the
    submit host (a dry run does not print it), its conda env file (without needing conda) and
    which outputs go into `snakemake --report`."""
    cmd = [sys.executable, "-c", RULES_SCRIPT, str(workdir), *map(str, configfiles)]
    shown = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-3000:]
    return json.loads(shown.stdout.strip().splitlines()[-1])


# The rules the workflow sends to GPU nodes (workflow/rules/common.smk GPU_RULES), as the tests expect them.
GPU_RULES = {
    "train_classifier",
    "predict_classifier",
    "train_gan",
    "gan_figures",
    "generate_fakes",
    "fake_fidelity",
    "occlusion_maps",
    "permutation_test",
    "predict_out_of_fold",
    "predict_tta",
    "export_features",
    "train_held_out_classifier",
    "export_held_out_features",
}

SLURM_OVERLAY = REPO / "tests" / "slurm" / "profile"
SLURM_TINY_CONFIGS = [REPO / "config.yaml", DATA / "tiny.yaml", DATA / "tiny_slurm.yaml"]


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
    run = run_snakemake_from_repo([*profiles, "--configfile", *map(str, SLURM_TINY_CONFIGS)], workdir, timeout=900)
    seconds = time.monotonic() - start
    assert run.returncode == 0, run.stderr[-6000:]
    print(f"tiny demo through SLURM: {seconds:.0f} s")
    return FinishedRun(workdir, run.stdout + run.stderr, seconds, via_slurm=True)
