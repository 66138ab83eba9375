"""Image I/O shared by the stages: PNG round trips, atomic writes, resizing, generator output to pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from syndface.images import read_resized, save_png, to_uint8


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, (12, 12, 3), dtype=np.uint8)


def test_save_png_round_trips_arrays_and_pil_images_and_leaves_no_temporary_file(tmp_path, rgb):
    save_png(rgb, tmp_path / "a" / "array.png")
    save_png(Image.fromarray(rgb), tmp_path / "a" / "pil.png")
    for name in ("array.png", "pil.png"):
        with Image.open(tmp_path / "a" / name) as img:
            assert img.format == "PNG" and np.array_equal(np.asarray(img), rgb)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["array.png", "pil.png"]


def test_a_failed_save_leaves_no_file(tmp_path):
    with pytest.raises(TypeError):
        save_png(np.zeros((4, 4, 3), np.float64), tmp_path / "bad.png")  # PIL has no float RGB mode
    assert list(tmp_path.iterdir()) == []


def test_read_resized_gives_rgb_uint8_and_resizes_with_lanczos_only_when_needed(tmp_path, rgb):
    save_png(rgb, tmp_path / "x.png")
    assert np.array_equal(read_resized(tmp_path / "x.png", 12), rgb)
    expected = np.asarray(Image.fromarray(rgb).resize((5, 5), Image.LANCZOS))
    assert np.array_equal(read_resized(tmp_path / "x.png", 5), expected)
    save_png(rgb[:, :, 0], tmp_path / "grey.png")
    grey = read_resized(tmp_path / "grey.png", 12)
    assert grey.shape == (12, 12, 3) and grey.dtype == np.uint8 and np.array_equal(grey[:, :, 2], rgb[:, :, 0])


def test_to_uint8_maps_the_generators_range_to_pixels_rounded_and_clipped():
    images = torch.tensor([-1.5, -1.0, 0.0, 1.0 / 255, 1.0, 2.0]).view(1, 1, 1, 6).expand(2, 3, 1, 6)
    out = to_uint8(images)
    assert out.shape == (2, 1, 6, 3) and out.dtype == np.uint8  # N x H x W x C
    # x -> (x + 1) * 127.5, rounded half up: -1 -> 0, 0 -> 127.5 -> 128, 1/255 -> 128, 1 -> 255.
    assert out[0, 0, :, 0].tolist() == [0, 0, 128, 128, 255, 255]
