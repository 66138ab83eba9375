"""How a rule starts a training command on its GPUs (imported by the workflow, so no torch here)."""

from __future__ import annotations


def launcher(gpus: int) -> str:
    """What a rule's shell puts before `syndface <command>`: empty for one GPU (or none), else torchrun.

    `torchrun ... -m syndface train-classifier ...` runs the same entry point as the `syndface`
    script; `--standalone` picks a free local port, so several jobs can share a node."""
    if gpus < 0:
        raise ValueError(f"gpus must be >= 0, got {gpus}")
    return "" if gpus <= 1 else f"torchrun --standalone --nproc-per-node {gpus} -m"
