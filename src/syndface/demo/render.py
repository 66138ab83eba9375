"""Drawing one synthetic face: a subject's identity, aged and given its disease signs.

Faces are described in *face units*: origin at the centre of the head, x to the image right,
y down, head half-width 1. `Pen` maps face units through any 2x3 affine matrix, so the same
drawing code renders a posed photograph (face -> source pixels) and a region mask in the aligned
frame (face -> aligned pixels). Every shape is a polygon or a poly-line; antialiasing comes from
rendering at a multiple of the output size and downsampling.

Age drives proportions continuously (`growth`: 0 at birth, 1 from 18 years): infants have round
heads, large eyes set below the middle of the head, a small nose and a small mouth close to it;
adults have longer faces. `ageing` (0 before 35, 1 at 70) adds lines and greying hair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from syndface.align.geometry import FIVE_POINTS

SKIN_TONES = np.array(
    [(255, 226, 200), (240, 196, 150), (222, 170, 118), (196, 134, 88), (150, 96, 60), (100, 64, 44)], float
)
HAIR_COLOURS = np.array([(28, 22, 20), (62, 42, 30), (104, 72, 46), (196, 160, 100), (150, 72, 40)], float)
IRIS_COLOURS = np.array(
    [(92, 56, 32), (62, 38, 22), (124, 96, 52), (86, 118, 78), (84, 124, 168), (120, 132, 142)], float
)
HAIR_STYLES = ("short", "long", "cropped")
SCLERA = np.array((238, 234, 228), float)
DARK = np.array((40, 26, 24), float)
LIGHT = np.array((255, 246, 236), float)
ROSE = np.array((196, 96, 104), float)
LIP_RED = np.array((186, 52, 70), float)
GREY_HAIR = np.array((214, 212, 208), float)
STAR = np.array((236, 242, 250), float)
MAX_AMPLITUDE = 1.5


def mix(a, b, t: float) -> np.ndarray:
    """Linear colour blend: t=0 gives a, t=1 gives b."""
    t = min(1.0, max(0.0, float(t)))
    return (1.0 - t) * np.asarray(a, float) + t * np.asarray(b, float)


def lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def growth(years: float) -> float:
    return min(1.0, math.log1p(max(years, 0.0)) / math.log1p(18.0))


def ageing(years: float) -> float:
    return min(1.0, max(0.0, (years - 35.0) / 35.0))


@dataclass(frozen=True)
class Identity:
    """What stays the same across one subject's images. Jitters are multiplicative, around 1."""

    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    clothing: tuple[float, float, float]
    hair_style: str
    greying: float  # how far the hair greys by 70 years (0..1)
    head_length: float
    eye_spacing: float
    eye_size: float
    nose_length: float
    nose_width: float
    mouth_width: float
    lips: float
    brows: float
    jaw: float
    tone: float = 0.0  # where the skin lies on SKIN_TONES: 0 the lightest, 1 the darkest


def sample_identity(gen: np.random.Generator) -> Identity:
    t = gen.uniform(0, len(SKIN_TONES) - 1)
    i = min(int(t), len(SKIN_TONES) - 2)
    skin = mix(SKIN_TONES[i], SKIN_TONES[i + 1], t - i) * gen.uniform(0.96, 1.04, 3)
    # Darker skin goes with dark hair and eyes more often, as in most populations.
    dark = t / (len(SKIN_TONES) - 1)
    hair_p = np.array([0.3 + dark, 0.3, 0.25 - 0.2 * dark, 0.15 - 0.14 * dark, 0.06 - 0.05 * dark])
    iris_p = np.array([0.3 + dark, 0.2 + dark, 0.15, 0.12 - 0.1 * dark, 0.18 - 0.16 * dark, 0.08 - 0.07 * dark])

    def u(lo: float, hi: float) -> float:
        return float(gen.uniform(lo, hi))

    return Identity(
        skin=tuple(np.clip(skin, 0, 255)),
        hair=tuple(HAIR_COLOURS[gen.choice(len(HAIR_COLOURS), p=hair_p / hair_p.sum())] * u(0.85, 1.15)),
        iris=tuple(IRIS_COLOURS[gen.choice(len(IRIS_COLOURS), p=iris_p / iris_p.sum())]),
        clothing=tuple(gen.uniform(30, 230, 3)),
        hair_style=HAIR_STYLES[gen.choice(len(HAIR_STYLES))],
        greying=u(0.4, 1.0),
        head_length=u(0.95, 1.05),
        eye_spacing=u(0.95, 1.05),
        eye_size=u(0.92, 1.08),
        nose_length=u(0.9, 1.1),
        nose_width=u(0.85, 1.15),
        mouth_width=u(0.92, 1.08),
        lips=u(0.85, 1.15),
        brows=u(0.8, 1.2),
        jaw=u(0.8, 1.2),
        tone=float(dark),
    )


