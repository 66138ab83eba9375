"""`syndface generate-fakes`: one of the paper's four fake-image types from a fold's GAN.

Counts: for each affected disease d, every (d, age) cell gets m_d = ceil(n_d / 5) images, n_d
being d's training images in the fold (folds != k); rare age groups are thus filled up and each
type totals about the fold's affected count. Types (latents z drawn from a per-identity seed):

- unrelated (type 1): its own z per image, one-hot disease and age;
- age_related (type 2): m_d identities per disease, each rendered at the five age embeddings;
- age_progression (type 3): m_d identities per disease, age label (1 - t) infant + t older_adult
  for t = 0, .25, .5, .75, 1 (nominal age group = the t-th group; `age_mix` = t);
- blended_55 / blended_75 (type 4): ceil(m_d / 3) identities per (d, age), each rendered with
  disease label c d + (1 - c) d2 for the three other labels d2; soft label c at d, 1 - c at d2.

Output in --out-dir: one PNG per image, manifest.tsv (image_id, path, disease, age_group,
fake_type, fold, seed, identity, age_mix, blend_with, label_{WS,22q,control,unaffected}),
sample_grid.png and, for age_progression, progression_strips.png. `fold` is the cross-validation
fold k whose GAN (trained on folds != k) made the images: they may only join fold k's training
data. z = numpy.random.default_rng(seed).standard_normal(z_dim), truncation psi; the synthesis
noise is drawn from the identity's seed (`fakes.noise: random`, as the paper's fork drew it from
the seed's RandomState after z) or is the network's one constant field (`const`).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from syndface.gan.networks import N_DISEASES, Generator, load_network, seeded_noise
from syndface.gan.options import FakesOptions
from syndface.images import save_png, to_uint8
from syndface.io import read_tsv, write_tsv
from syndface.log import get_logger, progress
from syndface.options import add_options_argument
from syndface.runtime import configure, resolve_device
from syndface.seeding import derive_seed
from syndface.taxonomy import AFFECTED, AGE_GROUPS, BLEND_FRACTIONS, DISEASES, FAKE_TYPES

log = get_logger("syndface.gan.fakes")

AGE_STEPS = (0.0, 0.25, 0.5, 0.75, 1.0)
SOFT_LABEL_COLUMNS = tuple(f"label_{d}" for d in DISEASES)
MANIFEST_COLUMNS = (
    "image_id",
    "path",
    "disease",
    "age_group",
    "fake_type",
    "fold",
    "seed",
    "identity",
    "age_mix",
    "blend_with",
    *SOFT_LABEL_COLUMNS,
)


def images_per_cell(folds: pd.DataFrame, fold: int) -> dict[str, int]:
    """m_d = ceil(n_d / number of age groups): the mean count over d's age groups in the fold's training set."""
    train = folds[folds["fold"] != fold]
    return {d: math.ceil(int((train["disease"] == d).sum()) / len(AGE_GROUPS)) for d in AFFECTED}


def _onehot(names: tuple[str, ...], weights: dict[str, float]) -> list[float]:
    return [float(weights.get(n, 0.0)) for n in names]


def fake_plan(folds: pd.DataFrame, fold: int, fake_type: str, seed: int) -> tuple[pd.DataFrame, torch.Tensor]:
    """(one row per image without `path`, the generator label of each row [N, 9])."""
    if fake_type not in FAKE_TYPES:
        raise ValueError(f"unknown fake type {fake_type!r}; allowed: {', '.join(FAKE_TYPES)}")
    if fold not in set(folds["fold"]):
        raise ValueError(f"fold {fold} is not in the folds table")
    cells = images_per_cell(folds, fold)
    rows, labels = [], []

    def add(
        image_id: str,
        disease: str,
        age: str,
        identity: str,
        disease_w: dict[str, float],
        age_w: dict[str, float],
        soft: dict[str, float],
        age_mix: float = float("nan"),
        blend_with: str = "",
    ) -> None:
        rows.append(
            {
                "image_id": image_id,
                "disease": disease,
                "age_group": age,
                "fake_type": fake_type,
                "fold": fold,
                "seed": derive_seed(seed, "fake", fold, fake_type, identity),
                "identity": identity,
                "age_mix": age_mix,
                "blend_with": blend_with,
                **{f"label_{d}": v for d, v in zip(DISEASES, _onehot(DISEASES, soft))},
            }
        )
        labels.append(_onehot(DISEASES, disease_w) + _onehot(AGE_GROUPS, age_w))

    prefix = f"f{fold}-{fake_type}"
    for d in AFFECTED:
        m = cells[d]
        if fake_type == "unrelated":
            for a in AGE_GROUPS:
                for i in range(m):
                    ident = f"{d}-{a}-{i:05d}"
                    add(f"{prefix}-{ident}", d, a, ident, {d: 1}, {a: 1}, {d: 1})
        elif fake_type == "age_related":
            for i in range(m):
                ident = f"{d}-{i:05d}"
                for a in AGE_GROUPS:
                    add(f"{prefix}-{ident}-{a}", d, a, ident, {d: 1}, {a: 1}, {d: 1})
        elif fake_type == "age_progression":
            for i in range(m):
                ident = f"{d}-{i:05d}"
                for a, t in zip(AGE_GROUPS, AGE_STEPS):
                    add(
                        f"{prefix}-{ident}-t{round(t * 100):03d}",
                        d,
                        a,
                        ident,
                        {d: 1},
                        {AGE_GROUPS[0]: 1 - t, AGE_GROUPS[-1]: t},
                        {d: 1},
                        age_mix=t,
                    )
        else:
            c = BLEND_FRACTIONS[fake_type]
            for a in AGE_GROUPS:
                for i in range(math.ceil(m / (N_DISEASES - 1))):
                    ident = f"{d}-{a}-{i:05d}"
                    for other in DISEASES:
                        if other != d:
                            weights = {d: c, other: round(1 - c, 3)}
                            add(f"{prefix}-{ident}-{other}", d, a, ident, weights, {a: 1}, weights, blend_with=other)
    plan = pd.DataFrame(rows)
    return plan, torch.tensor(labels, dtype=torch.float32)


def latents(seeds: np.ndarray, z_dim: int) -> torch.Tensor:
    """z of each row from its identity seed (rows sharing a seed share z)."""
    unique, inverse = np.unique(seeds, return_inverse=True)
    z = np.stack([np.random.default_rng(int(s)).standard_normal(z_dim) for s in unique]).astype(np.float32)
    return torch.from_numpy(z[inverse])


def noise_seeds(seeds: np.ndarray) -> list[int]:
    """The noise seed of each row, from its identity seed (as the paper's fork drew the noise from the
    seed's RandomState after z): an identity keeps its fine texture across its ages and blends."""
    return [derive_seed(int(s), "noise") for s in seeds]


@torch.no_grad()
def render(
    G: Generator,
    z: torch.Tensor,
    labels: torch.Tensor,
    psi: float,
    batch: int = 64,
    noise: str = "const",
    seeds: list[int] | None = None,
) -> np.ndarray:
    """uint8 NHWC images of G_ema(z, label) with truncation psi; `noise` random = per-image noise
    from `seeds` (networks.seeded_noise), const = the network's one constant field."""
    if noise not in ("random", "const"):
        raise ValueError(f"fakes.noise must be random or const, got {noise!r}")
    if noise == "random" and (seeds is None or len(seeds) != len(z)):
        raise ValueError("random noise needs one noise seed per image")
    device = next(G.parameters()).device

    def one(i: int) -> torch.Tensor:
        layers = None
        if noise == "random":
            layers = [n.to(device) for n in seeded_noise(G, seeds[i : i + batch])]
        return G(
            z[i : i + batch].to(device), labels[i : i + batch].to(device), psi=psi, noise_mode="const", noise=layers
        )

    chunks = [to_uint8(one(i)) for i in range(0, len(z), batch)]
    return np.concatenate(chunks) if chunks else np.zeros((0, G.arch.resolution, G.arch.resolution, 3), np.uint8)


def write_figures(plan: pd.DataFrame, images: np.ndarray, out_dir: Path, fold: int, fake_type: str) -> None:
    from syndface.gan.figures import progression_figure, sample_grid_figure
    from syndface.io import save_figure

    first = plan.drop_duplicates(["disease", "age_group"])
    cells = {(r.disease, r.age_group): images[r.Index] for r in first.itertuples()}
    save_figure(
        sample_grid_figure(cells, AFFECTED, AGE_GROUPS, f"fold {fold}: {fake_type}"), out_dir / "sample_grid.png"
    )
    if fake_type == "age_progression":
        strips = []
        for d in AFFECTED:
            for ident in plan.loc[plan["disease"] == d, "identity"].drop_duplicates().head(2):
                strips.append((d, [images[i] for i in np.flatnonzero(plan["identity"] == ident)]))
        save_figure(
            progression_figure(strips, [f"{t:g}" for t in AGE_STEPS], f"fold {fold}: infant -> older adult"),
            out_dir / "progression_strips.png",
        )


def generate_fakes(
    G: Generator,
    folds: pd.DataFrame,
    fold: int,
    fake_type: str,
    psi: float,
    seed: int,
    out_dir: Path,
    batch: int = 64,
    noise: str = "random",
) -> pd.DataFrame:
    """Render and write one fake type; returns the manifest (written last, so its presence means complete)."""
    plan, labels = fake_plan(folds, fold, fake_type, seed)
    seeds = plan["seed"].to_numpy()
    images = render(G, latents(seeds, G.arch.z_dim), labels, psi, batch, noise, noise_seeds(seeds))
    paths = [out_dir / f"{image_id}.png" for image_id in plan["image_id"]]
    for path, image in progress(zip(paths, images), len(paths), "PNGs", log):
        save_png(image, path)
    plan.insert(1, "path", [str(p) for p in paths])
    write_figures(plan, images, out_dir, fold, fake_type)
    manifest = plan[list(MANIFEST_COLUMNS)]
    write_tsv(
        manifest,
        out_dir / "manifest.tsv",
        header_lines=[
            f"{fake_type} fakes of fold {fold}'s GAN (trained on folds != {fold}); use only to train fold {fold}'s classifier",
            f"psi {psi}, seed {seed}; z = numpy.random.default_rng(seed column).standard_normal(z_dim); "
            + (
                "noise per layer from torch.Generator().manual_seed(derive_seed(seed column, 'noise'))"
                if noise == "random"
                else "the network's constant noise"
            ),
        ],
    )
    summary = manifest.groupby(["disease", "age_group"], sort=False).size()
    log.info(
        "fold %d %s: %d images; per (disease, age): %s",
        fold,
        fake_type,
        len(manifest),
        ", ".join(f"{d}/{a} {n}" for (d, a), n in summary.items()),
    )
    return manifest


def main(argv: list[str], prog: str = "syndface generate-fakes") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--network", required=True, help="results/gan/fold{k}/network.pt")
    parser.add_argument("--folds", required=True)
    parser.add_argument("--fold", type=int, required=True)
    parser.add_argument(
        "--fake-types",
        nargs="+",
        required=True,
        choices=FAKE_TYPES,
        help="one or more types; each goes to OUT_DIR/<type>/",
    )
    add_options_argument(parser, FakesOptions)
    parser.add_argument("--out-dir", required=True, help="results/fakes/fold{k}")
    parser.add_argument("--batch", type=int, default=64, help="fakes rendered per forward pass")
    parser.add_argument("--num-threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    opts = args.options

    device = resolve_device(opts.device)
    configure(device, args.num_threads)
    G, ckpt = load_network(args.network, device)
    trained_fold = ckpt.get("training", {}).get("data", {}).get("fold")
    if trained_fold is not None and trained_fold != args.fold:
        raise SystemExit(
            f"{args.network} is fold {trained_fold}'s GAN, not fold {args.fold}'s; its fakes would leak that fold's images"
        )
    folds = read_tsv(args.folds)
    for fake_type in args.fake_types:
        generate_fakes(
            G, folds, args.fold, fake_type, opts.psi, opts.seed, Path(args.out_dir) / fake_type, args.batch, opts.noise
        )
    return 0
