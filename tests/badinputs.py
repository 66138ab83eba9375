"""A corpus of bad inputs, generated (nothing binary is committed), mixed into a tiny cohort.

Every kind of trouble a cohort gathered from clinics, papers and the web brings, each with the
outcome the workflow promises. `write_corpus` writes the images and the cohort's syndface TSV;
`KINDS` says, per kind, where it is caught and what happens; `markdown_table` renders KINDS as
the table in docs/bad-inputs.md (a test keeps the two equal). The real face is
`skimage.data.astronaut()`: at 256 px her face is about 45 px wide, which dlib finds at the
FFHQ recipe's upsampling (1); shrunk to 160 px it is about 33 px, too small at upsampling 1.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from skimage import data

FACE_SIDE = 256
SMALL_SIDE = 160


@dataclass(frozen=True)
class Kind:
    """One kind of bad input: how it is caught (`stage`), what happens (`outcome`), and how a test
    recognises the reason it is reported with (`reason`, a regular expression)."""

    name: str
    stage: str
    outcome: str
    reason: str = ""


ALIGNED = "aligned"
FAILS = "reported with the reason (`aligned/failed.tsv`); the run goes on without it (see below for test images)"
REJECTED = "row rejected with the reason (`cohort/rejects.tsv`); the rest goes on"
STOPS = "stops `build-manifest` before any compute; the message names the rows (input file and line)"

KINDS: tuple[Kind, ...] = (
    Kind("corrupt bytes (PNG signature, then garbage)", "align", FAILS, r"^unreadable: .*cannot identify image file"),
    Kind("truncated JPEG", "align", FAILS, r"^unreadable: OSError: image file is truncated"),
    Kind("truncated PNG", "align", FAILS, r"^unreadable: OSError: image file is truncated"),
    Kind("zero-byte file", "align", FAILS, r"^unreadable: .*cannot identify image file"),
    Kind("text file named .png", "align", FAILS, r"^unreadable: .*cannot identify image file"),
    Kind("missing file", "align", FAILS, r"^unreadable: FileNotFoundError: .*No such file"),
    Kind(
        "decompression bomb (PNG claiming 20000 x 20000 px in 50 kB)",
        "align",
        "refused from the header, nothing decoded; " + FAILS,
        r"^unreadable: DecompressionBombError: Image size \(400000000 pixels\) exceeds limit",
    ),
    Kind(
        "decompression bomb below Pillow's hard limit (10000 x 10000 px; Pillow would only warn and decode 1 GB)",
        "align",
        "refused from the header, nothing decoded; " + FAILS,
        r"^unreadable: DecompressionBombWarning: Image size \(100000000 pixels\) exceeds limit",
    ),
    Kind("8 x 8 px image", "align", FAILS, r"^dlib found no face \(upsample 1: none; upsample 2: none\)"),
    Kind("photo without a face", "align", FAILS, r"^dlib found no face \(upsample 1: none; upsample 2: none\)"),
    Kind("CMYK JPEG", "align", ALIGNED + " (converted to RGB)"),
    Kind("16-bit RGB PNG", "align", ALIGNED + " (reduced to 8 bits)"),
    Kind("16-bit grey-scale PNG", "align", ALIGNED + " (scaled to 8 bits, not clipped)"),
    Kind("palette PNG with a transparent colour", "align", ALIGNED + " (transparent pixels black, as the padding)"),
    Kind("EXIF-rotated photo (stored sideways)", "align", ALIGNED + " (turned upright first)"),
    Kind("two faces", "align", ALIGNED + ": the largest face; `n_faces` in the report says 2"),
    Kind(
        "face too small for the detector at `align.upsample`",
        "align",
        ALIGNED
        + " after a retry at a higher upsampling (up to `align.max_upsample`); `upsample` in the report says which",
    ),
    Kind(
        "`#`, spaces and non-ASCII letters in the file path", "all tables", ALIGNED + "; the path survives every table"
    ),
    Kind("unknown label (`disease` Williams)", "cohort", REJECTED, r"^unknown disease 'Williams' \(expected one of"),
    Kind("unknown age group (`age_group` teen)", "cohort", REJECTED, r"^unknown age_group 'teen' \(expected one of"),
    Kind(
        "label with the age group appended (`WSolderadult`, the paper's Split labels)",
        "cohort",
        "row rejected; the reason says what to write (`disease` WS, `age_group` older_adult); "
        "in format `paper_csv` such labels import",
        r"write disease WS and age_group older_adult",
    ),
    Kind(
        "every row of an input rejected", "cohort", "stops `build-manifest`: no rows left, with the commonest reasons"
    ),
    Kind("duplicate image id", "cohort", STOPS),
    Kind("the same subject in train and test", "cohort", STOPS),
)
KIND = {kind.name: kind for kind in KINDS}


def markdown_table() -> str:
    lines = ["| input | caught at | what happens |", "|---|---|---|"]
    lines += [f"| {k.name} | {k.stage} | {k.outcome} |" for k in KINDS]
    return "\n".join(lines) + "\n"


# --- image makers ---------------------------------------------------------------------------


def astronaut(side: int = FACE_SIDE) -> np.ndarray:
    return np.asarray(Image.fromarray(data.astronaut()).resize((side, side), Image.LANCZOS))


def encoded(array: np.ndarray, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _chunk(tag: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


def png_bytes(width: int, height: int, bit_depth: int, colour_type: int, rows) -> bytes:
    """A PNG written by hand (Pillow cannot write 16-bit RGB, nor a bomb without holding it):
    `rows` yields each row's raw bytes, compressed as they come."""
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(b"\x00" + row) for row in rows) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def bomb(side: int) -> bytes:
    """A valid 1-bit black PNG of side x side pixels: tens of kB on disk, GBs once decoded to RGB."""
    row = bytes((side + 7) // 8)
    return png_bytes(side, side, 1, 0, (row for _ in range(side)))


def rgb16(array: np.ndarray) -> bytes:
    wide = array.astype(">u2") * 257
    return png_bytes(array.shape[1], array.shape[0], 16, 2, (r.tobytes() for r in wide))


def grey16(array: np.ndarray) -> bytes:
    grey = (array.astype(np.float64) @ [0.299, 0.587, 0.114]).round().astype(">u2") * 257
    return png_bytes(array.shape[1], array.shape[0], 16, 0, (r.tobytes() for r in grey))


def palette_with_transparency(array: np.ndarray) -> bytes:
    palette = Image.fromarray(array).quantize(colors=256)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", transparency=int(np.bincount(np.asarray(palette).ravel()).argmin()))
    return buffer.getvalue()


def exif_rotated(array: np.ndarray) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    return encoded(np.ascontiguousarray(np.rot90(array, 1)), "JPEG", quality=92, exif=exif)


def two_faces(array: np.ndarray) -> np.ndarray:
    canvas = np.zeros((FACE_SIDE, FACE_SIDE + 224, 3), np.uint8)
    canvas[:, :FACE_SIDE] = array
    canvas[28:228, FACE_SIDE + 14 : FACE_SIDE + 214] = astronaut(200)
    return canvas


def cmyk_jpeg(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).convert("CMYK").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


# image id -> (kind, file name, bytes maker; None = no file written)
Maker = Callable[[], bytes] | None


def image_files() -> dict[str, tuple[str, str, Maker]]:
    face = astronaut()
    jpeg = encoded(face, "JPEG", quality=92)
    png = encoded(face, "PNG")
    coffee = np.asarray(Image.fromarray(data.coffee()).resize((200, 133), Image.LANCZOS))
    return {
        "good_png": ("", "good.png", lambda: png),
        "good_jpeg": ("", "good.jpg", lambda: jpeg),
        "corrupt": ("corrupt bytes (PNG signature, then garbage)", "corrupt.png",
                    lambda: b"\x89PNG\r\n\x1a\n" + np.random.default_rng(0).bytes(2000)),
        "truncated_jpeg": ("truncated JPEG", "truncated.jpg", lambda: jpeg[: len(jpeg) // 2]),
        "truncated_png": ("truncated PNG", "truncated.png", lambda: png[: len(png) // 2]),
        "zero_byte": ("zero-byte file", "empty.png", lambda: b""),
        "text_png": ("text file named .png", "notes.png", lambda: b"patient photo to follow\n"),
        "missing": ("missing file", "never_written.png", None),
        "bomb": ("decompression bomb (PNG claiming 20000 x 20000 px in 50 kB)", "bomb.png", lambda: bomb(20000)),
        "bomb_warning": (
            "decompression bomb below Pillow's hard limit (10000 x 10000 px; Pillow would only warn and decode 1 GB)",
            "bomb_warning.png",
            lambda: bomb(10000),
        ),
        "tiny_8x8": ("8 x 8 px image", "tiny.png", lambda: encoded(face[::32, ::32].copy(), "PNG")),
        "no_face": ("photo without a face", "coffee.jpg", lambda: encoded(coffee, "JPEG", quality=90)),
        "cmyk": ("CMYK JPEG", "cmyk.jpg", lambda: cmyk_jpeg(face)),
        "rgb16": ("16-bit RGB PNG", "rgb16.png", lambda: rgb16(face)),
        "grey16": ("16-bit grey-scale PNG", "grey16.png", lambda: grey16(face)),
        "palette_alpha": ("palette PNG with a transparent colour", "palette.png", lambda: palette_with_transparency(face)),
        "exif_rotated": ("EXIF-rotated photo (stored sideways)", "rotated.jpg", lambda: exif_rotated(face)),
        "two_faces": ("two faces", "two.png", lambda: encoded(two_faces(face), "PNG")),
        "small_face": (
            "face too small for the detector at `align.upsample`",
            "small.png",
            lambda: encoded(astronaut(SMALL_SIDE), "PNG"),
        ),
        "odd_path": (
            "`#`, spaces and non-ASCII letters in the file path",
            "web/Łódź clinic/img #1 (copy).png",
            lambda: png,
        ),
    }  # fmt: skip


# Rows the manifest rejects (image id -> kind, column overrides).
REJECTED_ROWS = {
    "unknown_label": ("unknown label (`disease` Williams)", {"disease": "Williams"}),
    "unknown_age": ("unknown age group (`age_group` teen)", {"age_group": "teen"}),
    "label_with_age": (
        "label with the age group appended (`WSolderadult`, the paper's Split labels)",
        {"disease": "WSolderadult"},
    ),
}
# Bad images in the test split: what `align.fail_on_test_error` stops at.
TEST_SPLIT = ("good_jpeg", "rgb16", "truncated_png", "no_face")


def write_corpus(root: Path) -> tuple[Path, pd.DataFrame]:
    """Write every image under root/images and the cohort TSV root/cohort.tsv; returns the TSV's
    path and the expectations: image_id, kind ('' for the plain good images), outcome
    (aligned | failed | rejected), reason (regex; '' for aligned images)."""
    images = root / "images"
    rows, expected = [], []
    diseases = ("WS", "22q", "control", "unaffected")
    ages = ("infant", "child", "adolescent", "young_adult", "older_adult")
    for k, (image_id, (kind, name, make)) in enumerate(image_files().items()):
        path = images / name
        if make is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(make())
        disease = diseases[k % 4]
        rows.append(
            {
                "image_id": image_id,
                "path": str(path),
                "disease": disease,
                "age_group": ages[k % 5],
                "source": "auxiliary" if disease == "unaffected" else "cohort",
                "subject_id": f"subject_{image_id}",
                "split": "test" if image_id in TEST_SPLIT else "train",
            }
        )
        outcome = "aligned" if not kind or not KIND[kind].reason else "failed"
        expected.append(
            {"image_id": image_id, "kind": kind, "outcome": outcome, "reason": KIND[kind].reason if kind else ""}
        )
    for image_id, (kind, overrides) in REJECTED_ROWS.items():
        rows.append({**rows[0], "image_id": image_id, "subject_id": f"subject_{image_id}", **overrides})
        expected.append({"image_id": image_id, "kind": kind, "outcome": "rejected", "reason": KIND[kind].reason})
    cohort = pd.DataFrame(rows)
    path = root / "cohort.tsv"
    cohort.to_csv(path, sep="\t", index=False)
    return path, pd.DataFrame(expected)
