"""The demo cohort: determinism, the sampling design, landmarks on the drawn features."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from syndface.align.geometry import LANDMARK_COLUMNS
from syndface.demo.cohort import (
    COHORT_AGE_SHARES,
    DISEASE_SHARES,
    SEXES,
    TONE_GROUPS,
    DemoOptions,
    apportion,
    main,
    make_demo_cohort,
    plan_subjects,
    tone_group,
)
from syndface.demo.photo import photograph, sample_shot
from syndface.demo.render import landmarks, make_face, mouth_curves, sample_identity
from syndface.demo.signals import EFFECTS, SIGNALS, amplitudes, signal_strength
from syndface.io import read_tsv
from syndface.taxonomy import AFFECTED, AGE_GROUPS, age_group_of

TINY = dict(n_subjects=45, n_auxiliary=20, test_per_group=1, image_size=64, render_scale=2, grey_share=0.3)


def _generate(cwd: Path, monkeypatch, **overrides) -> Path:
    """Generate into the relative dir `demo` under `cwd` (relative paths make manifests comparable)."""
    monkeypatch.chdir(cwd)
    make_demo_cohort(DemoOptions(**{**TINY, **overrides}), "demo")
    return cwd / "demo"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    try:
        yield _generate(tmp_path_factory.mktemp("a"), mp)
    finally:
        mp.undo()


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tiny, tmp_path, monkeypatch):
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    first = _files(tiny)
    again = _files(_generate(tmp_path / "b", monkeypatch))
    assert again.keys() == first.keys()
    assert [k for k in first if first[k] != again[k]] == []
    other = _files(_generate(tmp_path / "c", monkeypatch, seed=2))
    changed = [k for k in first if k.startswith("images/") and other.get(k) != first[k]]
    assert len(changed) > 0.9 * sum(k.startswith("images/") for k in first)


def test_outputs_and_manifest_columns(tiny):
    m = read_tsv(tiny / "cohort.tsv")
    assert list(m.columns[:7]) == ["image_id", "path", "disease", "age_group", "source", "subject_id", "split"]
    assert m["image_id"].is_unique
    assert (m["path"] == "demo/images/" + m["image_id"] + ".png").all()
    assert all((tiny.parent / p).is_file() for p in m["path"])
    assert sorted(p.name for p in (tiny / "images").iterdir()) == sorted(m["image_id"] + ".png")
    marks = read_tsv(tiny / "landmarks.tsv")
    assert list(marks.columns) == ["image_id", *LANDMARK_COLUMNS]
    assert marks["image_id"].tolist() == m["image_id"].tolist()
    assert (tiny / "regions.npz").is_file()


def test_test_split_is_balanced_like_the_survey_set_and_subjects_do_not_cross(tiny):
    m = read_tsv(tiny / "cohort.tsv")
    k = TINY["test_per_group"]
    test = m[m["split"] == "test"]
    cells = test[test["source"] == "cohort"].groupby(["disease", "age_group"]).size()
    assert set(cells.index) == {(d, a) for d in AFFECTED for a in AGE_GROUPS}
    assert (cells == k).all()
    aux_test = test[test["source"] == "auxiliary"].groupby("age_group").size()
    assert set(aux_test.index) == set(AGE_GROUPS) and (aux_test == k).all()
    assert (test["grey"] == 0).all()  # the survey images were colour photographs
    assert (m.groupby("subject_id")["split"].nunique() == 1).all()
    assert set(m["disease"][m["source"] == "auxiliary"]) == {"unaffected"}
    assert set(m["disease"][m["source"] == "cohort"]) == set(AFFECTED)
    per_subject = m.groupby("subject_id").size()
    aux_subjects = m["subject_id"][m["source"] == "auxiliary"].unique()
    assert (per_subject[aux_subjects] == 1).all()
    assert per_subject.between(1, 3).all() and per_subject.max() > 1
    train = m[m["split"] == "train"]
    assert train["grey"].sum() > 0 and (m["penetrance"][m["disease"] == "unaffected"] == 0).all()
    assert (m["penetrance"][m["source"] == "cohort"] > 0).all()
    assert [age_group_of(y) for y in m["age_years"]] == m["age_group"].tolist()


def test_subjects_carry_sex_and_a_skin_tone_group_and_repeat_photos_leave_the_others_unchanged(
    tiny, tmp_path, monkeypatch
):
    m = read_tsv(tiny / "cohort.tsv")
    assert set(m["sex"]) == set(SEXES) and set(m["ancestry"]) <= set(TONE_GROUPS) and m["ancestry"].nunique() > 1
    assert (m.groupby("subject_id")[["sex", "ancestry"]].nunique() == 1).all().all()
    assert tone_group(0.0) == "light" and tone_group(0.5) == "medium" and tone_group(1.0) == "dark"

    (tmp_path / "r").mkdir()
    repeated = _generate(tmp_path / "r", monkeypatch, repeat_test_share=1.0)
    r = read_tsv(repeated / "cohort.tsv")
    test = r[r["split"] == "test"]
    photos = test.groupby("subject_id").agg(
        n=("image_id", "size"), ages=("age_group", "nunique"), src=("source", "first")
    )
    assert (photos["n"] == photos["src"].map({"cohort": 2, "auxiliary": 1})).all() and (photos["ages"] == 1).all()
    # the extra photographs are new files; every other image is byte-identical
    before, after = _files(tiny), _files(repeated)
    images = [k for k in before if k.startswith("images/")]
    assert all(after[k] == before[k] for k in images) and len(after) - len(before) == (photos["n"] == 2).sum()


def test_apportion_hand_case_and_minimum():
    assert apportion(10, {"a": 0.5, "b": 0.3, "c": 0.2}) == {"a": 5, "b": 3, "c": 2}
    assert apportion(7, {"a": 0.5, "b": 0.3, "c": 0.2}) == {"a": 4, "b": 2, "c": 1}  # 3.5, 2.1, 1.4
    assert apportion(6, {"a": 0.9, "b": 0.1}, minimum=2) == {"a": 4, "b": 2}
    with pytest.raises(ValueError):
        apportion(3, {"a": 0.5, "b": 0.5}, minimum=2)


def test_default_design_is_imbalanced_like_the_paper():
    plans = plan_subjects(DemoOptions())
    train = [p for p in plans if p.source == "cohort" and p.split == "train"]
    for disease in AFFECTED:
        ages = [p.age_group for p in train if p.disease == disease]
        counts = {a: ages.count(a) for a in AGE_GROUPS}
        assert counts["child"] == max(counts.values())
        assert counts["infant"] < counts["child"] and counts["older_adult"] < counts["young_adult"]
        assert min(counts.values()) >= 1
    shares = {d: sum(p.disease == d for p in train) / len(train) for d in AFFECTED}
    assert all(abs(shares[d] - DISEASE_SHARES[d]) < 0.05 for d in AFFECTED)
    assert abs(sum(COHORT_AGE_SHARES.values()) - 1) < 1e-9


def test_too_small_a_cohort_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="raise n_subjects or lower test_per_group"):
        DemoOptions(n_subjects=20, test_per_group=1).check()
    options = '{"demo": {"n_subjects": 20, "test_per_group": 2}}'
    assert main(["--out-dir", str(tmp_path / "x"), "--options", options]) == 2
    assert not (tmp_path / "x").exists()


def test_landmarks_follow_the_pose(tiny):
    m = read_tsv(tiny / "cohort.tsv").set_index("image_id")
    marks = read_tsv(tiny / "landmarks.tsv").set_index("image_id")
    dx = marks["eye_right_x"] - marks["eye_left_x"]
    dy = marks["eye_right_y"] - marks["eye_left_y"]
    angle = np.degrees(np.arctan2(dy, dx))
    assert np.abs(angle - m.loc[marks.index, "roll_deg"]).max() < 0.2
    assert (dx > 0).all()  # image-left eye first
    size = TINY["image_size"]
    inside = marks[list(LANDMARK_COLUMNS)].to_numpy()
    assert (inside > 0).all() and (inside < size - 1).all()


def _plain_shot(gen, roll):
    """No lighting, blur or JPEG; a white background."""
    shot = sample_shot(gen, grey=False)
    white = (255.0, 255.0, 255.0)
    return dataclasses.replace(
        shot,
        roll_deg=roll,
        background=white,
        backdrop=white,
        blur_radius=0.0,
        jpeg_quality=0,
        light_strength=0.0,
        brightness=1.0,
        colour_cast=(1.0, 1.0, 1.0),
    )


@pytest.mark.parametrize("years,disease,smile", [(0.8, "WS", False), (40.0, "22q", True), (12.0, "control", False)])
def test_landmarks_land_on_the_drawn_eyes_and_mouth_corners(years, disease, smile):
    gen = np.random.default_rng(3)
    grey = (60.0, 60.0, 60.0)
    identity = dataclasses.replace(
        sample_identity(gen), skin=(255.0, 255.0, 255.0), iris=(0.0, 200.0, 0.0), hair=grey, clothing=grey
    )
    face = make_face(identity, years, amplitudes(disease, years, 0.8), smile)
    size = 256
    image, points = photograph(face, _plain_shot(gen, roll=11.0), size, 2)
    rgb = np.asarray(image, float)
    # Iris pixels: green dominates (the star spokes and pupil are symmetric about the centre).
    iris = (rgb[..., 1] - rgb[..., 0] > 60) & (rgb[..., 1] - rgb[..., 2] > 60)
    ys, xs = np.nonzero(iris)
    for name in ("eye_left", "eye_right"):
        near = np.hypot(xs - points[name][0], ys - points[name][1]) < 0.1 * size
        centroid = np.array([xs[near].mean(), ys[near].mean()])
        assert np.hypot(*(centroid - points[name])) < 1.5, name
    # Lip pixels: red well above green on white skin; the corners are the lip pixels furthest out
    # along the mouth's axis.
    lips = rgb[..., 0] - rgb[..., 1] > 35
    ys, xs = np.nonzero(lips)
    left, right = points["mouth_left"], points["mouth_right"]
    axis = (right - left) / np.hypot(*(right - left))
    mid = (left + right) / 2
    pix = np.stack([xs, ys], 1).astype(float)
    near_mouth = np.abs((pix - mid) @ np.array([-axis[1], axis[0]])) < 0.06 * size
    along = (pix[near_mouth] - mid) @ axis
    assert abs(along.min() - (left - mid) @ axis) < 2.0
    assert abs(along.max() - (right - mid) @ axis) < 2.0


def test_landmarks_are_the_drawn_geometry():
    face = make_face(sample_identity(np.random.default_rng(0)), 30.0, amplitudes("WS", 30.0, 1.0), True)
    pts = landmarks(face)
    m = mouth_curves(face)
    assert np.allclose(pts["mouth_left"], [m["x"][0], m["upper_bottom"][0]])
    assert np.allclose(pts["mouth_right"], [m["x"][-1], m["lower_top"][-1]])
    assert pts["eye_left"][1] < pts["nose"][1] < pts["mouth_left"][1]


def test_age_changes_proportions_the_way_faces_age():
    identity = sample_identity(np.random.default_rng(5))
    none = dict.fromkeys(EFFECTS, 0.0)
    infant, child, adult, older = (make_face(identity, y, none, False) for y in (0.5, 6.0, 28.0, 68.0))
    # Infants: round head, eyes set below the middle, large eyes; adults: longer faces.
    assert infant.head_half_height < child.head_half_height < adult.head_half_height
    assert infant.eye_y / infant.head_half_height > 0.2 > adult.eye_y / adult.head_half_height
    assert infant.eye_half_width > adult.eye_half_width
    assert infant.nose_tip_y - infant.eye_y < adult.nose_tip_y - adult.eye_y
    # Older adults: lines and greying hair.
    assert adult.ageing == 0.0 < older.ageing
    assert np.ptp(older.hair) < np.ptp(adult.hair) or np.mean(older.hair) > np.mean(adult.hair)


def test_signals_carry_the_planted_age_interaction():
    by = {(s.disease, s.region): s for s in SIGNALS}
    ws_eye, ws_mouth = by["WS", "periorbital"], by["WS", "mouth"]
    assert signal_strength(ws_eye, 1.0) > signal_strength(ws_eye, 15.0) > signal_strength(ws_eye, 50.0)
    assert signal_strength(ws_mouth, 1.0) < signal_strength(ws_mouth, 15.0) < signal_strength(ws_mouth, 50.0)
    q_mouth, q_eye = by["22q", "mouth"], by["22q", "eyelids"]
    assert signal_strength(q_mouth, 1.0) > signal_strength(q_mouth, 50.0)
    assert signal_strength(q_eye, 1.0) < signal_strength(q_eye, 50.0)
    # WS's two looks are disjoint at the ends: no eye sign in older adults, no mouth sign in infants,
    # so infant and older-adult saliency ought to sit in different places.
    for years, absent in ((1.0, ("wide_mouth",)), (50.0, ("fullness", "star_iris"))):
        ws = amplitudes("WS", years, 1.0)
        assert all(ws[e] == 0 for e in absent) and max(ws.values()) >= 1.0, (years, ws)
    # 22q's nasal root is a sign but never half of its strongest sign: the region the truth check
    # scores (mask >= 0.5 x max) is eyelids and mouth, not the frame's centre, where FFHQ puts the nasal root.
    for years in (0.5, 1.0, 5.0, 15.0, 30.0, 50.0, 70.0):
        q = amplitudes("22q", years, 1.0)
        assert 0 < q["nasal_root"] < 0.5 * max(q["small_mouth"], q["hooding"]), (years, q)
    assert all(v == 0 for v in amplitudes("unaffected", 20.0, 1.0).values())
    assert math.isclose(amplitudes("WS", 50.0, 0.5)["wide_mouth"], 0.5 * ws_mouth.older_adult)
