"""Logging for long jobs: one format, and progress lines with a rate and an ETA."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def get_logger(name: str = "syndface") -> logging.Logger:
    """A logger under `syndface`, which alone gets the handler: importing a stage (Snakemake does,
    to read the commands' options) never reconfigures the host program's root logger."""
    package = logging.getLogger("syndface")
    if not package.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s", "%H:%M:%S"))
        package.addHandler(handler)
        package.setLevel(logging.INFO)
        package.propagate = False
    return logging.getLogger(name)


def format_seconds(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def progress(items: Iterable[T], total: int, what: str, logger: logging.Logger, every_s: float = 10.0) -> Iterator[T]:
    """Yield `items`, logging `done/total`, rate and ETA at most every `every_s` seconds and at the end."""
    start = last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= every_s or done == total:
            last = now
            rate = done / max(now - start, 1e-9)
            eta = (total - done) / rate if rate > 0 else float("inf")
            logger.info("%s %d/%d (%.1f/s, ETA %s)", what, done, total, rate, format_seconds(eta))
