"""The paper code's learning-rate schedule, one value per epoch.

The original code wraps `CosineAnnealingWarmRestarts(T_0=epochs-1)` in a one-epoch gradual
warm-up (multiplier 10) and steps it once after every epoch, with one extra step after epoch 2.
The learning rate each epoch actually trains with is therefore (epochs counted from 1, base b):

    epoch 1:        b
    epoch 2:        10 b
    epoch e >= 3:   10 b (1 + cos(pi (e - 2) / (E - 1))) / 2        (E = number of epochs)

which for the paper's 30 epochs ends at about 0.003 x 10 b without reaching a restart. As a pure
function of the epoch it needs no scheduler state: a resumed run sets the same rate from the
epoch number alone.
"""

from __future__ import annotations

import math


def paper_lr(epoch: int, base_lr: float, epochs: int, warmup_factor: float = 10.0) -> float:
    """Learning rate of 1-based `epoch` out of `epochs`."""
    if not 1 <= epoch <= epochs:
        raise ValueError(f"epoch must be in 1..{epochs}, got {epoch}")
    if epoch == 1:
        return base_lr
    peak = warmup_factor * base_lr
    if epoch == 2:
        return peak
    return peak * (1.0 + math.cos(math.pi * (epoch - 2) / (epochs - 1))) / 2.0


def lr_schedule(base_lr: float, epochs: int, warmup_factor: float = 10.0) -> list[float]:
    """The learning rate of every epoch, epoch 1 first."""
    return [paper_lr(e, base_lr, epochs, warmup_factor) for e in range(1, epochs + 1)]
