"""Initialise the GAN from NVIDIA's FFHQ-256 network without running code from its pickle.

Expected file: `ffhq-res256-mirror-paper256-noaug.pkl`, the transfer-learning source network of
StyleGAN2-ADA (unconditional, 256 px, paper256 config: channel_base 16384, channel_max 512,
8 mapping layers, z/w 512), either the PyTorch pickle (stylegan2-ada-pytorch) or the TF one
(stylegan2-ada). Download it yourself and pass its path to `syndface train-gan --resume-ffhq`
(config: gan.resume_ffhq); nothing is downloaded at run time. Train at the paper's settings
(--resolution 256 --channel-base 16384 --channel-max 512 --z-dim 512 --w-dim 512
--mapping-layers 8) so the shapes match.

Such pickles normally need NVIDIA's `dnnlib`/`torch_utils` on the import path and execute the
network source stored inside them. `SafeUnpickler` instead rebuilds only tensors, numpy
arrays and plain containers: NVIDIA's persistent-object reconstructor and TF `Network` become
inert records of their saved state, and any other global (os.system, eval, ...) is refused.

Transfer: every tensor is copied by name except the label embeddings (G and D) and D's output
layer, which the unconditional source lacks and stay freshly initialised (as in the paper). The
first mapping layer gains the label-embedding inputs: its z columns are copied, scaled by
sqrt(new fan-in / old fan-in) to undo the equalised-lr gain change, and the label columns start
at zero, so the transferred mapping equals FFHQ's at step 0.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from syndface.log import get_logger

log = get_logger("syndface.gan.ffhq")

EXPECTED_FILE = "ffhq-res256-mirror-paper256-noaug.pkl"
PAPER_FLAGS = "--resolution 256 --channel-base 16384 --channel-max 512 --z-dim 512 --w-dim 512 --mapping-layers 8"
# Tensors the unconditional source cannot provide: they stay freshly initialised.
FRESH = re.compile(r"^(mapping\.embed\.|embed\.|b4\.out\.)")
# Constant FIR filters the official network stores as buffers; ours recomputes them.
IGNORED = re.compile(r"(^|\.)resample_filter$")


class PersistentRecord:
    """Stands in for a `torch_utils.persistence` object: its class name and saved state, nothing run."""

    def __init__(self, meta: dict[str, Any]):
        self.class_name = meta.get("class_name")
        self.state = meta.get("state") or {}


class TFNetworkRecord:
    """Stands in for `dnnlib.tflib.network.Network`: keeps the pickled state (variables, components)."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.state = state


class PlainDict(dict):
    """Stands in for dnnlib's EasyDict."""


def _storage_from_bytes(data: bytes) -> Any:
    # torch's own helper would unpickle these bytes without restrictions; weights_only does not.
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _numpy_global(name: str) -> Any:
    import numpy._core.multiarray as multiarray

    return getattr(multiarray, name)


SAFE_GLOBALS: dict[tuple[str, str], Callable[[], Any]] = {
    ("collections", "OrderedDict"): lambda: collections.OrderedDict,
    ("builtins", "set"): lambda: set,
    ("builtins", "frozenset"): lambda: frozenset,
    ("torch._utils", "_rebuild_tensor_v2"): lambda: torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): lambda: torch._utils._rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): lambda: _storage_from_bytes,
    ("numpy", "dtype"): lambda: np.dtype,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy.core.multiarray", "scalar"): lambda: _numpy_global("scalar"),
    ("numpy._core.multiarray", "scalar"): lambda: _numpy_global("scalar"),
    ("numpy.core.multiarray", "_reconstruct"): lambda: _numpy_global("_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): lambda: _numpy_global("_reconstruct"),
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): lambda: PersistentRecord,
    ("dnnlib.util", "EasyDict"): lambda: PlainDict,
    ("dnnlib.tflib.network", "Network"): lambda: TFNetworkRecord,
}


class SafeUnpickler(pickle.Unpickler):
    """Resolves only SAFE_GLOBALS; any other global in the stream raises UnpicklingError."""

    def find_class(self, module: str, name: str) -> Any:
        factory = SAFE_GLOBALS.get((module, name))
        if factory is None:
            raise pickle.UnpicklingError(
                f"refusing to load the global {module}.{name}: this loader only rebuilds tensors, arrays and "
                f"plain containers, never code from a pickle. Supply NVIDIA's {EXPECTED_FILE} (PyTorch or TF release)"
            )
        return factory()


