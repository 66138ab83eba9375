"""`syndface occlusion-maps`: fold-averaged occlusion maps of the test images.

For every selected image of the packed cache (by default the test split of WS, 22q and
control, as the paper's attribution runs), each fold model's occlusion map of the TRUE label's
logit (the paper's code explains the true label, not the prediction), averaged over the fold
models. The maps stay signed; stages clip negatives where the paper's code does.

Outputs in --out-dir: `maps.npy` (float32, N x H x W, row i = index row i) and `index.tsv`
(row, image_id, disease, age_group, source, subject_id, cache_row, target). Long runs save
`checkpoint.npz` every --checkpoint-every seconds and resume from it when rerun with the same
arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from syndface.io import atomic_path, read_tsv, write_tsv
from syndface.log import get_logger, progress
from syndface.options import add_options_argument
from syndface.saliency.options import OcclusionOptions
from syndface.taxonomy import SPLITS, disease_index

log = get_logger("syndface.saliency")

INDEX_COLUMNS = ("row", "image_id", "disease", "age_group", "source", "subject_id", "cache_row", "target")


def select_images(index: pd.DataFrame, split: str, diseases: list[str]) -> pd.DataFrame:
    """Rows of a cache index in the given split and diseases, in cache order, with the target class."""
    for disease in diseases:
        disease_index(disease)
    chosen = index[(index["split"] == split) & index["disease"].isin(diseases)].copy()
    if chosen.empty:
        raise ValueError(
            f"the cache has no {split}-split images of {', '.join(diseases)}; "
            "check --split/--diseases against the cache's index.tsv"
        )
    chosen["cache_row"] = chosen["row"].astype(int)
    chosen["target"] = [disease_index(d) for d in chosen["disease"]]
    chosen = chosen.sort_values("cache_row").reset_index(drop=True)
    chosen["row"] = np.arange(len(chosen))
    return chosen[list(INDEX_COLUMNS)]


def load_maps(maps_dir: str | Path) -> tuple[np.ndarray, pd.DataFrame]:
    """(maps N x H x W, index) as written by `occlusion-maps`; the maps are memory-mapped."""
    maps_dir = Path(maps_dir)
    for name in ("maps.npy", "index.tsv"):
        if not (maps_dir / name).is_file():
            raise FileNotFoundError(
                f"{maps_dir / name} is missing; run `syndface occlusion-maps --out-dir {maps_dir}` first"
            )
    maps = np.load(maps_dir / "maps.npy", mmap_mode="r")
    index = read_tsv(maps_dir / "index.tsv")
    if len(index) != len(maps):
        raise ValueError(
            f"{maps_dir}: maps.npy has {len(maps)} maps but index.tsv {len(index)} rows; rerun occlusion-maps"
        )
    return maps, index


def scaled_pixels(pixels: int, size: int, reference_size: int | None) -> int:
    """A length given for `reference_size` images, for `size` images (at least 1 px)."""
    return pixels if reference_size is None else max(1, round(pixels * size / reference_size))


def _images_per_block(per_image_forwards: int, batch: int) -> int:
    # Enough images per block that padding the last forward batch wastes at most ~1/16 of the work.
    return max(1, math.ceil(16 * batch / per_image_forwards))


def _fingerprint(args: argparse.Namespace, image_ids: list[str]) -> str:
    """What checkpoint.npz must match to be resumed: the arguments that decide the maps, with
    `auto` settled (a job pre-empted on a GPU and rerun on a CPU must not mix bf16 and fp32
    maps), the fold models' files and the syndface version."""
    from syndface import __version__
    from syndface.runtime import resolve_device, resolve_precision

    ignored = {"options", "num_threads", "checkpoint_every", "out_dir"}
    keys = {k: str(v) for k, v in vars(args).items() if k not in ignored}
    keys.update({k: str(v) for k, v in args.options.options().items() if k != "batch"})
    keys["precision"] = resolve_precision(args.options.precision, resolve_device(args.options.device)).name
    keys["syndface_version"] = __version__
    keys["models_mtime"] = [Path(m).stat().st_mtime_ns for m in args.models]
    keys["images"] = hashlib.sha256("\n".join(image_ids).encode()).hexdigest()
    return json.dumps(keys, sort_keys=True)