@dataclass(frozen=True)
class Face:
    """One image's face: geometry in face units, colours as RGB floats, signs as amplitudes
    (0 = absent, 1 = full strength at full penetrance)."""

    growth: float
    ageing: float
    head_half_height: float
    jaw_taper: float
    eye_y: float
    eye_dx: float  # half the distance between the eye centres
    eye_half_width: float
    eye_half_height: float
    iris_radius: float
    hood: float  # share of the eye opening the upper lid covers beyond normal
    fullness: float
    star: float
    brow_y: float
    brow_thickness: float
    brow_arch: float
    brow_strength: float
    root_half_width: float
    root_contrast: float
    nose_tip_y: float
    nose_half_width: float
    mouth_y: float
    mouth_half_width: float
    lip_upper: float
    lip_lower: float
    lip_redness: float
    smile: float
    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    clothing: tuple[float, float, float]
    hair_style: str
    hairline_y: float
    nose_bulb: float  # broad nasal tip and anteverted nares

    @property
    def mouth_lift(self) -> float:
        return 0.07 * self.smile

    @property
    def mouth_corner_y(self) -> float:
        return self.mouth_y + 0.015 * self.smile - self.mouth_lift


def make_face(identity: Identity, years: float, effects: dict[str, float], smile: bool) -> Face:
    """Age the identity to `years` and apply the sign amplitudes (`signals.amplitudes`)."""
    g, o = growth(years), ageing(years)
    # Amplitudes above 1 (signal_strength > 1) exaggerate the signs, up to where the geometry holds.
    e = {k: min(MAX_AMPLITUDE, max(0.0, v)) for k, v in effects.items()}
    head_h = lerp(1.0, 1.36, g) * identity.head_length
    eye_y = head_h * lerp(0.28, 0.02, g)
    eye_hw = lerp(0.26, 0.19, g) * identity.eye_size
    nose_len = lerp(0.28, 0.56, g) * identity.nose_length
    mouth_hw = lerp(0.22, 0.29, g) * identity.mouth_width
    mouth_hw *= (1.0 + 0.6 * e["wide_mouth"]) * (1.0 - 0.4 * e["small_mouth"])
    lips = lerp(0.05, 0.055, g) * identity.lips * (1.0 - 0.3 * o)
    lips *= (1.0 + 1.3 * e["wide_mouth"] + 0.9 * e["full_lips"]) * (1.0 - 0.35 * e["small_mouth"])
    hood = min(1.0, e["hooding"])
    return Face(
        growth=g,
        ageing=o,
        head_half_height=head_h,
        jaw_taper=lerp(0.06, 0.3, g) * identity.jaw,
        eye_y=eye_y,
        eye_dx=lerp(0.43, 0.41, g) * identity.eye_spacing * (1.0 + 0.12 * e["wide_eyes"]),
        eye_half_width=eye_hw,
        eye_half_height=eye_hw * lerp(0.55, 0.4, g) * (1.0 - 0.4 * hood),
        iris_radius=eye_hw * lerp(0.56, 0.44, g),
        hood=hood,
        fullness=e["fullness"],
        star=min(1.0, e["star_iris"]),
        brow_y=eye_y - lerp(0.26, 0.24, g) - 0.04 * e["heavy_brows"],
        brow_thickness=lerp(0.035, 0.05, g) * identity.brows * (1.0 + 1.6 * e["heavy_brows"]),
        brow_arch=lerp(0.03, 0.05, g) * (1.0 + 1.5 * e["heavy_brows"]),
        brow_strength=min(1.0, lerp(0.35, 0.9, g) + e["heavy_brows"]),
        root_half_width=lerp(0.06, 0.075, g) * (1.0 + 1.3 * e["nasal_root"]),
        root_contrast=e["nasal_root"],
        nose_tip_y=eye_y + nose_len,
        nose_half_width=lerp(0.13, 0.16, g) * identity.nose_width,
        mouth_y=eye_y + nose_len + lerp(0.18, 0.27, g),
        mouth_half_width=mouth_hw,
        lip_upper=lips,
        lip_lower=lips * 1.25,
        lip_redness=min(1.0, 0.8 * e["wide_mouth"] + 0.6 * e["full_lips"]),
        smile=1.0 if smile else 0.0,
        skin=identity.skin,
        hair=tuple(mix(mix(identity.hair, identity.skin, 0.45 * (1 - g)), GREY_HAIR, o * identity.greying)),
        iris=identity.iris,
        clothing=identity.clothing,
        hair_style="short" if years < 2 else identity.hair_style,
        hairline_y=-head_h * lerp(0.72, 0.56, g) - (0.12 * o if identity.hair_style == "cropped" else 0.0),
        nose_bulb=e["broad_nasal_tip"],
    )


