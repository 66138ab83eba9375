"""The camera: pose, background, lighting, grey scale, blur and JPEG artefacts of one image.

A face is drawn at `render_scale` times the output size in its pose (roll, scale, shift), box-
downsampled to the output size, lit by a linear gradient, optionally turned grey, blurred and
passed through an in-memory JPEG round trip. Its landmarks go through the same pose and are
returned in output pixels with pixel centres at integer coordinates (dlib's convention, which the
FFHQ recipe assumes when it adds 0.5 before resampling).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from syndface.align.geometry import ffhq_quad
from syndface.demo.render import Face, Pen, draw_face, landmarks

MAX_ROLL_DEG = 15.0


@dataclass(frozen=True)
class Shot:
    """The nuisance of one image."""

    roll_deg: float  # positive turns the face clockwise on screen
    crop_share: float  # side of the FFHQ crop square as a share of the image side
    shift: tuple[float, float]  # crop-square centre offset from the image centre, share of the side
    background: tuple[float, float, float]
    backdrop: tuple[float, float, float]  # a second tone behind part of the background
    backdrop_split: float  # where the second tone starts (share of the side), from the left or top
    backdrop_vertical: bool
    light_angle: float  # direction the light comes from (radians)
    light_strength: float  # relative brightness difference across the image
    brightness: float
    colour_cast: tuple[float, float, float]
    grey: bool
    blur_radius: float  # Gaussian sigma in output pixels (0 = sharp)
    jpeg_quality: int  # 0 = no JPEG round trip


def sample_shot(gen: np.random.Generator, grey: bool) -> Shot:
    base = gen.uniform(40, 225, 3)
    return Shot(
        roll_deg=float(gen.uniform(-MAX_ROLL_DEG, MAX_ROLL_DEG)),
        crop_share=float(gen.uniform(0.6, 0.78)),
        shift=(float(gen.uniform(-0.07, 0.07)), float(gen.uniform(-0.07, 0.07))),
        background=tuple(base),
        backdrop=tuple(np.clip(base * gen.uniform(0.7, 1.3, 3), 0, 255)),
        backdrop_split=float(gen.uniform(0.2, 0.8)),
        backdrop_vertical=bool(gen.random() < 0.5),
        light_angle=float(gen.uniform(0, 2 * math.pi)),
        light_strength=float(gen.uniform(0.0, 0.35)),
        brightness=float(gen.uniform(0.85, 1.1)),
        colour_cast=tuple(gen.uniform(0.93, 1.07, 3)),
        grey=grey,
        blur_radius=float(gen.uniform(0.3, 0.9)) if gen.random() < 0.4 else 0.0,
        jpeg_quality=int(gen.integers(40, 96)) if gen.random() < 0.6 else 0,
    )


def pose_matrix(face: Face, shot: Shot, canvas: int) -> np.ndarray:
    """2x3 matrix from face units to continuous canvas pixels: the FFHQ crop square of the face
    gets side `crop_share * canvas`, turned by the roll, centred at the shifted image centre."""
    pts = landmarks(face)
    quad = ffhq_quad(pts["eye_left"], pts["eye_right"], pts["mouth_left"], pts["mouth_right"])
    centre = quad.mean(axis=0)
    side = np.hypot(*(quad[3] - quad[0]))
    scale = shot.crop_share * canvas / side
    a = math.radians(shot.roll_deg)
    rot = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    target = canvas * (0.5 + np.asarray(shot.shift))
    return np.hstack([rot, (target - rot @ centre)[:, None]])


def photograph(face: Face, shot: Shot, size: int, render_scale: int) -> tuple[Image.Image, dict[str, np.ndarray]]:
    """The RGB image (size x size) and its five landmarks in output pixels."""
    canvas = size * render_scale
    image = Image.new("RGB", (canvas, canvas), tuple(int(c) for c in shot.background))
    split = int(shot.backdrop_split * canvas)
    box = (split, 0, canvas, canvas) if shot.backdrop_vertical else (0, split, canvas, canvas)
    ImageDraw.Draw(image).rectangle(box, fill=tuple(int(c) for c in shot.backdrop))
    matrix = pose_matrix(face, shot, canvas)
    draw_face(Pen(image, matrix), face)
    image = image.reduce(render_scale)
    image = _light(image, shot)
    if shot.grey:
        image = image.convert("L").convert("RGB")
    if shot.blur_radius > 0:
        image = image.filter(ImageFilter.GaussianBlur(shot.blur_radius))
    if shot.jpeg_quality:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=shot.jpeg_quality)
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    points = {name: (matrix[:, :2] @ p + matrix[:, 2]) / render_scale - 0.5 for name, p in landmarks(face).items()}
    return image, points


def _light(image: Image.Image, shot: Shot) -> Image.Image:
    size = image.size[0]
    grid = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    along = math.cos(shot.light_angle) * grid[None, :] + math.sin(shot.light_angle) * grid[:, None]
    gain = shot.brightness * (1.0 + 0.5 * shot.light_strength * along)
    pixels = np.asarray(image, np.float32) * gain[..., None] * np.asarray(shot.colour_cast, np.float32)
    return Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8))
