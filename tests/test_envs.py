"""envs/: one conda env per rule family that Snakemake can build from its copy of the file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib

import pytest
import yaml
from conftest import GPU_RULES, REPO, workflow_rules

ENVS = REPO / "envs"
CUDA_13_RUNTIME = re.compile(r"^(nvidia-|cuda-)")
# env -> (what it leaves out of the lock, torch/torchvision local build tag, extra pip index)
FAMILIES = {
    "cpu": (lambda n: bool(CUDA_13_RUNTIME.match(n)) or n == "triton", "+cpu", "https://download.pytorch.org/whl/cpu"),
    "gpu": (lambda n: False, "", None),
    "gpu-pascal": (lambda n: bool(CUDA_13_RUNTIME.match(n)), "+cu126", "https://download.pytorch.org/whl/cu126"),
}


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.strip().split("==")
            pins[name.lower()] = version
    return pins


def _pip_lines(env: str) -> list[str]:
    spec = yaml.safe_load((ENVS / f"{env}.yaml").read_text())
    assert spec["channels"] == ["conda-forge", "nodefaults"]
    deps = spec["dependencies"]
    assert "python =3.11" in deps and "pip" in deps
    (pip,) = [d["pip"] for d in deps if isinstance(d, dict)]
    return pip


def test_env_files_are_exactly_the_three_families():
    assert sorted(p.name for p in ENVS.glob("*.yaml")) == ["cpu.yaml", "gpu-pascal.yaml", "gpu.yaml"]


@pytest.mark.parametrize("env", sorted(FAMILIES))
def test_env_pins_every_lock_package_at_the_lock_version(env):
    left_out, tag, index = FAMILIES[env]
    pip = _pip_lines(env)
    options = [line for line in pip if line.startswith("-")]
    assert options == ([f"--extra-index-url {index}"] if index else [])
    pins = dict(line.lower().split("==") for line in pip if not line.startswith("-"))
    expected = {name: version for name, version in _lock().items() if not left_out(name)}
    for name in ("torch", "torchvision"):
        expected[name] += tag
    assert pins == expected
    if env == "gpu":
        assert pins == _lock()  # the Turing+ env is the lock itself (what `make` installs)


def test_the_pascal_venv_installs_the_pascal_env_pins():
    """`make venv-gpu-pascal` (a venv for P100/V100 nodes, without conda) installs exactly
    envs/gpu-pascal.yaml's pip list, the CUDA 12.6 torch build from its index."""
    listed = subprocess.run(
        [sys.executable, str(ENVS / "sync_from_lock.py"), "--requirements", "gpu-pascal"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert listed == _pip_lines("gpu-pascal")
    plan = subprocess.run(["make", "-n", "venv-gpu-pascal"], cwd=REPO, capture_output=True, text=True, check=True)
    assert "sync_from_lock.py --requirements gpu-pascal > .venv-gpu-pascal/requirements.txt" in plan.stdout
    assert "-m pip install --quiet -r .venv-gpu-pascal/requirements.txt" in plan.stdout


@pytest.mark.parametrize("env", sorted(FAMILIES))
def test_env_has_no_path_that_breaks_when_snakemake_copies_it(env):
    text = (ENVS / f"{env}.yaml").read_text()
    for line in _pip_lines(env):
        assert not re.match(r"^(-r|-c|-e|--requirement|--constraint|--editable)\b", line), line
        assert ".." not in line and not line.startswith(("/", ".", "file:")), line
    assert ".." not in re.sub(r"#.*", "", text)
    script = ENVS / f"{env}.post-deploy.sh"  # Snakemake's post-deploy hook: <env>.post-deploy.sh beside it
    assert script.exists() and script.read_text().startswith("#!/usr/bin/env bash\n")
    assert ".." not in re.sub(r"#.*", "", script.read_text())


def test_post_deploy_version_follows_the_project_version():
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert f'version="{version}"' in (ENVS / "cpu.post-deploy.sh").read_text()


@pytest.fixture
def fake_env(tmp_path):
    """A copy of the post-deploy script where Snakemake puts it, and a `python` that records its
    arguments instead of installing (the real install needs conda and the network)."""
    conda = tmp_path / ".snakemake" / "conda"
    conda.mkdir(parents=True)
    script = conda / "0123abcd.post-deploy.sh"
    shutil.copyfile(ENVS / "gpu-pascal.post-deploy.sh", script)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/python-args\n')
    (bin_dir / "python").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("SYNDFACE_SRC", None)
    return script, env, tmp_path / "python-args"


def test_post_deploy_installs_the_project_from_snakemakes_copy(fake_env, tmp_path):
    script, env, recorded = fake_env
    run = subprocess.run(["bash", str(script)], cwd=REPO, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert recorded.read_text().split() == ["-m", "pip", "install", "--no-deps", str(REPO)]

    elsewhere = tmp_path / "elsewhere"  # snakemake --directory elsewhere: SYNDFACE_SRC says where
    elsewhere.mkdir()
    recorded.unlink()
    run = subprocess.run(["bash", str(script)], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert run.returncode == 1 and "export SYNDFACE_SRC=" in run.stderr and not recorded.exists()
    run = subprocess.run(
        ["bash", str(script)], cwd=elsewhere, env={**env, "SYNDFACE_SRC": str(REPO)}, capture_output=True, text=True
    )
    assert run.returncode == 0 and recorded.read_text().split()[-1] == str(REPO)


@pytest.mark.parametrize(
    "gpu_type, gpu_env", [("p100", "gpu-pascal"), ("v100x", "gpu-pascal"), ("a100", "gpu"), (None, "gpu")]
)
def test_rules_name_their_family(tmp_path, gpu_type, gpu_env):
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"cluster": {"gpu_type": gpu_type}}))
    rules = workflow_rules([REPO / "config.yaml", site], tmp_path)
    for rule, seen in rules.items():
        if rule == "all":
            assert seen["conda"] is None
            continue
        family = gpu_env if rule in GPU_RULES else "cpu"
        assert (REPO / "workflow" / "rules" / seen["conda"]).resolve() == ENVS / f"{family}.yaml", rule
