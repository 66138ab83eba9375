"""Throughput of one conditional StyleGAN2-ADA training step (G, D, lazy R1 and path-length regularisation, ADA).

Runs `--steps` steps of syndface.gan.train.GanTrainer on random images (a multiple of 16 covers
whole lazy-regularisation cycles) after `--warmup` steps, and prints kimg/s and s/kimg.

  CPU, small:   python bench/gan_step.py --resolution 32 --channel-base 256 --channel-max 16 --z-dim 16 --w-dim 16 --mapping-layers 2 --batch 16
  GPU, paper:   python bench/gan_step.py --resolution 256 --channel-base 16384 --channel-max 512 --mapping-layers 8 --batch 64 --mbstd-group 8

`--precision` auto/fp32/fp16/bf16 (fp16/bf16: the 4 highest resolutions of G and D in half
precision, as the official num_fp16_res), `--micro-batch` images per forward pass. On a GPU it
prints the peak memory (`torch.cuda.max_memory_allocated`). At 256 px it also prints the ratio to the published stylegan2-ada-pytorch figure (paper256 on
8 V100s: 4.01 s/kimg, i.e. ~32 V100-seconds per kimg); a ratio above 1 is faster than one V100.
"""

from __future__ import annotations

import argparse
import time

import torch

from syndface.gan.networks import GanArch, label_vectors
from syndface.gan.train import GanTrainer, TrainOptions
from syndface.runtime import configure, resolve_device, resolve_precision
from syndface.taxonomy import AGE_GROUPS, DISEASES

V100_SECONDS_PER_KIMG_256 = 4.01 * 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--channel-base", type=int, default=256)
    parser.add_argument("--channel-max", type=int, default=16)
    parser.add_argument("--z-dim", type=int, default=16)
    parser.add_argument("--w-dim", type=int, default=16)
    parser.add_argument("--mapping-layers", type=int, default=2)
    parser.add_argument("--mbstd-group", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--ada-p", type=float, default=0.2, help="fixed augmentation probability during the bench")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", choices=("auto", "fp32", "fp16", "bf16"), default="auto")
    parser.add_argument("--micro-batch", type=int, default=0, help="images per forward pass (0 = the whole batch)")
    parser.add_argument("--num-threads", type=int, default=1)
    args = parser.parse_args()

    device = resolve_device(args.device)
    configure(device, args.num_threads)
    precision = resolve_precision(args.precision, device)
    arch = GanArch(
        resolution=args.resolution,
        channel_base=args.channel_base,
        channel_max=args.channel_max,
        z_dim=args.z_dim,
        w_dim=args.w_dim,
        mapping_layers=args.mapping_layers,
        mbstd_group=args.mbstd_group,
    )
    n = 4 * args.batch
    images = torch.randint(0, 256, (n, 3, arch.resolution, arch.resolution), dtype=torch.uint8)
    labels = label_vectors([DISEASES[i % 4] for i in range(n)], [AGE_GROUPS[i % 5] for i in range(n)])
    trainer = GanTrainer(
        arch,
        TrainOptions(batch=args.batch, ada_kimg=1e12),
        images,
        torch.arange(n),
        labels,
        device,
        precision,
        args.micro_batch,
    )
    trainer.augment.p.fill_(args.ada_p)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        trainer.train_step()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    sync()
    seconds = time.perf_counter() - start
    kimg = args.steps * args.batch / 1000
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    params = sum(p.numel() for p in trainer.G.parameters()) + sum(p.numel() for p in trainer.D.parameters())
    print(
        f"device {name}, {precision.name}, micro-batch {args.micro_batch or args.batch}; {arch.resolution} px, channel_base {arch.channel_base}, channel_max {arch.channel_max}, "
        f"{arch.mapping_layers} mapping layers, batch {args.batch}; G+D {params / 1e6:.2f} M parameters"
    )
    print(f"{args.steps} steps in {seconds:.2f} s: {kimg / seconds:.4f} kimg/s, {seconds / kimg:.1f} s/kimg")
    if device.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB")
    if arch.resolution == 256:
        print(
            f"ratio to one V100 (paper256, {V100_SECONDS_PER_KIMG_256:.0f} V100-s/kimg): {V100_SECONDS_PER_KIMG_256 / (seconds / kimg):.2f}"
        )


if __name__ == "__main__":
    main()
