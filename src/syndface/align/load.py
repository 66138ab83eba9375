"""Read any photograph the cohort may hold as upright 8-bit RGB.

Clinical slides and web collections arrive as JPEG with EXIF orientation, grey-scale scans,
palette GIF/PNG, RGBA PNG with transparent surroundings, and 16-bit TIFF/PNG. Each is turned
into an H x W x 3 uint8 array as a viewer would show it:
- EXIF orientation is applied (a phone portrait stored sideways comes out upright);
- grey-scale is replicated into three equal channels;
- transparency is composited on black, the colour the aligner gives everything outside the
  photograph, so a cut-out face and a padded face look alike;
- 16-bit values are scaled to 8 bits (x / 257, rounded), not clipped.
A file the decoder cannot read raises ImageLoadError carrying the decoder's own message.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageOps

# Modes whose samples use the full 16-bit range; 32-bit "I" is what some decoders return for
# 16-bit grey-scale PNG/TIFF.
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


class ImageLoadError(Exception):
    """The file could not be decoded; the message is the decoder's reason."""


def load_rgb(path: str | os.PathLike) -> np.ndarray:
    """The image at `path` as an upright H x W x 3 uint8 RGB array (see the module notes)."""
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            return to_rgb(img)
    except ImageLoadError:
        raise
    except Exception as exc:  # PIL signals bad files with many types (OSError, SyntaxError, ...)
        raise ImageLoadError(f"{type(exc).__name__}: {exc}") from exc


def to_rgb(img: Image.Image) -> np.ndarray:
    """Convert a decoded PIL image of any mode to H x W x 3 uint8 RGB."""
    if img.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(img, dtype=np.float64)
        grey = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode == "F":
        raise ImageLoadError("floating-point image (mode F): convert it to 8- or 16-bit integers first")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ALPHA_MODES:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.uint16)
        # Composite on black: colour x alpha, rounded.
        return ((rgba[:, :, :3] * rgba[:, :, 3:] + 127) // 255).astype(np.uint8)
    return np.array(img.convert("RGB"), dtype=np.uint8)
