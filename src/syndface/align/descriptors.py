"""dlib's 128-D face descriptors of ALIGNED face images (identity leakage, privacy audit).

For each image dlib's detector is run first; its largest face (`landmarks.largest_face`)
feeds the 68-point predictor and the ResNet descriptor (`found` = True). Where the detector
sees no face, which is common for synthetic faces, the predictor is run on the box where an
aligned face sits in the frame (`FRAME_BOX`) and the descriptor computed from that
(`found` = False): such a descriptor is only as good as dlib's ability to read the image as a
face, so callers must report the two cases apart. Images smaller than dlib's 150-px face chip
are upscaled to it first: the descriptor sees 150 px anyway, and the detector finds small
faces far more often (on 32-px aligned demo faces: 40 of 50 instead of none).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

from syndface.align.landmarks import largest_face
from syndface.align.load import load_rgb
from syndface.align.models import face_recognizer, shape_predictor
from syndface.align.render import PAPER_ZOOM
from syndface.log import get_logger, progress

log = get_logger("syndface.align")

# dlib's detector box of an FFHQ-aligned face at zoom 1, as fractions of the frame
# (left, top, right, bottom): measured on aligned photographs, centred horizontally.
FRAME_BOX = (0.225, 0.33, 0.775, 0.88)
DESCRIPTOR_SIZE = 128
CHIP_SIDE = 150  # side of the face chip dlib's ResNet describes


def frame_box(width: int, height: int, zoom: float):
    """FRAME_BOX scaled about the frame centre by `zoom`, as a dlib rectangle in pixels."""
    import dlib

    left, top, right, bottom = (0.5 + (f - 0.5) * zoom for f in FRAME_BOX)
    return dlib.rectangle(
        round(left * width), round(top * height), round(right * width) - 1, round(bottom * height) - 1
    )


def face_descriptor(image: np.ndarray, zoom: float = PAPER_ZOOM, upsample: int = 1) -> tuple[np.ndarray, bool]:
    """(128-D float32 descriptor, whether dlib's detector found the face) of one aligned image."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"face_descriptor needs an H x W x 3 uint8 RGB image, got {image.dtype} {image.shape}")
    if min(image.shape[:2]) < CHIP_SIDE:
        scale = CHIP_SIDE / min(image.shape[:2])
        width, height = round(image.shape[1] * scale), round(image.shape[0] * scale)
        image = np.asarray(Image.fromarray(image).resize((width, height), Image.LANCZOS))
    image = np.ascontiguousarray(image)
    box, _ = largest_face(image, upsample)
    found = box is not None
    if not found:
        box = frame_box(image.shape[1], image.shape[0], zoom)
    shape = shape_predictor()(image, box)
    return np.asarray(face_recognizer().compute_face_descriptor(image, shape), dtype=np.float32), found


def face_descriptors(
    images: Sequence[np.ndarray], *, zoom: float = PAPER_ZOOM, upsample: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(float32 N x 128 descriptors, bool N found) of aligned uint8 H x W x 3 images.

    `found[i]` is False where dlib's detector saw no face in image i; its descriptor then comes
    from the frame box of an aligned face (`zoom` as used for alignment) and may be meaningless.
    """
    return _stack(face_descriptor(image, zoom, upsample) for image in images)


def _stack(results: Iterable[tuple[np.ndarray, bool]]) -> tuple[np.ndarray, np.ndarray]:
    vectors, found = [], []
    for vector, ok in results:
        vectors.append(vector)
        found.append(ok)
    return np.asarray(vectors, dtype=np.float32).reshape(-1, DESCRIPTOR_SIZE), np.asarray(found, dtype=bool)


def _describe_file(task: tuple[str, float, int]) -> tuple[np.ndarray, bool]:
    path, zoom, upsample = task
    return face_descriptor(load_rgb(path), zoom, upsample)


def file_descriptors(
    paths: Sequence[str], *, zoom: float = PAPER_ZOOM, upsample: int = 1, workers: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """face_descriptors of image files, streamed (never all images in memory), over `workers` processes.

    Each process loads dlib's models once; a descriptor costs ~0.15 s of one core.
    """
    tasks = [(str(p), zoom, upsample) for p in paths]
    if workers <= 1:
        return _stack(progress(map(_describe_file, tasks), len(tasks), "described", log))
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        results = pool.imap(_describe_file, tasks, chunksize=8)
        return _stack(progress(results, len(tasks), "described", log))
