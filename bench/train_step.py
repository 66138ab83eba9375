"""Training throughput of the classifier: fp32 NCHW against the optimised mode, in one run.

    python bench/train_step.py --model tf_efficientnet_b4 --image-size 448 --batch-size 64 --steps 20
    python bench/train_step.py --model test_efficientnet --image-size 64 --batch-size 32 --device cpu

Each mode times `train_step` of syndface.classify.train (host uint8 batch -> device, augmentation,
normalisation, forward, class-weighted loss, backward, Adam) after `--warmup` untimed steps
(cuDNN autotuning happens there). Modes: fp32 NCHW (PyTorch defaults, so cuDNN may use TF32),
and the optimised mode train-classifier uses on this GPU (precision auto: bf16 autocast from
compute capability 8.0, fp16 autocast + loss scaling on Pascal-Turing; channels_last from 7.0).
On a CPU bf16 + channels_last is run for comparison, though training there uses fp32. Prints
img/s per mode, their ratio, the augmentation's own img/s and the peak GPU memory. No timed asserts.
"""

from __future__ import annotations

import argparse
import time

import torch

from syndface.classify.augment import AUGMENT_MODES, BatchAugment
from syndface.classify.model import build_classifier, to_unit_float
from syndface.classify.train import to_device, train_step
from syndface.runtime import Precision, configure, resolve_device, resolve_precision
from syndface.taxonomy import DISEASES


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step, steps: int, warmup: int, device: torch.device) -> float:
    """Seconds per step, after `warmup` untimed steps."""
    for _ in range(warmup):
        step()
    synchronise(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronise(device)
    return (time.perf_counter() - start) / steps


def bench_mode(args, precision: Precision, device: torch.device, images: torch.Tensor, targets: torch.Tensor) -> float:
    torch.manual_seed(0)
    model = build_classifier(args.model, len(DISEASES), dropout=0.2, msd_samples=5).to(device).train()
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    weights = torch.tensor([10.0, 10.0, 10.0, 1.0], device=device)
    augment = BatchAugment(args.augment, torch.Generator().manual_seed(0))
    scaler = precision.grad_scaler()

    def step():
        batch = to_device(images, device)
        train_step(model, optimizer, batch, targets, weights, augment, precision, device, scaler=scaler)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = time_steps(step, args.steps, args.warmup, device)
    return args.batch_size / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="tf_efficientnet_b4")
    p.add_argument("--image-size", type=int, default=448)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--augment", choices=AUGMENT_MODES, default="paper")
    p.add_argument("--device", default="auto")
    p.add_argument("--num-threads", type=int, default=1)
    args = p.parse_args()

    device = resolve_device(args.device)
    configure(device, args.num_threads)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(
        0, 256, (args.batch_size, args.image_size, args.image_size, 3), dtype=torch.uint8, generator=gen
    )
    targets = torch.eye(len(DISEASES))[torch.randint(len(DISEASES), (args.batch_size,), generator=gen)].to(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} thread(s)"
    print(
        f"{args.model} @ {args.image_size} px, batch {args.batch_size}, augment {args.augment}, "
        f"{args.steps} timed steps after {args.warmup} warm-up; {name}; torch {torch.__version__}"
    )

    fast = resolve_precision("auto", device) if device.type == "cuda" else Precision("bf16", "cpu", True)
    results = {}
    for label, precision in (("fp32 NCHW", Precision("fp32", device.type, False)), (fast.describe(), fast)):
        results[label] = bench_mode(args, precision, device, images, targets)
        memory = f", peak {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB" if device.type == "cuda" else ""
        print(f"  {label:30s} {results[label]:9.1f} img/s{memory}", flush=True)
    fp32, fast = results.values()
    print(f"  ratio optimised / fp32: {fast / fp32:.2f}x")

    augment = BatchAugment(args.augment, torch.Generator().manual_seed(0))
    seconds = time_steps(
        lambda: augment(to_unit_float(to_device(images, device), device)), args.steps, args.warmup, device
    )
    print(f"  augmentation alone ({args.augment}, fp32): {args.batch_size / seconds:9.1f} img/s")


if __name__ == "__main__":
    main()
