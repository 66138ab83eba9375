"""Image files as every stage reads and writes them: PNGs in and out, generator output to pixels.

One home, so a stage never imports another stage's internals to read or write an image, and
every image is written the same way: atomically, so a killed job leaves no half-written PNG
that Snakemake would take for a finished one. (The packed training cache has its own public
reader, `syndface.align.cache.load_cache`.)
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from syndface.io import atomic_path


def read_resized(path: str | os.PathLike, size: int) -> np.ndarray:
    """An image file as size x size x 3 uint8 RGB (Lanczos when its side differs)."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        if img.size != (size, size):
            img = img.resize((size, size), Image.LANCZOS)
        return np.asarray(img, dtype=np.uint8)


def save_png(image: np.ndarray | Image.Image, path: str | os.PathLike) -> None:
    """Write an H x W x 3 (or H x W) uint8 array or a PIL image as a PNG, atomically."""
    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image))
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def to_uint8(images) -> np.ndarray:
    """Generator output (N x 3 x H x W float tensor in [-1, 1]) as N x H x W x 3 uint8, rounded and clipped."""
    import torch

    return (images.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