def landmarks(face: Face) -> dict[str, np.ndarray]:
    """The five alignment landmarks in face units (eye centres, nose tip, mouth corners)."""
    points = {
        "eye_left": (-face.eye_dx, face.eye_y),
        "eye_right": (face.eye_dx, face.eye_y),
        "nose": (0.0, face.nose_tip_y),
        "mouth_left": (-face.mouth_half_width, face.mouth_corner_y),
        "mouth_right": (face.mouth_half_width, face.mouth_corner_y),
    }
    return {name: np.array(points[name], float) for name in FIVE_POINTS}


class Pen:
    """Draws polygons and lines given in face units through a 2x3 affine `matrix` whose result is in
    continuous pixel coordinates (pixel i spans [i, i+1)). PIL floors vertex coordinates to pixel
    indices and fills both end pixels, so continuous coordinates go in unchanged: a shape then
    covers its own span, half a pixel wider on each side at most, centred on average."""

    def __init__(self, image: Image.Image, matrix: np.ndarray):
        self.draw = ImageDraw.Draw(image)
        self.matrix = np.asarray(matrix, float)
        self.scale = math.sqrt(abs(np.linalg.det(self.matrix[:, :2])))

    def _xy(self, points: np.ndarray) -> list[float]:
        p = np.asarray(points, float) @ self.matrix[:, :2].T + self.matrix[:, 2]
        return p.ravel().tolist()

    def polygon(self, points: np.ndarray, fill) -> None:
        self.draw.polygon(self._xy(points), fill=_fill(fill))

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill) -> None:
        self.polygon(ellipse_points(cx, cy, rx, ry), fill)

    def line(self, points: np.ndarray, fill, width: float) -> None:
        self.draw.line(self._xy(points), fill=_fill(fill), width=max(1, round(width * self.scale)), joint="curve")


def _fill(colour):
    if np.ndim(colour) == 0:
        return int(round(float(colour)))
    return tuple(int(round(c)) for c in np.clip(colour, 0, 255))


def ellipse_points(cx: float, cy: float, rx: float, ry: float, n: int = 40) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def head_outline(face: Face, n: int = 72) -> np.ndarray:
    """Rounder in infants, squarer and narrowing to the jaw in adults."""
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    e = lerp(1.0, 0.85, face.growth)
    x = np.sign(c) * np.abs(c) ** e
    y = np.sign(s) * np.abs(s) ** e * face.head_half_height
    x = x * (1.0 - face.jaw_taper * np.clip(s, 0, 1) ** 1.5)
    return np.stack([x, y], axis=1)


