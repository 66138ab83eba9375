"""FFHQ-style alignment geometry (Karras et al., StyleGAN): the oriented crop square
computed from the eye centres and the mouth corners, and its pixel mapping.

Coordinates are (x, y) in pixels of the source image. "Left"/"right" are image left and
right (viewer's view), as in dlib's 68-point numbering (points 36-41 are the image-left eye).
"""

from __future__ import annotations

import numpy as np

# 68-point dlib indices used by the FFHQ recipe.
DLIB_EYE_LEFT = slice(36, 42)
DLIB_EYE_RIGHT = slice(42, 48)
DLIB_MOUTH_LEFT = 48
DLIB_MOUTH_RIGHT = 54
DLIB_NOSE_TIP = 30

# The five landmarks every alignment path reduces to (also the manual-landmark file's columns).
FIVE_POINTS = ("eye_left", "eye_right", "nose", "mouth_left", "mouth_right")
LANDMARK_COLUMNS = tuple(f"{p}_{axis}" for p in FIVE_POINTS for axis in ("x", "y"))


def five_points_from_dlib(shape68: np.ndarray) -> dict[str, np.ndarray]:
    """Eye centres, nose tip and mouth corners from a (68, 2) dlib shape."""
    shape68 = np.asarray(shape68, dtype=np.float64)
    return {
        "eye_left": shape68[DLIB_EYE_LEFT].mean(axis=0),
        "eye_right": shape68[DLIB_EYE_RIGHT].mean(axis=0),
        "nose": shape68[DLIB_NOSE_TIP],
        "mouth_left": shape68[DLIB_MOUTH_LEFT],
        "mouth_right": shape68[DLIB_MOUTH_RIGHT],
    }


def ffhq_quad(eye_left, eye_right, mouth_left, mouth_right, zoom: float = 1.0) -> np.ndarray:
    """The oriented crop square of the FFHQ recipe, as 4 corners (top-left, bottom-left,
    bottom-right, top-right) in source pixels.

    The square is centred a tenth of the way from the eye midpoint to the mouth midpoint,
    rotated so the eyes are level, with half-side max(2 x eye distance, 1.8 x eye-to-mouth).
    `zoom` > 1 shrinks the square about its centre (the paper's "centred" crop, 512/462).
    """
    eye_left, eye_right = np.asarray(eye_left, float), np.asarray(eye_right, float)
    mouth_avg = (np.asarray(mouth_left, float) + np.asarray(mouth_right, float)) / 2
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = mouth_avg - eye_avg
    # Horizontal axis: the eye line, corrected by the perpendicular of the eye-mouth axis.
    x = eye_to_eye + np.array([eye_to_mouth[1], -eye_to_mouth[0]])
    x = x / np.hypot(*x)
    x = x * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8) / zoom
    y = np.array([-x[1], x[0]])
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def quad_to_affine(quad: np.ndarray, size: int) -> np.ndarray:
    """2x3 matrix A mapping output pixel (u, v, 1) of a `size` x `size` crop to source (x, y).

    Output corners (0,0), (0,size), (size,size) receive quad corners 0, 1, 2.
    """
    quad = np.asarray(quad, dtype=np.float64)
    origin = quad[0]
    down = (quad[1] - quad[0]) / size  # source step per output row
    right = (quad[3] - quad[0]) / size  # source step per output column
    return np.array([[right[0], down[0], origin[0]], [right[1], down[1], origin[1]]])


def source_to_output(points: np.ndarray, quad: np.ndarray, size: int) -> np.ndarray:
    """Map source points (N, 2) into the aligned output frame (inverse of `quad_to_affine`)."""
    a = quad_to_affine(quad, size)
    inv = np.linalg.inv(np.vstack([a, [0, 0, 1]]))
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return (inv[:2, :2] @ pts.T).T + inv[:2, 2]
