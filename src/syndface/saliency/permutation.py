"""Permutation test: do two age groups of a disease have different mean saliency maps?

As in the paper's code (TestHeatMapPermu): each image's fold-averaged map with negatives set to
0; the statistic is the Euclidean distance between the embeddings of the two groups' mean maps;
the null distribution re-splits the pooled images into groups of the original sizes. Reported
are the paper's rank, `mean(observed > permuted)` (= 1 - p), and the p-value:
- exact when the distinct splits number at most `max_exact`: every split is evaluated and p is
  the share at least as far apart as the observed one (6 vs 6 images: 924 splits, of which 462
  are evaluated, since a split and its mirror give the same distance);
- otherwise Monte Carlo with the +1 correction, `(#{permuted >= observed} + 1) / (permutations + 1)`,
  flagged `p_at_floor` when no permutation reached the observed distance (read p <= 1/(B+1)).
Benjamini-Hochberg q-values are given within each disease's 10 age pairs and across all the
diseases' pairs. `size_check` simulates the test on shuffled data (age labels permuted within a
disease, so every pair is a true null) and counts how often it rejects: a test that holds its
level rejects about alpha of the time, and the check fails when the count exceeds the Binomial
bound. It replaces the former "null pair" (one age group split in halves), whose 3 vs 3 split on
the demo could not give p below 0.10, so it could not fail.

All permutations' group means come from one matrix product (membership weights x maps) per
memory-sized block; the embedding runs on batches of mean maps.

`syndface permutation-test` writes permutation.tsv (every pair of age groups per disease), the
size check (size_check.tsv, one row per disease) and a lower-triangle heat map per disease (the
paper's Figure 5) with the size check's verdict under its title.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from syndface.intervals import proportion_interval
from syndface.io import save_figure, write_tsv
from syndface.log import get_logger
from syndface.multiplicity import bh_by_family
from syndface.options import add_options_argument
from syndface.permutations import n_splits, rejection_bound, split_memberships
from syndface.saliency.occlusion import positive_part
from syndface.saliency.options import PermutationOptions
from syndface.seeding import rng
from syndface.taxonomy import AGE_GROUPS

log = get_logger("syndface.saliency")

Embed = Callable[[np.ndarray], np.ndarray]
# Bytes of permuted group means held at once (float32); larger tests run in several blocks.
MEANS_BUDGET_BYTES = 512 * 2**20


@dataclass(frozen=True)
class PermutationResult:
    distance: float
    null: np.ndarray  # the statistic under each permutation (exact: every split, the observed one included)
    exact: bool = False

    @property
    def rank(self) -> float:
        """The paper's statistic: share of permutations with a smaller distance (1 - p, uncorrected)."""
        return float(np.mean(~_at_least(self.null, self.distance)))

    @property
    def p_value(self) -> float:
        if self.exact:
            return float(np.mean(_at_least(self.null, self.distance)))
        return p_value(self.distance, self.null)

    @property
    def at_floor(self) -> bool:
        """Monte Carlo and no permutation reached the observed distance: the true p is at most 1/(B+1)."""
        return not self.exact and not np.any(_at_least(self.null, self.distance))


# Distances come from float32 features: values equal up to this relative error are ties (scipy's
# permutation_test allows 100 eps of the dtype for the same reason).
TIE_RTOL = 100 * float(np.finfo(np.float32).eps)


def _at_least(null: np.ndarray, observed: float) -> np.ndarray:
    return np.asarray(null) >= observed - TIE_RTOL * abs(observed)


def p_value(observed: float, null: np.ndarray) -> float:
    """One-sided permutation p-value with the +1 correction (the observed split counts as one of the permutations)."""
    return float((np.count_nonzero(_at_least(null, observed)) + 1) / (len(null) + 1))


def random_memberships(n_a: int, n_b: int, n_permutations: int, generator: np.random.Generator) -> np.ndarray:
    """[n_permutations, n_a + n_b] bool: True where an image falls in group A after relabelling."""
    if n_a < 1 or n_b < 1:
        raise ValueError(f"both groups need images, got {n_a} and {n_b}")
    labels = np.arange(n_a + n_b) < n_a
    return generator.permuted(np.tile(labels, (n_permutations, 1)), axis=1)


