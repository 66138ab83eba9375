"""`syndface make-demo-cohort`: the embedded synthetic cohort with planted truth.

Design (shaped like the paper's data, Duong et al. 2022 and its code):
- Test split like the survey set: `test_per_group` subjects per disease x age group for WS, 22q
  and control, one colour image each (the survey images were colour), plus `test_per_group`
  auxiliary unaffected test images per age group.
- Train cohort: the remaining `n_subjects` split over WS/22q/control like the paper's training
  images (28/30/42 %) and over age groups like its affected training images (16/41/21/15/7 %:
  fewer infants and older adults); every disease x age group gets at least one subject. Each
  subject has 1-3 images, at one age in other poses or at other ages.
- Auxiliary unaffected set in FairFace's role: one image per subject, mostly adults.
- `repeat_test_share` of the cohort's test subjects get a second photograph at the same age
  group in another pose (default none, the survey design), so a per-subject readout has subjects
  with several test photos.
- Per subject, for subgroup tables: `sex` (female/male, half each; the faces carry no sex
  difference, so it is a null subgroup) and `ancestry`, a skin-tone group (light, medium, dark:
  thirds of the drawn tone range) standing in for the ancestry columns of real data.
- Per image: penetrance (subject level plus image jitter; some affected faces show little),
  smiling (WS 60 %, others 44 %, as in the paper's test images), grey scale in `grey_share` of the
  train images, roll, scale, shift, lighting, background, blur and JPEG artefacts.

Every random choice comes from `syndface.seeding.rng(seed, ...)` keyed by what it decides, so the
same arguments give byte-identical files.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from syndface.align.geometry import FIVE_POINTS, LANDMARK_COLUMNS
from syndface.demo.options import DemoOptions
from syndface.demo.photo import photograph, sample_shot
from syndface.demo.regions import RegionMaskBuilder, save_npz
from syndface.demo.render import Identity, make_face, sample_identity
from syndface.demo.signals import EFFECTS, SMILE_PROBABILITY, amplitudes
from syndface.images import save_png
from syndface.io import write_tsv
from syndface.log import get_logger, progress
from syndface.options import add_options_argument
from syndface.seeding import rng
from syndface.taxonomy import AFFECTED, AGE_GROUPS, AGE_LOWER_BOUNDS

DISEASE_SHARES = {"WS": 0.28, "22q": 0.30, "control": 0.42}
COHORT_AGE_SHARES = {"infant": 0.16, "child": 0.41, "adolescent": 0.21, "young_adult": 0.15, "older_adult": 0.07}
# FairFace is mostly adults (its 0-2 bin is 1 %); the demo keeps that shape but gives the small
# auxiliary set enough infants and children to have some of each.
AUXILIARY_AGE_SHARES = {"infant": 0.06, "child": 0.17, "adolescent": 0.14, "young_adult": 0.35, "older_adult": 0.28}
OLDEST_YEARS = 75.0
IMAGES_PER_SUBJECT_P = (0.4, 0.35, 0.25)  # 1, 2 or 3 images
SAME_AGE_GROUP_P = 0.5  # an extra image stays in the subject's age group (another pose)

MANIFEST_COLUMNS = (
    "image_id",
    "path",
    "disease",
    "age_group",
    "source",
    "subject_id",
    "split",
    "age_years",
    "penetrance",
    "smiling",
    "grey",
    "roll_deg",
    "sex",
    "ancestry",
)
SEXES = ("female", "male")
# Thirds of the skin-tone range (Identity.tone), the demo's stand-in for an ancestry group.
TONE_GROUPS = ("light", "medium", "dark")


@dataclass(frozen=True)
class SubjectPlan:
    disease: str
    source: str
    split: str
    age_group: str  # of the first image


def apportion(total: int, shares: dict[str, float], minimum: int = 0) -> dict[str, int]:
    """Integer counts summing to `total`, each >= `minimum`, closest to the shares (largest remainder)."""
    keys = list(shares)
    rest = total - minimum * len(keys)
    if rest < 0:
        raise ValueError(f"cannot give {len(keys)} groups {minimum} each out of {total}")
    weight = sum(shares.values())
    exact = [rest * shares[k] / weight for k in keys]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(keys)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: rest - sum(counts)]:
        counts[i] += 1
    return {k: minimum + c for k, c in zip(keys, counts)}


def plan_subjects(cfg: DemoOptions) -> list[SubjectPlan]:
    """Every subject's disease, source, split and first age group, in a seeded random order."""
    cohort = [
        SubjectPlan(d, "cohort", "test", a) for d in AFFECTED for a in AGE_GROUPS for _ in range(cfg.test_per_group)
    ]
    n_train = cfg.n_subjects - len(cohort)
    for disease, n in apportion(n_train, DISEASE_SHARES, minimum=len(AGE_GROUPS)).items():
        for age_group, k in apportion(n, COHORT_AGE_SHARES, minimum=1).items():
            cohort += [SubjectPlan(disease, "cohort", "train", age_group)] * k
    auxiliary = [
        SubjectPlan("unaffected", "auxiliary", "test", a) for a in AGE_GROUPS for _ in range(cfg.test_per_group)
    ]
    n_aux_train = cfg.n_auxiliary - len(auxiliary)
    for age_group, k in apportion(n_aux_train, AUXILIARY_AGE_SHARES, minimum=1).items():
        auxiliary += [SubjectPlan("unaffected", "auxiliary", "train", age_group)] * k
    order = rng(cfg.seed, "subject-order")
    cohort = [cohort[i] for i in order.permutation(len(cohort))]
    return cohort + [auxiliary[i] for i in order.permutation(len(auxiliary))]


