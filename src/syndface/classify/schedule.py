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


# Early stopping. The paper's code (C:train.py:L280-294) starts the best balanced accuracy at 0
# and its epoch at 0, counts an epoch as better only when strictly higher, and breaks after an
# epoch when `epoch - best_epoch > early_stop`: with early_stop 10 it trains 11 epochs past the
# best one. `patience` is the rule train.py used before: stop once `epoch - best_epoch >=
# early_stop` (early_stop epochs past the best), with any first epoch counting as a gain.
EARLY_STOP_RULES = ("paper", "patience")
PAPER_INITIAL_BEST = 0.0


def improves(metric: float, best: float) -> bool:
    """A strict gain, as the paper's code (`>`): a tie keeps the earlier epoch."""
    return metric > best


def initial_best(rule: str) -> float:
    """The best metric before any epoch: 0 in the paper's code (so an epoch at 0 is no gain), else -inf."""
    _check_rule(rule)
    return PAPER_INITIAL_BEST if rule == "paper" else -math.inf


def stop_after_epoch(epoch: int, best_epoch: int, early_stop: int, rule: str = "paper") -> bool:
    """True when training stops after 1-based `epoch`, the best so far being `best_epoch` (0 = none)."""
    _check_rule(rule)
    if early_stop < 0 or epoch < 1 or not 0 <= best_epoch <= epoch:
        raise ValueError(
            f"need early_stop >= 0 and 0 <= best_epoch <= epoch >= 1, got {early_stop}, {best_epoch}, {epoch}"
        )
    since = epoch - best_epoch
    return since > early_stop if rule == "paper" else since >= early_stop


def early_stopped_run(metrics: list[float], epochs: int, early_stop: int, rule: str = "paper") -> tuple[int, int]:
    """(epochs trained, best epoch) of a run whose validation metric at epoch e is metrics[e - 1]."""
    best, best_epoch = initial_best(rule), 0
    for epoch in range(1, epochs + 1):
        if improves(metrics[epoch - 1], best):
            best, best_epoch = metrics[epoch - 1], epoch
        if stop_after_epoch(epoch, best_epoch, early_stop, rule):
            return epoch, best_epoch
    return epochs, best_epoch


def _check_rule(rule: str) -> None:
    if rule not in EARLY_STOP_RULES:
        raise ValueError(f"unknown early-stop rule {rule!r}; allowed: {', '.join(EARLY_STOP_RULES)}")