def safe_load(path: str | Path) -> Any:
    with open(path, "rb") as fh:
        return SafeUnpickler(fh).load()


def _module_tensors(record: PersistentRecord, prefix: str = "") -> dict[str, torch.Tensor]:
    """Flatten a persistent module record the way nn.Module.state_dict names its entries."""
    out: dict[str, torch.Tensor] = {}
    for group in ("_parameters", "_buffers"):
        for name, value in (record.state.get(group) or {}).items():
            if value is not None:
                out[prefix + name] = value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    for name, child in (record.state.get("_modules") or {}).items():
        if isinstance(child, PersistentRecord):
            out.update(_module_tensors(child, f"{prefix}{name}."))
    return out


def _tf_variables(record: TFNetworkRecord, prefix: str = "") -> dict[str, np.ndarray]:
    out = {prefix + name: np.asarray(value) for name, value in record.state.get("variables", [])}
    for name, child in (record.state.get("components") or {}).items():
        out.update(_tf_variables(child, f"{prefix}{name}/"))
    return out


def _conv(w: np.ndarray) -> np.ndarray:
    return w.transpose(3, 2, 0, 1)  # TF [kh, kw, in, out] -> [out, in, kh, kw]


def _up_conv(w: np.ndarray) -> np.ndarray:
    return _conv(w[::-1, ::-1])  # TF's transposed conv is spatially flipped relative to ours


def _fc(w: np.ndarray) -> np.ndarray:
    return w.T


def _same(w: np.ndarray) -> np.ndarray:
    return w


def _synthesis_layer_rules(
    tf_layer: str, ours: str, weight: Callable[[np.ndarray], np.ndarray]
) -> list[tuple[str, str, Callable]]:
    return [
        (rf"synthesis/(\d+)x\1/{tf_layer}/weight", ours + ".weight", weight),
        (rf"synthesis/(\d+)x\1/{tf_layer}/bias", ours + ".bias", _same),
        (rf"synthesis/(\d+)x\1/{tf_layer}/mod_weight", ours + ".affine.weight", _fc),
        (rf"synthesis/(\d+)x\1/{tf_layer}/mod_bias", ours + ".affine.bias", lambda b: b + 1),  # TF stores bias - 1
        (rf"synthesis/(\d+)x\1/{tf_layer}/noise_strength", ours + ".noise_strength", _same),
    ]


# (TF variable pattern, our name with {r} = the resolution group, conversion)
TF_GENERATOR_RULES: list[tuple[str, str, Callable]] = [
    (r"mapping/Dense(\d+)/weight", "mapping.fc{r}.weight", _fc),
    (r"mapping/Dense(\d+)/bias", "mapping.fc{r}.bias", _same),
    (r"dlatent_avg", "mapping.w_avg", _same),
    (r"synthesis/(4)x4/Const/const", "synthesis.b{r}.const", lambda c: c[0]),
    *_synthesis_layer_rules("Conv", "synthesis.b{r}.conv1", _conv),
    *_synthesis_layer_rules("Conv0_up", "synthesis.b{r}.conv0", _up_conv),
    *_synthesis_layer_rules("Conv1", "synthesis.b{r}.conv1", _conv),
    *[
        (rf"synthesis/(\d+)x\1/ToRGB/{tf}", f"synthesis.b{{r}}.torgb.{ours}", fn)
        for tf, ours, fn in (
            ("weight", "weight", _conv),
            ("bias", "bias", _same),
            ("mod_weight", "affine.weight", _fc),
            ("mod_bias", "affine.bias", lambda b: b + 1),
        )
    ],
]
TF_DISCRIMINATOR_RULES: list[tuple[str, str, Callable]] = [
    *[
        (rf"(\d+)x\1/{tf}/{p}", f"b{{r}}.{ours}.{p}", _conv if p == "weight" else _same)
        for tf, ours in (("FromRGB", "fromrgb"), ("Conv0", "conv0"), ("Conv1_down", "conv1"), ("Skip", "skip"))
        for p in ("weight", "bias")
    ],
    (r"(4)x4/Conv/weight", "b{r}.conv.weight", _conv),
    (r"(4)x4/Conv/bias", "b{r}.conv.bias", _same),
    (r"(4)x4/Dense0/weight", "b{r}.fc.weight", _fc),
    (r"(4)x4/Dense0/bias", "b{r}.fc.bias", _same),
    (r"Output/weight", "b4.out.weight", _fc),
    (r"Output/bias", "b4.out.bias", _same),
]
TF_IGNORED = re.compile(r"(^|/)lod$")