def group_means(maps: np.ndarray, in_a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean map of group A and of group B for every membership row, by one matrix product.

    maps: [n, ...]; in_a: [P, n] bool. Returns two arrays [P, ...]."""
    flat = np.asarray(maps, dtype=np.float32).reshape(len(maps), -1)
    n_a = in_a.sum(1, keepdims=True)
    n_b = in_a.shape[1] - n_a
    weights = np.concatenate([in_a / n_a, ~in_a / n_b]).astype(np.float32)
    means = (weights @ flat).reshape(2, len(in_a), *np.shape(maps)[1:])
    return means[0], means[1]


def embedding_distances(maps: np.ndarray, in_a: np.ndarray, embed: Embed) -> np.ndarray:
    """Euclidean distance between the embedded group means, for every membership row."""
    per_row = 2 * int(np.prod(np.shape(maps)[1:])) * 4
    block = max(1, MEANS_BUDGET_BYTES // per_row)
    out = []
    for start in range(0, len(in_a), block):
        mean_a, mean_b = group_means(maps, in_a[start : start + block])
        features = embed(np.concatenate([mean_a, mean_b]))
        out.append(np.linalg.norm(features[: len(mean_a)] - features[len(mean_a) :], axis=1))
    return np.concatenate(out)


def permutation_test(
    maps_a: np.ndarray,
    maps_b: np.ndarray,
    embed: Embed,
    n_permutations: int,
    generator: np.random.Generator,
    max_exact: int = 0,
) -> PermutationResult:
    """Observed embedding distance of the two groups' mean maps against every split of the pooled
    images when there are at most `max_exact` (exact), else `n_permutations` random relabellings."""
    if n_permutations < 1:
        raise ValueError(f"need at least one permutation, got {n_permutations}")
    pooled = np.concatenate([maps_a, maps_b])
    if n_splits(len(maps_a), len(maps_b), symmetric=True) <= max_exact:
        splits, _ = split_memberships(len(maps_a), len(maps_b), max_exact, 0, generator, symmetric=True)
        distances = embedding_distances(pooled, splits, embed)  # row 0 is the observed split
        return PermutationResult(float(distances[0]), distances, exact=True)
    observed = (np.arange(len(pooled)) < len(maps_a))[None, :]
    permuted = random_memberships(len(maps_a), len(maps_b), n_permutations, generator)
    distances = embedding_distances(pooled, np.concatenate([observed, permuted]), embed)
    return PermutationResult(float(distances[0]), distances[1:])


def run_tests(
    maps: np.ndarray,
    index: pd.DataFrame,
    diseases: list[str],
    embed: Embed,
    n_permutations: int,
    seed: int,
    max_exact: int = 0,
) -> pd.DataFrame:
    """Every pair of age groups per disease, one row each, with q-values within each disease and
    across all. `max_exact` > 0 enumerates every split where they are that few."""
    rows = []
    for disease in diseases:
        is_disease = (index["disease"] == disease).to_numpy()
        by_group = {g: np.flatnonzero(is_disease & (index["age_group"] == g).to_numpy()) for g in AGE_GROUPS}
        for group_a, group_b in itertools.combinations(AGE_GROUPS, 2):
            rows_a, rows_b = by_group[group_a], by_group[group_b]
            row = {
                "disease": disease,
                "group_a": group_a,
                "group_b": group_b,
                "n_a": len(rows_a),
                "n_b": len(rows_b),
            }
            if len(rows_a) and len(rows_b):
                generator = rng(seed, "permutation", disease, group_a, group_b)
                result = permutation_test(maps[rows_a], maps[rows_b], embed, n_permutations, generator, max_exact)
                row.update(
                    distance=result.distance,
                    null_median=float(np.median(result.null)),
                    rank=result.rank,
                    p_value=result.p_value,
                    exact=result.exact,
                    n_relabellings=len(result.null),
                    p_at_floor=result.at_floor,
                )
                log.info(
                    "%s %s vs %s: distance %.4g, rank %.3f, p %.4f (%s)",
                    disease,
                    group_a,
                    group_b,
                    result.distance,
                    result.rank,
                    result.p_value,
                    "exact" if result.exact else f"{len(result.null)} permutations",
                )
            else:
                log.warning("%s %s vs %s: a group has no images; no test", disease, group_a, group_b)
                row.update(
                    distance=np.nan,
                    null_median=np.nan,
                    rank=np.nan,
                    p_value=np.nan,
                    exact=False,
                    n_relabellings=0,
                    p_at_floor=False,
                )
            row["n_permutations"] = n_permutations
            rows.append(row)
    table = pd.DataFrame(rows)
    table["q_within_disease"] = bh_by_family(table, "p_value", ["disease"])
    table["q_all"] = bh_by_family(table, "p_value", [])
    return table


@dataclass(frozen=True)
class SizeCheck:
    disease: str
    replicates: int
    rejections: int  # shuffled-label tests with p < alpha
    bound: int  # most rejections a test of size alpha shows but for probability 1e-4
    alpha: float
    exact: bool  # the replicate tests enumerated every split

    @property
    def rate(self) -> float:
        return self.rejections / self.replicates

    @property
    def passed(self) -> bool:
        return self.rejections <= self.bound


def size_check(
    maps: np.ndarray,
    index: pd.DataFrame,
    disease: str,
    embed: Embed,
    replicates: int,
    n_permutations: int,
    alpha: float,
    seed: int,
    max_exact: int = 0,
    test=None,
) -> SizeCheck:
    """How often the test rejects when the disease's age labels are shuffled (every pair a true null).

    Each replicate permutes the age labels among the disease's images (group sizes kept) and
    tests one pair of age groups, the pairs taken in turn; a test holding its level rejects at
    most alpha of the time. `test` (default `permutation_test`) is there to show the check
    catching a test that does not."""
    test = test or permutation_test
    if replicates < 1:
        raise ValueError(f"the size check needs at least one replicate, got {replicates}")
    rows = np.flatnonzero((index["disease"] == disease).to_numpy())
    labels = index["age_group"].to_numpy()[rows]
    pairs = [(a, b) for a, b in itertools.combinations(AGE_GROUPS, 2) if (labels == a).any() and (labels == b).any()]
    if not pairs:
        raise ValueError(f"{disease}: the size check needs two age groups with images")
    rejections, exact = 0, True
    for r in range(replicates):
        generator = rng(seed, "size-check", disease, r)
        shuffled = generator.permutation(labels)
        group_a, group_b = pairs[r % len(pairs)]
        result = test(
            maps[rows[shuffled == group_a]],
            maps[rows[shuffled == group_b]],
            embed,
            n_permutations,
            generator,
            max_exact,
        )
        rejections += result.p_value < alpha
        exact &= result.exact
    return SizeCheck(disease, replicates, int(rejections), rejection_bound(replicates, alpha), alpha, bool(exact))


SIZE_CHECK_COLUMNS = (
    "disease", "replicates", "rejections", "rate", "rate_ci_low", "rate_ci_high", "alpha", "bound", "exact", "passed",
)  # fmt: skip


def size_check_table(checks: list[SizeCheck], level: float = 0.95) -> pd.DataFrame:
    """One row per disease: rejections of true nulls on shuffled labels, their rate with a
    Clopper-Pearson interval, the bound a test of size alpha stays under, and the verdict."""
    rows = []
    for check in checks:
        low, high = proportion_interval(check.rejections, check.replicates, level)
        rows.append(
            {
                "disease": check.disease,
                "replicates": check.replicates,
                "rejections": check.rejections,
                "rate": check.rate,
                "rate_ci_low": low,
                "rate_ci_high": high,
                "alpha": check.alpha,
                "bound": check.bound,
                "exact": check.exact,
                "passed": check.passed,
            }
        )
    return pd.DataFrame(rows, columns=list(SIZE_CHECK_COLUMNS))


def size_check_note(check: SizeCheck) -> str:
    """One line for the figure: what the size check found."""
    verdict = "holds its level" if check.passed else "REJECTS TOO OFTEN"
    return (
        f"size check: {check.rejections}/{check.replicates} shuffled-label tests p < {check.alpha} "
        f"(rate {check.rate:.3f}, bound {check.bound}): {verdict}"
    )


def permutation_header(
    embedding: str,
    scale_note: str,
    n_permutations: int,
    max_exact: int,
    seed: int,
    alpha: float,
    size_checks: list[SizeCheck] | None = None,
) -> list[str]:
    """Header lines of permutation.tsv: unit, statistic, how p is computed, the q families, the size check."""
    lines = [
        f"embedding {embedding}",
        scale_note,
        "unit: the image (its fold-mean map); statistic: Euclidean distance between the embeddings of the two age "
        "groups' mean maps; null: the pooled images re-split into groups of the same sizes",
        f"p_value: exact (share of all splits at least as far apart) where the splits number <= {max_exact} "
        f"(column exact), else {n_permutations} random splits, (#(permuted >= observed) + 1) / (permutations + 1), "
        f"seed {seed}; p_at_floor: no random split reached the observed distance, read p <= 1/(permutations + 1); "
        "rank = mean(observed > permuted) (the paper's)",
        "q_within_disease: Benjamini-Hochberg over one disease's age pairs; q_all: over every disease's age pairs",
        f"significant: p_value < {alpha}",
    ]
    for check in size_checks or []:
        lines.append(f"{check.disease}: {size_check_note(check)}")
    return lines


def plot_heatmap(table: pd.DataFrame, disease: str, alpha: float, subtitle: str, note: str | None = None):
    """Lower-triangle heat map of p-values between age groups (the paper's Figure 5 layout); `note`
    (e.g. the size check's result) is printed under the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = table[table["disease"] == disease]
    n = len(AGE_GROUPS)
    grid = np.full((n, n), np.nan)
    for r in pairs.itertuples():
        grid[AGE_GROUPS.index(r.group_b), AGE_GROUPS.index(r.group_a)] = r.p_value
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="viridis", vmin=0, vmax=1)
    for i, j in zip(*np.tril_indices(n, -1)):
        if np.isfinite(grid[i, j]):
            star = "*" if grid[i, j] < alpha else ""
            ax.text(
                j,
                i,
                f"{grid[i, j]:.3f}{star}",
                ha="center",
                va="center",
                color="white" if grid[i, j] < 0.5 else "black",
                fontsize=8,
            )
    labels = [g.replace("_", " ") for g in AGE_GROUPS]
    ax.set_xticks(range(n), labels, rotation=30, ha="right")
    ax.set_yticks(range(n), labels)
    lines = [f"{disease}: permutation p-values (* p < {alpha})", subtitle]
    if note:
        lines.append(note)
    ax.set_title("\n".join(lines), fontsize=8)
    fig.colorbar(image, ax=ax, label="p-value", fraction=0.046)
    return fig


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--maps-dir", required=True, help="output directory of `syndface occlusion-maps`")
    add_options_argument(p, PermutationOptions)
    p.add_argument("--models", nargs="+", default=[], help="fold models (model.pt) for saliency.embedding classifier")
    p.add_argument(
        "--imagenet-weights",
        default=None,
        help="local weights file of saliency.imagenet_model for saliency.embedding imagenet",
    )
    p.add_argument(
        "--scale-quantile",
        type=float,
        default=0.99,
        help="quantile of the pooled positive maps that maps are divided by",
    )
    p.add_argument("--embed-batch", type=int, default=64, help="mean maps per embedding forward pass")
    p.add_argument("--num-threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    p.add_argument(
        "--out-dir", required=True, help="writes permutation.tsv, size_check.tsv and permutation_{disease}.png here"
    )
    return p


def main(argv: list[str], prog: str = "syndface permutation-test") -> int:
    args = build_parser(prog).parse_args(argv)
    opts = args.options

    from syndface.runtime import configure, resolve_device
    from syndface.saliency.embedding import PixelEmbedder, classifier_embedder, imagenet_embedder, map_scale
    from syndface.saliency.maps import load_maps

    maps, index = load_maps(args.maps_dir)
    tested = index["disease"].isin(opts.diseases).to_numpy()
    missing = sorted(set(opts.diseases) - set(index["disease"][tested]))
    if missing:
        raise ValueError(
            f"{args.maps_dir} has no maps of {', '.join(missing)}; drop them from saliency.diseases or recompute the maps"
        )
    positive = positive_part(np.asarray(maps, dtype=np.float32))
    scale = map_scale(positive[tested], args.scale_quantile)
    device = resolve_device(opts.device)
    configure(device, args.num_threads)
    if opts.embedding == "classifier":
        if not args.models:
            raise ValueError(
                "saliency.embedding classifier needs --models (the fold models whose features embed the maps)"
            )
        embed = classifier_embedder(args.models, scale, device, args.embed_batch)
    elif opts.embedding == "pixels":
        embed = PixelEmbedder(scale)
    else:
        embed = imagenet_embedder(opts.imagenet_model, args.imagenet_weights, scale, device, args.embed_batch)

    table = run_tests(positive, index, opts.diseases, embed, opts.permutations, opts.seed, opts.max_exact)
    table["significant"] = table["p_value"] < opts.alpha
    checks = run_size_checks(positive, index, opts, embed)
    out_dir = Path(args.out_dir)
    scale_note = (
        f"maps: fold-mean occlusion maps, negatives set to 0, divided by {scale:.6g} (the {args.scale_quantile} "
        "quantile of the tested maps)"
        + ("" if opts.embedding == "pixels" else ", replicated to 3 channels, ImageNet-normalised")
    )
    header = permutation_header(
        embed.description, scale_note, opts.permutations, opts.max_exact, opts.seed, opts.alpha, checks
    )
    write_tsv(table, out_dir / "permutation.tsv", header_lines=header)
    write_tsv(size_check_table(checks), out_dir / "size_check.tsv", header_lines=size_check_header(opts))
    subtitle = f"{opts.embedding} embedding; " + (
        "exact p (every split)"
        if table["exact"].all()
        else f"exact p where <= {opts.max_exact} splits, else {opts.permutations} random splits"
    )
    by_disease = {check.disease: check for check in checks}
    for disease in opts.diseases:
        note = size_check_note(by_disease[disease]) if disease in by_disease else None
        save_figure(plot_heatmap(table, disease, opts.alpha, subtitle, note), out_dir / f"permutation_{disease}.png")
    return 0


def run_size_checks(maps: np.ndarray, index: pd.DataFrame, opts: PermutationOptions, embed: Embed) -> list[SizeCheck]:
    """The size check of every tested disease with two age groups to compare (none when replicates is 0)."""
    checks = []
    for disease in opts.diseases if opts.size_check_replicates else []:
        groups = index.loc[index["disease"] == disease, "age_group"].nunique()
        if groups < 2:
            log.warning("%s: maps of %d age group(s) only, no pair to test: no size check", disease, groups)
            continue
        check = size_check(
            maps,
            index,
            disease,
            embed,
            opts.size_check_replicates,
            opts.size_check_permutations,
            opts.alpha,
            opts.seed,
            opts.max_exact,
        )
        log.info("%s %s", disease, size_check_note(check))
        checks.append(check)
    return checks


def size_check_header(opts: PermutationOptions) -> list[str]:
    """Header lines of size_check.tsv: what was simulated and how to read it."""
    if not opts.size_check_replicates:
        return ["size check skipped (saliency.size_check.replicates is 0)"]
    return [
        f"size check of the permutation test: per disease, {opts.size_check_replicates} tests on shuffled age labels "
        "(labels permuted among the disease's images, group sizes kept, so every pair is a true null; the ten age "
        f"pairs taken in turn), each exact where the splits number <= {opts.max_exact}, else "
        f"{opts.size_check_permutations} random splits; seed {opts.seed}",
        f"rejections: tests with p < alpha ({opts.alpha}); rate with a Clopper-Pearson 95% interval; a test of size "
        "<= alpha exceeds `bound` rejections with probability < 1e-4 (Binomial quantile): passed = rejections <= bound",
    ]
