"""Read any photograph the cohort may hold as upright 8-bit RGB.

Clinical slides and web collections arrive as JPEG with EXIF orientation, grey-scale scans,
palette GIF/PNG, RGBA PNG with transparent surroundings, and 16-bit TIFF/PNG. Each is turned
into an H x W x 3 uint8 array as a viewer would show it:
- EXIF orientation is applied (a phone portrait stored sideways comes out upright);
- grey-scale is replicated into three equal channels;
- transparency is composited on black, the colour the aligner gives everything outside the
  photograph, so a cut-out face and a padded face look alike;
- 16-bit values are scaled to 8 bits (x / 257, rounded), not clipped.
A file the decoder cannot read raises ImageLoadError carrying the decoder's own message. So does
an image of more than `max_pixels` pixels (Pillow's decompression-bomb limit by default, about
89 megapixels): its size is read from the header and it is refused before any pixel is decoded,
so a small file that claims to be a huge image costs no memory.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, ImageOps

# Modes whose samples use the full 16-bit range; 32-bit "I" is what some decoders return for
# 16-bit grey-scale PNG/TIFF.
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


class ImageLoadError(Exception):
    """The file could not be decoded; the message is the decoder's reason."""


MAX_PIXELS = Image.MAX_IMAGE_PIXELS


def too_large(width: int, height: int, max_pixels: int) -> ImageLoadError:
    return ImageLoadError(
        f"image of {width} x {height} = {width * height} pixels exceeds the limit of {max_pixels} "
        "(a decompression bomb, or a scan far larger than a face needs: downscale it)"
    )


def load_rgb(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The image at `path` as an upright H x W x 3 uint8 RGB array (see the module notes)."""
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it, then decodes anyway.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > max_pixels:
                    raise too_large(img.width, img.height, max_pixels)
                img.load()
                img = ImageOps.exif_transpose(img)
                return to_rgb(img)
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(f"{type(exc).__name__}: {exc} Downscale the image.") from exc
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
