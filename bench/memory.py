"""Peak GPU memory and speed of one classifier training step, per precision and micro-batch.

    python bench/memory.py --model tf_efficientnet_b4 --image-size 448 --batch 64 --micro-batch 16 --precision fp16
    python bench/memory.py --sweep --model tf_efficientnet_b4 --image-size 448 --batch 64 \\
        --precisions fp32,fp16,bf16 --micro-batches 16,32,64 --checkpointing off,on --markdown memory_table.md
    python bench/memory.py --smoke        (CPU, tiny model: checks the script; memory is not measurable there)

Each configuration times `train_step` of syndface.classify.train as train-classifier runs it: the
whole batch of `--batch` images is augmented on the GPU (what each rank of a data-parallel job
does too), then forward/backward runs in micro-batches of `--micro-batch` images, one Adam step.
Peak memory is `torch.cuda.max_memory_allocated` (tensors) and `max_memory_reserved` (what the
caching allocator holds, the number that must fit the card) over the timed steps, after
`--warmup` untimed ones (cuDNN autotuning happens there). A configuration that runs out of
memory is reported as OOM. Data parallelism adds its gradient buckets (about 2 x the parameters,
0.14 GiB for B4) to each rank; the CUDA context (~0.3-0.5 GiB) is not in these numbers.

`--markdown FILE` writes the README's table: the measured numbers and, per card size, the
largest micro-batch whose reserved peak leaves 1 GiB of the card free. fp16 on a P100/V100
moves the same tensors as fp16 here, so its memory carries over; the speed does not.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from syndface.classify.augment import AUGMENT_MODES, BatchAugment
from syndface.classify.model import build_classifier
from syndface.classify.train import to_device, train_step
from syndface.memory import enable_activation_checkpointing
from syndface.runtime import configure, resolve_device, resolve_precision
from syndface.taxonomy import DISEASES

GiB = 2**30
CARDS = {"16 GB (P100, V100-16GB)": 15.9, "40 GB (A100-40GB)": 39.4, "80 GB (A100-80GB, H100)": 79.1}
HEADROOM_GIB = 1.0


@dataclass
class Result:
    precision: str
    micro_batch: int
    checkpointing: bool
    images_per_s: float | None = None
    allocated_gib: float | None = None
    reserved_gib: float | None = None
    oom: bool = False

    def line(self, model: str, size: int, batch: int) -> str:
        what = (
            f"{model} @ {size} px, batch {batch}, {self.precision}, micro-batch {self.micro_batch}, "
            f"checkpointing {'on' if self.checkpointing else 'off'}:"
        )
        if self.oom:
            return f"{what} out of memory"
        memory = (
            f"peak {self.allocated_gib:.2f} GiB allocated, {self.reserved_gib:.2f} GiB reserved"
            if self.allocated_gib is not None
            else "GPU memory not measurable on the CPU"
        )
        return f"{what} {self.images_per_s:.1f} img/s, {memory}"


def measure(args, device: torch.device, precision_name: str, micro_batch: int, checkpointing: bool) -> Result:
    result = Result(precision_name, micro_batch, checkpointing)
    try:
        timed_steps(args, device, result)
    except torch.cuda.OutOfMemoryError:
        result.oom = True
    if device.type == "cuda":
        torch.cuda.empty_cache()  # the model of this configuration is gone; start the next one clean
    return result


def timed_steps(args, device: torch.device, result: Result) -> None:
    precision = resolve_precision(result.precision, device)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.batch, args.image_size, args.image_size, 3), dtype=torch.uint8, generator=gen)
    targets = torch.eye(len(DISEASES))[torch.randint(len(DISEASES), (args.batch,), generator=gen)].to(device)
    weights = torch.tensor([10.0, 10.0, 10.0, 1.0], device=device)
    torch.manual_seed(0)
    model = build_classifier(args.model, len(DISEASES), dropout=0.2, msd_samples=5).to(device).train()
    if result.checkpointing:
        enable_activation_checkpointing(model)
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    scaler = precision.grad_scaler()
    augment = BatchAugment(args.augment, torch.Generator().manual_seed(0))

    def step() -> None:
        batch = to_device(images, device)
        train_step(
            model,
            optimizer,
            batch,
            targets,
            weights,
            augment,
            precision,
            device,
            scaler=scaler,
            micro_batch=result.micro_batch,
        )

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        result.allocated_gib = torch.cuda.max_memory_allocated(device) / GiB
        result.reserved_gib = torch.cuda.max_memory_reserved(device) / GiB
    result.images_per_s = args.batch * args.steps / (time.perf_counter() - start)


def largest_fitting(rows: list[Result], capacity_gib: float, measured_on_gib: float) -> str:
    """The largest measured micro-batch that fits a card of `capacity_gib` with the headroom."""
    fitting = [r.micro_batch for r in rows if not r.oom and r.reserved_gib + HEADROOM_GIB <= capacity_gib]
    text = str(max(fitting)) if fitting else f"none of {', '.join(str(r.micro_batch) for r in rows)}"
    if capacity_gib > measured_on_gib and any(r.oom for r in rows):
        text += " (larger ones ran out of memory on the measuring GPU: not measured)"
    return text


def markdown(results: list[Result], args, gpu: str, gpu_gib: float) -> str:
    """The README table: measured rows, then the largest micro-batch per card size."""
    lines = [
        f"Measured on {gpu} ({gpu_gib:.0f} GiB), torch {torch.__version__}: `{args.model}` @ {args.image_size} px, batch {args.batch} "
        f"(augmented whole, as every rank does), micro-batches as listed; peak = max reserved by the allocator.",
        "",
        "| precision | checkpointing | micro-batch | img/s | peak allocated (GiB) | peak reserved (GiB) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.oom:
            lines.append(
                f"| {r.precision} | {'on' if r.checkpointing else 'off'} | {r.micro_batch} | OOM | OOM | OOM |"
            )
        else:
            lines.append(
                f"| {r.precision} | {'on' if r.checkpointing else 'off'} | {r.micro_batch} | {r.images_per_s:.0f} "
                f"| {r.allocated_gib:.1f} | {r.reserved_gib:.1f} |"
            )
    lines += ["", "| precision | checkpointing | " + " | ".join(CARDS) + " |", "|---|---|" + "---|" * len(CARDS)]
    for precision in dict.fromkeys(r.precision for r in results):
        for checkpointing in dict.fromkeys(r.checkpointing for r in results):
            rows = [r for r in results if r.precision == precision and r.checkpointing == checkpointing]
            if rows:
                cells = " | ".join(largest_fitting(rows, capacity, gpu_gib) for capacity in CARDS.values())
                lines.append(f"| {precision} | {'on' if checkpointing else 'off'} | {cells} |")
    lines.append(
        f"\nLargest micro-batch per GPU whose reserved peak leaves {HEADROOM_GIB:.0f} GiB free "
        "(CUDA context, data-parallel buckets, fragmentation)."
    )
    return "\n".join(lines) + "\n"


def csv_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="tf_efficientnet_b4")
    p.add_argument("--image-size", type=int, default=448)
    p.add_argument("--batch", type=int, default=64, help="global batch (augmented whole on the device)")
    p.add_argument("--micro-batch", type=int, default=0, help="images per forward pass (0 = the whole batch)")
    p.add_argument("--precision", default="auto", help="auto, fp32, fp16 or bf16")
    p.add_argument("--grad-checkpointing", action="store_true")
    p.add_argument("--sweep", action="store_true", help="every combination of the lists below")
    p.add_argument("--precisions", default="fp32,fp16,bf16")
    p.add_argument("--micro-batches", default="16,32,64")
    p.add_argument("--checkpointing", default="off,on", help="off, on or off,on")
    p.add_argument("--markdown", default=None, help="write the README table here (sweep only)")
    p.add_argument("--budget-s", type=float, default=0, help="stop the sweep after this many seconds (0 = none)")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--augment", choices=AUGMENT_MODES, default="paper")
    p.add_argument("--device", default="auto")
    p.add_argument("--num-threads", type=int, default=1)
    p.add_argument("--smoke", action="store_true", help="tiny model on the CPU: checks this script")
    args = p.parse_args()
    if args.smoke:
        args.model, args.image_size, args.batch, args.device, args.steps, args.warmup = (
            "test_efficientnet",
            32,
            8,
            "cpu",
            1,
            1,
        )
        args.precisions, args.micro_batches, args.sweep = "fp32,fp16,bf16", "4,8", True

    device = resolve_device(args.device)
    configure(device, args.num_threads)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "the CPU"
    if device.type != "cuda":
        print("no GPU: peak GPU memory is not measurable on the CPU; img/s only")
    if not args.sweep:
        configs = [(args.precision, args.micro_batch, args.grad_checkpointing)]
    else:
        flags = {"off": False, "on": True}
        configs = [
            (precision, micro, flags[c])
            for precision in args.precisions.split(",")
            for c in args.checkpointing.split(",")
            for micro in csv_ints(args.micro_batches)
        ]
    results, start = [], time.monotonic()
    for precision, micro, checkpointing in configs:
        if args.budget_s and time.monotonic() - start > args.budget_s:
            print(
                f"time budget of {args.budget_s:.0f} s spent: {len(configs) - len(results)} configuration(s) left out"
            )
            break
        results.append(measure(args, device, precision, micro, checkpointing))
        print(results[-1].line(args.model, args.image_size, args.batch), flush=True)
    if args.markdown and device.type == "cuda":
        gpu_gib = torch.cuda.get_device_properties(device).total_memory / GiB
        Path(args.markdown).write_text(markdown(results, args, gpu, gpu_gib))
        print(f"table written to {args.markdown}")


if __name__ == "__main__":
    main()
