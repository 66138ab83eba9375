"""`syndface train-gan`: train the conditional StyleGAN2-ADA of one cross-validation fold.

Training set (the paper's): the fold's affected images (WS, 22q, control; folds != k) repeated
`gan.oversample` times, plus a fixed seeded sample of `gan.unaffected_per_age` unaffected images
per age group, also from folds != k, so the validation fold never reaches the GAN. Batches are
half affected, half unaffected (`gan.balance: paper_text`, the paper's text) or drawn uniformly
(`uniform`, the paper's code: ~77% affected at the paper's counts); fake labels are drawn the same
way. Each fold's GAN has its own seed, derived from the master seed and the fold (`fold_seed`).

Per step, as StyleGAN2-ADA: G and D with the non-saturating logistic loss, path-length
regularisation of G every 4 steps and R1 on reals every 16 (lazy regularisation, Adam's lr and
betas rescaled), style mixing, an EMA copy of G, and ADA on everything D sees.

Every `gan.snapshot_kimg` and at the end: the EMA generator is saved under snapshots/ (the
`gan.snapshots_kept` latest and the best so far stay), measured with FID and KID against the real
training images (syndface.gan.metrics; metrics.tsv and metrics.png), a sample grid goes to
samples/ and checkpoint.pt is written (a rerun of a killed job continues from it, metric history
included). network.pt holds the snapshot `gan.select` picks (last, best_fid, best_kid) as G_ema,
with its kimg and scores under "selected", plus the final G and D state dicts and the arch
(`syndface.gan.networks.load_network`); training_set.tsv lists the images. Both .pt files record
the run's signature (architecture, options, data, metric settings), the syndface version and the
precision; a checkpoint that differs in any but the metric settings is refused, not resumed.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from syndface import __version__
from syndface.gan.augment import AdaController, AugmentPipe
from syndface.gan.networks import Discriminator, GanArch, Generator, label_vectors, use_reduced_precision
from syndface.gan.options import GanOptions
from syndface.images import save_png, to_uint8
from syndface.io import read_tsv, save_torch, write_tsv
from syndface.log import format_seconds, get_logger
from syndface.options import add_options_argument
from syndface.parallel import (
    DistEnv,
    all_reduce_grads,
    all_reduce_sum,
    broadcast_state,
    gather_objects,
    init_distributed,
    micro_parts,
    rank_share,
    rng_state,
    set_rng_state,
)
from syndface.runtime import Precision, configure, resolve_device, resolve_precision
from syndface.seeding import derive_seed, rng, seed_everything
from syndface.taxonomy import AFFECTED, AGE_GROUPS, DISEASES

log = get_logger("syndface.gan.train")

CHECKPOINT_VERSION = 2


@dataclass(frozen=True)
class TrainOptions:
    """Optimisation settings (defaults: the paper's paper256 config, except kimg)."""

    kimg: float = 2.0
    batch: int = 16
    lr: float = 0.0025
    r1_gamma: float = 1.0
    pl_weight: float = 2.0
    style_mixing: float = 0.9
    ema_kimg: float = 20.0
    ema_rampup: float | None = None
    ada_target: float = 0.6
    ada_kimg: float = 500.0
    ada_interval: int = 4
    g_reg_interval: int = 4
    d_reg_interval: int = 16
    seed: int = 1
    balance: str = "paper_text"

    # Settings that may change between a killed run and its rerun without invalidating the checkpoint.
    RESUMABLE = ("kimg",)


def gan_training_set(
    index: pd.DataFrame, folds: pd.DataFrame, fold: int, oversample: int, unaffected_per_age: int, seed: int
) -> pd.DataFrame:
    """The GAN training images of `fold`: image_id, row (in the cache), disease, age_group, copies.

    Only images with fold != `fold` are eligible. Affected images get `oversample` copies; the
    unaffected sample (seeded per fold and age group) one each. Eligible images missing from the
    cache (failed alignment) are logged by id and left out.
    """
    known = sorted(folds["fold"].unique())
    if fold not in known:
        raise ValueError(f"fold {fold} is not in the folds table (folds: {', '.join(map(str, known))})")
    if oversample < 1 or unaffected_per_age < 0:
        raise ValueError("oversample must be >= 1 and unaffected_per_age >= 0")
    eligible = folds[folds["fold"] != fold]
    rows = dict(zip(index["image_id"], index["row"]))
    missing = sorted(set(eligible["image_id"]) - set(rows))
    if missing:
        log.warning(
            "%d training image(s) of fold %d are not in the cache and are left out: %s%s",
            len(missing),
            fold,
            ", ".join(missing[:10]),
            " ..." if len(missing) > 10 else "",
        )
    eligible = eligible[eligible["image_id"].isin(rows)].sort_values("image_id")
    affected = eligible[eligible["disease"].isin(AFFECTED)].assign(copies=oversample)
    picks = []
    for age in AGE_GROUPS:
        pool = eligible[(eligible["disease"] == "unaffected") & (eligible["age_group"] == age)]
        n = min(len(pool), unaffected_per_age)
        chosen = rng(seed, "gan-unaffected", fold, age).choice(len(pool), size=n, replace=False)
        picks.append(pool.iloc[np.sort(chosen)])
    unaffected = pd.concat(picks).assign(copies=1)
    out = pd.concat([affected, unaffected], ignore_index=True)
    if out.empty:
        raise ValueError(f"fold {fold} has no GAN training images in the cache")
    out["row"] = out["image_id"].map(rows).astype(int)
    return out[["image_id", "row", "disease", "age_group", "copies"]].reset_index(drop=True)


BALANCES = ("paper_text", "uniform")


def fold_seed(seed: int, fold: int) -> int:
    """The seed of fold `fold`'s GAN: each fold starts from its own weights and draws its own batches."""
    return derive_seed(seed, "gan", "fold", fold)


def _adam(params, lr: float, reg_interval: int, regularised: bool) -> torch.optim.Adam:
    """Adam(0, 0.99), with lr and beta2 rescaled for the extra lazy-regularisation steps when there are any."""
    ratio = reg_interval / (reg_interval + 1) if regularised else 1.0
    return torch.optim.Adam(params, lr=lr * ratio, betas=(0.0, 0.99**ratio), eps=1e-8)


class GanTrainer:
    """Networks, optimisers, ADA and the training step.

    Randomness: which reals, the fake labels and the latents of every phase come from one
    batch generator, the same on every rank, so the ranks draw one global batch and each takes
    its share; what happens inside the networks (synthesis noise, style mixing, ADA's draws)
    comes from torch's global generators, one stream per rank (rank 0's is a single process's).

    Precision (`syndface.runtime.Precision`): fp16 or bf16 run the `num_fp16_res` highest
    resolutions of G and D in that dtype as the official implementation does
    (`networks.use_reduced_precision`: activations clamped to +-256, fp16 weights and styles
    pre-normalised); the rest, the losses, the regularisers' squares and the optimiser stay
    fp32. Like the official code there is no loss scaling: the clamp and the pre-normalisation
    keep the forward pass in range, and a non-finite gradient entry is zeroed (nan_to_num)
    before each optimiser step.
    """

    def __init__(
        self,
        arch: GanArch,
        opts: TrainOptions,
        images: torch.Tensor,
        items: torch.Tensor,
        labels: torch.Tensor,
        device: torch.device,
        precision: str | Precision = "fp32",
        micro_batch: int = 0,
        num_fp16_res: int = 4,
        env: DistEnv | None = None,
    ):
        """`images`: uint8 [U, 3, R, R]; `items`: index into images per training item (copies repeated); `labels`: [items, 9].

        `micro_batch`: most images per forward pass on one GPU (0 = the rank's whole share), a
        multiple of the minibatch-std group. Without `env`, a process started by torchrun joins
        its job's process group here and trains its share of every batch."""
        if env is None:
            env, device = init_distributed(device)
        if images.shape[-1] != arch.resolution:
            raise ValueError(f"training images are {images.shape[-1]} px but the GAN resolution is {arch.resolution}")
        self.precision = precision if isinstance(precision, Precision) else resolve_precision(precision, device)
        self.group = min(arch.mbstd_group, opts.batch)
        rank_share(opts.batch, env, self.group)  # the batch must split into equal shares of whole groups
        micro_parts(opts.batch // env.world_size, micro_batch, self.group)  # and micro_batch into whole groups
        seed_everything(opts.seed)  # the same initial networks on every rank
        self.arch, self.opts, self.device, self.env, self.micro_batch = arch, opts, device, env, micro_batch
        self.images, self.items, self.labels = images.to(device), items, labels
        self.G = Generator(arch).to(device).train()
        self.D = Discriminator(arch).to(device).train()
        self.reduced_resolutions = {"G": [], "D": []}
        if self.precision.reduced:
            self.reduced_resolutions = {
                "G": use_reduced_precision(self.G, self.precision.dtype, num_fp16_res),
                "D": use_reduced_precision(self.D, self.precision.dtype, num_fp16_res),
            }
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt_G = _adam(self.G.parameters(), opts.lr, opts.g_reg_interval, opts.pl_weight > 0)
        self.opt_D = _adam(self.D.parameters(), opts.lr, opts.d_reg_interval, opts.r1_gamma > 0)
        self.augment = AugmentPipe().to(device)
        self.ada = AdaController(self.augment, opts.ada_target, opts.batch, opts.ada_interval, opts.ada_kimg)
        self.pl_mean = torch.zeros([], device=device)
        self.step = 0
        self.nimg = 0
        self.batch_gen = torch.Generator().manual_seed(derive_seed(opts.seed, "gan", "batch"))
        if opts.balance not in BALANCES:
            raise ValueError(f"unknown gan.balance {opts.balance!r}; allowed: {', '.join(BALANCES)}")
        unaffected = labels[:, DISEASES.index("unaffected")] > 0
        self.pools = (torch.nonzero(~unaffected).flatten(), torch.nonzero(unaffected).flatten())
        if opts.balance == "paper_text" and min(len(p) for p in self.pools) == 0:
            raise ValueError(
                "gan.balance paper_text fills each batch half with affected and half with unaffected images, but "
                f"the training set has {len(self.pools[0])} affected and {len(self.pools[1])} unaffected items; "
                "set gan.unaffected_per_age > 0 or gan.balance uniform"
            )
        self.history: list[dict[str, Any]] = []  # metrics per snapshot (syndface.gan.metrics)
        self.metrics_changed = False  # set on resume when the checkpoint measured with other settings
        if env.rank:
            torch.manual_seed(derive_seed(opts.seed, "gan", "rank", env.rank))

    def runtime(self) -> dict[str, Any]:
        return {
            "precision": self.precision.name,
            "reduced_precision_resolutions": self.reduced_resolutions,
            "micro_batch": self.micro_batch,
            "processes": self.env.world_size,
        }

    # --- one training step --------------------------------------------------------------

    def _draw(self, n: int) -> torch.Tensor:
        """n training items: uniformly (the paper's code: ~77% affected at the paper's counts), or
        half affected and half unaffected in random order (`paper_text`: the paper's text)."""
        if self.opts.balance == "uniform":
            return torch.randint(len(self.items), (n,), generator=self.batch_gen)
        affected, unaffected = self.pools
        half = n // 2
        picks = torch.cat(
            [
                affected[torch.randint(len(affected), (n - half,), generator=self.batch_gen)],
                unaffected[torch.randint(len(unaffected), (half,), generator=self.batch_gen)],
            ]
        )
        return picks[torch.randperm(n, generator=self.batch_gen)]

    def _latents(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """z and labels of n fakes; the labels are those of training items drawn as the reals are
        (`_draw`), so fakes follow the training batches' label mix."""
        labels = self.labels[self._draw(n)]
        z = torch.randn(n, self.arch.z_dim, generator=self.batch_gen)
        return z.to(self.device), labels.to(self.device)

    def _reals(self, index: torch.Tensor) -> torch.Tensor:
        return self.images[self.items[index].to(self.device)].float() / 127.5 - 1

    def _ws(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        ws = self.G.map(z, labels, update_w_avg=True)
        if self.opts.style_mixing > 0 and float(torch.rand(())) < self.opts.style_mixing:
            cutoff = int(torch.randint(1, self.G.num_ws, ()))
            other = self.G.map(torch.randn_like(z), labels)
            ws = torch.cat([ws[:, :cutoff], other[:, cutoff:]], dim=1)
        return ws

    def _phase(self, opt: torch.optim.Optimizer, net: torch.nn.Module, n: int, group: int, loss_of) -> float:
        """One optimiser step of `net` on a global batch of n: this rank's share in micro-batches,
        `loss_of(positions)` giving each micro-batch's part of the batch loss; returns the batch
        loss (summed over ranks). Gradients are summed over ranks, non-finite entries zeroed."""
        share = rank_share(n, self.env, group)
        opt.zero_grad(set_to_none=True)
        total = torch.zeros((), device=self.device)
        for part in micro_parts(len(share), self.micro_batch, group):
            loss = loss_of(torch.from_numpy(share[part]).to(self.device))
            loss.backward()
            total += loss.detach()
        params = [p for p in net.parameters() if p.grad is not None]
        all_reduce_grads(params, self.env)
        for p in params:
            torch.nan_to_num(p.grad, nan=0.0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()
        return float(all_reduce_sum(total, self.env))

    def g_main(self, z: torch.Tensor, labels: torch.Tensor) -> float:
        """G's adversarial step: non-saturating loss mean softplus(-D(aug(G(z))))."""
        n, G, D = len(z), self.G, self.D
        G.requires_grad_(True)
        D.requires_grad_(False)

        def loss_of(p: torch.Tensor) -> torch.Tensor:
            fakes = G.synthesis(self._ws(z[p], labels[p]))
            return F.softplus(-D(self.augment(fakes), labels[p])).sum() / n

        return self._phase(self.opt_G, G, n, self.group, loss_of)

    def g_path_length(self, z: torch.Tensor, labels: torch.Tensor) -> float:
        """Path-length regularisation: penalty (|J^T y| - a)^2, a the running mean of the lengths.

        The penalty uses a as it was before this batch, and a then moves towards the mean length
        of the whole batch (over every micro-batch and rank), so a is one number whatever the
        split; the official code moves a first, by each micro-batch of each GPU, which differs by
        1 % of one batch's deviation."""
        n, G, o = len(z), self.G, self.opts
        lengths_sum = torch.zeros((), device=self.device)
        pl_mean = self.pl_mean.clone()

        def loss_of(p: torch.Tensor) -> torch.Tensor:
            nonlocal lengths_sum
            ws = self._ws(z[p], labels[p])
            fakes = G.synthesis(ws)
            noise = torch.randn_like(fakes) / math.sqrt(fakes.shape[2] * fakes.shape[3])
            (grad,) = torch.autograd.grad((fakes * noise).sum(), ws, create_graph=True)
            lengths = grad.float().square().sum(2).mean(1).sqrt()
            lengths_sum = lengths_sum + lengths.detach().sum()
            return (lengths - pl_mean).square().sum() / n * o.pl_weight * o.g_reg_interval

        penalty = self._phase(self.opt_G, G, n, 1, loss_of) / (o.pl_weight * o.g_reg_interval)
        self.pl_mean.copy_(self.pl_mean.lerp(all_reduce_sum(lengths_sum, self.env) / n, 0.01))
        return penalty

    def d_main(
        self, z: torch.Tensor, labels: torch.Tensor, real_index: torch.Tensor, real_labels: torch.Tensor
    ) -> tuple[float, torch.Tensor]:
        """D's adversarial step: softplus(D(aug(fake))) + softplus(-D(aug(real))); returns the loss
        and (sum of sign(D(real)), count) of this rank for ADA."""
        n, G, D = len(z), self.G, self.D
        G.requires_grad_(False)
        D.requires_grad_(True)
        signs = torch.zeros(2, device=self.device)

        def loss_of(p: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                fakes = G.synthesis(self._ws(z[p], labels[p]))
            fake_logits = D(self.augment(fakes), labels[p])
            real_logits = D(self.augment(self._reals(real_index[p.cpu()])), real_labels[p])
            signs[0] += real_logits.detach().sign().sum()
            signs[1] += real_logits.numel()
            return (F.softplus(fake_logits).sum() + F.softplus(-real_logits).sum()) / n

        return self._phase(self.opt_D, D, n, self.group, loss_of), signs

    def d_r1(self, real_index: torch.Tensor, real_labels: torch.Tensor) -> tuple[float, torch.Tensor]:
        """R1: (gamma / 2) |grad_x D(aug(x))|^2 on reals (through the augmentation); returns the
        penalty and this rank's (sum of signs, count) for ADA."""
        n, D, o = len(real_index), self.D, self.opts
        signs = torch.zeros(2, device=self.device)

        def loss_of(p: torch.Tensor) -> torch.Tensor:
            x = self._reals(real_index[p.cpu()]).requires_grad_(True)
            logits = D(self.augment(x), real_labels[p])
            signs[0] += logits.detach().sign().sum()
            signs[1] += logits.numel()
            (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
            return grad.float().square().sum([1, 2, 3]).sum() / n * (o.r1_gamma / 2) * o.d_reg_interval

        return self._phase(self.opt_D, D, n, self.group, loss_of) / ((o.r1_gamma / 2) * o.d_reg_interval), signs

    def train_step(self) -> dict[str, float]:
        o, n = self.opts, self.opts.batch
        stats: dict[str, float] = {}
        # The global batch's draws, identical on every rank.
        pick = self._draw(n)
        real_labels = self.labels[pick].to(self.device)
        g_latents, d_latents = self._latents(n), self._latents(n)
        pl = o.pl_weight > 0 and self.step % o.g_reg_interval == 0
        pl_latents = self._latents(max(n // 2, 1)) if pl else None

        stats["loss_G"] = self.g_main(*g_latents)
        if pl_latents is not None:
            stats["pl_penalty"] = self.g_path_length(*pl_latents)
        stats["loss_D"], signs = self.d_main(*d_latents, pick, real_labels)
        if o.r1_gamma > 0 and self.step % o.d_reg_interval == 0:
            stats["r1_penalty"], r1_signs = self.d_r1(pick, real_labels)
            signs += r1_signs
        sign_sum, count = all_reduce_sum(signs, self.env).tolist()
        self.ada.sign_sum += sign_sum
        self.ada.count += int(count)

        broadcast_state(self.G, self.env, buffers_only=True)  # one w_avg: rank 0's
        self._update_ema()
        r_t = self.ada.step()
        if r_t is not None:
            stats["r_t"] = r_t
        stats["ada_p"] = float(self.augment.p)
        self.step += 1
        self.nimg += n
        return stats

    @torch.no_grad()
    def _update_ema(self) -> None:
        ema_nimg = self.opts.ema_kimg * 1000
        if self.opts.ema_rampup:
            ema_nimg = min(ema_nimg, (self.nimg + self.opts.batch) * self.opts.ema_rampup)
        beta = 0.5 ** (self.opts.batch / max(ema_nimg, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters()):
            p_ema.copy_(p.detach().lerp(p_ema, beta))
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    # --- state --------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The training state (collective under data parallelism: it gathers every rank's generators)."""
        state = {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "G_ema": self.G_ema.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "augment": self.augment.state_dict(),
            "ada": self.ada.state_dict(),
            "pl_mean": self.pl_mean.cpu(),
            "step": self.step,
            "nimg": self.nimg,
            "rng_batch": self.batch_gen.get_state(),
            "rng_cpu": torch.get_rng_state(),
            "runtime": self.runtime(),
            "metrics": list(self.history),
        }
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        if self.env.distributed:
            state["rng_ranks"] = gather_objects(rng_state(self.device), self.env)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "rng_batch" not in state:
            raise ValueError(
                "the checkpoint was written by an older syndface (no batch generator); delete it to start over"
            )
        for name in ("G", "D", "G_ema", "opt_G", "opt_D", "augment"):
            getattr(self, name).load_state_dict(state[name])
        self.ada.load_state_dict(state["ada"])
        self.pl_mean.copy_(state["pl_mean"])
        self.step, self.nimg = int(state["step"]), int(state["nimg"])
        self.history = [dict(row) for row in state.get("metrics", [])]
        self.batch_gen.set_state(state["rng_batch"])
        ranks = state.get("rng_ranks")
        if self.env.distributed and ranks is not None and len(ranks) == self.env.world_size:
            set_rng_state(ranks[self.env.rank], self.device)
        elif self.env.is_main:
            torch.set_rng_state(state["rng_cpu"])
            if self.device.type == "cuda" and "rng_cuda" in state:
                torch.cuda.set_rng_state(state["rng_cuda"], self.device)
        else:  # a rank the checkpoint did not have: a fresh stream of its own
            torch.manual_seed(derive_seed(self.opts.seed, "gan", "rank", self.env.rank, self.step))
        if state.get("runtime", self.runtime()) != self.runtime():
            log.warning(
                "resuming a run that trained with %s under %s: the result will differ slightly from an uninterrupted run",
                state["runtime"],
                self.runtime(),
            )


# --- sample grids ---------------------------------------------------------------------------


def grid_labels(identities: int) -> tuple[list[str], list[str]]:
    """Disease and age of each grid cell: rows = identity x disease, columns = age groups."""
    diseases = [d for _ in range(identities) for d in DISEASES for _ in AGE_GROUPS]
    ages = [a for _ in range(identities) for _ in DISEASES for a in AGE_GROUPS]
    return diseases, ages


@torch.no_grad()
def render_grid(G: Generator, seed: int, identities: int = 2, psi: float = 1.0) -> np.ndarray:
    """uint8 mosaic of G at every disease x age label for a few fixed latents (same latent along a row block)."""
    diseases, ages = grid_labels(identities)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(identities, G.arch.z_dim, generator=gen).repeat_interleave(len(DISEASES) * len(AGE_GROUPS), 0)
    device = next(G.parameters()).device
    images = to_uint8(G(z.to(device), label_vectors(diseases, ages).to(device), psi=psi, noise_mode="const"))
    rows, cols = identities * len(DISEASES), len(AGE_GROUPS)
    r = images.shape[1]
    return images.reshape(rows, cols, r, r, 3).transpose(0, 2, 1, 3, 4).reshape(rows * r, cols * r, 3)


# --- the run --------------------------------------------------------------------------------


def training_tensors(images: np.ndarray, training_set: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(unique images uint8 NCHW, item -> image index with copies repeated, item labels [items, 9])."""
    pixels = (
        torch.from_numpy(np.ascontiguousarray(images[training_set["row"].to_numpy()])).permute(0, 3, 1, 2).contiguous()
    )
    items = torch.from_numpy(np.repeat(np.arange(len(training_set)), training_set["copies"].to_numpy()))
    labels = label_vectors(list(training_set["disease"]), list(training_set["age_group"]))[items]
    return pixels, items, labels


def run_signature(
    arch: GanArch, opts: TrainOptions, data: dict[str, Any], training_set: pd.DataFrame
) -> dict[str, Any]:
    """What a checkpoint must match to be resumed (everything but the RESUMABLE options)."""
    ids = "\n".join(f"{i}:{c}" for i, c in zip(training_set["image_id"], training_set["copies"]))
    options = {k: v for k, v in asdict(opts).items() if k not in TrainOptions.RESUMABLE}
    return {
        "arch": arch.as_dict(),
        "options": options,
        "data": data,
        "training_set_sha256": hashlib.sha256(ids.encode()).hexdigest(),
    }


def provenance(trainer: GanTrainer) -> dict[str, Any]:
    """What made the weights besides the signature: the code's version and the arithmetic."""
    return {"syndface_version": __version__, "precision": trainer.precision.name}


def snapshot_path(out_dir: Path, kimg: float) -> Path:
    return out_dir / "snapshots" / f"kimg{kimg:09.3f}.pt"


def prune_snapshots(out_dir: Path, keep: set[float]) -> None:
    """Delete snapshot files whose kimg is not in `keep` (also leftovers of a killed run)."""
    for path in sorted((out_dir / "snapshots").glob("kimg*.pt")):
        if not any(path == snapshot_path(out_dir, k) for k in keep):
            path.unlink()


def write_metrics(
    history: list[dict[str, Any]], chosen: dict[str, Any] | None, select: str, description: str, out_dir: Path
) -> None:
    """metrics.tsv (one row per snapshot; the header names the extractor and the chosen snapshot) and metrics.png."""
    from syndface.gan.metrics import history_table, metrics_figure
    from syndface.io import save_figure

    header = [f"FID/KID of the EMA generator per snapshot against the fold's real GAN training images; {description}"]
    if chosen is not None:
        header.append(
            f"network.pt = snapshot at kimg {chosen['kimg']:g} (gan.select {select}): "
            f"FID {chosen['fid']:.4g}, KID {chosen['kid_mean']:.4g} +- {chosen['kid_std']:.2g}"
        )
    table = history_table(history, None if chosen is None else float(chosen["kimg"]))
    write_tsv(table, out_dir / "metrics.tsv", header_lines=header)
    save_figure(
        metrics_figure(history, chosen, f"GAN fold {out_dir.name.removeprefix('fold')}"), out_dir / "metrics.png"
    )


def take_snapshot(trainer: GanTrainer, out_dir: Path, evaluator, select: str, keep: int) -> None:
    """Save the EMA generator, measure it (when an evaluator is given), drop surplus snapshot files."""
    from syndface.gan.metrics import kept_snapshots

    kimg = trainer.nimg / 1000
    row: dict[str, Any] = {"kimg": kimg, "fid": math.nan, "kid_mean": math.nan, "kid_std": math.nan}
    if evaluator is not None:
        row = evaluator(trainer.G_ema, kimg)
        log.info(
            "kimg %.3f: FID %.4g, KID %.4g +- %.2g (%s features, %d real, %d fake)",
            kimg,
            row["fid"],
            row["kid_mean"],
            row["kid_std"],
            row["extractor"],
            row["n_real"],
            row["n_fake"],
        )
    trainer.history = [r for r in trainer.history if not math.isclose(float(r["kimg"]), kimg)] + [row]
    save_torch(
        {"arch": trainer.arch.as_dict(), "G_ema": trainer.G_ema.state_dict(), "kimg": kimg, "metrics": row},
        snapshot_path(out_dir, kimg),
    )
    prune_snapshots(out_dir, kept_snapshots(trainer.history, keep, select))


def remeasure_snapshots(trainer: GanTrainer, out_dir: Path, evaluator) -> None:
    """Rebuild the metric history from the snapshot files on disk with the current evaluator (a
    resumed run whose feature extractor changed, e.g. a retrained classifier); snapshots already
    deleted cannot be measured again and leave the history."""
    rows = []
    for path in sorted((out_dir / "snapshots").glob("kimg*.pt")):
        saved = torch.load(path, map_location="cpu", weights_only=True)
        G = copy.deepcopy(trainer.G_ema)
        G.load_state_dict(saved["G_ema"])
        rows.append(evaluator(G, float(saved["kimg"])) if evaluator is not None else {**saved["metrics"]})
    log.warning(
        "the metric settings changed since the checkpoint: re-measured the %d snapshot(s) still on disk (kimg %s)",
        len(rows),
        ", ".join(f"{r['kimg']:g}" for r in rows) or "none",
    )
    trainer.history = rows


def train_gan(
    trainer: GanTrainer,
    out_dir: Path,
    signature: dict[str, Any],
    snapshot_kimg: float,
    grid_seed: int,
    stop_after_steps: int | None = None,
    evaluator=None,
    select: str = "last",
    snapshots_kept: int = 3,
    metric_description: str = "no metrics measured",
) -> bool:
    """Train to opts.kimg; every snapshot_kimg (and at the end) save the EMA generator under
    snapshots/ (the `snapshots_kept` latest and the best so far are kept), measure it with
    `evaluator` (syndface.gan.metrics.SnapshotEvaluator; None = no metrics), write a sample grid
    and checkpoint. Then write network.pt with the snapshot `select` picks as G_ema and return
    True. `stop_after_steps` (a test hook standing in for a kill) returns False after that many
    steps of this call, without a checkpoint beyond the last snapshot's.

    Under data parallelism every rank trains and rank 0 alone measures and writes (and logs)."""
    from syndface.gan.metrics import choose

    if select != "last" and evaluator is None and trainer.env.is_main:
        raise ValueError(f"gan.select {select} needs metrics: give an evaluator or use gan.select last")
    checkpoint = out_dir / "checkpoint.pt"
    total_nimg = int(round(trainer.opts.kimg * 1000))
    snapshot_nimg = max(int(round(snapshot_kimg * 1000)), 1)
    start_nimg, start_time = trainer.nimg, time.monotonic()
    last_log = start_time
    steps_here = 0
    while trainer.nimg < total_nimg:
        if stop_after_steps is not None and steps_here >= stop_after_steps:
            log.info("stopping after %d step(s) as asked (test hook); rerun to resume", steps_here)
            return False
        stats = trainer.train_step()
        steps_here += 1
        now = time.monotonic()
        done = trainer.nimg >= total_nimg
        snapshot = done or trainer.nimg // snapshot_nimg > (trainer.nimg - trainer.opts.batch) // snapshot_nimg
        if snapshot or now - last_log >= 30:
            last_log = now
            rate = (trainer.nimg - start_nimg) / max(now - start_time, 1e-9)
            eta = (total_nimg - trainer.nimg) / max(rate, 1e-9)
            log.info(
                "kimg %.2f/%.2f  %s  %.1f s/kimg  ETA %s",
                trainer.nimg / 1000,
                total_nimg / 1000,
                "  ".join(f"{k} {v:.3f}" for k, v in stats.items()),
                1000 / max(rate, 1e-9),
                format_seconds(eta),
            )
        if snapshot:
            if trainer.env.is_main:
                take_snapshot(trainer, out_dir, evaluator, select, snapshots_kept)
                if evaluator is not None:
                    write_metrics(trainer.history, None, select, metric_description, out_dir)
            state = trainer.state_dict()
            if trainer.env.is_main:
                save_png(
                    render_grid(trainer.G_ema, grid_seed), out_dir / "samples" / f"kimg{trainer.nimg / 1000:09.3f}.png"
                )
                save_torch(
                    {"version": CHECKPOINT_VERSION, **provenance(trainer), "signature": signature, "state": state},
                    checkpoint,
                )
    if not trainer.env.is_main:
        return True
    if not trainer.history:  # resumed from a finished run whose snapshots are gone: measure what there is
        take_snapshot(trainer, out_dir, evaluator, select, snapshots_kept)
    chosen = choose(trainer.history, select)
    path = snapshot_path(out_dir, float(chosen["kimg"]))
    if not path.exists():
        raise FileNotFoundError(
            f"{path} (the snapshot gan.select {select} picks) is missing; delete {checkpoint} to start over"
        )
    G_ema = torch.load(path, map_location="cpu", weights_only=True)["G_ema"]
    write_metrics(trainer.history, chosen, select, metric_description, out_dir)
    save_torch(
        {
            "arch": trainer.arch.as_dict(),
            "G": trainer.G.state_dict(),
            "G_ema": G_ema,
            "D": trainer.D.state_dict(),
            "selected": {"select": select, **chosen},
            "training": {
                **signature,
                "kimg": trainer.nimg / 1000,
                "steps": trainer.step,
                "ada_p": float(trainer.augment.p),
                **provenance(trainer),
                "runtime": trainer.runtime(),
            },
        },
        out_dir / "network.pt",
    )
    log.info(
        "wrote %s: G_ema of the snapshot at kimg %g (gan.select %s; trained to %.2f kimg, ADA p %.3f)",
        out_dir / "network.pt",
        chosen["kimg"],
        select,
        trainer.nimg / 1000,
        float(trainer.augment.p),
    )
    return True


def resume_if_possible(trainer: GanTrainer, checkpoint: Path, signature: dict[str, Any]) -> bool:
    if not checkpoint.exists():
        return False
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    # The metric settings only decide what the history measured: a change there re-measures the
    # kept snapshots (remeasure_snapshots) instead of refusing the training state.
    diff = sorted(k for k in signature if k != "metrics" and saved.get("signature", {}).get(k) != signature[k])
    diff += [f"{k}: {saved.get(k)} there, {v} here" for k, v in provenance(trainer).items() if saved.get(k) != v]
    if diff:
        raise RuntimeError(
            f"{checkpoint} was written by a run with different settings ({', '.join(diff)}); "
            "rerun with the same settings to continue it, or delete it to start over"
        )
    trainer.load_state_dict(saved["state"])
    trainer.metrics_changed = saved["signature"].get("metrics") != signature.get("metrics")
    log.info("resumed from %s at %.2f kimg", checkpoint, trainer.nimg / 1000)
    return True


def fold_train_options(cfg: GanOptions, fold: int) -> TrainOptions:
    """The optimisation settings of fold `fold`'s GAN, its seed derived from the master seed and the fold."""
    return TrainOptions(
        kimg=cfg.kimg,
        batch=cfg.batch,
        lr=cfg.lr,
        r1_gamma=cfg.r1_gamma,
        pl_weight=cfg.pl_weight,
        style_mixing=cfg.style_mixing,
        ema_kimg=cfg.ema_kimg,
        ada_target=cfg.ada_target,
        ada_kimg=cfg.ada_kimg,
        seed=fold_seed(cfg.seed, fold),
        balance=cfg.balance,
    )


def snapshot_evaluator(
    cfg: GanOptions,
    pixels: torch.Tensor,
    training_set: pd.DataFrame,
    seed: int,
    device: torch.device,
    classifier: str | None,
    inception_weights: str | None,
):
    """FID/KID of the snapshots against the unique real training images (syndface.gan.metrics)."""
    from syndface.gan.metrics import SnapshotEvaluator, make_extractor

    extractor = make_extractor(cfg.metric_extractor, device, classifier, inception_weights)
    labels = label_vectors(list(training_set["disease"]), list(training_set["age_group"]))
    return SnapshotEvaluator(extractor, pixels, labels, cfg.metric_fakes, cfg.z_dim, seed, device)


def main(argv: list[str], prog: str = "syndface train-gan") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cache", required=True, help="packed image cache at the GAN resolution (results/cache/{size}px)"
    )
    parser.add_argument("--folds", required=True, help="results/folds/folds.tsv")
    parser.add_argument("--fold", type=int, required=True, help="the held-out fold k; the GAN trains on folds != k")
    parser.add_argument(
        "--resume-ffhq", default=None, help="the official FFHQ-256 pickle (ffhq-res256-mirror-paper256-noaug.pkl)"
    )
    parser.add_argument(
        "--classifier",
        default=None,
        help="the fold's real-only classifier (results/classifier/real/fold{k}/model.pt): features for FID/KID "
        "when gan.metric_extractor is classifier",
    )
    parser.add_argument(
        "--inception-weights",
        default=None,
        help="pt_inception-2015-12-05-6726825d.pth: features for FID/KID when gan.metric_extractor is inception",
    )
    add_options_argument(parser, GanOptions)
    parser.add_argument("--num-threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out-dir", required=True)
    args = parser.parse_args(argv)
    cfg = args.options

    from syndface.align.cache import load_cache

    env, device = init_distributed(resolve_device(cfg.device))
    configure(device, args.num_threads, deterministic=cfg.deterministic)
    arch = GanArch(
        resolution=cfg.resolution,
        channel_base=cfg.channel_base,
        channel_max=cfg.channel_max,
        z_dim=cfg.z_dim,
        w_dim=cfg.w_dim,
        mapping_layers=cfg.mapping_layers,
        mbstd_group=cfg.mbstd_group,
    )
    if cfg.batch % min(arch.mbstd_group, cfg.batch):
        parser.error(f"gan.batch {cfg.batch} must be a multiple of gan.mbstd_group {arch.mbstd_group}")
    opts = fold_train_options(cfg, args.fold)

    images, index = load_cache(args.cache)
    if images.shape[1] != arch.resolution:
        raise SystemExit(
            f"{args.cache} holds {images.shape[1]} px images but gan.resolution is {arch.resolution}; "
            f"point --cache at the {arch.resolution} px cache"
        )
    training_set = gan_training_set(
        index, read_tsv(args.folds), args.fold, cfg.oversample, cfg.unaffected_per_age, cfg.seed
    )
    out_dir = Path(args.out_dir)
    if env.is_main:
        write_tsv(
            training_set.drop(columns="row").assign(gan_fold=args.fold),
            out_dir / "training_set.tsv",
            header_lines=[
                f"GAN training images of fold {args.fold} (folds != {args.fold}); copies = times each image is repeated"
            ],
        )
    counts = training_set.groupby("disease")["copies"].agg(["size", "sum"])
    log.info(
        "fold %d: %s",
        args.fold,
        ", ".join(f"{d} {int(r['size'])} images x copies = {int(r['sum'])}" for d, r in counts.iterrows()),
    )

    pixels, items, labels = training_tensors(images, training_set)
    trainer = GanTrainer(
        arch, opts, pixels, items, labels, device, cfg.precision, cfg.micro_batch, cfg.num_fp16_res, env
    )
    data = {
        "fold": args.fold,
        "oversample": cfg.oversample,
        "unaffected_per_age": cfg.unaffected_per_age,
        "resume_ffhq": Path(args.resume_ffhq).name if args.resume_ffhq else None,
    }
    evaluator = None
    if env.is_main:
        evaluator = snapshot_evaluator(
            cfg, pixels, training_set, opts.seed, device, args.classifier, args.inception_weights
        )
        log.info("snapshot metrics: %s", evaluator.extractor.description)
    signature = run_signature(arch, opts, data, training_set)
    signature["metrics"] = evaluator.identity if evaluator is not None else None
    resumed = resume_if_possible(trainer, out_dir / "checkpoint.pt", signature)
    if resumed and env.is_main and trainer.metrics_changed:
        remeasure_snapshots(trainer, out_dir, evaluator)
    if not resumed and args.resume_ffhq:
        from syndface.gan.ffhq import initialise_from_ffhq

        initialise_from_ffhq(trainer.G, trainer.D, trainer.G_ema, args.resume_ffhq)
        # Render the transferred network first: a wrong source config shows here, not after hours.
        if env.is_main:
            save_png(render_grid(trainer.G_ema, cfg.seed), out_dir / "samples" / "init.png")
    log.info(
        "training on %s (%s): %d items, %s px, batch %d, %.2f kimg",
        device,
        trainer.precision.describe(),
        len(items),
        arch.resolution,
        opts.batch,
        opts.kimg,
    )
    train_gan(
        trainer,
        out_dir,
        signature,
        cfg.snapshot_kimg,
        cfg.seed,
        evaluator=evaluator,
        select=cfg.select,
        snapshots_kept=cfg.snapshots_kept,
        metric_description=evaluator.extractor.description if evaluator is not None else "",
    )
    return 0
