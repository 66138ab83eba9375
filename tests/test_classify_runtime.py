"""How the classifier trains on GPUs, checked on the CPU: micro-batches, fp16 loss scaling,
activation checkpointing and 2-process data parallelism leave the training step's result as it was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from test_classify_train import cache, config  # noqa: F401  (the tiny 32 px cache fixture)

from syndface.classify.augment import BatchAugment
from syndface.classify.model import build_classifier
from syndface.classify.train import CHECKPOINT_FILE, train_classifier, train_step
from syndface.io import read_tsv
from syndface.memory import enable_activation_checkpointing
from syndface.runtime import Precision

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
WEIGHTS = torch.tensor([10.0, 10.0, 10.0, 1.0])


def batch(n: int = 8, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=gen)
    return images, torch.eye(4)[torch.randint(4, (n,), generator=gen)]


def gradients_after_one_step(name: str, micro_batch: int, train_mode_bn: bool = True, **kw) -> tuple[dict, float]:
    """(gradient of every parameter, loss) of one train_step from a fixed start on a fixed batch."""
    torch.manual_seed(0)
    model = build_classifier(name, dropout=0.0, msd_samples=1).train()
    if not train_mode_bn:
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # the step leaves .grad behind, weights fixed
    images, targets = batch()
    augment = BatchAugment("paper", torch.Generator().manual_seed(1))
    loss = train_step(
        model, optimizer, images, targets, WEIGHTS, augment, Precision(), CPU, micro_batch=micro_batch, **kw
    )
    return {n: p.grad.clone() for n, p in model.named_parameters()}, float(loss)


def max_relative_difference(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max() / b[k].abs().max().clamp(min=1e-12)) for k in a)


def test_accumulated_micro_batches_equal_one_full_batch_step():
    """8 images as micro-batches of 3 (3 + 3 + 2): every gradient equals the full batch's to 1e-5 of its
    largest entry (float32 sums in another order), and the losses add up to the full-batch loss.

    That holds for a network without BatchNorm (test_efficientnet_gn uses GroupNorm). BatchNorm in
    training mode normalises each micro-batch by its own mean and variance, so a micro-batched
    gradient is that of another function (and the running statistics move once per micro-batch);
    with BatchNorm in eval mode (fixed statistics) the equality holds again."""
    full, loss_full = gradients_after_one_step("test_efficientnet_gn", micro_batch=0)
    parts, loss_parts = gradients_after_one_step("test_efficientnet_gn", micro_batch=3)
    assert max_relative_difference(parts, full) < 1e-5
    assert loss_parts == pytest.approx(loss_full, rel=1e-6)

    bn_full, _ = gradients_after_one_step("test_efficientnet", micro_batch=0)
    bn_parts, _ = gradients_after_one_step("test_efficientnet", micro_batch=3)
    assert max_relative_difference(bn_parts, bn_full) > 1e-2
    eval_full, _ = gradients_after_one_step("test_efficientnet", micro_batch=0, train_mode_bn=False)
    eval_parts, _ = gradients_after_one_step("test_efficientnet", micro_batch=3, train_mode_bn=False)
    assert max_relative_difference(eval_parts, eval_full) < 1e-5


def test_fp16_loss_scaling_skips_an_overflowing_step_and_trains_otherwise():
    torch.manual_seed(0)
    model = build_classifier("test_efficientnet_gn", dropout=0.0, msd_samples=1).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    precision = Precision("fp16", "cpu")
    images, targets = batch()
    augment = BatchAugment("none", torch.Generator())
    with pytest.raises(ValueError, match="GradScaler"):
        train_step(model, optimizer, images, targets, WEIGHTS, augment, precision, CPU)

    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**60)  # fp16 gradients overflow at this scale
    loss = train_step(model, optimizer, images, targets, WEIGHTS, augment, precision, CPU, scaler=scaler)
    assert torch.isfinite(loss)
    assert all(torch.equal(p, start[n]) for n, p in model.named_parameters())  # the step was skipped
    assert scaler.get_scale() == 2.0**59  # and the scale backed off

    scaler = precision.grad_scaler()
    assert scaler.get_scale() == 2.0**16
    train_step(model, optimizer, images, targets, WEIGHTS, augment, precision, CPU, scaler=scaler)
    assert not all(torch.equal(p, start[n]) for n, p in model.named_parameters())
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_activation_checkpointing_gives_the_same_gradients_and_batchnorm_statistics():
    """Recomputed blocks give bitwise-equal gradients on the CPU; their BatchNorms would move the
    running statistics a second time during the recomputation, which enable_activation_checkpointing undoes."""
    models = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = build_classifier("test_efficientnet", dropout=0.2, msd_samples=2).train()
        if checkpointing:
            enable_activation_checkpointing(model)
        torch.manual_seed(1)  # the same dropout masks; checkpointing replays the RNG on recomputation
        for seed in (0, 1):
            images, targets = batch(seed=seed)
            train_step(
                model,
                torch.optim.SGD(model.parameters(), lr=0.1),
                images,
                targets,
                WEIGHTS,
                BatchAugment("light", torch.Generator().manual_seed(seed)),
                Precision(),
                CPU,
            )
        models.append(model)
    plain, checkpointed = models
    assert checkpointed.backbone.grad_checkpointing
    for (name, a), b in zip(plain.named_parameters(), checkpointed.parameters()):
        assert torch.equal(a.grad, b.grad), name
    for (name, a), b in zip(plain.named_buffers(), checkpointed.buffers()):
        assert torch.equal(a, b), name
    with pytest.raises(ValueError, match="set_grad_checkpointing"):
        enable_activation_checkpointing(torch.nn.Linear(2, 2))


DDP_WORKER = """
import json, sys
from syndface.classify.train import TrainConfig, train_classifier
from dataclasses import replace
cfg = TrainConfig(**json.loads(sys.argv[1]))
train_classifier(cfg, sys.argv[2], stop_after_epochs=1)  # the "kill" after epoch 1
train_classifier(replace(cfg, micro_batch=int(sys.argv[3])), sys.argv[2], keep_checkpoint=True)
"""


def test_two_process_data_parallel_run_matches_one_process(cache, tmp_path):  # noqa: F811
    """torchrun with 2 gloo processes, killed after epoch 1 and resumed (with micro-batches of 2 on
    the resume), against one process on the same global batch of 8. BatchNorm-free, dropout 0: the
    only differences are the order of float sums, so the loss curve and validation metrics agree to
    1e-5 relative (measured 8e-7) and the final weights to 2e-4 of each tensor's scale (measured
    4e-5: Adam's first steps divide by |gradient| and amplify rounding a little)."""
    cfg = config(cache, model="test_efficientnet_gn", dropout=0.0, msd_samples=1, batch_size=8, epochs=3)
    train_classifier(cfg, tmp_path / "single", keep_checkpoint=True)

    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(DDP_WORKER))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    proc = subprocess.run(
        [*cmd, str(script), json.dumps(asdict(cfg)), str(tmp_path / "ddp"), "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stderr.count("resuming from") == 1  # rank 0 logs; rank 1 keeps quiet

    single, ddp = (read_tsv(tmp_path / d / "history.tsv") for d in ("single", "ddp"))
    assert ddp["epoch"].tolist() == [1, 2, 3]
    for column in ("lr", "loss", "val_accuracy", "val_balanced_accuracy", "val_cohort_balanced_accuracy"):
        np.testing.assert_allclose(ddp[column], single[column], rtol=1e-5, err_msg=column)
    a = torch.load(tmp_path / "single" / CHECKPOINT_FILE, weights_only=True)
    b = torch.load(tmp_path / "ddp" / CHECKPOINT_FILE, weights_only=True)
    assert b["runtime"]["processes"] == 2 and b["runtime"]["micro_batch"] == 2 and len(b["rng"]["ranks"]) == 2
    for name, tensor in a["model"].items():
        scale = float(tensor.abs().max().clamp(min=1e-6))
        assert float((b["model"][name] - tensor).abs().max()) <= 2e-4 * scale, name
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["checkpoint.pt", "history.tsv", "model.pt"]


def test_batch_must_split_over_the_processes(cache, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr("syndface.classify.train.init_distributed", lambda dev: (_env(3), dev))
    with pytest.raises(ValueError, match="batch size 8 does not split evenly over 3 GPUs"):
        train_classifier(config(cache, batch_size=8), tmp_path)


def _env(world_size: int):
    from syndface.parallel import DistEnv

    return DistEnv(0, world_size, 0)
