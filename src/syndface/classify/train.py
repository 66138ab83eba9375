"""`syndface train-classifier`: one fold model of one variant, resumable after pre-emption.

As the paper's code (../shared/notes/paper-code-facts.md section 2): the network from
`build_classifier`, class-weighted cross-entropy, Adam without weight decay, the warm-up x10 +
cosine schedule stepped per epoch, validation on the held-out fold, the best epoch by balanced
accuracy on the fold's cohort images (source == cohort: FairFace's role plays no part in it,
predicting `unaffected` for a cohort image counts as an error), early stop after `early_stop`
epochs without a (strict) gain.

Outputs in --out-dir: `model.pt` (the best epoch; `load_classifier` reads it), `history.tsv`
(every epoch: lr, loss, validation accuracies, seconds) and, while training, `checkpoint.pt`:
model, optimiser, the epoch, the best so far, patience and every random state (global torch
RNG for dropout, the data-order and augmentation generators), written atomically at every epoch
end. A rerun of a killed job resumes from it and ends with the same weights as an uninterrupted
run (bitwise on CPU). The learning rate is a pure function of the epoch (`schedule.paper_lr`), so
the schedule's state is the epoch number. The checkpoint is deleted when training ends unless
--keep-checkpoint is given. Both files record the TrainConfig, the syndface version and the
numeric precision; a checkpoint written under another of any of them is refused, not mixed in.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from syndface import __version__
from syndface.classify.augment import AUGMENT_MODES, BatchAugment
from syndface.classify.data import FoldData, ImageSet, load_fold_data
from syndface.classify.evaluate import balanced_accuracy
from syndface.classify.loss import LOSS_NORMALISATIONS, weighted_cross_entropy
from syndface.classify.model import arch_of, build_classifier, normalise, to_unit_float
from syndface.classify.options import TrainOptions
from syndface.classify.schedule import paper_lr
from syndface.io import save_torch, write_tsv
from syndface.log import format_seconds, get_logger, progress
from syndface.options import add_options_argument
from syndface.runtime import Precision, configure, resolve_device
from syndface.seeding import derive_seed
from syndface.taxonomy import BLEND_FRACTIONS, DISEASES, variant_fake_type

log = get_logger("syndface.classify")

MODEL_FILE, HISTORY_FILE, CHECKPOINT_FILE = "model.pt", "history.tsv", "checkpoint.pt"
CHECKPOINT_FORMAT = 1


@dataclass(frozen=True)
class TrainConfig(TrainOptions):
    """Everything that decides the trained weights (the checkpoint refuses to resume under another):
    the options plus the job's inputs and the variant's label mode."""

    cache: str = ""
    folds: str = ""
    fold: int = 0
    fakes: str | None = None
    pretrained: str | None = None
    label_mode: str = "hard"

    def arch(self) -> dict[str, Any]:
        return arch_of(
            {
                "name": self.model,
                "num_classes": len(DISEASES),
                "dropout": self.dropout,
                "msd_samples": self.msd_samples,
                "image_size": self.image_size,
            }
        )

    def weights(self) -> torch.Tensor:
        return torch.tensor([self.class_weights[d] for d in DISEASES], dtype=torch.float32)


@dataclass
class TrainState:
    """What changes from epoch to epoch; together with TrainConfig it is the checkpoint."""

    epoch: int = 0  # epochs completed
    best_metric: float = -math.inf
    best_epoch: int = 0
    patience: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def finished(self, cfg: TrainConfig) -> bool:
        return self.epoch >= cfg.epochs or self.patience >= cfg.early_stop


def batches(n: int, batch_size: int, generator: torch.Generator, drop_last: bool) -> list[np.ndarray]:
    """One epoch's shuffled batches. The last, short batch is dropped when shapes must stay fixed
    (GPU: cuDNN tunes per shape) and always when it holds one image (BatchNorm needs two)."""
    order = torch.randperm(n, generator=generator).numpy()
    out = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if out and (len(out[-1]) < 2 or (drop_last and len(out[-1]) < batch_size)):
        out.pop()
    return out


def prefetched(images: ImageSet, index_batches: list[np.ndarray]) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """(indices, uint8 batch) pairs, the next batch read from the memory map while this one trains."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(images.gather, index_batches[0]) if index_batches else None
        for i, idx in enumerate(index_batches):
            batch = pending.result()
            if i + 1 < len(index_batches):
                pending = pool.submit(images.gather, index_batches[i + 1])
            yield idx, torch.from_numpy(batch)


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":
        return batch.pin_memory().to(device, non_blocking=True)
    return batch


