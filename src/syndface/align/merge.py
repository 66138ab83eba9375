"""`syndface merge-aligned`: join the shard reports into results/aligned/report.tsv.

Failed images are counted in the log and listed in `--failed` (image_id, reason); downstream
stages use only `status == ok` rows. With `--fail-on-error` any failure stops the workflow
here instead, with the list. With `--manifest`, the shards must cover every manifest image
exactly once (a missing or doubled shard is caught here, not as a shortfall at training).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

from syndface.align.shard import REPORT_COLUMNS
from syndface.io import read_header_lines, read_tsv, write_tsv
from syndface.log import get_logger

log = get_logger("syndface.align")

SETTINGS_PREFIX = "settings: "
FAILED_COLUMNS = ("image_id", "n_faces", "reason")


def shard_settings(path: str | os.PathLike) -> str:
    """The alignment settings a shard report records in its provenance lines."""
    for line in read_header_lines(path):
        if line.startswith(SETTINGS_PREFIX):
            return line[len(SETTINGS_PREFIX) :].strip()
    raise ValueError(f"{path} has no '# {SETTINGS_PREFIX.strip()}' line: was it written by `syndface align-shard`?")


def merge_reports(shard_dirs: list[str | os.PathLike]) -> tuple[pd.DataFrame, str]:
    """The concatenated shard reports (shard order) and their common settings.

    Shards aligned with different settings (size, zoom, background, ...) cannot be mixed.
    """
    reports, settings = [], {}
    for shard_dir in shard_dirs:
        path = Path(shard_dir) / "report.tsv"
        settings.setdefault(shard_settings(path), []).append(str(shard_dir))
        reports.append(read_tsv(path, dtype={"image_id": str, "reason": str, "aligned_path": str, "method": str}))
    if len(settings) > 1:
        detail = "; ".join(
            f"{s} ({', '.join(dirs[:3])}{' ...' if len(dirs) > 3 else ''})" for s, dirs in settings.items()
        )
        raise ValueError(f"shards were aligned with different settings: {detail}. Re-run the stale shards.")
    report = pd.concat(reports, ignore_index=True)[list(REPORT_COLUMNS)]
    report["n_faces"] = report["n_faces"].astype("Int64")
    for column in ("method", "aligned_path", "reason"):
        report[column] = report[column].fillna("")
    return report, next(iter(settings))


def coverage_problems(report: pd.DataFrame, manifest: pd.DataFrame) -> list[str]:
    """How the report fails to list every manifest image exactly once."""
    problems = []
    doubled = report["image_id"][report["image_id"].duplicated()].unique()
    if len(doubled):
        problems.append(f"{len(doubled)} image(s) in several shards: {', '.join(doubled[:10])}")
    missing = sorted(set(manifest["image_id"]) - set(report["image_id"]))
    if missing:
        problems.append(f"{len(missing)} manifest image(s) in no shard: {', '.join(missing[:10])}")
    extra = sorted(set(report["image_id"]) - set(manifest["image_id"]))
    if extra:
        problems.append(f"{len(extra)} image(s) not in the manifest: {', '.join(extra[:10])}")
    return problems


def main(argv: list[str], prog: str = "syndface merge-aligned") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shard-dirs", nargs="+", required=True, help="shard directories written by align-shard")
    parser.add_argument("--report", required=True, help="merged report (results/aligned/report.tsv)")
    parser.add_argument("--failed", required=True, help="list of failed images with the reason")
    parser.add_argument("--manifest", help="check that the shards cover every manifest image exactly once")
    parser.add_argument("--fail-on-error", action="store_true", help="stop with an error if any image failed")
    args = parser.parse_args(argv)

    report, settings = merge_reports(args.shard_dirs)
    if args.manifest:
        problems = coverage_problems(report, read_tsv(args.manifest))
        if problems:
            raise SystemExit("the shard reports do not match the manifest:\n- " + "\n- ".join(problems))
    failed = report.loc[report["status"] != "ok", list(FAILED_COLUMNS)]
    write_tsv(failed, args.failed, header_lines=[f"{len(failed)} of {len(report)} images failed alignment"])
    ok = report[report["status"] == "ok"]
    log.info(
        "%d shards, %d images: %d aligned (%s), %d failed",
        len(args.shard_dirs),
        len(report),
        len(ok),
        ", ".join(f"{m}={n}" for m, n in ok["method"].value_counts().items()),
        len(failed),
    )
    for image_id, reason in zip(failed["image_id"], failed["reason"]):
        log.warning("failed %s: %s", image_id, reason)
    if len(failed) and args.fail_on_error:
        log.error(
            "%d image(s) failed alignment and fail-on-error is set: fix them (e.g. add manual landmarks) or turn the switch off; the list is in %s",
            len(failed),
            args.failed,
        )
        return 1
    header = [
        f"settings: {settings}",
        f"{len(ok)} aligned, {len(failed)} failed (listed in {args.failed}); downstream uses status == ok",
    ]
    write_tsv(report, args.report, header_lines=header)
    return 0
