"""`syndface train-gan`: train the conditional StyleGAN2-ADA of one cross-validation fold.

Training set (the paper's): the fold's affected images (WS, 22q, control; folds != k) repeated
`--oversample` times, plus a fixed seeded sample of `--unaffected-per-age` unaffected images per
age group, also from folds != k, so the validation fold never reaches the GAN.

Per step, as StyleGAN2-ADA: G and D with the non-saturating logistic loss, path-length
regularisation of G every 4 steps and R1 on reals every 16 (lazy regularisation, Adam's lr and
betas rescaled), style mixing, an EMA copy of G, and ADA on everything D sees. Outputs in
--out-dir: network.pt (G, G_ema, D state dicts + arch; `syndface.gan.networks.load_network`),
training_set.tsv, checkpoint.pt (a rerun of a killed job continues from it) and sample grids
under samples/ every --snapshot-kimg.
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

from syndface.gan.augment import AdaController, AugmentPipe
from syndface.gan.networks import Discriminator, GanArch, Generator, label_vectors
from syndface.images import save_png, to_uint8
from syndface.io import read_tsv, save_torch, write_tsv
from syndface.log import format_seconds, get_logger
from syndface.runtime import configure, resolve_device
from syndface.seeding import rng, seed_everything
from syndface.taxonomy import AFFECTED, AGE_GROUPS, DISEASES

log = get_logger("syndface.gan.train")

CHECKPOINT_VERSION = 1


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


def _adam(params, lr: float, reg_interval: int, regularised: bool) -> torch.optim.Adam:
    """Adam(0, 0.99), with lr and beta2 rescaled for the extra lazy-regularisation steps when there are any."""
    ratio = reg_interval / (reg_interval + 1) if regularised else 1.0
    return torch.optim.Adam(params, lr=lr * ratio, betas=(0.0, 0.99**ratio), eps=1e-8)


class GanTrainer:
    """Networks, optimisers, ADA and the training step; everything random draws from torch's global generators."""

    def __init__(
        self,
        arch: GanArch,
        opts: TrainOptions,
        images: torch.Tensor,
        items: torch.Tensor,
        labels: torch.Tensor,
        device: torch.device,
        precision: str = "fp32",
    ):
        """`images`: uint8 [U, 3, R, R]; `items`: index into images per training item (copies repeated); `labels`: [items, 9]."""
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")
        if images.shape[-1] != arch.resolution:
            raise ValueError(f"training images are {images.shape[-1]} px but the GAN resolution is {arch.resolution}")
        seed_everything(opts.seed)
        self.arch, self.opts, self.device = arch, opts, device
        self.images, self.items, self.labels = images.to(device), items, labels
        self.precision = precision
        self.G = Generator(arch).to(device).train()
        self.D = Discriminator(arch).to(device).train()
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt_G = _adam(self.G.parameters(), opts.lr, opts.g_reg_interval, opts.pl_weight > 0)
        self.opt_D = _adam(self.D.parameters(), opts.lr, opts.d_reg_interval, opts.r1_gamma > 0)
        self.augment = AugmentPipe().to(device)
        self.ada = AdaController(self.augment, opts.ada_target, opts.batch, opts.ada_interval, opts.ada_kimg)
        self.pl_mean = torch.zeros([], device=device)
        self.step = 0
        self.nimg = 0

    # --- one training step --------------------------------------------------------------

    def _autocast(self) -> torch.autocast:
        """bf16 autocast for the main G and D passes when asked; the regularisers always run in fp32."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def _sample_labels(self, n: int) -> torch.Tensor:
        """Labels of uniformly drawn training items, so fakes follow the training label mix."""
        return self.labels[torch.randint(len(self.items), (n,))].to(self.device)

    def _ws(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        ws = self.G.map(z, labels, update_w_avg=True)
        if self.opts.style_mixing > 0 and float(torch.rand(())) < self.opts.style_mixing:
            cutoff = int(torch.randint(1, self.G.num_ws, ()))
            other = self.G.map(torch.randn_like(z), labels)
            ws = torch.cat([ws[:, :cutoff], other[:, cutoff:]], dim=1)
        return ws

    def _optimise(self, opt: torch.optim.Optimizer, loss: torch.Tensor, params) -> None:
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for p in params:
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0.0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()

    def train_step(self) -> dict[str, float]:
        o, G, D, n = self.opts, self.G, self.D, self.opts.batch
        stats: dict[str, float] = {}
        pick = torch.randint(len(self.items), (n,))
        reals = self.images[self.items[pick].to(self.device)].float() / 127.5 - 1
        real_labels = self.labels[pick].to(self.device)

        G.requires_grad_(True)
        D.requires_grad_(False)
        labels = self._sample_labels(n)
        with self._autocast():
            fakes = G.synthesis(self._ws(torch.randn(n, self.arch.z_dim, device=self.device), labels))
            loss = F.softplus(-D(self.augment(fakes), labels)).mean()
        self._optimise(self.opt_G, loss, G.parameters())
        stats["loss_G"] = float(loss.detach())

        if o.pl_weight > 0 and self.step % o.g_reg_interval == 0:
            m = max(n // 2, 1)
            ws = self._ws(torch.randn(m, self.arch.z_dim, device=self.device), self._sample_labels(m))
            fakes = G.synthesis(ws)
            noise = torch.randn_like(fakes) / math.sqrt(fakes.shape[2] * fakes.shape[3])
            (grad,) = torch.autograd.grad((fakes * noise).sum(), ws, create_graph=True)
            lengths = grad.square().sum(2).mean(1).sqrt()
            self.pl_mean.copy_(self.pl_mean.lerp(lengths.mean().detach(), 0.01))
            penalty = (lengths - self.pl_mean).square().mean()
            self._optimise(self.opt_G, penalty * o.pl_weight * o.g_reg_interval, G.parameters())
            stats["pl_penalty"] = float(penalty.detach())

        G.requires_grad_(False)
        D.requires_grad_(True)
        labels = self._sample_labels(n)
        with self._autocast():
            with torch.no_grad():
                fakes = G.synthesis(self._ws(torch.randn(n, self.arch.z_dim, device=self.device), labels))
            fake_logits = D(self.augment(fakes), labels)
            real_logits = D(self.augment(reals), real_labels)
            loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
        self.ada.accumulate(real_logits)
        self._optimise(self.opt_D, loss, D.parameters())
        stats["loss_D"] = float(loss.detach())

        if o.r1_gamma > 0 and self.step % o.d_reg_interval == 0:
            x = reals.detach().requires_grad_(True)
            logits = D(self.augment(x), real_labels)
            self.ada.accumulate(logits)
            (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
            penalty = grad.square().sum([1, 2, 3]).mean()
            self._optimise(self.opt_D, penalty * (o.r1_gamma / 2) * o.d_reg_interval, D.parameters())
            stats["r1_penalty"] = float(penalty.detach())

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
            "rng_cpu": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("G", "D", "G_ema", "opt_G", "opt_D", "augment"):
            getattr(self, name).load_state_dict(state[name])
        self.ada.load_state_dict(state["ada"])
        self.pl_mean.copy_(state["pl_mean"])
        self.step, self.nimg = int(state["step"]), int(state["nimg"])
        torch.set_rng_state(state["rng_cpu"])
        if self.device.type == "cuda" and "rng_cuda" in state:
            torch.cuda.set_rng_state(state["rng_cuda"], self.device)


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


def train_gan(
    trainer: GanTrainer, out_dir: Path, signature: dict[str, Any], snapshot_kimg: float, grid_seed: int
) -> None:
    """Train to opts.kimg, checkpointing and writing a sample grid every snapshot_kimg; then write network.pt."""
    checkpoint = out_dir / "checkpoint.pt"
    total_nimg = int(round(trainer.opts.kimg * 1000))
    snapshot_nimg = max(int(round(snapshot_kimg * 1000)), 1)
    start_nimg, start_time = trainer.nimg, time.monotonic()
    last_log = start_time
    while trainer.nimg < total_nimg:
        stats = trainer.train_step()
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
            save_png(
                render_grid(trainer.G_ema, grid_seed), out_dir / "samples" / f"kimg{trainer.nimg / 1000:09.3f}.png"
            )
            save_torch(
                {"version": CHECKPOINT_VERSION, "signature": signature, "state": trainer.state_dict()}, checkpoint
            )
    save_torch(
        {
            "arch": trainer.arch.as_dict(),
            "G": trainer.G.state_dict(),
            "G_ema": trainer.G_ema.state_dict(),
            "D": trainer.D.state_dict(),
            "training": {
                **signature,
                "kimg": trainer.nimg / 1000,
                "steps": trainer.step,
                "ada_p": float(trainer.augment.p),
            },
        },
        out_dir / "network.pt",
    )
    log.info("wrote %s (%.2f kimg, ADA p %.3f)", out_dir / "network.pt", trainer.nimg / 1000, float(trainer.augment.p))


def resume_if_possible(trainer: GanTrainer, checkpoint: Path, signature: dict[str, Any]) -> bool:
    if not checkpoint.exists():
        return False
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if saved.get("signature") != signature:
        diff = sorted(k for k in signature if saved.get("signature", {}).get(k) != signature[k])
        raise RuntimeError(
            f"{checkpoint} was written by a run with different settings ({', '.join(diff)}); "
            "rerun with the same settings to continue it, or delete it to start over"
        )
    trainer.load_state_dict(saved["state"])
    log.info("resumed from %s at %.2f kimg", checkpoint, trainer.nimg / 1000)
    return True


def main(argv: list[str], prog: str = "syndface train-gan") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cache", required=True, help="packed image cache at the GAN resolution (results/cache/{size}px)"
    )
    parser.add_argument("--folds", required=True, help="results/folds/folds.tsv")
    parser.add_argument("--fold", type=int, required=True, help="the held-out fold k; the GAN trains on folds != k")
    parser.add_argument("--out-dir", required=True)
    arch_defaults = GanArch()
    parser.add_argument("--resolution", type=int, default=arch_defaults.resolution)
    parser.add_argument(
        "--channel-base",
        type=int,
        default=arch_defaults.channel_base,
        help="channels at r px = channel_base / r (paper 16384 = TF fmap_base 8192)",
    )
    parser.add_argument("--channel-max", type=int, default=arch_defaults.channel_max)
    parser.add_argument("--z-dim", type=int, default=arch_defaults.z_dim)
    parser.add_argument(
        "--w-dim", type=int, default=arch_defaults.w_dim, help="also the label embedding size (split in halves)"
    )
    parser.add_argument("--mapping-layers", type=int, default=arch_defaults.mapping_layers)
    parser.add_argument(
        "--mbstd-group",
        type=int,
        default=arch_defaults.mbstd_group,
        help="minibatch-std group (paper 8); must divide --batch",
    )
    parser.add_argument(
        "--conv-clamp",
        type=float,
        default=arch_defaults.conv_clamp,
        help="activation clamp (256 as the FFHQ source; 0 = none)",
    )
    o = TrainOptions()
    parser.add_argument("--kimg", type=float, default=o.kimg, help="training length in thousands of real images shown")
    parser.add_argument("--batch", type=int, default=o.batch)
    parser.add_argument("--lr", type=float, default=o.lr)
    parser.add_argument("--r1-gamma", type=float, default=o.r1_gamma)
    parser.add_argument(
        "--pl-weight", type=float, default=o.pl_weight, help="path-length regularisation weight (paper 2; 0 = off)"
    )
    parser.add_argument("--style-mixing", type=float, default=o.style_mixing)
    parser.add_argument("--ema-kimg", type=float, default=o.ema_kimg)
    parser.add_argument(
        "--ema-rampup",
        type=float,
        default=None,
        help="EMA ramp-up as a fraction of images seen (default none, as paper256)",
    )
    parser.add_argument("--ada-target", type=float, default=o.ada_target)
    parser.add_argument(
        "--ada-kimg",
        type=float,
        default=o.ada_kimg,
        help="kimg for ADA p to move by 1 (500; the paper's FFHQ fine-tuning used 100)",
    )
    parser.add_argument("--oversample", type=int, default=6, help="copies of each affected image (paper 6)")
    parser.add_argument(
        "--unaffected-per-age", type=int, default=500, help="unaffected images sampled per age group (paper 500)"
    )
    parser.add_argument("--snapshot-kimg", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=o.seed)
    parser.add_argument(
        "--resume-ffhq",
        default="none",
        help="path of the official FFHQ-256 pickle (ffhq-res256-mirror-paper256-noaug.pkl) or none",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="auto = bf16 autocast on CUDA, fp32 on CPU",
    )
    parser.add_argument("--num-threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)

    from syndface.align.cache import load_cache

    device = resolve_device(args.device)
    configure(device, args.num_threads)
    precision = ("bf16" if device.type == "cuda" else "fp32") if args.precision == "auto" else args.precision
    arch = GanArch(
        resolution=args.resolution,
        channel_base=args.channel_base,
        channel_max=args.channel_max,
        z_dim=args.z_dim,
        w_dim=args.w_dim,
        mapping_layers=args.mapping_layers,
        mbstd_group=args.mbstd_group,
        conv_clamp=args.conv_clamp or None,
    )
    if args.batch % min(arch.mbstd_group, args.batch):
        parser.error(f"--batch {args.batch} must be a multiple of --mbstd-group {arch.mbstd_group}")
    opts = TrainOptions(
        kimg=args.kimg,
        batch=args.batch,
        lr=args.lr,
        r1_gamma=args.r1_gamma,
        pl_weight=args.pl_weight,
        style_mixing=args.style_mixing,
        ema_kimg=args.ema_kimg,
        ema_rampup=args.ema_rampup,
        ada_target=args.ada_target,
        ada_kimg=args.ada_kimg,
        seed=args.seed,
    )

    images, index = load_cache(args.cache)
    if images.shape[1] != arch.resolution:
        raise SystemExit(
            f"{args.cache} holds {images.shape[1]} px images but --resolution is {arch.resolution}; "
            f"point --cache at the {arch.resolution} px cache"
        )
    training_set = gan_training_set(
        index, read_tsv(args.folds), args.fold, args.oversample, args.unaffected_per_age, args.seed
    )
    out_dir = Path(args.out_dir)
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
    trainer = GanTrainer(arch, opts, pixels, items, labels, device, precision)
    data = {
        "fold": args.fold,
        "oversample": args.oversample,
        "unaffected_per_age": args.unaffected_per_age,
        "resume_ffhq": Path(args.resume_ffhq).name if args.resume_ffhq != "none" else None,
    }
    signature = run_signature(arch, opts, data, training_set)
    if not resume_if_possible(trainer, out_dir / "checkpoint.pt", signature) and args.resume_ffhq != "none":
        from syndface.gan.ffhq import initialise_from_ffhq

        initialise_from_ffhq(trainer.G, trainer.D, trainer.G_ema, args.resume_ffhq)
        # Render the transferred network first: a wrong source config shows here, not after hours.
        save_png(render_grid(trainer.G_ema, args.seed), out_dir / "samples" / "init.png")
    log.info(
        "training on %s (%s): %d items, %s px, batch %d, %.2f kimg",
        device,
        precision,
        len(items),
        arch.resolution,
        opts.batch,
        opts.kimg,
    )
    train_gan(trainer, out_dir, signature, args.snapshot_kimg, args.seed)
    return 0
