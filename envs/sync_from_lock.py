"""Rewrite envs/{cpu,gpu,gpu-pascal}.yaml from requirements.lock (run after changing the lock).

    python envs/sync_from_lock.py
    python envs/sync_from_lock.py --requirements gpu-pascal   (the env's pip pins, for a venv:
                                                               what `make venv-gpu-pascal` installs)

Each env pins every package of the lock at the lock's version, except where its torch build
differs (tests/test_envs.py checks this independently of this script):
- gpu:        PyPI's default torch build (CUDA 13, sm_75+: Turing and newer), exactly the lock.
- gpu-pascal: torch/torchvision from PyTorch's CUDA 12.6 index (+cu126, sm_50..sm_90: Pascal
              and Volta too); torch pulls its own nvidia-*-cu12 runtime, so the lock's CUDA 13
              runtime packages (nvidia-*, cuda-*) are left out.
- cpu:        torch/torchvision from PyTorch's CPU index (+cpu): no CUDA runtime, no triton,
              a few hundred MB instead of several GB on the submit host.
"""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCK = HERE.parent / "requirements.lock"
CUDA_RUNTIME = re.compile(r"^(nvidia-|cuda-)", re.I)
ENVS = {
    "cpu": {
        "about": "CPU rules (everything but the GPU rules); torch's CPU build",
        "index": "https://download.pytorch.org/whl/cpu",
        "local": "cpu",
        "drop": lambda name: bool(CUDA_RUNTIME.match(name)) or name.lower() == "triton",
    },
    "gpu": {
        "about": "GPU rules on Turing or newer GPUs (compute capability >= 7.5); PyPI's torch build (CUDA 13)",
        "index": None,
        "local": None,
        "drop": lambda name: False,
    },
    "gpu-pascal": {
        "about": "GPU rules on Pascal/Volta GPUs (P100, V100: compute capability 6.0-7.0); torch's CUDA 12.6 build",
        "index": "https://download.pytorch.org/whl/cu126",
        "local": "cu126",
        "drop": lambda name: bool(CUDA_RUNTIME.match(name)),
    },
}


def lock_pins() -> list[tuple[str, str]]:
    pins = []
    for line in LOCK.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins.append((name, version))
    return pins


def pip_lines(env: str) -> list[str]:
    """The env's pip requirements: its extra index, then every kept pin of the lock."""
    spec = ENVS[env]
    lines = [f"--extra-index-url {spec['index']}"] if spec["index"] else []
    for name, version in lock_pins():
        if spec["drop"](name):
            continue
        if spec["local"] and name.lower() in {"torch", "torchvision"}:
            version = f"{version}+{spec['local']}"
        lines.append(f"{name}=={version}")
    return lines


def render(env: str) -> str:
    spec = ENVS[env]
    lines = [
        f"# {spec['about']}.",
        "# Generated from requirements.lock by envs/sync_from_lock.py; tests/test_envs.py checks the pins.",
        "# No relative path: Snakemake copies this file into .snakemake/conda/ before creating the env;",
        f"# {env}.post-deploy.sh (run by Snakemake in the new env) then installs syndface itself.",
        "channels:",
        "  - conda-forge",
        "  - nodefaults",
        "dependencies:",
        "  - python =3.11",
        "  - pip",
        "  - pip:",
    ]
    lines += [f"      - {line}" for line in pip_lines(env)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "--requirements" and sys.argv[2] in ENVS:
        print("\n".join(pip_lines(sys.argv[2])))
    elif len(sys.argv) == 1:
        for env in ENVS:
            (HERE / f"{env}.yaml").write_text(render(env))
            print(f"wrote envs/{env}.yaml")
    else:
        sys.exit(f"usage: {sys.argv[0]} [--requirements {{{','.join(ENVS)}}}]")
