"""Where and how torch runs: the one home of device, GPU-build, precision, cuDNN and TF32 decisions.

- **Device.** `resolve_device` picks the GPU or the CPU and, for a GPU, first checks that the
  running torch carries kernels for it (`check_gpu_arch`): the PyPI wheel of torch 2.14.1 is a
  CUDA 13 build for sm_75 and newer, so on a P100 (6.0) or V100 (7.0) every kernel would fail
  with "no kernel image is available"; the error names the environment to install instead.
- **Precision** (`resolve_precision`, one `Precision` object for the classifier, the GAN and
  occlusion): `auto` is bf16 autocast on compute capability >= 8.0 (Ampere and newer), fp16
  autocast with loss scaling (`torch.amp.GradScaler`) on 6.0-7.5 (Pascal, Volta, Turing: no
  bf16), fp32 on the CPU. channels_last goes with tensor-core GPUs (>= 7.0).
- **Process settings** (`configure`): CPU threads; cuDNN autotuning (fixed batch shapes, so it
  tunes once) and TF32 by default; `deterministic=True` trades speed for run-to-run identical
  GPU results.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import warnings
from dataclasses import dataclass

import torch

# The builds of torch 2.14.1 and which GPUs they cover (PyTorch's release matrix, checked 2026-12-01).
TORCH_VERSION, TORCHVISION_VERSION = "2.14.1", "0.29.1"
LEGACY_INDEX_URL = "https://download.pytorch.org/whl/cu126"
LEGACY_INSTALL = (
    f"pip install torch=={TORCH_VERSION}+cu126 torchvision=={TORCHVISION_VERSION}+cu126 --index-url {LEGACY_INDEX_URL}"
)
DEFAULT_INSTALL = f"pip install torch=={TORCH_VERSION} torchvision=={TORCHVISION_VERSION}"
LEGACY_ENV = f"the Pascal/Volta GPU environment (`make venv-gpu-pascal`, or: {LEGACY_INSTALL})"
DEFAULT_ENV = (
    f"the default GPU environment (requirements.lock as `make demo` installs it, or: {DEFAULT_INSTALL} from PyPI)"
)
LEGACY_BELOW = (7, 5)  # Turing and newer run the default (CUDA 13) build; older GPUs need the CUDA 12.6 one
OLDEST_SUPPORTED = (5, 0)  # the CUDA 12.6 build starts at Maxwell


class GpuBuildError(RuntimeError):
    """The running torch has no kernels for this GPU."""


def build_architectures() -> list[str]:
    """The GPU architectures the running torch was compiled for, e.g. ['sm_75', ..., 'compute_90'].

    `torch.cuda.get_arch_list()` is empty in some builds/states; the compiled flags then still say it."""
    archs = torch.cuda.get_arch_list()
    if not archs and hasattr(torch._C, "_cuda_getArchFlags"):
        archs = (torch._C._cuda_getArchFlags() or "").split()
    return list(archs)


def _parse_arch(entry: str) -> tuple[str, tuple[int, int], str] | None:
    """'sm_86' -> ('sm', (8, 6), ''); 'compute_90' -> ('compute', (9, 0), ''); 'sm_90a' -> ('sm', (9, 0), 'a')."""
    match = re.fullmatch(r"(sm|compute)_(\d+)(\d)([af]?)", entry.strip())
    if not match:
        return None
    kind, major, minor, suffix = match.groups()
    return kind, (int(major), int(minor)), suffix


def arch_runs_on(entry: str, capability: tuple[int, int]) -> bool:
    """Whether code compiled as `entry` runs on a GPU of `capability` (CUDA's compatibility rules).

    A cubin (sm_XY) runs on the same major version with an equal or higher minor (sm_80 on 8.6,
    not sm_86 on 8.0). PTX (compute_XY) is compiled by the driver at load time for any GPU of
    capability >= X.Y. Architecture-specific code ('a' suffix) runs on exactly X.Y; family code
    ('f') on the same major with a minor >= Y.
    """
    parsed = _parse_arch(entry)
    if parsed is None:
        return False
    kind, arch, suffix = parsed
    if suffix == "a":
        return capability == arch
    if kind == "compute" and not suffix:
        return capability >= arch
    return capability[0] == arch[0] and capability[1] >= arch[1]


def environment_for(capability: tuple[int, int]) -> str:
    """Which environment to install for a GPU of `capability`."""
    if capability < OLDEST_SUPPORTED:
        return "no build of torch 2.14 (the CUDA 12.6 build starts at compute capability 5.0); run with device: cpu"
    return LEGACY_ENV if capability < LEGACY_BELOW else DEFAULT_ENV


def arch_mismatch(name: str, capability: tuple[int, int], archs: list[str]) -> str | None:
    """The error message when a torch built for `archs` cannot run on this GPU; None when it can.

    An empty list (a CPU or ROCm build, or a build that does not say) is given the benefit of the doubt."""
    if not archs or any(arch_runs_on(a, capability) for a in archs):
        return None
    version = f"torch {torch.__version__}" + (f" (CUDA {torch.version.cuda})" if torch.version.cuda else "")
    return (
        f"the GPU {name} has compute capability {capability[0]}.{capability[1]} "
        f"(sm_{capability[0]}{capability[1]}), but the running {version} was built for {' '.join(archs)} only: "
        f"every GPU kernel would fail with 'no kernel image is available for execution on the device'. "
        f"Install {environment_for(capability)}, or run on another GPU."
    )


def check_gpu_arch(device: torch.device) -> None:
    """Stop with a clear message, before any GPU work, when torch has no kernels for `device`'s GPU."""
    if device.type != "cuda" or torch.version.hip:
        return
    capability = tuple(torch.cuda.get_device_capability(device))
    message = arch_mismatch(torch.cuda.get_device_name(device), capability, build_architectures())
    if message:
        raise GpuBuildError(message)


def resolve_device(name: str) -> torch.device:
    """`auto` -> the GPU when there is one, else the CPU. A GPU is checked against torch's build first."""
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"--device {name} was asked for but torch sees no CUDA GPU; use --device auto or cpu")
    check_gpu_arch(device)
    return device


