"""The study on a SLURM cluster as the users run it: `snakemake --profile slurm`.

One real run of the tiny demo on a local single-node SLURM (tests/slurm_cluster.py: partitions
`norm` and `gpu`, stand-in GRES gpu:p100:2), checked from SLURM's own records; dry runs for
what a site overrides; Snakemake's own view of which rules run on the submit host.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import GPU_RULES, REPO, run_snakemake_from_repo, workflow_rules

HEAVY_CPU_RULES = {"align_shard", "build_cache", "check_leakage", "privacy_audit"}
# `gpus` GPUs each (torchrun); the rest one GPU
TRAINING_RULES = {"train_classifier", "train_gan", "train_held_out_classifier"}


def _gres(rule: str, gpus: int, gpu_type: str = "p100") -> str:
    return f"gpu:{gpu_type}:{gpus if rule in TRAINING_RULES else 1}"


def _slurm_jobs(workdir: Path) -> list[dict[str, str]]:
    """Every job SLURM still remembers (MinJobAge=600) that ran in `workdir`, as scontrol shows it."""
    shown = subprocess.run(["scontrol", "-d", "-o", "show", "job"], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0, shown.stderr
    jobs = []
    for line in shown.stdout.splitlines():
        fields = dict(re.findall(r"(\S+?)=(\S*)", line))
        if fields.get("WorkDir") == str(workdir):
            jobs.append(fields)
    return jobs


def _rule_of(job: dict[str, str]) -> str:
    """The executor plugin labels each job `--comment rule_<rule>_wildcards_<wildcards>`."""
    return job["Comment"].removeprefix("rule_").split("_wildcards_")[0]


def _snakemake_rules(log: str) -> tuple[list[str], list[str]]:
    """(rules Snakemake handed to the executor, rules it ran on the submit host), one entry per job."""
    submitted = re.findall(r"^(?:rule|checkpoint) (\w+):$", log, re.M)
    local = re.findall(r"^local(?:rule|checkpoint) (\w+):$", log, re.M)
    return submitted, local


@pytest.mark.slow
def test_every_gpu_rule_ran_as_a_slurm_job_on_the_gpu_partition_with_its_gres(slurm_tiny_run):
    workdir = slurm_tiny_run.workdir
    jobs = _slurm_jobs(workdir)
    submitted, local = _snakemake_rules(slurm_tiny_run.log)

    # SLURM saw exactly the jobs Snakemake submitted: the GPU rules, each one, nothing else.
    assert sorted(_rule_of(job) for job in jobs) == sorted(submitted)
    assert {_rule_of(job) for job in jobs} == GPU_RULES
    for job in jobs:
        where = f"SLURM job {job['JobId']} ({job['Comment']})"
        assert job["JobState"] == "COMPLETED", where
        assert job["Partition"] == "gpu", where
        assert job["TresPerNode"] == "gres:gpu:p100:1", where  # requested
        assert job["JOB_GRES"] == "gpu:p100:1", where  # granted by slurmctld
        # the plugin's own job log, kept (slurm-keep-successful-logs), names the job's rule
        logs = list((workdir / ".snakemake" / "slurm_logs").glob(f"rule_{_rule_of(job)}/*/{job['JobId']}.log"))
        assert len(logs) == 1, where

    # slurmctld's completion log agrees (one COMPLETED line per job, partition gpu)
    completions = {
        m.group(1): m.group(2)
        for m in re.finditer(r"JobId=(\d+) .*?JobState=(\w+) Partition=gpu .*?WorkDir=(\S+)", _jobcomp_text())
        if m.group(3) == str(workdir)
    }
    assert completions == {job["JobId"]: "COMPLETED" for job in jobs}

    # every CPU rule ran on the submit host, none through sbatch
    assert set(local).isdisjoint(GPU_RULES)
    assert {"align_shard", "build_cache", "check_leakage", "privacy_audit", "make_table2", "all"} <= set(local)
    assert (workdir / "results/table2.tsv").exists() and (workdir / "results/saliency/real/permutation.tsv").exists()


def _jobcomp_text() -> str:
    config = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=30).stdout
    path = re.search(r"^JobCompLoc\s*=\s*(\S+)", config, re.M).group(1)
    return Path(path).read_text()


def _dry_run_resources(args: list[str], workdir: Path) -> dict[str, list[dict[str, str]]]:
    """Per rule, the resources of each job a dry run plans (what the executor turns into sbatch
    flags), plus its shell command under the key `shell`."""
    run = run_snakemake_from_repo(["-n", "--printshellcmds", *args], workdir, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    plan: dict[str, list[dict[str, str]]] = {}
    for block in re.split(r"\n(?=(?:rule|checkpoint) \w+:\n)", run.stdout):
        head = re.match(r"(?:rule|checkpoint) (\w+):\n", block)
        resources = re.search(r"^\s+resources: (.*)$", block, re.M)
        shell = re.search(r"^Shell command: (.*)$", block, re.M)
        if head and resources:
            job = dict(kv.split("=", 1) for kv in resources.group(1).split(", "))
            job["shell"] = shell.group(1) if shell else ""
            plan.setdefault(head.group(1), []).append(job)
    return plan


DEMO = ["--configfile", str(REPO / "config.yaml")]


def test_profile_is_found_by_name_from_the_project_root(tmp_path):
    run = run_snakemake_from_repo(["-n", "--profile", "slurm", *DEMO], tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr[-4000:]
    assert "Using profiles slurm " in run.stdout + run.stderr
    assert (REPO / "slurm").is_symlink() and (REPO / "slurm").resolve() == (REPO / "profiles/slurm").resolve()
    shipped = yaml.safe_load((REPO / "profiles/slurm/profile.yaml").read_text())
    assert shipped["executor"] == "slurm"
    # site routing is not the profile's business: no partitions, GRES or per-rule blocks in it
    assert "set-resources" not in shipped and "slurm_partition" not in shipped["default-resources"]
    assert "slurm-status-command" not in shipped  # the plugin's default (sacct) for a real site


@pytest.mark.parametrize(
    "override",
    [
        ["--default-resources", "slurm_partition=site_cpu", "mem_mb=1000", "runtime=5"],
        ["--set-resources", "train_gan:runtime=30", "train_classifier:mem_mb=9000"],
        ["--profile", "tests/slurm/profile"],  # a second, stacked profile replacing both blocks
    ],
    ids=["default-resources", "set-resources", "stacked-profile"],
)
def test_site_overrides_on_the_command_line_keep_the_gpu_rules_partition_and_gres(tmp_path, override):
    plan = _dry_run_resources(["--profile", "slurm", *DEMO, "--config", "gpus=2", *override], tmp_path)
    assert GPU_RULES <= set(plan)
    for rule in GPU_RULES & set(plan):
        for job in plan[rule]:
            assert job["slurm_partition"] == "gpu" and job["gres"] == _gres(rule, 2), (rule, job)
    if override[0] == "--default-resources":
        assert plan["make_demo_cohort"][0]["slurm_partition"] == "site_cpu"
    if override[0] == "--set-resources":
        assert plan["train_classifier"][0]["mem_mb"] == "9000"


def test_site_config_sets_partition_gpu_type_count_and_account(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text(
        yaml.safe_dump(
            {
                "gpus": 4,
                "cluster": {"gpu_partition": "volta", "gpu_type": "v100x", "account": "lab42", "cpu_rules": "submit"},
            }
        )
    )
    plan = _dry_run_resources(["--profile", "slurm", "--configfile", str(REPO / "config.yaml"), str(site)], tmp_path)
    for rule in GPU_RULES & set(plan):
        for job in plan[rule]:
            gres = _gres(rule, 4, "v100x")
            assert (job["slurm_partition"], job["gres"], job["slurm_account"]) == ("volta", gres, "lab42"), rule
    assert plan["build_cache"][0]["slurm_partition"] == "norm" and plan["build_cache"][0]["slurm_account"] == "lab42"

    site.write_text(yaml.safe_dump({"cluster": {"gpu_type": None}}))
    plan = _dry_run_resources(["--profile", "slurm", "--configfile", str(REPO / "config.yaml"), str(site)], tmp_path)
    assert {job["gres"] for job in plan["train_classifier"]} == {"gpu:1"}
    assert "slurm_account" not in plan["train_classifier"][0]


@pytest.mark.slow
def test_paper_plan_asks_two_p100s_per_training_job_and_launches_torchrun(tmp_path):
    """`snakemake -n --configfile config/paper.yaml --profile slurm`, on the demo cohort so that no
    paper images are needed (the cohort does not change the routing). The pretrained weights are
    not there: the plan fetches them first, on the submit host."""
    demo_cohort = tmp_path / "demo_cohort.yaml"
    demo_cohort.write_text(yaml.safe_dump({"cohort": {"inputs": [{"format": "demo"}]}}))
    configs = ["--configfile", str(REPO / "config.yaml"), str(REPO / "config/paper.yaml"), str(demo_cohort)]
    plan = _dry_run_resources(["--profile", "slurm", *configs], tmp_path)
    train = plan["train_classifier"]
    assert len(train) == 6 * 5  # six variants x five folds
    for rule in GPU_RULES & set(plan):
        for job in plan[rule]:
            assert job["slurm_partition"] == "gpu" and job["gres"] == _gres(rule, 2), (rule, job)
            # training runs data-parallel on the job's two GPUs; inference on one, without torchrun
            launched = job["shell"].startswith("torchrun --standalone --nproc-per-node 2 -m syndface ")
            assert launched == (rule in TRAINING_RULES), (rule, job["shell"][:120])
    assert train[0]["runtime"] == "720" and train[0]["mem_mb"] == "64000" and train[0]["cpus_per_task"] == "8"


@pytest.mark.parametrize("cpu_rules", ["local", "submit"])
def test_only_gpu_rules_and_on_request_the_heavy_cpu_rules_leave_the_submit_host(tmp_path, cpu_rules):
    """Snakemake's own record of local rules (a dry run does not print it)."""
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"cluster": {"cpu_rules": cpu_rules}}))
    is_local = {rule: seen["local"] for rule, seen in workflow_rules([REPO / "config.yaml", site], tmp_path).items()}
    submitted = {rule for rule, local in is_local.items() if not local}
    assert submitted == (GPU_RULES if cpu_rules == "local" else GPU_RULES | HEAVY_CPU_RULES)
    assert len(is_local) > len(submitted) + 10  # the other rules exist and are local
