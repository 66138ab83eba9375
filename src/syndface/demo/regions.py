"""Region masks: where each disease x age group's planted signal lies in the aligned frame.

The aligned frame is the FFHQ crop of a face: `ffhq_quad(eye_left, eye_right, mouth_left,
mouth_right, zoom)` mapped to a size x size image by `quad_to_affine`. The quad is built from the
landmarks alone and moves with them under any rotation, scaling and shift, so a region's place in
the aligned frame depends only on the face, not on its pose in the photograph: each footprint is
drawn straight from face units into the aligned frame.

A group's mask is the mean over the group's images of, per pixel, the strongest amplitude of the
signs whose footprint covers it (signal strength at the image's age x penetrance), scaled to a
maximum of 1. The strongest, not the sum: nested or touching footprints (the iris inside the
periorbital region, hooded lids beside the nasal root) would otherwise make their overlap the
peak, and a threshold at half the peak would drop the regions around it. Because the strengths change with age, the masks move with age (WS: from the
periorbital region in infants to the mouth in older adults). Masks are stored at zoom 1; the
loader resamples them for any output size and zoom. Unaffected faces carry no signal and have no
mask.

File layout (`regions.npz`): `mask/{disease}/{age_group}` (the weighted group masks),
`region/{disease}/{age_group}/{region}` (the unweighted mean footprint of one region: the share
of the group's faces whose region covers each pixel), and `size` (the stored side, zoom 1).
"""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np
from PIL import Image
from scipy import ndimage

from syndface.align.geometry import ffhq_quad, quad_to_affine
from syndface.demo.render import Face, Pen, ellipse_points, landmarks, mouth_curves
from syndface.demo.signals import REGIONS, SIGNALS
from syndface.io import save_npz as write_npz

STORED_SIZE = 128
REGION_OF_EFFECT = {s.effect: s.region for s in SIGNALS}


def aligned_matrix(face: Face, size: int) -> np.ndarray:
    """2x3 matrix from face units to continuous pixels of the zoom-1 aligned frame."""
    pts = landmarks(face)
    quad = ffhq_quad(pts["eye_left"], pts["eye_right"], pts["mouth_left"], pts["mouth_right"])
    to_face = np.vstack([quad_to_affine(quad, size), [0.0, 0.0, 1.0]])
    return np.linalg.inv(to_face)[:2]


def region_shapes(face: Face, region: str) -> list[np.ndarray]:
    """Polygons (face units) that enclose what the renderer draws for a region's signs."""
    hw, hh, r = face.eye_half_width, face.eye_half_height, face.iris_radius
    eyes = [(side * face.eye_dx, face.eye_y) for side in (-1, 1)]
    if region == "periorbital":
        f = face.fullness
        rx, ry = hw * (1.05 + 0.25 * f) + 0.03, hh * (2.2 + 2.0 * f) + 0.05
        return [ellipse_points(x, y + 0.5 * hh * (1 + f), rx, ry) for x, y in eyes]
    if region == "iris":
        return [ellipse_points(x, y, r * 1.15, r * 1.15) for x, y in eyes]
    if region == "eyelids":
        return [ellipse_points(x, y - 0.3 * hh, hw * 1.15 + 0.02, max(hh, r) * 1.6 + 0.05) for x, y in eyes]
    if region == "eye_spacing":
        return [ellipse_points(0.0, face.eye_y, face.eye_dx + hw * 1.2, max(hh, r) * 1.8 + 0.04)]
    if region == "brows":
        rx, ry = hw * 1.4 + 0.03, face.brow_thickness / 2 + face.brow_arch + 0.04
        y = face.brow_y - face.brow_arch / 2
        return [ellipse_points(side * (face.eye_dx + 0.03), y, rx, ry) for side in (-1, 1)]
    if region == "nasal_root":
        rw, top, bottom = face.root_half_width + 0.07, face.eye_y - 0.24, face.eye_y + 0.24
        nose, tip = face.nose_half_width * 0.75 + 0.05, face.nose_tip_y - 0.04
        return [np.array([[-rw, top], [rw, top], [rw, bottom], [nose, tip], [-nose, tip], [-rw, bottom]])]
    if region == "mouth":
        m = mouth_curves(face)
        top, bottom = m["upper_top"].min() - 0.04, m["lower_bottom"].max() + 0.04
        rx, ry = face.mouth_half_width * 1.12 + 0.05, (bottom - top) / 2 * 1.2
        return [ellipse_points(0.0, (top + bottom) / 2, rx, ry)]
    if region == "nasal_tip":
        b, nw = face.nose_bulb, face.nose_half_width
        return [ellipse_points(0.0, face.nose_tip_y, nw * (0.72 + 0.42 * (1 + 0.6 * b)) + 0.04, 0.12 + 0.05 * b)]
    raise ValueError(f"unknown region {region!r}; known: {', '.join(REGIONS)}")