def train_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor,
    augment: BatchAugment,
    precision: Precision,
    device: torch.device,
    loss_normalisation: str = "weights",
) -> torch.Tensor:
    """One optimiser step on a uint8 NHWC batch; returns the loss (on the device, not synchronised)."""
    x = normalise(augment(to_unit_float(images, device)), precision.channels_last)
    with precision.autocast_context(device):
        logits = model(x)
    loss = weighted_cross_entropy(logits, targets, weights, loss_normalisation)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


@torch.no_grad()
def predict_probabilities(
    model: torch.nn.Module, images: ImageSet, batch_size: int, precision: Precision, device: torch.device
) -> np.ndarray:
    """Softmax of every image of `images` (N x C, float32); every batch padded to batch_size so
    the GPU sees one shape."""
    model.eval()
    out = []
    index_batches = [np.arange(i, min(i + batch_size, len(images))) for i in range(0, len(images), batch_size)]
    for idx, batch in prefetched(images, index_batches):
        if len(batch) < batch_size:
            batch = torch.cat([batch, batch.new_zeros((batch_size - len(batch), *batch.shape[1:]))])
        x = normalise(to_unit_float(to_device(batch, device), device), precision.channels_last)
        with precision.autocast_context(device):
            logits = model(x)
        out.append(torch.softmax(logits.float(), 1)[: len(idx)].cpu())
    return torch.cat(out).numpy() if out else np.empty((0, len(DISEASES)), np.float32)


def validate(
    model: torch.nn.Module, data: FoldData, batch_size: int, precision: Precision, device: torch.device
) -> dict[str, float]:
    pred = predict_probabilities(model, data.val, batch_size, precision, device).argmax(1)
    cohort = data.val_cohort
    return {
        "val_accuracy": float((pred == data.val_labels).mean()),
        "val_balanced_accuracy": balanced_accuracy(data.val_labels, pred),
        "val_cohort_balanced_accuracy": balanced_accuracy(data.val_labels[cohort], pred[cohort]),
    }


