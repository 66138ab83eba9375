"""Render the FFHQ-style aligned crop of a face from its five landmarks.

Coordinates are continuous pixel coordinates, as PIL's transforms use them: an image spans
[0, W] x [0, H] and pixel (i, j) is centred at (i + 0.5, j + 0.5). The aligned frame is the
square `geometry.ffhq_quad` returns, mapped onto a size x size output by
`geometry.quad_to_affine`, so a landmark at source point p lands at
`geometry.source_to_output(p, quad, size)` in the output.

Quality follows the FFHQ recipe's intent without its 4096-px detour: when the crop square is
much larger than the output the source is first box-shrunk by an integer factor, then the
affine map is sampled bilinearly at `ss` times the output size (so no source pixel is skipped)
and Lanczos-downsampled to the output size.

Backgrounds: `pad` leaves everything outside the photograph flat black and changes nothing
else (the paper's "BlankBackground": FFHQ alignment without its blur-and-fill of the padding);
`ellipse` also blacks out everything outside an ellipse around the face, built from the
landmarks, so hair, ears, clothes and scenery carry no signal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from PIL import Image

from syndface.align.geometry import ffhq_quad, quad_to_affine, source_to_output

BACKGROUNDS = ("ellipse", "pad")
# The paper's "centred" crop: 25..487 of the 512-px aligned image, i.e. a 462-px window.
PAPER_ZOOM = 512 / 462
# Supersampling of the affine map: at least 2 so the ellipse edge is anti-aliased, at most 4
# (beyond that the source is box-shrunk first).
MIN_SUPERSAMPLE, MAX_SUPERSAMPLE = 2, 4
# The face ellipse in units of the eye-to-mouth distance d (along the face's vertical axis)
# and the eye distance w (across it). Adult proportions put the hairline about 1.0 d above the
# eyes and the chin about 0.6 d below the mouth, the cheeks about 1.1 w either side of the
# eye midpoint; the semi-axes add a margin so infants' high foreheads and the jaw stay inside.
ELLIPSE_CENTRE_BELOW_EYES = 0.3  # x d, from the eye midpoint towards the mouth
ELLIPSE_SEMI_VERTICAL = 1.6  # x d
ELLIPSE_SEMI_HORIZONTAL = 1.3  # x w


class AlignmentError(ValueError):
    """The landmarks do not define a usable crop of this image."""


def face_quad(points: Mapping[str, np.ndarray], zoom: float) -> np.ndarray:
    """The oriented crop square (4 x 2, source pixels) of a face given its five landmarks."""
    return ffhq_quad(points["eye_left"], points["eye_right"], points["mouth_left"], points["mouth_right"], zoom)


def render_aligned(
    image: np.ndarray, points: Mapping[str, np.ndarray], size: int, zoom: float, background: str = "ellipse"
) -> np.ndarray:
    """The size x size x 3 uint8 aligned crop of `image` (H x W x 3 uint8 RGB)."""
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {', '.join(BACKGROUNDS)}, got {background!r}")
    quad = face_quad(points, zoom)
    side = float(np.hypot(*(quad[3] - quad[0])))
    if not math.isfinite(side) or side < 4:
        raise AlignmentError(f"degenerate landmarks: the crop square is {side:.1f} px wide")
    height, width = image.shape[:2]
    lo = np.maximum(np.floor(quad.min(axis=0)).astype(int) - 1, 0)
    hi = np.minimum(np.ceil(quad.max(axis=0)).astype(int) + 1, [width, height])
    if np.any(hi <= lo):
        raise AlignmentError("the crop square lies outside the image")

    ratio = side / size
    shrink = max(1, math.ceil(ratio / MAX_SUPERSAMPLE))
    ss = int(np.clip(math.ceil(ratio / shrink), MIN_SUPERSAMPLE, MAX_SUPERSAMPLE))
    source = Image.fromarray(image).crop((int(lo[0]), int(lo[1]), int(hi[0]), int(hi[1])))
    if shrink > 1:
        source = source.reduce(shrink)

    # Supersampled output point -> output point -> source point -> cropped -> shrunk source.
    to_source = np.vstack([quad_to_affine(quad, size), [0.0, 0.0, 1.0]])
    to_output = np.diag([1 / ss, 1 / ss, 1.0])
    to_crop = np.array([[1.0, 0.0, -lo[0]], [0.0, 1.0, -lo[1]], [0.0, 0.0, 1.0]])
    to_shrunk = np.diag([1 / shrink, 1 / shrink, 1.0])
    matrix = to_shrunk @ to_crop @ to_source @ to_output
    big = source.transform(
        (size * ss, size * ss), Image.AFFINE, tuple(matrix[:2].ravel()), Image.BILINEAR, fillcolor=(0, 0, 0)
    )
    if background == "pad":
        return np.asarray(big.resize((size, size), Image.LANCZOS), dtype=np.uint8)
    landmarks = {name: source_to_output(p, quad, size)[0] * ss for name, p in points.items()}
    inside = face_ellipse_mask(landmarks, size * ss)
    big = Image.fromarray(np.asarray(big) * inside[:, :, None].astype(np.uint8))
    out = np.array(big.resize((size, size), Image.LANCZOS), dtype=np.uint8)
    # Lanczos rings a few levels past the ellipse's edge; pixels wholly outside stay black.
    out[~inside.reshape(size, ss, size, ss).any(axis=(1, 3))] = 0
    return out


def face_ellipse_mask(landmarks: Mapping[str, np.ndarray], size: int) -> np.ndarray:
    """Boolean size x size mask of the face ellipse, from landmarks in this frame's coordinates.

    The ellipse's axes follow the face: its long axis runs from the eye midpoint towards the
    mouth midpoint, so a residual tilt of the aligned face tilts the ellipse with it.
    """
    eye_mid = (landmarks["eye_left"] + landmarks["eye_right"]) / 2
    mouth_mid = (landmarks["mouth_left"] + landmarks["mouth_right"]) / 2
    down = mouth_mid - eye_mid
    d = float(np.hypot(*down))
    w = float(np.hypot(*(landmarks["eye_right"] - landmarks["eye_left"])))
    down = down / d
    across = np.array([-down[1], down[0]])
    centre = eye_mid + ELLIPSE_CENTRE_BELOW_EYES * d * down
    coords = np.arange(size) + 0.5  # pixel centres
    dx = coords[None, :] - centre[0]
    dy = coords[:, None] - centre[1]
    along = (dx * down[0] + dy * down[1]) / (ELLIPSE_SEMI_VERTICAL * d)
    side = (dx * across[0] + dy * across[1]) / (ELLIPSE_SEMI_HORIZONTAL * w)
    return along**2 + side**2 <= 1.0