def region_footprint(
    face: Face, region: str, size: int, baseline: Face | None = None, matrix: np.ndarray | None = None
) -> np.ndarray:
    """0/1 float32 mask (size x size, zoom-1 aligned frame of `face`) of one region.

    With `baseline` (the same face without its signs) the footprint also covers where the
    feature would have been: a small mouth is seen as much in the missing lips as in the drawn ones.
    """
    image = Image.new("L", (size, size), 0)
    pen = Pen(image, aligned_matrix(face, size) if matrix is None else matrix)
    for f in (face,) if baseline is None else (face, baseline):
        for shape in region_shapes(f, region):
            pen.polygon(shape, 255)
    return np.asarray(image, np.float32) / 255.0


class RegionMaskBuilder:
    """Accumulates footprints image by image; `arrays()` gives the npz contents."""

    def __init__(self, size: int = STORED_SIZE):
        self.size = size
        self.count: dict[tuple[str, str], int] = defaultdict(int)
        self.weighted: dict[tuple[str, str], np.ndarray] = {}
        self.footprints: dict[tuple[str, str, str], np.ndarray] = {}

    def add(self, disease: str, age_group: str, face: Face, baseline: Face, effects: dict[str, float]) -> None:
        """One image of the group: its face, the same face without signs, and the sign amplitudes
        (`signals.amplitudes`)."""
        by_region: dict[str, float] = defaultdict(float)
        for effect, amplitude in effects.items():
            if amplitude > 0:
                by_region[REGION_OF_EFFECT[effect]] += amplitude
        if not by_region:
            return
        key = (disease, age_group)
        self.count[key] += 1
        matrix = aligned_matrix(face, self.size)
        total = self.weighted.setdefault(key, np.zeros((self.size, self.size), np.float64))
        strongest = np.zeros_like(total)
        for region, amplitude in sorted(by_region.items()):
            footprint = region_footprint(face, region, self.size, baseline, matrix)
            np.maximum(strongest, amplitude * footprint, out=strongest)
            self.footprints.setdefault((*key, region), np.zeros_like(total))[...] += footprint
        total += strongest

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {"size": np.array(self.size)}
        for (disease, age_group), total in sorted(self.weighted.items()):
            out[f"mask/{disease}/{age_group}"] = (total / total.max()).astype(np.float32)
        for (disease, age_group, region), total in sorted(self.footprints.items()):
            share = total / self.count[disease, age_group]
            out[f"region/{disease}/{age_group}/{region}"] = share.astype(np.float32)
        return out


def save_npz(arrays: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """The region masks, compressed and byte-identical across runs (`syndface.io.save_npz`)."""
    write_npz(arrays, path, compressed=True)


def resample_to_frame(mask: np.ndarray, size: int, zoom: float = 1.0) -> np.ndarray:
    """A zoom-1 mask resampled for a size x size aligned image cropped at `zoom`.

    Output pixel u at zoom z sits at zoom-1 position 0.5*S + (u - 0.5*S)/z (continuous pixel
    coordinates); each output pixel averages a k x k grid of bilinear samples so shrinking does
    not alias.
    """
    stored = mask.shape[0]
    k = max(1, int(np.ceil(stored / (size * zoom))))
    sub = (np.arange(size * k) + 0.5) / k  # continuous output coordinates of the samples
    at_zoom1 = 0.5 * size + (sub - 0.5 * size) / zoom
    index = at_zoom1 * stored / size - 0.5
    rows, cols = np.meshgrid(index, index, indexing="ij")
    samples = ndimage.map_coordinates(mask.astype(np.float64), [rows, cols], order=1, mode="constant", cval=0.0)
    return samples.reshape(size, k, size, k).mean(axis=(1, 3)).astype(np.float32)


def load_region_masks(path: str | os.PathLike, size: int, zoom: float = 1.0) -> dict[tuple[str, str], np.ndarray]:
    """(disease, age_group) -> float32 [size, size] mask in [0, 1] for aligned images of that size
    and zoom. Only groups with a planted signal (WS, 22q, control) have a mask."""
    with np.load(path) as data:
        return {
            tuple(name.split("/")[1:]): resample_to_frame(data[name], size, zoom)
            for name in data.files
            if name.startswith("mask/")
        }


def load_named_region_masks(
    path: str | os.PathLike, size: int, zoom: float = 1.0
) -> dict[tuple[str, str, str], np.ndarray]:
    """(disease, age_group, region) -> float32 [size, size]: the share of the group's faces whose
    region covers each pixel (unweighted), resampled like `load_region_masks`."""
    with np.load(path) as data:
        return {
            tuple(name.split("/")[1:]): resample_to_frame(data[name], size, zoom)
            for name in data.files
            if name.startswith("region/")
        }
