"""Activation checkpointing for the classifier: recompute instead of store, for small GPUs.

timm's `set_grad_checkpointing(True)` keeps only the inputs of each block in the forward pass and
recomputes the block during backward: on EfficientNet-B4 @448 (batch 64, bf16, H200) memory fell
by 65 % (27.5 -> 9.6 GiB) and speed by 45 % (shared/notes/performance-facts.md). Gradients are
unchanged. The recomputation would, however, run every BatchNorm of a block a second time in
training mode and so move its running statistics twice per step; the hooks here restore them
after the recomputed pass, so the running statistics also equal those of a run without
checkpointing.
"""

from __future__ import annotations

import torch
from torch import nn


def _recomputing() -> bool:
    """True inside a backward pass, which is where checkpointed blocks rerun their forward."""
    return torch._C._current_graph_task_id() != -1


def _keep_running_stats(module: nn.modules.batchnorm._BatchNorm, _inputs) -> None:
    """Before a recomputed BatchNorm pass: note the running statistics and put them back when the
    backward pass ends. (Not after the recomputed forward itself: checkpointing stops a
    recomputation as soon as it has what backward needs, which may skip forward hooks.)"""
    if not (module.training and module.track_running_stats and _recomputing()):
        return
    saved = [b.detach().clone() for b in module.buffers()]

    def restore() -> None:
        with torch.no_grad():
            for buffer, value in zip(module.buffers(), saved):
                buffer.copy_(value)

    torch.autograd.Variable._execution_engine.queue_callback(restore)


def enable_activation_checkpointing(model: nn.Module) -> None:
    """Turn on timm's activation checkpointing in `model` (a timm model, or one with a timm
    `.backbone`), with BatchNorm's running statistics updated once per forward as without it."""
    backbone = getattr(model, "backbone", model)
    if not hasattr(backbone, "set_grad_checkpointing"):
        raise ValueError(f"{type(backbone).__name__} has no set_grad_checkpointing(): only timm backbones support it")
    backbone.set_grad_checkpointing(True)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.register_forward_pre_hook(_keep_running_stats)