# --- precision --------------------------------------------------------------------------------

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
BF16_FROM, FP16_FROM, CHANNELS_LAST_FROM = (8, 0), (6, 0), (7, 0)


@dataclass(frozen=True)
class Precision:
    """How a model runs: `name` fp32, fp16 or bf16 (autocast), on `device_type`, NHWC or not.

    fp16 needs loss scaling (its smallest normal number is 6e-5, so small gradients would flush
    to zero): `grad_scaler()` returns an enabled `torch.amp.GradScaler` for it and a disabled
    one (a pass-through) otherwise, so a training step has one code path for every precision.
    """

    name: str = "fp32"
    device_type: str = "cpu"
    channels_last: bool = False

    def __post_init__(self) -> None:
        if self.name not in _DTYPES:
            raise ValueError(f"precision must be one of {', '.join(_DTYPES)}, got {self.name!r}")

    @classmethod
    def for_device(cls, device: torch.device) -> Precision:
        return resolve_precision("auto", device)

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.name]

    @property
    def reduced(self) -> bool:
        """fp16 or bf16."""
        return self.name != "fp32"

    @property
    def scaled(self) -> bool:
        """Whether training needs loss scaling."""
        return self.name == "fp16"

    def autocast_context(self) -> contextlib.AbstractContextManager:
        if not self.reduced:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(self.device_type, enabled=self.scaled)

    def describe(self) -> str:
        text = {"fp32": "fp32", "fp16": "fp16 autocast + loss scaling", "bf16": "bf16 autocast"}[self.name]
        return text + (" + channels_last" if self.channels_last else "")


@functools.cache
def _cpu_autocast_works(dtype: torch.dtype) -> bool:
    """Whether this torch's CPU autocast computes in `dtype` (older versions ignore fp16 with a warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with torch.autocast("cpu", dtype=dtype):
                out = torch.nn.functional.linear(torch.ones(1, 2), torch.ones(2, 2))
        except RuntimeError:
            return False
    return out.dtype == dtype


def gpu_capability(device: torch.device) -> tuple[int, int]:
    return tuple(torch.cuda.get_device_capability(device))


def resolve_precision(request: str, device: torch.device) -> Precision:
    """The precision for `request` (auto, fp32, fp16, bf16) on `device`; an impossible choice is an error.

    auto: bf16 on compute capability >= 8.0, fp16 (+ GradScaler) on 6.0-7.5, fp32 below 6.0 and on the CPU.
    """
    if request not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {request!r}")
    if device.type != "cuda":
        if request in ("fp16", "bf16") and not (device.type == "cpu" and _cpu_autocast_works(_DTYPES[request])):
            raise ValueError(
                f"precision {request} was asked for on the {device.type}, but this torch cannot autocast to "
                f"{request} there; use precision fp32 (or auto) on the {device.type}"
            )
        return Precision("fp32" if request == "auto" else request, device.type, False)
    capability = gpu_capability(device)
    name = f"the GPU {torch.cuda.get_device_name(device)} (compute capability {capability[0]}.{capability[1]})"
    if request == "auto":
        request = "bf16" if capability >= BF16_FROM else "fp16" if capability >= FP16_FROM else "fp32"
    elif request == "bf16" and capability < BF16_FROM:
        raise ValueError(
            f"precision bf16 needs compute capability >= 8.0 (Ampere or newer); {name} has no bf16 arithmetic: "
            "use precision fp16 (or auto, which picks fp16 with loss scaling there)"
        )
    elif request == "fp16" and capability < FP16_FROM:
        raise ValueError(f"precision fp16 needs compute capability >= 6.0; {name} has no fast fp16: use fp32")
    return Precision(request, "cuda", capability >= CHANNELS_LAST_FROM)


# --- process-wide settings ----------------------------------------------------------------------

# Ops of this project's training steps that have no deterministic CUDA implementation: under
# `deterministic: true` they still run (warn_only) and are the remaining source of run-to-run noise.
NONDETERMINISTIC_OPS = (
    "grid_sample backward (CUDA): ADA's geometric augmentation, on every G step and the R1 penalty",
    "adaptive_avg_pool2d backward (CUDA): the classifier backbone's global average pooling",
)


def configure(device: torch.device, num_threads: int, tf32: bool = True, deterministic: bool = False) -> None:
    """Process-wide settings: CPU threads (0 = torch's default) and the GPU speed/reproducibility trade.

    Default (fast): cuDNN autotuning on a GPU, TF32 for fp32 matmuls/convolutions (`tf32=False` where
    fp32 results must be exact, e.g. occlusion checked against captum). `deterministic=True`:
    no autotuning, no TF32, cuDNN's deterministic algorithms and
    `torch.use_deterministic_algorithms(True, warn_only=True)`, so every op that has a deterministic
    version uses it and the others (NONDETERMINISTIC_OPS) warn instead of stopping the run.
    """
    if num_threads > 0:
        torch.set_num_threads(num_threads)
    torch.backends.cudnn.benchmark = device.type == "cuda" and not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cuda.matmul.allow_tf32 = tf32 and not deterministic
    torch.backends.cudnn.allow_tf32 = tf32 and not deterministic
    if deterministic:
        # cuBLAS reuses workspace between streams unless told its size (CUDA >= 10.2 reproducibility note).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