def _noise_name(index: int) -> str:
    """TF `noise{i}` -> the layer it feeds: 0 = b4.conv1, then conv0/conv1 of 8, 16, ... px."""
    if index == 0:
        return "synthesis.b4.conv1.noise_const"
    res = 2 ** ((index + 5) // 2)
    return f"synthesis.b{res}.conv{1 - index % 2}.noise_const"


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array, order="C"))  # a copy; keeps 0-d scalars 0-d


def convert_tf(variables: dict[str, np.ndarray], rules: list[tuple[str, str, Callable]]) -> dict[str, torch.Tensor]:
    """TF variable dict -> state dict named as our modules; unknown variables raise."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for name, value in variables.items():
        noise = re.fullmatch(r"synthesis/noise(\d+)", name)
        if noise:
            out[_noise_name(int(noise.group(1)))] = _tensor(value[0, 0])
            continue
        for pattern, target, fn in rules:
            match = re.fullmatch(pattern, name)
            if match:
                out[target.format(r=match.group(1) if match.groups() else "")] = _tensor(fn(value))
                break
        else:
            if not TF_IGNORED.search(name):
                unknown.append(name)
    if unknown:
        raise ValueError(f"unrecognised variables in the TF network: {', '.join(unknown[:10])}")
    return out


def load_source_networks(path: str | Path) -> dict[str, dict[str, torch.Tensor]]:
    """{'G', 'D', 'G_ema'} -> flat state dicts named as ours, from a PyTorch or TF StyleGAN2-ADA pickle."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"FFHQ network {str(path)!r} does not exist; download {EXPECTED_FILE} and pass its path, or use --resume-ffhq none"
        )
    data = safe_load(path)
    if isinstance(data, dict) and all(isinstance(data.get(k), PersistentRecord) for k in ("G", "D", "G_ema")):
        return {k: _module_tensors(data[k]) for k in ("G", "D", "G_ema")}
    if isinstance(data, tuple) and len(data) == 3 and all(isinstance(x, TFNetworkRecord) for x in data):
        G, D, Gs = (_tf_variables(x) for x in data)
        return {
            "G": convert_tf(G, TF_GENERATOR_RULES),
            "D": convert_tf(D, TF_DISCRIMINATOR_RULES),
            "G_ema": convert_tf(Gs, TF_GENERATOR_RULES),
        }
    raise ValueError(
        f"{path} is not a StyleGAN2-ADA network pickle (expected a dict with G, D, G_ema or a TF (G, D, Gs) tuple)"
    )


@torch.no_grad()
def transfer(target: nn.Module, source: dict[str, torch.Tensor], what: str) -> list[str]:
    """Copy `source` into `target` by name (see module doc); returns the names left fresh. Raises on any mismatch."""
    own = target.state_dict()
    fresh, mismatched = [], []
    for name, tensor in own.items():
        src = source.get(name)
        if (
            name == "mapping.fc0.weight"
            and src is not None
            and src.shape[0] == tensor.shape[0]
            and src.shape[1] < tensor.shape[1]
        ):
            tensor.zero_()
            tensor[:, : src.shape[1]] = src * math.sqrt(tensor.shape[1] / src.shape[1])
        elif src is not None and src.shape == tensor.shape:
            tensor.copy_(src)
        elif FRESH.match(name):
            fresh.append(name)
        else:
            mismatched.append(
                f"{name} (ours {tuple(tensor.shape)}, source {tuple(src.shape) if src is not None else 'missing'})"
            )
    unused = sorted(k for k in source if k not in own and not IGNORED.search(k))
    if mismatched or unused:
        details = mismatched + [f"{k} (only in the source)" for k in unused]
        raise ValueError(
            f"the source {what} does not match this network: {'; '.join(details[:8])}{' ...' if len(details) > 8 else ''}. "
            f"For {EXPECTED_FILE} train with {PAPER_FLAGS}"
        )
    return fresh


def initialise_from_ffhq(G: nn.Module, D: nn.Module, G_ema: nn.Module, path: str | Path) -> None:
    """Load the FFHQ source pickle at `path` into G, D and G_ema (label embeddings and D's output stay fresh)."""
    source = load_source_networks(path)
    for module, key in ((G, "G"), (D, "D"), (G_ema, "G_ema")):
        fresh = transfer(module, source[key], key)
        log.info(
            "%s: copied %d tensors from %s; fresh: %s",
            key,
            len(module.state_dict()) - len(fresh),
            Path(path).name,
            ", ".join(fresh) or "none",
        )
