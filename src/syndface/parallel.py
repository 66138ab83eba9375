"""Data parallel training on the GPUs of one node, and micro-batches.

A job that gets N > 1 GPUs runs its command under `torchrun --standalone --nproc-per-node N`
(`launcher(N)` is the prefix the workflow puts in the rule's shell). torchrun starts N copies
with RANK / WORLD_SIZE / LOCAL_RANK set; `init_distributed` joins them into one process group
(NCCL on GPUs, gloo on CPUs) and gives each its own GPU.

The contract: the global batch, the learning rate and the outputs do not depend on N or on the
micro-batch. Every rank draws the same global batch (same seeded order), takes its own share of
it (`split_batch`), splits that share into micro-batches of at most `micro_batch` images, and
back-propagates each micro-batch's part of the global-batch loss; the gradients summed over
micro-batches and ranks are the full batch's gradient, and every rank makes the same optimiser
step. Rank 0 alone writes checkpoints, outputs and progress logs.

What cannot be identical: BatchNorm normalises each forward pass by the statistics of the images
in that pass (a micro-batch on one rank), not of the global batch, and updates its running
statistics once per micro-batch; random draws inside a network (dropout, StyleGAN noise) come
from per-rank generators. Networks without either (LayerNorm/GroupNorm, eval-mode BN, no
dropout) give the single-process result up to the order of floating-point sums.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    """This process's place among the data-parallel processes of a job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


SINGLE = DistEnv()


def dist_env(environ: dict[str, str] | None = None) -> DistEnv:
    """The process's rank from torchrun's variables; a plain process is rank 0 of 1."""
    environ = os.environ if environ is None else environ
    world_size = int(environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(environ.get("RANK", "0")), int(environ.get("LOCAL_RANK", "0"))
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"RANK {rank} / WORLD_SIZE {world_size} from the environment are inconsistent")
    if world_size > 1 and int(environ.get("LOCAL_WORLD_SIZE", world_size)) != world_size:
        raise ValueError(
            "data parallel training runs on the GPUs of one node only (LOCAL_WORLD_SIZE != WORLD_SIZE); "
            "use torchrun --standalone --nproc-per-node N"
        )
    return DistEnv(rank, world_size, local_rank)


def init_distributed(device: torch.device) -> tuple[DistEnv, torch.device]:
    """Join the job's process group when started by torchrun; returns (this rank, its device).

    On GPUs each rank takes GPU LOCAL_RANK; on the CPU (tests) the ranks share it over gloo.
    A single process is returned unchanged. Ranks other than 0 log warnings only."""
    env = dist_env()
    if not env.distributed:
        return env, device
    if device.type == "cuda":
        if env.local_rank >= torch.cuda.device_count():
            raise RuntimeError(
                f"rank {env.rank} wants GPU {env.local_rank} but only {torch.cuda.device_count()} are visible; "
                "give the job as many GPUs as --nproc-per-node"
            )
        device = torch.device("cuda", env.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
        # Leave the group when the process ends. No rank waits for the others at the end: the last
        # collective is the final checkpoint's, after which only rank 0 writes files.
        atexit.register(dist.destroy_process_group)
    if not env.is_main:
        logging.getLogger("syndface").setLevel(logging.WARNING)
    return env, device


# --- splitting a batch ----------------------------------------------------------------------------


def split_batch(n: int, parts: int, group: int = 1) -> list[np.ndarray]:
    """Positions 0..n-1 of a batch split into `parts` near-equal parts, whole `group`s in each.

    `group` is StyleGAN's minibatch-standard-deviation group: a batch of n is grouped as
    reshape(group, n // group), i.e. positions j, j + n/group, j + 2n/group, ... form group j.
    Each part gets whole groups, ordered so that the same reshape *inside the part* forms the
    same groups, so D computes the same statistic whatever the split. With group 1 the parts
    are contiguous slices.
    """
    if group < 1 or n % group:
        raise ValueError(f"a batch of {n} cannot be split into groups of {group}")
    n_groups = n // group
    if not 1 <= parts <= n_groups:
        raise ValueError(f"cannot split {n_groups} group(s) of {group} into {parts} part(s)")
    layout = np.arange(n).reshape(group, n_groups)
    return [layout[:, cols].reshape(-1) for cols in np.array_split(np.arange(n_groups), parts)]


def rank_share(n: int, env: DistEnv, group: int = 1) -> np.ndarray:
    """This rank's positions in a global batch of n (the ranks' shares together are the batch)."""
    if n % (env.world_size * group):
        raise ValueError(
            f"a global batch of {n} does not split into {env.world_size} equal shares of whole groups of {group}; "
            f"use a batch that is a multiple of {env.world_size * group}"
        )
    return split_batch(n, env.world_size, group)[env.rank]


def micro_parts(n: int, micro_batch: int, group: int = 1, min_size: int = 1) -> list[np.ndarray]:
    """Positions of a share of n images split into the fewest parts of at most `micro_batch` images.

    micro_batch 0 means no split. Parts hold whole `group`s; none is smaller than `min_size`
    where n allows (BatchNorm in training mode needs 2 images per pass), which may make a part
    of a short last batch exceed micro_batch by up to min_size - 1.
    """
    if micro_batch < 0:
        raise ValueError(f"micro_batch must be >= 0 (0 = the whole batch), got {micro_batch}")
    if n == 0:
        return []
    if micro_batch == 0 or micro_batch >= n:
        return [np.arange(n)]
    if micro_batch % group:
        raise ValueError(
            f"micro_batch {micro_batch} must be a multiple of the minibatch-std group {group} (gan.mbstd_group)"
        )
    parts = math.ceil(n / micro_batch)
    parts = max(1, min(parts, (n // group) // math.ceil(min_size / group)))
    return split_batch(n, parts, group)


# --- collective helpers (no-ops in a single process) -------------------------------------------------


def all_reduce_sum(tensor: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Sum `tensor` over ranks, in place."""
    if env.distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_grads(params: Iterable[torch.nn.Parameter], env: DistEnv) -> None:
    """Sum the gradients of `params` over ranks in one flat all-reduce (what DistributedDataParallel
    does, but usable with double backward, which the GAN's R1 and path-length penalties need).
    Each rank back-propagated its share of the global-batch loss, so the sum is the full gradient."""
    if not env.distributed:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_state(module: torch.nn.Module, env: DistEnv, buffers_only: bool = False) -> None:
    """Copy rank 0's buffers (and parameters) to every rank."""
    if not env.distributed:
        return
    tensors = list(module.buffers()) if buffers_only else [*module.parameters(), *module.buffers()]
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t.data, src=0)


def gather_objects(obj: Any, env: DistEnv) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank."""
    if not env.distributed:
        return [obj]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's global torch generators (CPU, and the device's when it is a GPU)."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