def years_in(age_group: str, gen: np.random.Generator) -> float:
    lower = AGE_LOWER_BOUNDS[age_group]
    index = AGE_GROUPS.index(age_group)
    upper = AGE_LOWER_BOUNDS[AGE_GROUPS[index + 1]] if index + 1 < len(AGE_GROUPS) else OLDEST_YEARS
    # Infants start at a month: a newborn's face is not what the infant photographs show.
    return float(gen.uniform(max(lower, 1 / 12), upper))


def image_age_groups(plan: SubjectPlan, gen: np.random.Generator, repeat_test: bool = False) -> list[str]:
    """Age group of each of a subject's images (test and auxiliary subjects have one image; a test
    subject with `repeat_test` two, at the same age group)."""
    if plan.split == "test" or plan.source == "auxiliary":
        return [plan.age_group] * (2 if repeat_test and plan.source == "cohort" else 1)
    n = 1 + int(gen.choice(len(IMAGES_PER_SUBJECT_P), p=IMAGES_PER_SUBJECT_P))
    groups = [plan.age_group]
    others = [a for a in AGE_GROUPS if a != plan.age_group]
    other_p = np.array([COHORT_AGE_SHARES[a] for a in others])
    for _ in range(n - 1):
        same = gen.random() < SAME_AGE_GROUP_P
        groups.append(plan.age_group if same else others[int(gen.choice(len(others), p=other_p / other_p.sum()))])
    return groups


def subject_id_of(plan: SubjectPlan, number: int) -> str:
    return f"{'s' if plan.source == 'cohort' else 'a'}{number:04d}"


def tone_group(tone: float) -> str:
    """The skin-tone third of a tone in [0, 1]."""
    return TONE_GROUPS[min(int(tone * len(TONE_GROUPS)), len(TONE_GROUPS) - 1)]


def subject_traits(seed: int, subject_id: str, identity: Identity) -> dict[str, str]:
    """Sex (its own random stream, so the images do not change) and the skin-tone group."""
    sex = SEXES[int(rng(seed, "sex", subject_id).random() < 0.5)]
    return {"sex": sex, "ancestry": tone_group(identity.tone)}


