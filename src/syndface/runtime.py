"""Where and how torch runs: the device, and the GPU settings that make it fast.

GPU: bf16 autocast, channels_last tensors and weights, cuDNN autotuning (with fixed batch
shapes, so it tunes once) and TF32 matmuls. CPU: fp32, contiguous NCHW, `num_threads` threads.
One code path; only these switches differ.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch


def resolve_device(name: str) -> torch.device:
    """`auto` -> the GPU when there is one, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"--device {name} was asked for but torch sees no CUDA GPU; use --device auto or cpu")
    return device


@dataclass(frozen=True)
class Precision:
    """bf16 autocast and channels_last on or off."""

    autocast: bool
    channels_last: bool

    @classmethod
    def for_device(cls, device: torch.device) -> Precision:
        gpu = device.type == "cuda"
        return cls(autocast=gpu, channels_last=gpu)

    @property
    def name(self) -> str:
        """The arithmetic the weights are trained in: `bf16` (autocast) or `fp32`."""
        return "bf16" if self.autocast else "fp32"

    def autocast_context(self, device: torch.device) -> contextlib.AbstractContextManager:
        return torch.autocast(device.type, dtype=torch.bfloat16) if self.autocast else contextlib.nullcontext()


def configure(device: torch.device, num_threads: int, tf32: bool = True) -> None:
    """Process-wide settings for `device`: CPU threads (0 = torch's default), and on GPU cuDNN
    autotuning plus TF32 (off where fp32 results must be exact, e.g. occlusion checked against captum)."""
    if num_threads > 0:
        torch.set_num_threads(num_threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
