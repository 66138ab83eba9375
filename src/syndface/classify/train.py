"""`syndface train-classifier`: one fold model of one variant, resumable after pre-emption.

As the paper's code (../shared/notes/paper-code-facts.md section 2): the network from
`build_classifier`, class-weighted cross-entropy, Adam without weight decay, the warm-up x10 +
cosine schedule stepped per epoch, validation on the held-out fold, the best epoch by balanced
accuracy on the fold's cohort images (source == cohort: FairFace's role plays no part in it,
predicting `unaffected` for a cohort image counts as an error; only a strict gain counts).
Early stop (`early_stop_rule`, `syndface.classify.schedule`): `paper` is the paper's loop, the
best starting at 0 and training stopping once `epoch - best_epoch > early_stop`; `patience` stops
after `early_stop` epochs without a gain. Under the paper's rule an epoch at 0 is no gain, so a
run may end with no best epoch at all (its code then saved no model): model.pt then holds the
last epoch's weights, and the log and history.tsv (header and column `kept`) say so. The loss
normalisation (`syndface.classify.loss`) is resolved per variant family before training
(`syndface.classify.options.loss_normalisation_for`: one value, or {real: ..., fakes: ...} as
the paper's code had it).

Outputs in --out-dir: `model.pt` (the kept epoch; `load_classifier` reads it), `history.tsv`
(every epoch: lr, loss, validation accuracies, whether it was a gain (`best`), whether model.pt
holds its weights (`kept`), seconds; Table 1's best fake variant is chosen from its validation
balanced accuracy at the kept epoch, `syndface.classify.selection`) and, while training,
`checkpoint.pt`: model, optimiser, the epoch, the best so far and every random state (global torch
RNG for dropout, the data-order and augmentation generators), written atomically at every epoch
end. A rerun of a killed job resumes from it and ends with the same weights as an uninterrupted
run (bitwise on CPU). The learning rate is a pure function of the epoch (`schedule.paper_lr`), so
the schedule's state is the epoch number. The checkpoint is deleted when training ends unless
--keep-checkpoint is given. Both files record the TrainConfig, the syndface version and the
numeric precision; a checkpoint written under another of any of them is refused, not mixed in.

GPU runtime (`syndface.runtime`, `syndface.parallel`): the precision (bf16, or fp16 with loss
scaling, or fp32) follows the GPU; `micro_batch` splits each batch into forward passes of at most
that many images with gradients accumulated, so the optimiser still steps once per batch; under
torchrun each of N GPUs takes batch/N images of every batch (DistributedDataParallel), and rank 0
alone writes. Neither changes the batch, the learning rate or the outputs; what BatchNorm makes
of them is said in `syndface.parallel`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.nn.parallel import DistributedDataParallel

from syndface import __version__
from syndface.classify.augment import AUGMENT_MODES, BatchAugment
from syndface.classify.data import FoldData, ImageSet, load_fold_data
from syndface.classify.evaluate import balanced_accuracy
from syndface.classify.loss import loss_denominator, weighted_cross_entropy
from syndface.classify.model import arch_of, build_classifier, normalise, to_unit_float
from syndface.classify.options import LOSS_NORMALISATIONS, TrainOptions, loss_normalisation_for
from syndface.classify.schedule import EARLY_STOP_RULES, improves, initial_best, paper_lr, stop_after_epoch
from syndface.io import save_torch, write_tsv
from syndface.log import format_seconds, get_logger, progress
from syndface.memory import enable_activation_checkpointing
from syndface.options import add_options_argument
from syndface.parallel import (
    SINGLE,
    DistEnv,
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
from syndface.seeding import derive_seed
from syndface.taxonomy import BLEND_FRACTIONS, DISEASES, variant_fake_type

log = get_logger("syndface.classify")

MODEL_FILE, HISTORY_FILE, CHECKPOINT_FILE = "model.pt", "history.tsv", "checkpoint.pt"
CHECKPOINT_FORMAT = 1
RUNTIME_OPTIONS = ("device", "precision", "micro_batch", "grad_checkpointing", "deterministic")


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
    best_metric: float = -math.inf  # initial_best(rule) before the first epoch
    best_epoch: int = 0  # 0 = no epoch was a gain (yet)
    history: list[dict[str, Any]] = field(default_factory=list)

    def stopped_early(self, cfg: TrainConfig) -> bool:
        return self.epoch > 0 and stop_after_epoch(self.epoch, self.best_epoch, cfg.early_stop, cfg.early_stop_rule)

    def finished(self, cfg: TrainConfig) -> bool:
        return self.epoch >= cfg.epochs or self.stopped_early(cfg)

    @property
    def kept_epoch(self) -> int:
        """The epoch whose weights model.pt holds: the best, or the last when none was a gain."""
        return self.best_epoch or self.epoch


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


def _index(positions: np.ndarray) -> slice | torch.Tensor:
    """A contiguous run of positions as a slice (a view, no copy), anything else as an index tensor."""
    if len(positions) and np.array_equal(positions, np.arange(positions[0], positions[0] + len(positions))):
        return slice(int(positions[0]), int(positions[0]) + len(positions))
    return torch.from_numpy(positions)


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
    *,
    scaler: torch.amp.GradScaler | None = None,
    micro_batch: int = 0,
    env: DistEnv = SINGLE,
) -> torch.Tensor:
    """One optimiser step on one uint8 NHWC batch; returns this rank's part of the batch loss
    (on the device, not synchronised; summed over ranks it is the batch loss).

    `images`/`targets` are the whole global batch, on every rank: the augmentation draws its
    random values for the whole batch, so each rank's share (`rank_share`) is augmented exactly
    as in a single process. The share runs in micro-batches of at most `micro_batch` images
    (0 = all at once); each back-propagates its rows of the batch loss (the class-weight
    normaliser Z is the whole batch's), so the accumulated gradient is the full batch's.
    Under DistributedDataParallel, which averages gradients over ranks, the loss is multiplied
    by the number of ranks so that the average is that sum, and only the last micro-batch
    synchronises. With fp16 the `scaler` scales the loss, and skips the step (lowering its
    scale) when a gradient overflowed to inf/NaN.
    """
    if precision.scaled and scaler is None:
        raise ValueError("fp16 training needs the run's GradScaler (precision.grad_scaler())")
    x = normalise(augment(to_unit_float(images, device)), precision.channels_last)
    targets = targets.to(device)
    denominator = loss_denominator(targets, weights, loss_normalisation)
    if env.distributed:
        share = _index(rank_share(len(x), env))
        x, targets = x[share], targets[share]
    parts = micro_parts(len(x), micro_batch, min_size=2)
    optimizer.zero_grad(set_to_none=True)
    total = torch.zeros((), device=device)
    for i, positions in enumerate(parts):
        part = _index(positions)
        defer_sync = i < len(parts) - 1 and isinstance(model, DistributedDataParallel)
        with model.no_sync() if defer_sync else contextlib.nullcontext():
            with precision.autocast_context():
                logits = model(x[part])
            loss = weighted_cross_entropy(logits, targets[part], weights, loss_normalisation, denominator)
            scaled = loss * env.world_size
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
        total += loss.detach()
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return total


@torch.no_grad()
def batched_outputs(
    forward: Callable[[torch.Tensor], torch.Tensor],
    images: ImageSet,
    batch_size: int,
    precision: Precision,
    device: torch.device,
    width: int,
    after: Callable[[torch.Tensor], torch.Tensor] = lambda y: y,
) -> np.ndarray:
    """after(forward(normalised batch)) of every image of `images` (N x width, float32): `forward`
    under the precision's autocast, `after` on its float32 result; every batch padded to
    batch_size so the GPU sees one shape."""
    out = []
    index_batches = [np.arange(i, min(i + batch_size, len(images))) for i in range(0, len(images), batch_size)]
    for idx, batch in prefetched(images, index_batches):
        if len(batch) < batch_size:
            batch = torch.cat([batch, batch.new_zeros((batch_size - len(batch), *batch.shape[1:]))])
        x = normalise(to_unit_float(to_device(batch, device), device), precision.channels_last)
        with precision.autocast_context():
            y = forward(x)
        out.append(after(y.float())[: len(idx)].cpu())
    return torch.cat(out).numpy() if out else np.empty((0, width), np.float32)


def predict_probabilities(
    model: torch.nn.Module, images: ImageSet, batch_size: int, precision: Precision, device: torch.device
) -> np.ndarray:
    """Softmax of every image of `images` (N x C, float32)."""
    model.eval()
    return batched_outputs(model, images, batch_size, precision, device, len(DISEASES), lambda y: torch.softmax(y, 1))


def validate(
    model: torch.nn.Module,
    data: FoldData,
    batch_size: int,
    precision: Precision,
    device: torch.device,
    env: DistEnv = SINGLE,
) -> dict[str, float]:
    """Validation accuracies. Under data parallelism every rank first takes rank 0's BatchNorm
    statistics (its model is the one saved), predicts its slice of the images, and all ranks
    get every prediction, so all take the same best-epoch and early-stop decisions."""
    if env.distributed:
        broadcast_state(model, env, buffers_only=True)
        shard = np.array_split(np.arange(len(data.val)), env.world_size)[env.rank]
        if len(data.val.extra):
            raise ValueError("validation images are cache rows only")
        mine = predict_probabilities(
            model, ImageSet(data.val.cache, data.val.rows[shard]), batch_size, precision, device
        )
        probabilities = np.concatenate(gather_objects(mine, env))
    else:
        probabilities = predict_probabilities(model, data.val, batch_size, precision, device)
    pred = probabilities.argmax(1)
    cohort = data.val_cohort
    return {
        "val_accuracy": float((pred == data.val_labels).mean()),
        "val_balanced_accuracy": balanced_accuracy(data.val_labels, pred),
        "val_cohort_balanced_accuracy": balanced_accuracy(data.val_labels[cohort], pred[cohort]),
    }


class Trainer:
    """One fold model's training. `precision`, `micro_batch`, `grad_checkpointing` and the number
    of ranks are how it runs, not what it learns: a checkpoint may be resumed under others (with
    a warning, as BatchNorm and rounding then make the result differ from an uninterrupted run)."""

    def __init__(
        self,
        cfg: TrainConfig,
        out_dir: str | Path,
        device: torch.device,
        precision: Precision | None = None,
        micro_batch: int = 0,
        grad_checkpointing: bool = False,
        env: DistEnv = SINGLE,
    ):
        self.cfg, self.out_dir, self.device, self.env = cfg, Path(out_dir), device, env
        self.precision = precision or Precision.for_device(device)
        self.micro_batch, self.grad_checkpointing = micro_batch, grad_checkpointing
        torch.manual_seed(derive_seed(cfg.seed, "classifier", "init", cfg.fold))
        self.model = build_classifier(**cfg.arch(), pretrained=cfg.pretrained).to(device)
        if grad_checkpointing:
            enable_activation_checkpointing(self.model)
        if self.precision.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        # What the training step calls: the model itself, or its DDP wrapper (same parameters).
        self.net: torch.nn.Module = self.model
        if env.distributed:
            self.net = DistributedDataParallel(self.model, device_ids=[device.index] if device.type == "cuda" else None)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.scaler = self.precision.grad_scaler()
        # Dropout draws from the global generator (one stream per rank); order and augmentation
        # have their own, the same on every rank, so all ranks draw the same global batches.
        torch.manual_seed(derive_seed(cfg.seed, "classifier", "dropout", cfg.fold, *([env.rank] if env.rank else [])))
        self.order_gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "classifier", "order", cfg.fold))
        self.augment = BatchAugment(
            cfg.augment, torch.Generator().manual_seed(derive_seed(cfg.seed, "classifier", "augment", cfg.fold))
        )
        self.weights = cfg.weights().to(device)
        self.state = TrainState(best_metric=initial_best(cfg.early_stop_rule))
        self.best_weights: dict[str, torch.Tensor] = {}

    def runtime(self) -> dict[str, Any]:
        return {
            "precision": self.precision.name,
            "micro_batch": self.micro_batch,
            "grad_checkpointing": self.grad_checkpointing,
            "gpus": self.env.world_size if self.device.type == "cuda" else 0,
            "processes": self.env.world_size,
        }

    # --- checkpoint ---------------------------------------------------------------------------
    def provenance(self) -> dict[str, Any]:
        """What made the weights besides the TrainConfig: the code's version and the arithmetic."""
        return {"syndface_version": __version__, "precision": self.precision.name}

    def checkpoint(self) -> dict[str, Any]:
        """The checkpoint (collective under data parallelism: it gathers every rank's dropout generator)."""
        rng = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "order": self.order_gen.get_state(),
            "augment": self.augment.generator.get_state(),
        }
        if self.env.distributed:
            rng["ranks"] = gather_objects(rng_state(self.device), self.env)
        return {
            "format": CHECKPOINT_FORMAT,
            **self.provenance(),
            "config": asdict(self.cfg),
            "runtime": self.runtime(),
            "state": asdict(self.state),
            "model": self.model.state_dict(),
            "best_model": self.best_weights,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng,
        }

    def resume(self, path: Path) -> None:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a checkpoint this version can resume; delete it to start over")
        # How the arithmetic is spread (device, micro-batches, recomputation, determinism) may change
        # between a pre-empted run and its rerun: the runtime check below warns; the precision
        # actually used is part of the provenance and must match.
        differs = sorted(
            k for k, v in asdict(self.cfg).items() if k not in RUNTIME_OPTIONS and ckpt["config"].get(k) != v
        )
        differs += [f"{k} ({ckpt.get(k)} there, {v} here)" for k, v in self.provenance().items() if ckpt.get(k) != v]
        if differs:
            raise ValueError(
                f"{path} was written by a run with other settings (differs in: {', '.join(differs)}); "
                "delete it to start over or use another --out-dir"
            )
        before = ckpt.get("runtime")
        if before is not None and before != self.runtime():
            log.warning(
                "resuming a run that trained with %s under %s: the result will differ slightly from an uninterrupted run",
                before,
                self.runtime(),
            )
        self.model.load_state_dict(ckpt["model"])
        self.best_weights = ckpt["best_model"]
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scaler.is_enabled() and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        ranks = ckpt["rng"].get("ranks")
        if self.env.distributed and ranks is not None and len(ranks) == self.env.world_size:
            set_rng_state(ranks[self.env.rank], self.device)
        elif self.env.is_main:
            torch.set_rng_state(ckpt["rng"]["torch"])
            if self.device.type == "cuda" and ckpt["rng"]["cuda"]:
                torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        else:  # a new rank (more processes than the checkpoint's): a fresh dropout stream of its own
            epoch = ckpt["state"]["epoch"]
            torch.manual_seed(derive_seed(self.cfg.seed, "classifier", "dropout", self.cfg.fold, self.env.rank, epoch))
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

    def kept_metric(self) -> float:
        """The kept epoch's cohort balanced accuracy."""
        rows = [row for row in self.state.history if row["epoch"] == self.state.kept_epoch]
        return float(rows[0]["val_cohort_balanced_accuracy"]) if rows else float("nan")

    def save_best(self) -> None:
        """model.pt from the kept epoch's weights (kept in the checkpoint too, so a model.pt that a
        workflow manager deleted after a kill is rewritten when the resumed run ends)."""
        save_torch(
            {
                "arch": self.cfg.arch(),
                "classes": list(DISEASES),
                "state_dict": self.best_weights,
                "fold": self.cfg.fold,
                "epoch": self.state.kept_epoch,
                "best_epoch": self.state.best_epoch,
                "val_cohort_balanced_accuracy": self.kept_metric(),
                "train_config": asdict(self.cfg),
                **self.provenance(),
                "runtime": self.runtime(),
            },
            self.out_dir / MODEL_FILE,
        )

    def kept_note(self) -> str:
        if self.state.best_epoch:
            return (
                f"best epoch {self.state.best_epoch} (cohort balanced accuracy {self.state.best_metric:.4f}), "
                "whose weights model.pt holds"
            )
        return (
            f"no epoch's cohort balanced accuracy beat {initial_best(self.cfg.early_stop_rule):g} "
            f"(the {self.cfg.early_stop_rule} early-stop rule's starting best): model.pt holds the last epoch's "
            f"weights (epoch {self.state.kept_epoch})"
        )

    def write_history(self) -> None:
        header = [
            f"classifier {self.cfg.model} fold {self.cfg.fold}: {self.kept_note()}",
            f"early stop: {self.cfg.early_stop_rule} rule, early_stop {self.cfg.early_stop}; "
            "best = a strict gain in val_cohort_balanced_accuracy; kept = the epoch model.pt holds",
        ]
        history = pd.DataFrame(self.state.history)
        history["kept"] = history["epoch"] == self.state.kept_epoch
        write_tsv(history, self.out_dir / HISTORY_FILE, header_lines=header)

    # --- training -----------------------------------------------------------------------------
    def weights_now(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous().clone() for k, v in self.model.state_dict().items()}

    def run_epoch(self, data: FoldData, targets: torch.Tensor, epoch: int) -> tuple[float, float]:
        """Train one epoch at its scheduled rate; returns (lr, mean batch loss)."""
        lr = paper_lr(epoch, self.cfg.lr, self.cfg.epochs, self.cfg.warmup_factor)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        # Fixed batch shapes on a GPU (cuDNN tunes per shape) and across ranks (equal shares).
        drop_last = self.device.type == "cuda" or self.env.distributed
        index_batches = batches(len(data.train), self.cfg.batch_size, self.order_gen, drop_last=drop_last)
        total = torch.zeros((), device=self.device)
        stream = prefetched(data.train, index_batches)
        if not self.state.history or self.state.history[-1]["seconds"] > 60:  # progress within long epochs only
            stream = progress(stream, len(index_batches), f"epoch {epoch} batches", log, every_s=60)
        for idx, batch in stream:
            total += train_step(
                self.net,
                self.optimizer,
                to_device(batch, self.device),
                targets[torch.from_numpy(idx)].to(self.device),
                self.weights,
                self.augment,
                self.precision,
                self.device,
                self.cfg.loss_normalisation,
                scaler=self.scaler,
                micro_batch=self.micro_batch,
                env=self.env,
            )
        return lr, float(all_reduce_sum(total, self.env)) / max(1, len(index_batches))

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
            metrics = validate(self.model, data, self.cfg.batch_size, self.precision, self.device, self.env)
            self.state.epoch = epoch
            improved = improves(metrics["val_cohort_balanced_accuracy"], self.state.best_metric)
            if improved:
                self.state.best_metric, self.state.best_epoch = metrics["val_cohort_balanced_accuracy"], epoch
                self.best_weights = self.weights_now()
            seconds = time.monotonic() - start
            self.state.history.append(
                {"epoch": epoch, "lr": lr, "loss": loss, **metrics, "best": improved, "seconds": round(seconds, 3)}
            )
            checkpoint = self.checkpoint()
            if self.env.is_main:
                if improved:
                    self.save_best()
                self.write_history()
                save_torch(checkpoint, self.out_dir / CHECKPOINT_FILE)
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
        if self.state.stopped_early(self.cfg) and self.state.epoch < self.cfg.epochs:
            log.info(
                "early stop after epoch %d (%s rule, early_stop %d): best epoch %d",
                self.state.epoch,
                self.cfg.early_stop_rule,
                self.cfg.early_stop,
                self.state.best_epoch,
            )
        if not self.state.best_epoch:
            self.best_weights = self.weights_now()
            log.warning("fold %d: %s", self.cfg.fold, self.kept_note())
        if self.env.is_main:
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
    """Train (or resume) one fold model; returns the path of model.pt.

    Started by torchrun with N processes, it trains data-parallel on N GPUs (or N CPU processes
    over gloo); `cfg.precision` is auto/fp32/fp16/bf16 (`syndface.runtime.resolve_precision`),
    `cfg.micro_batch` the most images per GPU per forward pass (0 = the whole share of a batch)."""
    if cfg.augment not in AUGMENT_MODES:
        raise ValueError(f"unknown augment mode {cfg.augment!r}; allowed: {', '.join(AUGMENT_MODES)}")
    if cfg.label_mode not in ("hard", "soft"):
        raise ValueError(f"unknown label mode {cfg.label_mode!r}; allowed: hard, soft")
    if cfg.loss_normalisation not in LOSS_NORMALISATIONS:
        raise ValueError(
            f"unknown loss normalisation {cfg.loss_normalisation!r} (resolve a per-family setting with "
            f"loss_normalisation_for); allowed: {', '.join(LOSS_NORMALISATIONS)}"
        )
    if cfg.early_stop_rule not in EARLY_STOP_RULES:
        raise ValueError(f"unknown early-stop rule {cfg.early_stop_rule!r}; allowed: {', '.join(EARLY_STOP_RULES)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    env, dev = init_distributed(resolve_device(cfg.device))
    if cfg.batch_size % env.world_size:
        raise ValueError(
            f"batch size {cfg.batch_size} does not split evenly over {env.world_size} GPUs; "
            f"use a multiple of {env.world_size}"
        )
    configure(dev, num_threads, deterministic=cfg.deterministic)
    prec = resolve_precision(cfg.precision, dev)
    data = load_fold_data(cfg.cache, cfg.folds, cfg.fold, cfg.image_size, cfg.fakes, cfg.label_mode)
    trainer = Trainer(cfg, out_dir, dev, prec, cfg.micro_batch, cfg.grad_checkpointing, env)
    checkpoint = out_dir / CHECKPOINT_FILE
    if checkpoint.exists():
        trainer.resume(checkpoint)
    log.info(
        "training %s at %d px on %s%s (%s), %d epochs, batch %d%s, augment %s",
        cfg.model,
        cfg.image_size,
        dev,
        f" x {env.world_size} processes" if env.distributed else "",
        prec.describe() + (", activation checkpointing" if cfg.grad_checkpointing else ""),
        cfg.epochs,
        cfg.batch_size,
        f" in micro-batches of <= {cfg.micro_batch} per process" if cfg.micro_batch else "",
        cfg.augment,
    )
    if trainer.fit(data, stop_after_epochs) and not keep_checkpoint and env.is_main:
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
    settings = args.options.options()
    settings["loss_normalisation"] = loss_normalisation_for(args.variant, settings["loss_normalisation"])
    cfg = TrainConfig(
        **settings,
        cache=args.cache,
        folds=args.folds,
        fold=args.fold,
        fakes=args.fakes,
        pretrained=args.pretrained,
        label_mode="soft" if fake_type in BLEND_FRACTIONS else "hard",
    )
    train_classifier(cfg, args.out_dir, args.num_threads, args.stop_after_epochs, args.keep_checkpoint)
    return 0