def _resume(path: Path, fingerprint: str, shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
    if path.is_file():
        with np.load(path) as saved:
            if str(saved["fingerprint"]) == fingerprint and saved["maps"].shape == shape:
                log.info("resuming from %s: %d of %d images done", path, int(saved["done"]), shape[0])
                return saved["maps"].copy(), int(saved["done"])
        log.warning("not resuming from %s: it was written with other arguments; starting over", path)
    return np.zeros(shape, dtype=np.float32), 0


def _save_checkpoint(path: Path, maps: np.ndarray, done: int, fingerprint: str) -> None:
    with atomic_path(path) as tmp:
        np.savez(tmp, maps=maps, done=done, fingerprint=fingerprint)


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", required=True, help="fold models (model.pt), averaged per image")
    p.add_argument("--cache", required=True, help="packed image cache directory (images.npy + index.tsv)")
    p.add_argument("--split", default="test", choices=SPLITS)
    add_options_argument(p, OcclusionOptions)
    p.add_argument(
        "--baseline", type=float, default=0.0, help="occluded value in normalised space (0 = ImageNet mean colour)"
    )
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--num-threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    p.add_argument("--checkpoint-every", type=float, default=300.0, help="seconds between resumable checkpoints")
    p.add_argument("--out-dir", required=True)
    return p


def main(argv: list[str], prog: str = "syndface occlusion-maps") -> int:
    args = build_parser(prog).parse_args(argv)
    opts = args.options
    import torch

    from syndface.align.cache import load_cache
    from syndface.classify.model import load_classifier, preprocess
    from syndface.runtime import configure, resolve_device, resolve_precision
    from syndface.saliency.occlusion import fold_mean, occlusion_maps, prepare_model, window_bands

    device = resolve_device(opts.device)
    # fp32 (the default) is exact, equal to captum; fp16/bf16/auto are opt-in fast modes.
    precision = resolve_precision(opts.precision, device).name
    # TF32 would make "fp32" maps differ from exact ones by ~1 % (performance-facts.md section 0).
    configure(device, args.num_threads, tf32=precision != "fp32")

    cache, cache_index = load_cache(args.cache)
    chosen = select_images(cache_index, args.split, opts.diseases)
    size = cache.shape[1]
    window, stride = (scaled_pixels(v, size, opts.reference_size) for v in (opts.window, opts.stride))
    models = []
    for path in args.models:
        model, ckpt = load_classifier(path, device)
        trained_size = ckpt.get("arch", {}).get("image_size")
        if trained_size is not None and int(trained_size) != size:
            raise ValueError(
                f"{path} was trained at {trained_size} px but the cache {args.cache} holds {size} px images; pass the matching cache"
            )
        models.append(prepare_model(model, device, args.channels_last))
    per_image = len(window_bands(size, window, stride)) ** 2 + 1
    log.info(
        "%d images x %d models, %d forwards each (window %d px, stride %d px, %s, %s, channels_last=%s)",
        len(chosen),
        len(models),
        per_image,
        window,
        stride,
        precision,
        device,
        args.channels_last,
    )

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = out_dir / "checkpoint.npz"
    fingerprint = _fingerprint(args, chosen["image_id"].tolist())
    maps, done = _resume(checkpoint, fingerprint, (len(chosen), size, size))
    block = _images_per_block(per_image, opts.batch)
    starts = range(done, len(chosen), block)
    last_save = time.monotonic()
    for start in progress(starts, len(starts), "occlusion blocks", log):
        rows = chosen.iloc[start : start + block]
        images = preprocess(torch.from_numpy(np.ascontiguousarray(cache[rows["cache_row"].to_numpy()])), device)
        per_fold = occlusion_maps(
            models,
            images,
            rows["target"].to_numpy(),
            window,
            stride,
            baseline=args.baseline,
            batch=opts.batch,
            precision=precision,
            channels_last=args.channels_last,
            fixed_shape=device.type == "cuda",
        )
        maps[start : start + len(rows)] = fold_mean(per_fold).cpu().numpy()
        if time.monotonic() - last_save >= args.checkpoint_every:
            _save_checkpoint(checkpoint, maps, start + len(rows), fingerprint)
            last_save = time.monotonic()

    with atomic_path(out_dir / "maps.npy") as tmp:
        np.save(tmp, maps)
    write_tsv(
        chosen,
        out_dir / "index.tsv",
        header_lines=[
            "occlusion maps of the true label's logit, signed mean over the fold models (negatives kept)",
            f"window {window} px, stride {stride} px, baseline {args.baseline}, {precision}, image size {size} px",
            "models: " + " ".join(args.models),
        ],
    )
    checkpoint.unlink(missing_ok=True)
    log.info("wrote %d maps to %s", len(chosen), out_dir)
    return 0