class Trainer:
    def __init__(self, cfg: TrainConfig, out_dir: str | Path, device: torch.device):
        self.cfg, self.out_dir, self.device = cfg, Path(out_dir), device
        self.precision = Precision.for_device(device)
        torch.manual_seed(derive_seed(cfg.seed, "classifier", "init", cfg.fold))
        self.model = build_classifier(**cfg.arch(), pretrained=cfg.pretrained).to(device)
        if self.precision.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        # Dropout draws from the global generator; the order and augmentation streams have their own.
        torch.manual_seed(derive_seed(cfg.seed, "classifier", "dropout", cfg.fold))
        self.order_gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "classifier", "order", cfg.fold))
        self.augment = BatchAugment(
            cfg.augment, torch.Generator().manual_seed(derive_seed(cfg.seed, "classifier", "augment", cfg.fold))
        )
        self.weights = cfg.weights().to(device)
        self.state = TrainState()
        self.best_weights: dict[str, torch.Tensor] = {}

    # --- checkpoint ---------------------------------------------------------------------------
    def provenance(self) -> dict[str, Any]:
        """What made the weights besides the TrainConfig: the code's version and the arithmetic."""
        return {"syndface_version": __version__, "precision": self.precision.name}

    def checkpoint(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            **self.provenance(),
            "config": asdict(self.cfg),
            "state": asdict(self.state),
            "model": self.model.state_dict(),
            "best_model": self.best_weights,
            "optimizer": self.optimizer.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
                "order": self.order_gen.get_state(),
                "augment": self.augment.generator.get_state(),
            },
        }

    def resume(self, path: Path) -> None:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a checkpoint this version can resume; delete it to start over")
        differs = sorted(k for k, v in asdict(self.cfg).items() if ckpt["config"].get(k) != v)
        differs += [f"{k} ({ckpt.get(k)} there, {v} here)" for k, v in self.provenance().items() if ckpt.get(k) != v]
        if differs:
            raise ValueError(
                f"{path} was written by a run with other settings (differs in: {', '.join(differs)}); "
                "delete it to start over or use another --out-dir"
            )
        self.model.load_state_dict(ckpt["model"])
        self.best_weights = ckpt["best_model"]
        self.optimizer.load_state_dict(ckpt["optimizer"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if self.device.type == "cuda" and ckpt["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        self.order_gen.set_state(ckpt["rng"]["order"])
        self.augment.generator.set_state(ckpt["rng"]["augment"])
        self.state = TrainState(**ckpt["state"])
        log.info(
            "resuming from %s after epoch %d (best %.4f at epoch %d)",
            path,
            self.state.epoch,
            self.state.best_metric,
            self.state.best_epoch,
        )

    def save_best(self) -> None:
        """model.pt from the best epoch's weights (kept in the checkpoint too, so a model.pt that a
        workflow manager deleted after a kill is rewritten when the resumed run ends)."""
        save_torch(
            {
                "arch": self.cfg.arch(),
                "classes": list(DISEASES),
                "state_dict": self.best_weights,
                "fold": self.cfg.fold,
                "epoch": self.state.best_epoch,
                "val_cohort_balanced_accuracy": self.state.best_metric,
                "train_config": asdict(self.cfg),
                **self.provenance(),
            },
            self.out_dir / MODEL_FILE,
        )

    def write_history(self) -> None:
        header = [
            f"classifier {self.cfg.model} fold {self.cfg.fold}: best epoch {self.state.best_epoch} "
            f"(cohort balanced accuracy {self.state.best_metric:.4f})"
        ]
        write_tsv(pd.DataFrame(self.state.history), self.out_dir / HISTORY_FILE, header_lines=header)

    # --- training -----------------------------------------------------------------------------
    def run_epoch(self, data: FoldData, targets: torch.Tensor, epoch: int) -> tuple[float, float]:
        """Train one epoch at its scheduled rate; returns (lr, mean batch loss)."""
        lr = paper_lr(epoch, self.cfg.lr, self.cfg.epochs, self.cfg.warmup_factor)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        index_batches = batches(
            len(data.train), self.cfg.batch_size, self.order_gen, drop_last=self.device.type == "cuda"
        )
        total = torch.zeros((), device=self.device)
        stream = prefetched(data.train, index_batches)
        if not self.state.history or self.state.history[-1]["seconds"] > 60:  # progress within long epochs only
            stream = progress(stream, len(index_batches), f"epoch {epoch} batches", log, every_s=60)
        for idx, batch in stream:
            loss = train_step(
                self.model,
                self.optimizer,
                to_device(batch, self.device),
                targets[torch.from_numpy(idx)].to(self.device),
                self.weights,
                self.augment,
                self.precision,
                self.device,
                self.cfg.loss_normalisation,
            )
            total += loss
        return lr, float(total) / max(1, len(index_batches))

    def fit(self, data: FoldData, stop_after_epochs: int | None = None) -> bool:
        """Train until the last epoch or early stop; returns False when stopped early by the test hook."""
        targets = torch.from_numpy(data.train_targets)
        epochs_here = 0
        while not self.state.finished(self.cfg):
            if stop_after_epochs is not None and epochs_here >= stop_after_epochs:
                log.info("stopping after %d epoch(s) as asked (--stop-after-epochs); rerun to resume", epochs_here)
                return False
            start = time.monotonic()
            epoch = self.state.epoch + 1
            lr, loss = self.run_epoch(data, targets, epoch)
            metrics = validate(self.model, data, self.cfg.batch_size, self.precision, self.device)
            self.state.epoch = epoch
            improved = metrics["val_cohort_balanced_accuracy"] > self.state.best_metric
            if improved:
                self.state.best_metric, self.state.best_epoch, self.state.patience = (
                    metrics["val_cohort_balanced_accuracy"],
                    epoch,
                    0,
                )
                self.best_weights = {
                    k: v.detach().cpu().contiguous().clone() for k, v in self.model.state_dict().items()
                }
                self.save_best()
            else:
                self.state.patience += 1
            seconds = time.monotonic() - start
            self.state.history.append(
                {"epoch": epoch, "lr": lr, "loss": loss, **metrics, "best": improved, "seconds": round(seconds, 3)}
            )
            self.write_history()
            save_torch(self.checkpoint(), self.out_dir / CHECKPOINT_FILE)
            epochs_here += 1
            mean_s = float(np.mean([row["seconds"] for row in self.state.history]))
            log.info(
                "fold %d epoch %d/%d lr %.2e loss %.4f val acc %.3f cohort bal-acc %.3f (best %.3f @%d) %.1f s, ETA %s",
                self.cfg.fold,
                epoch,
                self.cfg.epochs,
                lr,
                loss,
                metrics["val_accuracy"],
                metrics["val_cohort_balanced_accuracy"],
                self.state.best_metric,
                self.state.best_epoch,
                seconds,
                format_seconds(mean_s * (self.cfg.epochs - epoch)),
            )
        if self.state.patience >= self.cfg.early_stop and self.state.epoch < self.cfg.epochs:
            log.info("early stop after epoch %d: no gain for %d epochs", self.state.epoch, self.state.patience)
        self.save_best()
        self.write_history()
        return True


def train_classifier(
    cfg: TrainConfig,
    out_dir: str | Path,
    num_threads: int = 1,
    stop_after_epochs: int | None = None,
    keep_checkpoint: bool = False,
) -> Path:
    """Train (or resume) one fold model; returns the path of model.pt."""
    if cfg.augment not in AUGMENT_MODES:
        raise ValueError(f"unknown augment mode {cfg.augment!r}; allowed: {', '.join(AUGMENT_MODES)}")
    if cfg.label_mode not in ("hard", "soft"):
        raise ValueError(f"unknown label mode {cfg.label_mode!r}; allowed: hard, soft")
    if cfg.loss_normalisation not in LOSS_NORMALISATIONS:
        raise ValueError(
            f"unknown loss normalisation {cfg.loss_normalisation!r}; allowed: {', '.join(LOSS_NORMALISATIONS)}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(cfg.device)
    configure(dev, num_threads)
    data = load_fold_data(cfg.cache, cfg.folds, cfg.fold, cfg.image_size, cfg.fakes, cfg.label_mode)
    trainer = Trainer(cfg, out_dir, dev)
    checkpoint = out_dir / CHECKPOINT_FILE
    if checkpoint.exists():
        trainer.resume(checkpoint)
    log.info(
        "training %s at %d px on %s (%s), %d epochs, batch %d, augment %s",
        cfg.model,
        cfg.image_size,
        dev,
        "bf16 autocast + channels_last" if trainer.precision.autocast else "fp32",
        cfg.epochs,
        cfg.batch_size,
        cfg.augment,
    )
    if trainer.fit(data, stop_after_epochs) and not keep_checkpoint:
        checkpoint.unlink(missing_ok=True)
    return out_dir / MODEL_FILE


def main(argv: list[str], prog: str = "syndface train-classifier") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", required=True, help="packed cache directory (results/cache/<size>px)")
    p.add_argument("--folds", required=True, help="results/folds/folds.tsv")
    p.add_argument("--fold", type=int, required=True, help="held-out fold k: train on the others, validate on k")
    p.add_argument("--variant", default="real", help="real, or real+<fake type>: blends train on soft labels")
    p.add_argument(
        "--fakes", default=None, help="fake-image manifest of fold k's GAN (results/fakes/fold<k>/<type>/manifest.tsv)"
    )
    p.add_argument("--pretrained", default=None, help="local ImageNet weights file of the backbone")
    add_options_argument(p, TrainOptions)
    p.add_argument("--num-threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out-dir", required=True, help="results/classifier/<variant>/fold<k>")
    p.add_argument("--keep-checkpoint", action="store_true", help="keep checkpoint.pt after training ends")
    p.add_argument(
        "--stop-after-epochs", type=int, default=None, help=argparse.SUPPRESS
    )  # test hook: simulate pre-emption
    args = p.parse_args(argv)
    fake_type = variant_fake_type(args.variant)
    if bool(fake_type) != bool(args.fakes):
        p.error(f"variant {args.variant} needs --fakes exactly when it trains on fakes")
    cfg = TrainConfig(
        **args.options.options(),
        cache=args.cache,
        folds=args.folds,
        fold=args.fold,
        fakes=args.fakes,
        pretrained=args.pretrained,
        label_mode="soft" if fake_type in BLEND_FRACTIONS else "hard",
    )
    train_classifier(cfg, args.out_dir, args.num_threads, args.stop_after_epochs, args.keep_checkpoint)
    return 0
