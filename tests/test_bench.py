"""The benchmark scripts keep working: bench/gpu_check.sh --smoke runs all three with tiny models on
the CPU (the GPU session that fills the README's performance table runs the same script)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_smoke_runs_every_benchmark_and_logs_its_ratio(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", str(ROOT / "bench" / "gpu_check.sh"), "--smoke"], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = (tmp_path / "gpu_bench.txt").read_text()
    assert log.count("== python3 bench/") == 3
    assert re.search(r"ratio optimised / fp32: \d+\.\d+x", log), log
    # the occlusion benchmark checks ours against captum on the same input as it times them
    diff = re.search(r"max\|diff\| = \S+ \((\S+) of the map's range\)", log)
    assert diff and float(diff.group(1)) <= 1e-4, log
    assert re.search(r"\d+\.\d+ kimg/s", log), log
    assert "!! exit" not in log