def eye_contours(face: Face, side: int, n: int = 17) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, upper and lower lid-margin y of one eye (side -1 = image left), corner to corner."""
    u = np.linspace(-1.0, 1.0, n)
    w = np.clip(1.0 - u**2, 0.0, 1.0)
    x = side * face.eye_dx + u * face.eye_half_width
    upper = face.eye_y - face.eye_half_height * w**0.7
    lower = face.eye_y + 0.8 * face.eye_half_height * w**0.85
    return x, upper, lower


def mouth_curves(face: Face, n: int = 25) -> dict[str, np.ndarray]:
    """x and the four lip edges (top of upper lip, its lower edge, top of lower lip, its bottom)."""
    u = np.linspace(-1.0, 1.0, n)
    profile = np.sqrt(np.clip(1.0 - u**2, 0.0, 1.0))
    centre = face.mouth_y + 0.015 * face.smile - face.mouth_lift * u**2
    gap = 0.07 * face.smile * profile**0.8
    cupid = 1.0 - 0.3 * np.exp(-((u / 0.18) ** 2))
    return {
        "x": u * face.mouth_half_width,
        "u": u,
        "upper_top": centre - gap / 2 - face.lip_upper * profile * cupid,
        "upper_bottom": centre - gap / 2,
        "lower_top": centre + gap / 2,
        "lower_bottom": centre + gap / 2 + face.lip_lower * profile,
    }


def _band(x: np.ndarray, y_edge: np.ndarray, y_other: np.ndarray) -> np.ndarray:
    """Polygon between two curves over the same x."""
    return np.concatenate([np.stack([x, y_edge], 1), np.stack([x, y_other], 1)[::-1]])


def _stroke(x, y) -> np.ndarray:
    return np.stack([np.asarray(x, float), np.asarray(y, float)], axis=1)


def draw_face(pen: Pen, face: Face) -> None:
    """Draw the whole head and shoulders, back to front."""
    skin, hair = np.array(face.skin), np.array(face.hair)
    h = face.head_half_height
    outline = head_outline(face)
    if face.hair_style == "long":
        top = outline[outline[:, 1] <= 0.0] * 1.1
        pen.polygon(np.concatenate([top, [[1.2, h * 0.95], [-1.2, h * 0.95]]]), hair * 0.92)
    pen.ellipse(0.0, h + 1.4, 1.9, 0.9, face.clothing)
    neck = lerp(0.3, 0.36, face.growth)
    pen.polygon(np.array([[-neck, h / 2], [neck, h / 2], [neck * 1.1, h + 0.75], [-neck * 1.1, h + 0.75]]), skin * 0.86)
    ear_y, ear_ry = (face.eye_y + face.nose_tip_y) / 2, (face.nose_tip_y - face.eye_y) / 2 + 0.07
    for side in (-1, 1):
        pen.ellipse(side * 0.97, ear_y, 0.13, ear_ry, skin * 0.93)
        pen.ellipse(side * 0.99, ear_y, 0.06, ear_ry * 0.6, skin * 0.8)
    pen.polygon(outline, skin)
    _draw_cheeks(pen, face)
    _draw_hair(pen, face, outline)
    _draw_forehead_lines(pen, face)
    for side in (-1, 1):
        _draw_brow(pen, face, side)
        _draw_eye(pen, face, side)
    _draw_nose(pen, face)
    _draw_mouth(pen, face)


def _draw_cheeks(pen: Pen, face: Face) -> None:
    blush = mix(face.skin, ROSE, 0.1 + 0.12 * (1 - face.growth) + 0.06 * face.smile)
    for side in (-1, 1):
        pen.ellipse(side * 0.55, face.mouth_y - 0.28 - 0.04 * face.smile, 0.2, 0.14, blush)


def _draw_hair(pen: Pen, face: Face, outline: np.ndarray) -> None:
    temple_y = face.eye_y - 0.3
    volume = lerp(1.02, 1.03 if face.hair_style == "cropped" else 1.07, face.growth)
    cap = outline[outline[:, 1] <= temple_y] * volume
    cap = cap[np.argsort(np.arctan2(cap[:, 1], cap[:, 0]))]  # left temple, over the top, to the right
    phi = np.linspace(0.0, math.pi, 15)
    hairline = _stroke(0.93 * np.cos(phi), temple_y + (face.hairline_y - temple_y) * np.sin(phi))
    pen.polygon(np.concatenate([cap, hairline]), face.hair)


def _draw_forehead_lines(pen: Pen, face: Face) -> None:
    if face.ageing < 0.05:
        return
    colour = mix(face.skin, DARK, 0.45 * face.ageing)
    x = np.linspace(-0.45, 0.45, 9)
    for k in range(3):
        y = face.eye_y - 0.42 - 0.1 * k + 0.05 * (x / 0.45) ** 2
        pen.line(_stroke(x, y), colour, 0.018)


def _draw_brow(pen: Pen, face: Face, side: int) -> None:
    cx, hw = side * (face.eye_dx + 0.03), face.eye_half_width * 1.2
    u = np.linspace(-1.0, 1.0, 13)
    x = cx + side * u * hw
    mid = face.brow_y - face.brow_arch * (1 - u**2) + 0.02 * u
    half = face.brow_thickness / 2 * (1.0 - 0.45 * np.clip(u, 0, 1))
    colour = mix(face.skin, np.array(face.hair) * 0.7, face.brow_strength)
    pen.polygon(_band(x, mid - half, mid + half), colour)


def _draw_eye(pen: Pen, face: Face, side: int) -> None:
    skin = np.array(face.skin)
    cx, cy = side * face.eye_dx, face.eye_y
    hw, hh, r = face.eye_half_width, face.eye_half_height, face.iris_radius
    f = face.fullness
    x, upper, lower = eye_contours(face, side)
    # Periorbital fullness: a puffed, lighter swelling around the eye bounded below by a shadow. It
    # stays lateral of the nasal root, where FFHQ alignment centres the crop (see signals).
    puff = mix(skin, LIGHT, 0.3 * f)
    lower_skin = mix(skin, skin * 0.8 + ROSE * 0.2, 0.6 * f)
    if f > 0.02:
        pen.ellipse(cx, cy + 0.2 * hh, hw * (1.0 + 0.25 * f), hh * (1.8 + 1.6 * f), puff)
        sag = cy + hh * (1.4 + 1.5 * f) * (1.0 - 0.35 * ((x - cx) / hw) ** 2)
        pen.line(_stroke(x, sag), mix(skin, DARK, 0.55 * f), 0.02 + 0.025 * f)
        pen.ellipse(cx, cy + hh * (0.9 + 0.7 * f), hw * 1.05, hh * (0.5 + 0.6 * f), lower_skin)
    upper_skin = puff
    pen.polygon(_band(x, upper, lower), SCLERA)
    iris = mix(face.iris, STAR, 0.3 * face.star)
    pen.ellipse(cx, cy, r, r, iris)
    if face.star > 0.02:
        spoke = mix(iris, STAR, 0.95 * face.star)
        for k in range(10):
            a = 2 * math.pi * k / 10
            d = np.array([math.cos(a), math.sin(a)])
            n = np.array([-d[1], d[0]]) * r * 0.14
            tri = np.array([[cx, cy] + d * r * 0.3 - n, [cx, cy] + d * r * 0.3 + n, [cx, cy] + d * r * 0.97])
            pen.polygon(tri, spoke)
    pen.ellipse(cx, cy, r * 0.4, r * 0.4, DARK * 0.5)
    pen.ellipse(cx + 0.3 * r, cy - 0.3 * r, r * 0.16, r * 0.16, LIGHT)
    # Lids cover whatever of the iris lies outside the opening; a hooded lid hangs lower.
    edge = upper + face.hood * 0.5 * (lower - upper)
    lid_top = np.minimum(upper, cy - r) - 0.04
    pen.polygon(_band(x, edge, lid_top), upper_skin * (1.0 - 0.1 * face.hood))
    pen.polygon(_band(x, lower, np.maximum(lower, cy + r) + 0.03), lower_skin)
    pen.line(_stroke(x, edge), DARK, 0.022 + 0.012 * face.hood)
    if face.hood > 0.05:
        pen.line(_stroke(x[2:-2], lid_top[2:-2] + 0.01), mix(skin, DARK, 0.5 * face.hood), 0.02)
    pen.line(_stroke(x[3:-3], lower[3:-3] + 0.008), mix(skin, DARK, 0.35), 0.012)
    if face.ageing > 0.05:
        corner = np.array([cx + side * hw * 1.05, cy])
        colour = mix(skin, DARK, 0.45 * face.ageing)
        for dy in (-0.05, 0.0, 0.05):
            pen.line(np.array([corner, corner + [side * 0.1, dy * 1.6]]), colour, 0.014)
        pen.line(_stroke(x[4:-4], lower[4:-4] + 0.07), colour, 0.014)


def _draw_nose(pen: Pen, face: Face) -> None:
    skin = np.array(face.skin)
    c, rw = face.root_contrast, face.root_half_width
    top, bottom = face.eye_y - 0.19, face.eye_y + 0.18
    bridge = np.array([[-rw, top], [rw, top], [rw * 0.9, bottom], [-rw * 0.9, bottom]])
    pen.polygon(bridge, mix(skin, LIGHT, 0.06 + 0.22 * c))
    shade = mix(skin, DARK, 0.12 + 0.3 * c)
    tip, nw = face.nose_tip_y, face.nose_half_width
    for side in (-1, 1):
        flank = _stroke([side * (rw + 0.02), side * (rw + 0.01), side * nw * 0.75], [top + 0.02, bottom, tip - 0.08])
        pen.line(flank, shade, 0.025 + 0.025 * c)
    b = face.nose_bulb
    for side in (-1, 1):
        pen.ellipse(side * nw * 0.72, tip - 0.01, nw * 0.42 * (1 + 0.6 * b), 0.065 * (1 + 0.3 * b), skin * 0.9)
    pen.ellipse(0.0, tip - 0.03, nw * 0.55 * (1 + 0.6 * b), 0.075 * (1 + 0.4 * b), mix(skin, LIGHT, 0.14 + 0.1 * b))
    for side in (-1, 1):
        nostril = mix(skin, DARK, 0.65 + 0.25 * b)
        pen.ellipse(side * nw * 0.42 * (1 + 0.3 * b), tip + 0.04, nw * 0.3 * (1 + 0.5 * b), 0.024 * (1 + b), nostril)


def _draw_mouth(pen: Pen, face: Face) -> None:
    skin = np.array(face.skin)
    m = mouth_curves(face)
    x, tip, nw = m["x"], face.nose_tip_y, face.nose_half_width
    fold = mix(skin, DARK, 0.3 * face.ageing + 0.18 * face.smile)
    if face.ageing > 0.05 or face.smile:
        for side in (-1, 1):
            x_fold = [side * (nw + 0.07), side * (nw + 0.12), side * (face.mouth_half_width + 0.06)]
            y_fold = [tip - 0.04, (tip + face.mouth_y) / 2, face.mouth_y + 0.06]
            pen.line(_stroke(x_fold, y_fold), fold, 0.022)
    lip = mix(skin, LIP_RED, 0.38 + 0.45 * face.lip_redness)
    if face.smile:
        pen.polygon(_band(x, m["upper_bottom"], m["lower_top"]), (70, 22, 28))
        inner = np.abs(m["u"]) < 0.8
        teeth = m["upper_bottom"] + 0.55 * (m["lower_top"] - m["upper_bottom"])
        pen.polygon(_band(x[inner], m["upper_bottom"][inner], teeth[inner]), (240, 236, 226))
    pen.polygon(_band(x, m["upper_top"], m["upper_bottom"]), lip * 0.92)
    pen.polygon(_band(x, m["lower_top"], m["lower_bottom"]), lip)
    if not face.smile:
        pen.line(_stroke(x, m["upper_bottom"]), mix(lip, DARK, 0.6), 0.016)
