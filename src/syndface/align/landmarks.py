"""The five landmarks of a face: from dlib (detector + 68-point predictor) or a manual file.

Two conventions meet here. Files (the manual-landmark file, the alignment report) give
positions as dlib and most annotation tools do: pixel (i, j) is centred at (i, j). In memory,
points are continuous coordinates as PIL's transforms and `syndface.align.render` use them:
pixel (i, j) is centred at (i + 0.5, j + 0.5). The half pixel is added on reading (dlib's
points and files) and taken off on writing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from syndface.align.geometry import FIVE_POINTS, LANDMARK_COLUMNS, five_points_from_dlib
from syndface.align.models import face_detector, shape_predictor
from syndface.io import read_tsv

Points = dict[str, np.ndarray]
# Continuous coordinate of the centre of pixel 0 (files and dlib put it at 0).
PIXEL_CENTRE = 0.5
PYRAMID_STEP = 6 / 5  # scale step of dlib's HOG detector pyramid
# A retry at a higher upsampling is skipped when the upsampled image would exceed this many pixels
# (dlib holds the upsampled image and its HOG features: roughly 10 bytes per pixel).
MAX_RETRY_PIXELS = 4096 * 4096


def dlib_shape(image: np.ndarray, rect) -> np.ndarray:
    """The 68 predicted landmarks (68 x 2, continuous coordinates) of the face in `rect`."""
    shape = shape_predictor()(image, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64) + PIXEL_CENTRE


def largest_face(image: np.ndarray, upsample: int = 1):
    """(dlib rectangle of the largest face or None, number of faces dlib's detector finds).

    The HOG detector reports boxes on a pyramid with a scale step of 6/5, so a face and a
    face-like patch of about the same size may come out at sizes one step apart either way. Of
    the boxes within one step of the largest (area ratio (6/5)^2), the most confident is taken.
    `upsample` = 1 is the FFHQ recipe's setting (finds faces down to ~40 px).
    """
    faces, scores, _ = face_detector().run(image, upsample, 0.0)
    if len(faces) == 0:
        return None, 0
    areas = np.array([r.width() * r.height() for r in faces], dtype=float)
    near_largest = areas >= areas.max() / PYRAMID_STEP**2
    best = int(np.argmax(np.where(near_largest, scores, -np.inf)))
    return faces[best], len(faces)


@dataclass(frozen=True)
class FaceSearch:
    """What `find_face` found: the five landmarks (None if no face), dlib's face count at the
    upsampling that found it (or at the last one tried), that upsampling (None if no face), and a
    note on the tries for the report ("upsample 1: none; upsample 2: 1 face")."""

    points: Points | None
    n_faces: int
    upsample: int | None
    tries: str


def find_face(image: np.ndarray, upsample: int = 1, max_upsample: int | None = None) -> FaceSearch:
    """The largest face, at `upsample` first and, while none is found, at each higher upsampling up
    to `max_upsample`: a face too small for the detector (under ~40 px at upsample 1, ~20 px at 2)
    is found by a retry instead of being given up. A retry whose upsampled image would exceed
    MAX_RETRY_PIXELS is skipped, and the note says so."""
    max_upsample = upsample if max_upsample is None else max(upsample, max_upsample)
    notes, n_faces = [], 0
    for level in range(upsample, max_upsample + 1):
        scaled = image.shape[0] * image.shape[1] * 4**level
        if level > upsample and scaled > MAX_RETRY_PIXELS:
            side = 2**level
            notes.append(
                f"upsample {level} skipped ({image.shape[1]}x{image.shape[0]} px would become "
                f"{image.shape[1] * side}x{image.shape[0] * side})"
            )
            break
        face, n_faces = largest_face(image, level)
        if face is not None:
            notes.append(f"upsample {level}: {n_faces} face{'s' if n_faces > 1 else ''}")
            return FaceSearch(five_points_from_dlib(dlib_shape(image, face)), n_faces, level, "; ".join(notes))
        notes.append(f"upsample {level}: none")
    return FaceSearch(None, n_faces, None, "; ".join(notes))


def read_manual_landmarks(path: str | os.PathLike) -> dict[str, Points]:
    """image_id -> five landmarks (continuous) from a landmark file (image_id + LANDMARK_COLUMNS,
    source pixels, pixel centres at integers).

    Rows with a missing or non-numeric coordinate are unusable and raise, naming them, as do
    duplicated image ids: a hand-placed landmark set is too costly to drop silently.
    """
    table = read_tsv(path)
    missing = [c for c in ("image_id", *LANDMARK_COLUMNS) if c not in table.columns]
    if missing:
        raise ValueError(
            f"{path}: missing landmark column(s) {', '.join(missing)}; expected image_id, {', '.join(LANDMARK_COLUMNS)}"
        )
    coords = table[list(LANDMARK_COLUMNS)].apply(pd.to_numeric, errors="coerce")
    bad = table["image_id"][coords.isna().any(axis=1) | ~np.isfinite(coords.to_numpy()).all(axis=1)]
    if len(bad):
        raise ValueError(
            f"{path}: missing or non-numeric landmarks for image(s) {', '.join(map(str, bad[:10]))}"
            + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        )
    dup = table["image_id"][table["image_id"].duplicated()]
    if len(dup):
        raise ValueError(f"{path}: image id(s) listed twice: {', '.join(map(str, dup[:10]))}")
    values = coords.to_numpy(dtype=np.float64).reshape(len(table), len(FIVE_POINTS), 2) + PIXEL_CENTRE
    return {image_id: dict(zip(FIVE_POINTS, row)) for image_id, row in zip(table["image_id"], values)}


def points_to_columns(points: Points | None) -> dict[str, float]:
    """The report's landmark columns (file convention) for a set of points; NaN when none were used."""
    if points is None:
        return dict.fromkeys(LANDMARK_COLUMNS, np.nan)
    return {
        f"{name}_{axis}": float(points[name][i]) - PIXEL_CENTRE for name in FIVE_POINTS for i, axis in enumerate("xy")
    }
