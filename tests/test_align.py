"""Face alignment: image decoding, the dlib and manual paths, backgrounds, shards and merging."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import options
from PIL import Image
from scipy.ndimage import binary_dilation
from skimage import data

from syndface.align import merge, shard
from syndface.align.geometry import FIVE_POINTS, LANDMARK_COLUMNS, quad_to_affine, source_to_output
from syndface.align.landmarks import dlib_shape, find_face, points_to_columns, read_manual_landmarks
from syndface.align.load import ImageLoadError, load_rgb
from syndface.align.models import face_detector
from syndface.align.options import AlignOptions
from syndface.align.render import face_ellipse_mask, face_quad, render_aligned
from syndface.align.shard import align_image, image_file_name, shard_rows
from syndface.io import read_tsv, write_tsv

# A tilted face of five Gaussian blobs (source pixels); no person, so dlib finds no face.
BLOB_POINTS = {
    "eye_left": np.array([100.0, 110.0]),
    "eye_right": np.array([170.0, 96.0]),
    "nose": np.array([138.0, 140.0]),
    "mouth_left": np.array([116.0, 181.0]),
    "mouth_right": np.array([176.0, 168.0]),
}


def blob_image(points=BLOB_POINTS, shape=(240, 300), sigma=3.0) -> np.ndarray:
    """Black image, one white Gaussian blob centred on each landmark (continuous coordinates)."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]] + 0.5
    value = sum(np.exp(-((xs - p[0]) ** 2 + (ys - p[1]) ** 2) / (2 * sigma**2)) for p in points.values())
    grey = np.clip(np.rint(255 * value), 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def centroid(image: np.ndarray, around: np.ndarray, radius: int = 4) -> np.ndarray:
    """Intensity centroid (continuous coordinates) of the blob near `around` in a uint8 image."""
    grey = image[:, :, 0].astype(float)
    x0, y0 = np.rint(around).astype(int)
    window = grey[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1]
    ys, xs = np.mgrid[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1] + 0.5
    return np.array([(window * xs).sum(), (window * ys).sum()]) / window.sum()


def save(array: np.ndarray, path, **kwargs) -> str:
    Image.fromarray(array).save(path, **kwargs)
    return str(path)


# --- decoding -------------------------------------------------------------------------------


@pytest.fixture
def reference() -> np.ndarray:
    """An asymmetric RGB picture: orientation or channel mistakes change it."""
    rgb = np.zeros((20, 30, 3), dtype=np.uint8)
    rgb[:5, :10] = (255, 0, 0)
    rgb[15:, 20:] = (0, 0, 255)
    rgb[8:12, :] = (10, 200, 30)
    return rgb


def test_exif_rotated_image_is_loaded_upright(tmp_path, reference):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored = np.ascontiguousarray(np.rot90(reference, 1))  # what such a camera writes
    path = save(stored, tmp_path / "rotated.png", exif=exif)
    assert np.array_equal(load_rgb(path), reference)


def test_grey_palette_rgba_and_16bit_inputs_become_rgb(tmp_path, reference):
    grey = reference[:, :, 1]
    assert np.array_equal(load_rgb(save(grey, tmp_path / "grey.png")), np.repeat(grey[:, :, None], 3, axis=2))

    palette = Image.fromarray(reference).quantize(colors=8)
    palette.save(tmp_path / "palette.png")
    assert np.array_equal(load_rgb(tmp_path / "palette.png"), reference)

    alpha = np.tile(np.linspace(0, 255, 30).astype(np.uint8), (20, 1))
    rgba = np.dstack([reference, alpha])
    expected = np.rint(reference * (alpha[:, :, None] / 255.0)).astype(np.uint8)  # composited on black
    assert np.abs(load_rgb(save(rgba, tmp_path / "rgba.png")).astype(int) - expected).max() <= 1

    transparent = Image.fromarray(reference).quantize(colors=8)
    transparent.info["transparency"] = transparent.getpixel((0, 0))  # the red corner becomes see-through
    transparent.save(tmp_path / "palette_transparent.png", transparency=transparent.info["transparency"])
    loaded = load_rgb(tmp_path / "palette_transparent.png")
    assert (loaded[:5, :10] == 0).all() and np.array_equal(loaded[15:, 20:], reference[15:, 20:])

    sixteen = grey.astype(np.uint16) * 257 + 100  # full 16-bit range, not 0..255
    Image.fromarray(sixteen).save(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")
    assert np.array_equal(load_rgb(tmp_path / "grey16.png")[:, :, 2], grey)


def test_unreadable_files_fail_with_the_decoders_reason(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not an image at all")
    with pytest.raises(ImageLoadError, match="cannot identify image file"):
        load_rgb(tmp_path / "broken.png")
    fields, aligned = align_image(str(tmp_path / "missing.jpg"), BLOB_POINTS, AlignOptions(size=32, prefer="manual"))
    assert aligned is None and fields["status"] == "failed" and "No such file" in fields["reason"]


# --- geometry of the two paths --------------------------------------------------------------


def test_manual_path_puts_each_landmark_where_the_transform_maps_it(tmp_path):
    path = save(blob_image(), tmp_path / "blobs.png")
    size, zoom = 96, 1.2
    fields, aligned = align_image(
        path, BLOB_POINTS, AlignOptions(size=size, zoom=zoom, background="pad", prefer="manual")
    )
    assert (fields["status"], fields["method"], fields["n_faces"]) == ("ok", "manual", None)  # dlib never ran
    quad = face_quad(BLOB_POINTS, zoom)
    for name, point in BLOB_POINTS.items():
        expected = source_to_output(point, quad, size)[0]
        assert np.abs(centroid(aligned, expected) - expected).max() < 0.15, name
    # The report gives them as files do, pixel centres at integers.
    assert [fields[c] for c in LANDMARK_COLUMNS] == pytest.approx(
        np.concatenate([BLOB_POINTS[p] - 0.5 for p in FIVE_POINTS])
    )


def test_dlib_first_falls_back_to_manual_landmarks_and_says_so(tmp_path):
    path = save(blob_image(), tmp_path / "blobs.png")
    options = AlignOptions(size=64, prefer="dlib")
    fields, aligned = align_image(path, BLOB_POINTS, options)
    assert (fields["status"], fields["method"], fields["n_faces"]) == ("ok", "manual", 0)
    fields, aligned = align_image(path, None, options)
    assert aligned is None and fields["status"] == "failed"
    assert fields["reason"] == "dlib found no face (upsample 1: none; upsample 2: none); no manual landmarks"
    fields, _ = align_image(path, None, AlignOptions(size=64, prefer="dlib", max_upsample=1))
    assert fields["reason"] == "dlib found no face (upsample 1: none); no manual landmarks"


def test_astronaut_through_dlib_lands_eyes_on_their_canonical_positions():
    """The acceptance test: re-detected eyes sit where the FFHQ frame puts them, level and centred."""
    size = 256
    image = data.astronaut()
    search = find_face(image)
    points = search.points
    assert search.n_faces >= 1 and search.upsample == 1
    aligned = render_aligned(image, points, size, zoom=1.0, background="pad")
    quad = face_quad(points, 1.0)
    expected = source_to_output(np.stack([points["eye_left"], points["eye_right"]]), quad, size)
    # Canonical frame: the eyes are level and symmetric about the vertical centre line.
    assert abs(expected[0, 1] - expected[1, 1]) < 2 and abs(expected[:, 0].mean() - size / 2) < 2

    faces = face_detector()(aligned, 1)
    assert len(faces) == 1
    redetected = dlib_shape(aligned, faces[0])
    eyes = np.stack([redetected[36:42].mean(axis=0), redetected[42:48].mean(axis=0)])
    assert np.abs(eyes - expected).max() < 3.0, (eyes, expected)
    assert abs(eyes[0, 1] - eyes[1, 1]) < 3 and abs(eyes[:, 0].mean() - size / 2) < 3


def test_a_larger_photo_of_the_same_face_gives_the_same_crop():
    """The shrink-first path (crop square 15x the output) agrees with direct supersampling."""
    photo = data.astronaut()
    points = find_face(photo).points
    larger = np.asarray(Image.fromarray(photo).resize((2048, 2048), Image.BICUBIC))
    small = render_aligned(photo, points, 64, zoom=1.108, background="pad")
    large = render_aligned(larger, {k: 4 * v for k, v in points.items()}, 64, zoom=1.108, background="pad")
    assert np.abs(small.astype(int) - large).mean() < 1.0


def test_of_several_faces_the_largest_is_aligned_and_the_count_reported(tmp_path):
    photo = data.astronaut()
    canvas = np.zeros((512, 760, 3), dtype=np.uint8)
    canvas[:, :512] = photo
    canvas[300:410, 600:720] = np.asarray(Image.fromarray(photo[40:240, 110:330]).resize((120, 110), Image.LANCZOS))
    fields, aligned = align_image(save(canvas, tmp_path / "two.png"), None, AlignOptions(size=64, prefer="dlib"))
    # dlib also sees a face-sized patch on the spacesuit: three detections, the real face wins.
    assert (fields["method"], fields["n_faces"]) == ("dlib", 3)
    assert 180 < fields["eye_left_x"] < 260 and 80 < fields["eye_left_y"] < 130


def test_backgrounds_black_out_outside_the_photo_and_outside_the_face_ellipse():
    white = np.full((200, 200, 3), 255, dtype=np.uint8)
    # A face in the top-left corner: part of its crop square lies outside the photograph.
    points = {k: v - 60 for k, v in BLOB_POINTS.items()}
    size = 64
    pad = render_aligned(white, points, size, zoom=1.0, background="pad")
    quad = face_quad(points, 1.0)
    centres = np.stack(np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5), axis=-1).reshape(-1, 2)
    affine = quad_to_affine(quad, size)
    src = centres @ affine[:, :2].T + affine[:, 2]
    # The photo's edge is blurred over the Lanczos kernel's reach: 3 output pixels either side.
    margin = 3 * np.hypot(*affine[:, 0])
    inside = ((src > margin) & (src < 200 - margin)).all(axis=1).reshape(size, size)
    outside = ((src < -margin) | (src > 200 + margin)).any(axis=1).reshape(size, size)
    assert outside.sum() > 100 and inside.sum() > 100
    assert (pad[outside] == 0).all() and (pad[inside] == 255).all()

    ellipse = render_aligned(white, points, size, zoom=1.0, background="ellipse")
    landmarks = {k: source_to_output(v, quad, size)[0] for k, v in points.items()}
    mask = face_ellipse_mask(landmarks, size) & inside
    shown = ellipse[:, :, 0] > 127
    away_from_photo_edge = inside | outside
    assert (shown == mask)[away_from_photo_edge].mean() > 0.98
    beyond_edge_blur = ~binary_dilation(face_ellipse_mask(landmarks, size), iterations=2)
    assert (ellipse[beyond_edge_blur] == 0).all()


# --- shards, report, merge -------------------------------------------------------------------


def test_shards_cover_every_manifest_row_exactly_once():
    manifest = pd.DataFrame({"image_id": [f"im{i:02d}" for i in range(23)]})
    parts = [shard_rows(manifest, k, 5) for k in range(6)]
    assert [len(p) for p in parts] == [5, 5, 5, 5, 3, 0]
    assert pd.concat(parts)["image_id"].tolist() == manifest["image_id"].tolist()


def test_image_file_names_are_safe_and_distinct():
    assert image_file_name("22q11DS_late188_22q11DS2y") == "22q11DS_late188_22q11DS2y.png"
    odd = [image_file_name(i) for i in ("a/b", "a_b", "../a b", ".hidden")]
    assert len(set(odd)) == 4 and all("/" not in n and not n.startswith(".") for n in odd)


def test_manual_landmark_file_puts_pixel_centres_at_integers(tmp_path):
    """A landmark at file position (i, j) is the centre of pixel (i, j): continuous (i + .5, j + .5)."""
    write_tsv(pd.DataFrame([{"image_id": "a", **dict(zip(LANDMARK_COLUMNS, range(10)))}]), tmp_path / "lm.tsv")
    points = read_manual_landmarks(tmp_path / "lm.tsv")["a"]
    assert np.allclose(points["eye_left"], [0.5, 1.5]) and np.allclose(points["mouth_right"], [8.5, 9.5])
    assert list(points_to_columns(points).values()) == list(range(10))


def test_manual_landmark_file_rejects_incomplete_rows(tmp_path):
    row = {"image_id": "a", **points_to_columns(BLOB_POINTS)}
    write_tsv(pd.DataFrame([row, {**row, "image_id": "b", "nose_x": "?"}]), tmp_path / "lm.tsv")
    with pytest.raises(ValueError, match="non-numeric landmarks for image.*b"):
        read_manual_landmarks(tmp_path / "lm.tsv")


@pytest.fixture
def small_cohort(tmp_path):
    """A manifest of five images (blob faces, one grey-scale, one corrupt) and their landmarks."""
    images = tmp_path / "raw"
    images.mkdir()
    blobs = blob_image()
    paths = {
        "face_a": save(blobs, images / "a.png"),
        "face_b": save(np.roll(blobs, 7, axis=1), images / "b.jpg", quality=95),
        "face_grey": save(blobs[:, :, 0], images / "grey.png"),
        "face_c": save(blobs[::-1].copy(), images / "c.png"),
    }
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    paths["broken"] = str(images / "broken.png")
    manifest = pd.DataFrame(
        {
            "image_id": list(paths),
            "path": list(paths.values()),
            "disease": ["WS", "22q", "control", "unaffected", "WS"],
            "age_group": ["infant", "child", "adolescent", "young_adult", "older_adult"],
            "source": ["cohort"] * 4 + ["auxiliary"],
            "subject_id": ["s1", "s2", "s3", "s4", "s5"],
            "split": ["train", "train", "test", "train", "train"],
        }
    )
    write_tsv(manifest, tmp_path / "manifest.tsv")
    shifted = {k: v + [7, 0] for k, v in BLOB_POINTS.items()}
    flipped = {k: np.array([v[0], 240 - v[1]]) for k, v in BLOB_POINTS.items()}
    rows = [
        {"image_id": "face_a", **points_to_columns(BLOB_POINTS)},
        {"image_id": "face_b", **points_to_columns(shifted)},
        {"image_id": "face_grey", **points_to_columns(BLOB_POINTS)},
        {"image_id": "face_c", **points_to_columns(flipped)},
        {"image_id": "broken", **points_to_columns(BLOB_POINTS)},
    ]
    write_tsv(pd.DataFrame(rows), tmp_path / "landmarks.tsv")
    return tmp_path


def run_shards(root, shard_size=2, size=48):
    dirs = []
    for k in range(3):
        out = root / "aligned" / "shards" / f"shard{k:03d}"
        settings = {
            "align.shard_size": shard_size,
            "align.size": size,
            "align.zoom": 1.108,
            "align.background": "ellipse",
            "align.prefer": "manual",
        }
        argv = ["--manifest", str(root / "manifest.tsv"), "--shard", str(k), *options(settings),
                "--manual-landmarks", str(root / "landmarks.tsv"), "--out-dir", str(out)]  # fmt: skip
        assert shard.main(argv) == 0
        dirs.append(str(out))
    return dirs


def test_align_shards_and_merge_report_every_image_once(small_cohort):
    root = small_cohort
    dirs = run_shards(root)
    argv = ["--shard-dirs", *dirs, "--report", str(root / "aligned/report.tsv"), "--failed", str(root / "aligned/failed.tsv"),
            "--manifest", str(root / "manifest.tsv")]  # fmt: skip
    assert merge.main(argv) == 0
    report = read_tsv(root / "aligned/report.tsv")
    assert report["image_id"].tolist() == ["face_a", "face_b", "face_grey", "face_c", "broken"]
    ok = report[report["status"] == "ok"]
    assert len(ok) == 4 and set(ok["method"]) == {"manual"}
    failed = read_tsv(root / "aligned/failed.tsv")
    assert failed["image_id"].tolist() == ["broken"] and "unreadable" in failed["reason"].iloc[0]
    aligned = {i: np.asarray(Image.open(p)) for i, p in zip(ok["image_id"], ok["aligned_path"])}
    assert all(a.shape == (48, 48, 3) for a in aligned.values())
    # The same face, shifted in its photo with its landmarks, aligns to the same crop (JPEG aside);
    # the grey copy gives three equal channels equal to the colour one's.
    assert np.abs(aligned["face_b"].astype(int) - aligned["face_a"]).max() <= 12
    assert np.array_equal(aligned["face_grey"], aligned["face_a"])
    assert np.abs(aligned["face_c"].astype(int) - aligned["face_a"]).mean() < 3  # flipped photo, flipped landmarks

    assert merge.main([*argv, *options({"align.fail_on_error": True})]) == 1
    with pytest.raises(SystemExit, match="in no shard"):
        merge.main(
            [
                "--shard-dirs",
                *dirs[:2],
                "--report",
                str(root / "r.tsv"),
                "--failed",
                str(root / "f.tsv"),
                "--manifest",
                str(root / "manifest.tsv"),
            ]
        )


def test_merge_refuses_shards_aligned_with_different_settings(small_cohort):
    root = small_cohort
    dirs = run_shards(root)
    other = root / "aligned" / "shards" / "other"
    settings = options({"align.shard_size": 2, "align.size": 32, "align.prefer": "manual"})
    assert shard.main(["--manifest", str(root / "manifest.tsv"), "--shard", "0", *settings,
                       "--manual-landmarks", str(root / "landmarks.tsv"), "--out-dir", str(other)]) == 0  # fmt: skip
    with pytest.raises(ValueError, match="different settings"):
        merge.merge_reports([dirs[1], str(other)])
