"""`syndface merge-aligned`: join the shard reports into results/aligned/report.tsv.

Failed images are counted in the log and listed in `--failed` (image_id, n_faces, reason, and
with the manifest its split, disease and age group); downstream stages use only `status == ok`
rows. With `--fail-on-error` any failure stops the workflow here instead, with the list; with
`fail_on_test_error` (`check_failures`) a failed *test* image does: the test set, and Table 2's
denominators, would otherwise shrink. With `--manifest`, the shards must cover every manifest
image exactly once (a missing or doubled shard is caught here, not as a shortfall at training).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

from syndface.align.options import MergeAlignedOptions
from syndface.align.shard import REPORT_COLUMNS
from syndface.io import read_header_lines, read_tsv, write_tsv
from syndface.log import get_logger
from syndface.options import add_options_argument

log = get_logger("syndface.align")

SETTINGS_PREFIX = "settings: "
FAILED_COLUMNS = ("image_id", "n_faces", "reason")
MANIFEST_LABELS = ("split", "disease", "age_group")


class AlignmentFailed(RuntimeError):
    """Images failed alignment where the configuration says a failure must stop the run."""


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
    for column in ("n_faces", "upsample"):
        report[column] = report[column].astype("Int64")
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


def failed_images(report: pd.DataFrame, manifest: pd.DataFrame | None = None) -> pd.DataFrame:
    """The failed rows of a merged report (FAILED_COLUMNS), with the manifest's split, disease
    and age group of each when the manifest is given."""
    failed = report.loc[report["status"] != "ok", list(FAILED_COLUMNS)].reset_index(drop=True)
    if manifest is None:
        return failed
    labels = manifest[["image_id", *MANIFEST_LABELS]]
    return failed.merge(labels, on="image_id", how="left", validate="one_to_one")[
        ["image_id", *MANIFEST_LABELS, "n_faces", "reason"]
    ]


def merge_aligned(
    shard_dirs: list[str | os.PathLike], manifest: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(merged report, failed images, the shards' common settings). With the manifest, the shards
    must cover each of its images exactly once (ValueError listing the gaps otherwise)."""
    report, settings = merge_reports(shard_dirs)
    if manifest is not None:
        problems = coverage_problems(report, manifest)
        if problems:
            raise ValueError("the shard reports do not match the manifest:\n- " + "\n- ".join(problems))
    return report, failed_images(report, manifest), settings


def check_failures(
    failed: pd.DataFrame, failed_path: str, fail_on_error: bool = False, fail_on_test_error: bool = False
) -> None:
    """Raise AlignmentFailed, listing the images, when a failure must stop the run: any failure
    with `fail_on_error`, a failed test image with `fail_on_test_error` (needs `failed` with the
    manifest's split, see `failed_images`)."""

    def listing(rows: pd.DataFrame, limit: int = 10) -> str:
        shown = [f"  {i}: {r}" for i, r in zip(rows["image_id"].head(limit), rows["reason"].head(limit))]
        more = [f"  ... and {len(rows) - limit} more"] if len(rows) > limit else []
        return "\n".join(shown + more)

    if fail_on_error and len(failed):
        raise AlignmentFailed(
            f"{len(failed)} image(s) failed alignment and align.fail_on_error is set:\n{listing(failed)}\n"
            f"Fix the files or add manual landmarks for them (align.manual_landmarks), or turn the switch off; "
            f"the full list is in {failed_path}"
        )
    if fail_on_test_error:
        if "split" not in failed.columns:
            raise ValueError("fail_on_test_error needs the failed images' split: pass the manifest to merge_aligned")
        test = failed[failed["split"] == "test"]
        if len(test):
            raise AlignmentFailed(
                f"{len(test)} test image(s) failed alignment and align.fail_on_test_error is set:\n{listing(test)}\n"
                "They would drop out of the predictions and of Table 2's denominators. Fix the files or add manual "
                "landmarks for them (align.manual_landmarks); or set align.fail_on_test_error: false to evaluate "
                f"without them (Table 2 then counts them as excluded). The full list is in {failed_path}"
            )


def main(argv: list[str], prog: str = "syndface merge-aligned") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shard-dirs", nargs="+", required=True, help="shard directories written by align-shard")
    parser.add_argument("--report", required=True, help="merged report (results/aligned/report.tsv)")
    parser.add_argument("--failed", required=True, help="list of failed images with the reason")
    parser.add_argument("--manifest", help="check that the shards cover every manifest image exactly once")
    add_options_argument(parser, MergeAlignedOptions)
    args = parser.parse_args(argv)

    manifest = read_tsv(args.manifest) if args.manifest else None
    try:
        report, failed, settings = merge_aligned(args.shard_dirs, manifest)
    except ValueError as error:
        raise SystemExit(str(error)) from None
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
    try:
        on_test = args.options.fail_on_test_error and manifest is not None  # the split comes from the manifest
        check_failures(failed, args.failed, args.options.fail_on_error, on_test)
    except AlignmentFailed as error:
        log.error("%s", error)
        return 1
    header = [
        f"settings: {settings}",
        f"{len(ok)} aligned, {len(failed)} failed (listed in {args.failed}); downstream uses status == ok",
    ]
    write_tsv(report, args.report, header_lines=header)
    return 0
