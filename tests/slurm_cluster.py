"""A real single-node SLURM for the tests: munge + slurmctld + slurmd on this machine.

    python tests/slurm_cluster.py start [--run-dir DIR]   # installs slurm-wlm/munge if missing
    python tests/slurm_cluster.py status [--run-dir DIR]
    python tests/slurm_cluster.py stop [--run-dir DIR]

The pytest fixture `local_slurm` (tests/conftest.py) starts it once per session, on first use,
and stops it after the last test. Why it is built the way it is (recipe and pitfalls in
shared/notes/local-slurm.md):
- The config lives at /etc/slurm/slurm.conf: the job step's `srun` finds only the compiled-in
  path (the jobstep plugin strips SLURM_CONF). A config already there is backed up and put
  back on stop; ours is removed, because once the SLURM client tools are installed every
  `snakemake` call waits about 10 s for a controller that a config names but nobody runs.
- No slurmdbd: the executor must poll with `squeue`, which sees finished jobs only for
  MinJobAge seconds (2 h here, longer than a test session; the plugin wants >= 3 x its first
  status interval).
- Partitions `norm` (default) and `gpu` on the one node, with a stand-in GRES `gpu:p100:2`
  (dummy device files) so GPU requests schedule as on the users' cluster.
- EnforcePartLimits=ALL: a job asking for more than the node has is refused at once instead
  of pending for ever. JobCompType=jobcomp/filetxt keeps a line per finished job.
- Every daemon started here is stopped by its PID (checked against the process name), never by
  name; a munged or controller that was already running is left alone.
- Pitfalls met on the way: the executor's default status command (sacct) never sees a job end
  without slurmdbd and Snakemake then waits for ever, ignoring SIGTERM: tests run it under
  `timeout -s KILL`. munged refuses a log directory it does not own (chown to munge). apt's
  postinst cannot start the daemons without systemd: they are started here by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from apt_packages import Unavailable, ensure  # noqa: E402

PACKAGES = ["slurm-wlm", "munge"]
COMMANDS = ["slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "munged"]
ETC = Path("/etc/slurm")
CONFIG_FILES = ("slurm.conf", "gres.conf")
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_PID = Path("/run/munge/munged.pid")
DEFAULT_RUN_DIR = Path("/tmp/syndface-slurm")
# Where the cluster that these tests started last lives, so that one left behind by a killed test
# session is found and stopped (by its recorded PIDs) before a new one starts.
CURRENT = Path("/tmp/syndface-slurm.current")
MARKER = "# Written by tests/slurm_cluster.py"
MIN_JOB_AGE = 7200  # the test session outlives 600 s: its checks read scontrol after other tests
GPUS = 2

SLURM_CONF = """\
# Written by tests/slurm_cluster.py for syndface's tests; removed again when the cluster stops.
ClusterName=syndface-test
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={run}/state
SlurmdSpoolDir={run}/spool
SlurmctldPidFile={run}/slurmctld.pid
SlurmdPidFile={run}/slurmd.pid
SlurmctldLogFile={run}/log/slurmctld.log
SlurmdLogFile={run}/log/slurmd.log
MailProg=/bin/true
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
EnforcePartLimits=ALL
MinJobAge={min_job_age}
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc={run}/log/jobcomp.txt
GresTypes=gpu
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} Gres=gpu:p100:{gpus} State=UNKNOWN
PartitionName=norm Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL MaxTime=INFINITE State=UP
"""

GRES_CONF = """\
# Written by tests/slurm_cluster.py: stand-in GPUs (dummy device files); removed when the cluster stops.
AutoDetect=off
NodeName={host} Name=gpu Type=p100 File={run}/dev/nvidia[0-{last}]
"""


def _run(cmd: list[str], timeout: float = 30, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)


def _process_name(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _wait(condition, seconds: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    tails = "\n".join(f"--- {p}\n{p.read_text()[-1500:]}" for p in logs if p.exists())
    raise Unavailable(f"the local SLURM did not come up: {what} after {seconds:.0f} s\n{tails}")


def controller_answers() -> bool:
    """A slurmctld answers for the config at /etc/slurm (ours or someone else's)."""
    if not (ETC / "slurm.conf").exists() or shutil.which("scontrol") is None:
        return False
    try:
        result = _run(["scontrol", "ping"], timeout=20)
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0 and "is UP" in result.stdout


def munge_works() -> bool:
    if shutil.which("munge") is None or shutil.which("unmunge") is None:
        return False
    encoded = _run(["munge", "-n"], timeout=10)
    if encoded.returncode != 0:
        return False
    return _run(["unmunge"], input=encoded.stdout, timeout=10).returncode == 0


class LocalSlurm:
    """One node (this host), partitions `norm` and `gpu`, `gpus` stand-in P100s."""

    def __init__(self, run_dir: Path = DEFAULT_RUN_DIR, gpus: int = GPUS):
        self.run_dir = Path(run_dir)
        self.gpus = gpus
        self.state_file = self.run_dir / "started.json"
        self.host = socket.gethostname().split(".")[0]

    # -- what was started, so that stop() touches nothing else -------------------------------
    def _state(self) -> dict:
        if self.state_file.exists():
            return json.loads(self.state_file.read_text())
        return {"pids": {}, "backups": {}}

    def _save(self, state: dict) -> None:
        self.state_file.write_text(json.dumps(state, indent=1))

    @property
    def jobcomp(self) -> Path:
        return self.run_dir / "log" / "jobcomp.txt"

    def start(self) -> None:
        if os.geteuid() != 0:
            raise Unavailable("starting a local SLURM needs root (slurmd runs jobs as any user)")
        ensure(PACKAGES, COMMANDS)
        stop_leftover()
        if self.state_file.exists():
            raise Unavailable(f"{self.state_file} exists: a cluster from {self.run_dir} seems to run; stop it first")
        if controller_answers():
            raise Unavailable("a SLURM controller already answers on this machine; the tests leave it alone")
        for sub in ("state", "spool", "log", "dev", "backup"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        state = {"pids": {}, "backups": {}}
        self._save(state)
        CURRENT.write_text(str(self.run_dir))
        try:
            self._write_config(state)
            self._start_munge(state)
            self._start_slurm(state)
        except BaseException:
            self.stop()
            raise

    def _node_resources(self) -> tuple[int, int]:
        cpus = os.cpu_count() or 1
        memory = 1024
        result = _run(["slurmd", "-C"])
        for field in result.stdout.split():
            key, _, value = field.partition("=")
            if key == "CPUs" and value.isdigit():
                cpus = int(value)
            if key == "RealMemory" and value.isdigit():
                memory = int(value)
        return cpus, max(256, int(memory * 0.9))

    def _write_config(self, state: dict) -> None:
        for k in range(self.gpus):
            device = self.run_dir / "dev" / f"nvidia{k}"
            if not device.exists():
                try:
                    os.mknod(device, 0o600 | 0o020000, os.makedev(195, k))
                except OSError:
                    device.touch()
        cpus, memory = self._node_resources()
        values = {
            "host": self.host,
            "run": self.run_dir,
            "cpus": cpus,
            "memory": memory,
            "gpus": self.gpus,
            "last": self.gpus - 1,
            "min_job_age": MIN_JOB_AGE,
        }
        ETC.mkdir(parents=True, exist_ok=True)
        for name, template in (("slurm.conf", SLURM_CONF), ("gres.conf", GRES_CONF)):
            target = ETC / name
            backup = None
            if target.exists() and not target.read_text().startswith(MARKER):  # not a leftover of ours
                backup = str(self.run_dir / "backup" / name)
                shutil.copy2(target, backup)
            state["backups"][str(target)] = backup
            self._save(state)
            target.write_text(template.format(**values))

    def _start_munge(self, state: dict) -> None:
        if munge_works():
            return  # a munged already runs here: use it, do not own it
        if not MUNGE_KEY.exists() or MUNGE_KEY.stat().st_size == 0:
            MUNGE_KEY.parent.mkdir(parents=True, exist_ok=True)
            MUNGE_KEY.write_bytes(os.urandom(1024))
        for folder in ("/etc/munge", "/var/lib/munge", "/var/log/munge", "/run/munge"):
            Path(folder).mkdir(parents=True, exist_ok=True)
            shutil.chown(folder, "munge", "munge")
            for path in Path(folder).rglob("*"):
                shutil.chown(path, "munge", "munge")
        os.chmod(MUNGE_KEY, 0o400)
        MUNGE_PID.unlink(missing_ok=True)
        result = _run(["runuser", "-u", "munge", "--", "munged", "--force", f"--pid-file={MUNGE_PID}"])
        if result.returncode != 0:
            raise Unavailable(f"munged did not start: {result.stderr.strip()}")
        _wait(lambda: _read_pid(MUNGE_PID) is not None and munge_works(), 10, "munge", [])
        state["pids"]["munged"] = _read_pid(MUNGE_PID)
        self._save(state)

    def _start_slurm(self, state: dict) -> None:
        logs = [self.run_dir / "log" / "slurmctld.log", self.run_dir / "log" / "slurmd.log"]
        result = _run(["slurmctld", "-i"])  # -i: ignore state a previous run left behind
        if result.returncode != 0:
            raise Unavailable(f"slurmctld did not start: {result.stderr.strip()}")
        _wait(lambda: _read_pid(self.run_dir / "slurmctld.pid") is not None, 10, "slurmctld pid file", logs)
        state["pids"]["slurmctld"] = _read_pid(self.run_dir / "slurmctld.pid")
        self._save(state)
        _wait(controller_answers, 20, "scontrol ping", logs)
        result = _run(["slurmd"])
        if result.returncode != 0:
            raise Unavailable(f"slurmd did not start: {result.stderr.strip()}")
        _wait(lambda: _read_pid(self.run_dir / "slurmd.pid") is not None, 10, "slurmd pid file", logs)
        state["pids"]["slurmd"] = _read_pid(self.run_dir / "slurmd.pid")
        self._save(state)
        _wait(self.node_idle, 30, "node idle in sinfo", logs)

    def node_idle(self) -> bool:
        result = _run(["sinfo", "--noheader", "--Node", "--format=%t"], timeout=20)
        states = set(result.stdout.split())
        return result.returncode == 0 and bool(states) and states <= {"idle"}

    def stop(self) -> None:
        """Cancel what is left of our jobs, stop our daemons by PID, put /etc/slurm back."""
        state = self._state()
        pids = state["pids"]
        if pids.get("slurmctld") and controller_answers():
            _run(["scancel", "--user=root"], timeout=20)
            time.sleep(1)
        for name in ("slurmd", "slurmctld", "munged"):
            pid = pids.get(name)
            if pid and _process_name(pid) == name:
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 10
                while _process_name(pid) == name and time.monotonic() < deadline:
                    time.sleep(0.1)
                if _process_name(pid) == name:
                    os.kill(pid, signal.SIGKILL)
        for target, backup in state["backups"].items():
            if backup:
                shutil.copy2(backup, target)
            else:
                Path(target).unlink(missing_ok=True)
        self.state_file.unlink(missing_ok=True)
        if CURRENT.exists() and CURRENT.read_text() == str(self.run_dir):
            CURRENT.unlink()

    def status(self) -> str:
        state = self._state()
        alive = {name: pid for name, pid in state["pids"].items() if pid and _process_name(pid) == name}
        lines = [f"daemons started from {self.run_dir}: {alive or 'none running'}"]
        if controller_answers():
            lines.append(_run(["sinfo"]).stdout)
        return "\n".join(lines)


def stop_leftover() -> None:
    """Stop a cluster that an earlier, killed test session started (its daemons, by PID)."""
    if CURRENT.exists():
        previous = LocalSlurm(Path(CURRENT.read_text().strip()))
        if previous.state_file.exists():
            previous.stop()
        CURRENT.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--run-dir", type=Path, help="state, spool, logs, pid files (stop/status: the running one)")
    args = parser.parse_args(argv)
    run_dir = args.run_dir
    if run_dir is None:
        run_dir = Path(CURRENT.read_text().strip()) if CURRENT.exists() and args.action != "start" else DEFAULT_RUN_DIR
    cluster = LocalSlurm(run_dir)
    try:
        if args.action == "start":
            started = time.monotonic()
            cluster.start()
            print(f"local SLURM up in {time.monotonic() - started:.1f} s")
            print(cluster.status())
        elif args.action == "stop":
            cluster.stop()
            print("stopped")
        else:
            print(cluster.status())
    except Unavailable as error:
        print(f"cannot run a local SLURM here: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
