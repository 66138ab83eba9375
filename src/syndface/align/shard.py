"""`syndface align-shard`: align one shard of the manifest (rows [k*S, (k+1)*S)).

Per image: decode (see `syndface.align.load`), find the five landmarks by the preferred
method, fall back to the other, render the aligned crop (see `syndface.align.render`) and
write it as `out-dir/images/<id>.png`. `out-dir/report.tsv` holds one row per manifest row
of the shard: status ok|failed, the method used (dlib|manual), dlib's face count (empty when
the detector did not run), the detector upsampling that found the face (a face too small at
`upsample` is looked for again at each level up to `max_upsample`), the aligned path or the
reason for the failure, and the landmarks.

`--prefer dlib` is the paper's procedure (manual landmarks only where dlib fails);
`--prefer manual` uses a landmark row whenever the image has one (the demo cohort, whose
landmarks are the ground truth) and runs dlib only for the rest.
"""

from __future__ import annotations

import argparse
import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd

from syndface.align.geometry import LANDMARK_COLUMNS
from syndface.align.landmarks import Points, find_face, points_to_columns, read_manual_landmarks
from syndface.align.load import ImageLoadError, load_rgb
from syndface.align.options import AlignOptions
from syndface.align.render import AlignmentError, render_aligned
from syndface.images import save_png
from syndface.io import read_tsv, write_tsv
from syndface.log import get_logger, progress
from syndface.options import add_options_argument

log = get_logger("syndface.align")

METHODS = ("dlib", "manual")
REPORT_COLUMNS = ("image_id", "status", "method", "n_faces", "upsample", "aligned_path", "reason", *LANDMARK_COLUMNS)
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def shard_rows(manifest: pd.DataFrame, shard: int, shard_size: int) -> pd.DataFrame:
    """Manifest rows [shard * shard_size, (shard + 1) * shard_size)."""
    if shard < 0 or shard_size < 1:
        raise ValueError(f"shard must be >= 0 and shard size >= 1, got shard {shard}, size {shard_size}")
    return manifest.iloc[shard * shard_size : (shard + 1) * shard_size]


def image_file_name(image_id: str) -> str:
    """A file name for an image id: the id itself when it is safe, else a sanitised id plus a hash."""
    if SAFE_NAME.fullmatch(image_id):
        return f"{image_id}.png"
    digest = hashlib.sha1(image_id.encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9._+-]+', '_', image_id).strip('._')}_{digest}.png"


def align_image(path: str, manual: Points | None, options: AlignOptions) -> tuple[dict, np.ndarray | None]:
    """Report fields (status, method, n_faces, reason, landmarks) and the aligned image or None."""
    try:
        image = load_rgb(path)
    except ImageLoadError as exc:
        return _failed(f"unreadable: {exc}", None), None
    order = METHODS if options.prefer == "dlib" else METHODS[::-1]
    n_faces, upsample, reasons = None, None, []
    for method in order:
        if method == "manual":
            if manual is None:
                reasons.append("no manual landmarks")
                continue
            points = manual
        else:
            search = find_face(image, options.upsample, options.max_upsample)
            points, n_faces, upsample = search.points, search.n_faces, search.upsample
            if points is None:
                reasons.append(f"dlib found no face ({search.tries})")
                continue
        try:
            aligned = render_aligned(image, points, options.size, options.zoom, options.background)
        except AlignmentError as exc:
            reasons.append(f"{method}: {exc}")
            continue
        return {
            "status": "ok",
            "method": method,
            "n_faces": n_faces,
            "upsample": upsample if method == "dlib" else None,
            "reason": "",
            **points_to_columns(points),
        }, aligned
    return _failed("; ".join(reasons), n_faces), None


def _failed(reason: str, n_faces: int | None) -> dict:
    # Decoder messages may hold tabs or newlines; the report is one line per image.
    return {
        "status": "failed",
        "method": "",
        "n_faces": n_faces,
        "upsample": None,
        "reason": " ".join(reason.split()),
        **points_to_columns(None),
    }


def align_shard(rows: pd.DataFrame, manual: dict[str, Points], options: AlignOptions, out_dir: Path) -> pd.DataFrame:
    """Align every row, write the PNGs under out_dir/images, and return the report rows."""
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for image_id, path in progress(zip(rows["image_id"], rows["path"]), len(rows), "aligned", log):
        fields, aligned = align_image(path, manual.get(image_id), options)
        aligned_path = ""
        if aligned is not None:
            target = images_dir / image_file_name(image_id)
            save_png(aligned, target)
            aligned_path = str(target)
        records.append({"image_id": image_id, "aligned_path": aligned_path, **fields})
    report = pd.DataFrame.from_records(records, columns=list(REPORT_COLUMNS))
    for column in ("n_faces", "upsample"):
        report[column] = report[column].astype("Int64")
    return report


def run_shard(
    manifest: pd.DataFrame,
    shard: int,
    shard_size: int,
    manual: dict[str, Points],
    options: AlignOptions,
    out_dir: str | Path,
) -> pd.DataFrame:
    """Align shard `shard` of the manifest into out_dir (images/ + report.tsv, whose provenance
    lines record the settings that `merge_aligned` checks); returns the report."""
    rows = shard_rows(manifest, shard, shard_size)
    first = shard * shard_size
    log.info(
        "shard %d: manifest rows %d..%d of %d (%s)", shard, first, first + len(rows), len(manifest), options.describe()
    )
    if rows.empty:
        log.warning("shard %d is past the end of the manifest (%d rows): writing an empty report", shard, len(manifest))
    out_dir = Path(out_dir)
    report = align_shard(rows, manual, options, out_dir)
    header = [f"settings: {options.describe()}", f"shard {shard}: manifest rows {first}..{first + len(rows)}"]
    write_tsv(report, out_dir / "report.tsv", header_lines=header)
    ok = report[report["status"] == "ok"]
    failed = report[report["status"] == "failed"]
    log.info(
        "shard %d: %d aligned (%s), %d failed",
        shard,
        len(ok),
        ", ".join(f"{m}={n}" for m, n in ok["method"].value_counts().items()),
        len(failed),
    )
    for image_id, reason in zip(failed["image_id"], failed["reason"]):
        log.warning("failed %s: %s", image_id, reason)
    retried = ok[ok["upsample"].fillna(options.upsample) > options.upsample]
    for image_id, level in zip(retried["image_id"], retried["upsample"]):
        log.info("%s: face found only at upsample %d (too small at %d)", image_id, level, options.upsample)
    several = int((report["n_faces"] > 1).sum())
    if several:
        log.info(
            "shard %d: %d image(s) showed several faces; the largest was aligned (n_faces in the report)",
            shard,
            several,
        )
    return report


def main(argv: list[str], prog: str = "syndface align-shard") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--manifest", required=True, help="results/cohort/manifest.tsv")
    parser.add_argument("--shard", type=int, required=True, help="shard index k (rows [k*S, (k+1)*S), S = shard_size)")
    parser.add_argument("--manual-landmarks", help="landmark TSV (image_id + eye/nose/mouth x,y in source pixels)")
    add_options_argument(parser, AlignOptions)
    parser.add_argument("--out-dir", required=True, help="shard directory: images/ and report.tsv")
    args = parser.parse_args(argv)
    options = args.options
    if options.prefer == "manual" and not args.manual_landmarks:
        parser.error("align.prefer manual needs --manual-landmarks")

    manual = read_manual_landmarks(args.manual_landmarks) if args.manual_landmarks else {}
    run_shard(read_tsv(args.manifest), args.shard, options.shard_size, manual, options, args.out_dir)
    return 0
