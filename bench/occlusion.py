"""Seconds per image: captum's Occlusion against syndface's batched exact occlusion, same model and images.

    python bench/occlusion.py --model tf_efficientnet_b4 --size 448 --window 20 --stride 10 --device cuda
    python bench/occlusion.py --model test_efficientnet --size 64 --window 8 --stride 4 --device cpu --threads 1

Random-init weights (nothing is downloaded), target class 0, baseline 0. TF32 is switched off
so that fp32 maps can be compared exactly. Every method runs once untimed first (cuDNN
autotuning), then on --images images; ours processes them as one block, captum one at a
time with perturbations_per_eval 256. With --fast also ours in the fast mode: the GPU's half
precision (bf16 from compute capability 8.0, fp16 on Pascal-Turing) + channels_last, fp32 +
channels_last on CPU (half-precision convolutions are slow on most CPUs).
"""

from __future__ import annotations

import argparse
import time

import timm
import torch
from captum.attr import Occlusion

from syndface.runtime import resolve_precision
from syndface.saliency.occlusion import occlusion_maps, prepare_model, window_bands


def timed(fn, device: torch.device) -> tuple[torch.Tensor, float]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="test_efficientnet")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--window", type=int, default=8)
    p.add_argument("--stride", type=int, default=4)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=256, help="our forward batch (captum uses perturbations_per_eval 256)")
    p.add_argument("--images", type=int, default=2)
    p.add_argument("--fast", action=argparse.BooleanOptionalAction, default=True, help="also time the fast mode")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch default)")
    args = p.parse_args()

    device = torch.device(args.device)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    model = timm.create_model(args.model, num_classes=4).to(device).eval()
    images = torch.randn(args.images, 3, args.size, args.size, device=device)
    targets = torch.zeros(args.images, dtype=torch.long, device=device)
    n_forwards = len(window_bands(args.size, args.window, args.stride)) ** 2 + 1
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"{args.model} @{args.size}, window {args.window}, stride {args.stride}: {n_forwards} forwards per image; {name}; torch {torch.__version__}"
    )

    def captum_map(i: int) -> torch.Tensor:
        return Occlusion(model).attribute(
            images[i : i + 1],
            sliding_window_shapes=(3, args.window, args.window),
            strides=(3, args.stride, args.stride),
            baselines=0,
            target=0,
            perturbations_per_eval=256,
        )[:, 0]

    def ours(net, precision, channels_last):
        return lambda: occlusion_maps(
            [net],
            images,
            targets,
            args.window,
            args.stride,
            batch=args.batch,
            precision=precision,
            channels_last=channels_last,
            fixed_shape=device.type == "cuda",
        )[0]

    with torch.inference_mode():
        captum_map(0)
        reference, t_captum = timed(lambda: torch.cat([captum_map(i) for i in range(args.images)]), device)
    print(f"captum Occlusion fp32, perturbations_per_eval 256: {t_captum / args.images:.3f} s/image")

    exact = ours(model, "fp32", False)
    exact()
    maps, t_ours = timed(exact, device)
    value_range = (reference.max() - reference.min()).item()
    diff = (maps - reference).abs().max().item()
    print(
        f"ours fp32, batch {args.batch}: {t_ours / args.images:.3f} s/image; captum/ours = {t_captum / t_ours:.2f}x; "
        f"max|diff| = {diff:.3g} ({diff / value_range:.2g} of the map's range)"
    )

    if args.fast:
        precision = resolve_precision("auto", device).name
        fast_model = prepare_model(timm.create_model(args.model, num_classes=4).to(device), device, channels_last=True)
        fast_model.load_state_dict(model.state_dict())
        fast = ours(fast_model, precision, True)
        fast()
        fast_maps, t_fast = timed(fast, device)
        corr = torch.corrcoef(torch.stack([fast_maps.flatten().float(), reference.flatten()]))[0, 1].item()
        print(
            f"ours {precision} + channels_last, batch {args.batch}: {t_fast / args.images:.3f} s/image; captum/ours = {t_captum / t_fast:.2f}x; "
            f"Pearson r vs captum fp32 = {corr:.4f}"
            + (
                " (random init: logit drops are tiny, so half-precision rounding dominates)"
                if precision != "fp32"
                else ""
            )
        )


if __name__ == "__main__":
    main()