def make_demo_cohort(cfg: DemoOptions, out_dir: str | Path) -> pd.DataFrame:
    """Render the cohort into `out_dir` (images/, cohort.tsv, landmarks.tsv, regions.npz); returns
    the manifest."""
    cfg.check()
    log = get_logger("syndface.demo")
    out_dir = Path(out_dir)
    plans = plan_subjects(cfg)
    jobs = []
    numbers = {"cohort": 0, "auxiliary": 0}
    for plan in plans:
        numbers[plan.source] += 1
        subject_id = subject_id_of(plan, numbers[plan.source])
        gen = rng(cfg.seed, "subject", subject_id)
        identity = sample_identity(gen)
        base_penetrance = float(gen.beta(4.0, 1.6)) if plan.disease in AFFECTED else 0.0
        repeat = plan.split == "test" and rng(cfg.seed, "test-repeat", subject_id).random() < cfg.repeat_test_share
        for k, age_group in enumerate(image_age_groups(plan, gen, repeat), start=1):
            jobs.append((plan, subject_id, f"{subject_id}_{k}", age_group, identity, base_penetrance))
    log.info("rendering %d images of %d subjects into %s", len(jobs), len(plans), out_dir)
    masks = RegionMaskBuilder()
    rows, marks = [], []
    for job in progress(jobs, len(jobs), "rendered", log):
        row, points, face, baseline, effects = render_one(cfg, out_dir, *job)
        masks.add(row["disease"], row["age_group"], face, baseline, effects)
        rows.append(row)
        marks.append([row["image_id"], *(round(float(v), 3) for name in FIVE_POINTS for v in points[name])])
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    header = [f"syndface demo cohort: {', '.join(f'{k}={v}' for k, v in asdict(cfg).items())}"]
    write_tsv(manifest, out_dir / "cohort.tsv", header_lines=header)
    write_tsv(
        pd.DataFrame(marks, columns=["image_id", *LANDMARK_COLUMNS]),
        out_dir / "landmarks.tsv",
        header_lines=["true eye centres, nose tip and mouth corners in source pixels (pixel centres at integers)"],
    )
    save_npz(masks.arrays(), out_dir / "regions.npz")
    log.info("wrote %s, landmarks.tsv and regions.npz", out_dir / "cohort.tsv")
    return manifest


def render_one(
    cfg: DemoOptions,
    out_dir: Path,
    plan: SubjectPlan,
    subject_id: str,
    image_id: str,
    age_group: str,
    identity: Identity,
    base_penetrance: float,
):
    """Render and save one image; returns its manifest row, landmarks, face, the same face without
    signs, and the sign amplitudes."""
    gen = rng(cfg.seed, "image", image_id)
    years = years_in(age_group, gen)
    affected = plan.disease in AFFECTED
    penetrance = float(np.clip(base_penetrance + gen.normal(0.0, 0.08), 0.05, 1.0)) if affected else 0.0
    smiling = bool(gen.random() < SMILE_PROBABILITY[plan.disease])
    grey = plan.split == "train" and bool(gen.random() < cfg.grey_share)
    effects = amplitudes(plan.disease, years, penetrance, cfg.signal_strength)
    face = make_face(identity, years, effects, smiling)
    shot = sample_shot(gen, grey)
    image, points = photograph(face, shot, cfg.image_size, cfg.render_scale)
    path = out_dir / "images" / f"{image_id}.png"
    save_png(image, path)
    row = {
        "image_id": image_id,
        "path": str(path),
        "disease": plan.disease,
        "age_group": age_group,
        "source": plan.source,
        "subject_id": subject_id,
        "split": plan.split,
        "age_years": round(years, 2),
        "penetrance": round(penetrance, 3),
        "smiling": int(smiling),
        "grey": int(grey),
        "roll_deg": round(shot.roll_deg, 2),
        **subject_traits(cfg.seed, subject_id, identity),
    }
    baseline = make_face(identity, years, dict.fromkeys(EFFECTS, 0.0), smiling)
    return row, points, face, baseline, effects


def main(argv: list[str], prog: str = "syndface make-demo-cohort") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", required=True, help="where images/, cohort.tsv, landmarks.tsv, regions.npz go")
    add_options_argument(parser, DemoOptions)
    args = parser.parse_args(argv)
    try:
        args.options.check()
    except ValueError as err:
        get_logger("syndface.demo").error("%s", err)
        return 2
    make_demo_cohort(args.options, args.out_dir)
    return 0
