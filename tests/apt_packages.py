"""Debian packages the tests need (SLURM, munge, Chromium), installed on first use.

CI runs `make test` as root on a fresh Debian machine, so the tests install what they need
with apt-get instead of relying on what a developer once installed by hand. Where that is not
possible (not root, no apt-get, the install fails) the caller skips with the reason this
module gives.
"""

from __future__ import annotations

import os
import shutil
import subprocess


class Unavailable(RuntimeError):
    """The packages are missing and cannot be installed here; the message says why."""


def ensure(packages: list[str], commands: list[str], timeout: float = 600) -> None:
    """Install `packages` with apt-get unless every one of `commands` is already on PATH.

    apt-get update runs only when the plain install fails (a stale package list), so a machine
    that has the packages pays nothing and a fresh one pays one install.
    """
    missing = [c for c in commands if shutil.which(c) is None]
    if not missing:
        return
    what = f"{', '.join(missing)} not found (Debian packages {' '.join(packages)})"
    if shutil.which("apt-get") is None:
        raise Unavailable(f"{what} and there is no apt-get to install them")
    if os.geteuid() != 0:
        raise Unavailable(f"{what}; installing them needs root: sudo apt-get install {' '.join(packages)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True, timeout=timeout)
        result = subprocess.run(install, env=env, capture_output=True, text=True, timeout=timeout)
    still = [c for c in commands if shutil.which(c) is None]
    if result.returncode != 0 or still:
        tail = (result.stdout + result.stderr)[-1500:]
        raise Unavailable(f"{what}; `{' '.join(install)}` failed (rc {result.returncode}):\n{tail}")
