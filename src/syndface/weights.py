"""Pretrained weights as workflow outputs: one file from a URL, verified by a pinned SHA-256.

    syndface fetch-weights --url URL --sha256 HEX --out resources/weights/FILE

Why it works this way:
- The file appears under its final name only after its SHA-256 matched the pin, so a wrong,
  truncated or interrupted download never looks like a finished one to Snakemake or a person;
  the partial download (a hidden `.NAME.partPID` sibling) is deleted whatever happens.
- A file already present with the pinned checksum is used as is, without any network: offline
  clusters copy the file in (from any machine: `sha256sum` must print the pinned value). One
  with another checksum is refused, never overwritten, with what to do.
- A pin may be a prefix of at least 8 hex digits where only that is published (torch.hub file
  names carry the first 8 digits of the SHA-256); the full digest is then logged for pinning.
- The list of files the study uses, with their URLs and pins, is `resources/weights.yaml`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import time
import urllib.error
import urllib.request
from http.client import HTTPException
from pathlib import Path

import yaml

from syndface.log import format_seconds, get_logger

log = get_logger("syndface.weights")

CHUNK = 1 << 20
HEX = re.compile(r"^[0-9a-f]{8,64}$")


class WeightsError(RuntimeError):
    """A weights file could not be provided; the message says what to do."""


def normalise_pin(sha256: str | None) -> str | None:
    """Lower-case hex, 8 to 64 digits (a prefix when shorter); None = not pinned."""
    if sha256 is None:
        return None
    pin = str(sha256).strip().lower()
    if not HEX.match(pin):
        raise WeightsError(f"not a SHA-256 pin: {sha256!r} (expected 64 hex digits, or a prefix of at least 8)")
    return pin


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _matches(digest: str, pin: str) -> bool:
    return digest.startswith(pin)


def _note_prefix(pin: str, digest: str, out: Path) -> None:
    if len(pin) < 64:
        log.warning("only a %d-digit prefix was pinned for %s; pin the full SHA-256: %s", len(pin), out.name, digest)


def _human(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def fetch(
    url: str,
    out: str | os.PathLike,
    sha256: str | None,
    *,
    timeout: float = 60,
    allow_unpinned: bool = False,
    progress_seconds: float = 10,
) -> Path:
    """Provide `out`: verified as present, or downloaded from `url` and verified, atomically."""
    out = Path(out)
    pin = normalise_pin(sha256)
    if pin is None and not allow_unpinned:
        raise WeightsError(
            f"no SHA-256 is pinned for {out.name}: refusing to trust whatever {url} serves. Fetch it once on a "
            f"machine you trust with --allow-unpinned, check it, and pin the logged digest (resources/weights.yaml)"
        )
    if out.exists():
        digest = sha256_file(out)
        if pin is None or _matches(digest, pin):
            log.info("%s already present (sha256 %s): used as is, nothing downloaded", out, digest)
            if pin:
                _note_prefix(pin, digest, out)
            return out
        raise WeightsError(
            f"{out} exists but its sha256 is {digest}, not the pinned {pin}: it is not the file the workflow "
            f"expects (another version, a truncated copy or another file). Delete it to download it again from "
            f"{url}, or copy the right file there (`sha256sum {out}` must print {pin})"
        )

    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.name}.part{os.getpid()}")
    digest = hashlib.sha256()
    received = 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "syndface-fetch-weights"})
        with urllib.request.urlopen(request, timeout=timeout) as response, open(part, "wb") as fh:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            log.info("downloading %s (%s) to %s", url, _human(total) if total else "size unknown", out)
            start = last = time.monotonic()
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                fh.write(chunk)
                received += len(chunk)
                now = time.monotonic()
                if now - last >= progress_seconds:
                    last = now
                    rate = received / max(now - start, 1e-9)
                    share = f" of {_human(total)} ({100 * received / total:.0f}%)" if total else ""
                    eta = f", ETA {format_seconds((total - received) / rate)}" if total and rate > 0 else ""
                    log.info("%s%s, %.1f MB/s%s", _human(received), share, rate / 1e6, eta)
            if total is not None and received != total:
                raise WeightsError(
                    f"download of {url} interrupted: {received} of {total} bytes arrived; nothing was written "
                    f"to {out}. Run it again (on a cluster without internet, copy the file to {out})"
                )
            fh.flush()
            os.fsync(fh.fileno())
        got = digest.hexdigest()
        if pin is not None and not _matches(got, pin):
            raise WeightsError(
                f"checksum mismatch for {url}: expected sha256 {pin}, got {got} ({received} bytes); nothing was "
                f"written to {out}. The server sent another file than the pinned one: check the URL, or pin the "
                f"new checksum only if you trust the new file"
            )
        os.replace(part, out)
    except (urllib.error.URLError, HTTPException, OSError, TimeoutError) as error:
        raise WeightsError(
            f"download of {url} failed after {received} bytes: {error}; nothing was written to {out}. On a "
            f"cluster without internet, download it elsewhere and copy it to {out}"
        ) from error
    finally:
        part.unlink(missing_ok=True)
    if pin is None:
        log.warning("%s fetched UNPINNED; pin its sha256 before trusting it: %s", out.name, got)
    else:
        _note_prefix(pin, got, out)
    log.info("%s written (%s, sha256 %s)", out, _human(received), got)
    return out


CATALOG = Path(__file__).resolve().parent / "resources" / "weights.yaml"  # also resources/weights.yaml


def load_catalog(path: str | os.PathLike = CATALOG) -> dict[str, dict]:
    """resources/weights.yaml: name -> {url, sha256, file, used_by, ...}, pins checked."""
    entries = yaml.safe_load(Path(path).read_text()) or {}
    for name, entry in entries.items():
        missing = {"url", "sha256", "file"} - set(entry)
        if missing:
            raise WeightsError(f"{path}: entry {name!r} lacks {', '.join(sorted(missing))}")
        normalise_pin(entry["sha256"])
    return entries


def _files(entries: dict[str, dict]) -> list[dict]:
    """Every downloadable file of the catalog: the entries and their alternatives."""
    return [c for e in entries.values() for c in (e, e.get("alternative") or {}) if c.get("file")]


def catalog_files(catalog: str | os.PathLike = CATALOG) -> list[str]:
    """Every file name the catalog lists (resources/weights/<file> targets of the workflow)."""
    return [c["file"] for c in _files(load_catalog(catalog))]


def catalog_entry(catalog: str | os.PathLike, file: str) -> dict[str, str | None]:
    """The url and pinned sha256 of `file` in the catalog."""
    for candidate in _files(load_catalog(catalog)):
        if candidate["file"] == file:
            return {"url": candidate["url"], "sha256": candidate.get("sha256")}
    raise WeightsError(f"{catalog} lists no file {file!r}; it lists: {', '.join(sorted(catalog_files(catalog)))}")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--from-catalog",
        action="store_true",
        help="take the url and pinned sha256 of --out's file name from the weights catalog (resources/weights.yaml)",
    )
    parser.add_argument("--url", help="where to download the file from (without --catalog)")
    parser.add_argument("--sha256", help="pinned SHA-256 (64 hex digits, or a published prefix of >= 8)")
    parser.add_argument("--out", required=True, type=Path, help="destination file (a present, matching file is kept)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds without data before giving up")
    parser.add_argument(
        "--allow-unpinned", action="store_true", help="accept any content when no --sha256 is given (logs the digest)"
    )
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        url, sha256 = args.url, args.sha256
        if args.from_catalog:
            entry = catalog_entry(CATALOG, args.out.name)
            url, sha256 = entry["url"], entry["sha256"]
        if not url:
            parser.error("give --url, or --from-catalog for a file the catalog lists")
        fetch(url, args.out, sha256, timeout=args.timeout, allow_unpinned=args.allow_unpinned)
    except WeightsError as error:
        log.error("%s", error)
        return 1
    return 0
