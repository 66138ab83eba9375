"""How a multi-GPU job is launched and how a process finds its rank."""

from __future__ import annotations

import pytest

from syndface.launch import launcher
from syndface.parallel import DistEnv, dist_env


def test_launcher_is_empty_for_one_gpu_and_torchrun_for_more():
    assert launcher(0) == launcher(1) == ""
    assert launcher(2) == "torchrun --standalone --nproc-per-node 2 -m"
    # what a rule's shell becomes: `{launcher} syndface train-classifier ...`
    assert f"{launcher(4)} syndface train-classifier".split()[-3:] == ["-m", "syndface", "train-classifier"]
    with pytest.raises(ValueError, match="gpus must be >= 0"):
        launcher(-1)


def test_rank_comes_from_torchrun_variables():
    assert dist_env({}) == DistEnv(0, 1, 0) and not dist_env({}).distributed
    env = dist_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert env == DistEnv(1, 2, 1) and env.distributed and not env.is_main
    with pytest.raises(ValueError, match="inconsistent"):
        dist_env({"RANK": "2", "WORLD_SIZE": "2"})
    with pytest.raises(ValueError, match="one node only"):
        dist_env({"RANK": "0", "WORLD_SIZE": "4", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2"})
