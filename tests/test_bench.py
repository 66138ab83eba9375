"""The benchmark scripts keep working: bench/gpu_check.sh --smoke runs all four with tiny models on
the CPU (the GPU session that fills the README's performance and memory tables runs the same script)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_smoke_runs_every_benchmark_and_logs_its_ratio(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_check.sh"), "--smoke"], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = (tmp_path / "gpu_bench.txt").read_text()
    assert log.count("== python3 bench/") == 4
    assert re.search(r"ratio optimised / fp32: \d+\.\d+x", log), log
    # the occlusion benchmark checks ours against captum on the same input as it times them
    diff = re.search(r"max\|diff\| = \S+ \((\S+) of the map's range\)", log)
    assert diff and float(diff.group(1)) <= 1e-4, log
    assert re.search(r"\d+\.\d+ kimg/s", log), log
    # the memory plan runs every precision and micro-batch, and says that the CPU has no GPU memory to measure
    assert "peak GPU memory is not measurable on the CPU" in log
    for precision in ("fp32", "fp16", "bf16"):
        assert re.search(rf"{precision}, micro-batch 4, checkpointing on: \d+\.\d+ img/s", log), log
    assert "!! exit" not in log


def test_memory_table_gives_the_largest_micro_batch_that_fits_each_card(monkeypatch):
    spec = importlib.util.spec_from_file_location("bench_memory", ROOT / "bench" / "memory.py")
    memory = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_memory", memory)  # its dataclass looks itself up there
    spec.loader.exec_module(memory)
    args = SimpleNamespace(model="tf_efficientnet_b4", image_size=448, batch=64)

    def row(precision, micro, reserved):
        oom = reserved is None
        return memory.Result(precision, micro, False, None if oom else 100.0, reserved, reserved, oom)

    # peaks of 7.5 / 15.2 / 45.0 GiB: with 1 GiB kept free, 16 fits a 16 GB card, 32 a 40 GB one, 64 an 80 GB one.
    rows = [row("fp16", 16, 7.5), row("fp16", 32, 15.2), row("fp16", 64, 45.0)]
    table = memory.markdown(rows, args, "NVIDIA H200", 139.8)
    assert "| fp16 | off | 16 | 32 | 64 |" in table and "Measured on NVIDIA H200 (140 GiB)" in table
    # measured on a 16 GB card, where 32 ran out of memory: bigger cards' answers are not claimed
    rows = [row("fp32", 16, 12.0), row("fp32", 32, None)]
    table = memory.markdown(rows, args, "Tesla P100-PCIE-16GB", 15.9)
    assert "| fp32 | off | 32 | OOM | OOM | OOM |" in table
    assert "| fp32 | off | 16 | 16 (larger ones ran out of memory on the measuring GPU: not measured) |" in table
