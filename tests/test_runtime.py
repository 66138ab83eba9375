"""The GPU runtime decided on a CPU: build-vs-GPU check, precision choice and process settings,
with the GPU's compute capability and torch's compiled architecture list faked."""

from __future__ import annotations

import pytest
import torch

from syndface import runtime
from syndface.runtime import GpuBuildError, Precision, arch_runs_on, resolve_precision

PYPI_CU130 = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]  # torch 2.14.1 from PyPI
LEGACY_CU126 = ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]
P100, V100, T4, A100, H100 = (6, 0), (7, 0), (7, 5), (8, 0), (9, 0)


@pytest.fixture
def fake_gpu(monkeypatch):
    """Make torch report one CUDA GPU of a given name and capability, built for a given arch list."""

    def install(capability: tuple[int, int], archs: list[str], name: str = "Tesla P100-PCIE-16GB") -> torch.device:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
        monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: list(archs))
        monkeypatch.setattr(torch.version, "hip", None)
        return torch.device("cuda")

    return install


@pytest.mark.parametrize(
    "entry, capability, runs",
    [
        ("sm_60", (6, 0), True),
        ("sm_60", (6, 1), True),  # a cubin runs on a higher minor of the same major
        ("sm_61", (6, 0), False),
        ("sm_80", (8, 6), True),
        ("sm_86", (8, 0), False),
        ("sm_75", (6, 0), False),
        ("sm_90", (10, 0), False),  # never across majors
        ("compute_90", (10, 0), True),  # PTX is compiled by the driver for newer GPUs
        ("compute_90", (12, 0), True),
        ("compute_90", (8, 6), False),  # but not for older ones
        ("sm_90a", (9, 0), True),  # architecture-specific code: that GPU only
        ("sm_90a", (10, 0), False),
        ("compute_100a", (10, 3), False),
        ("sm_100f", (10, 3), True),  # family code: same major, higher minor
        ("sm_100f", (12, 0), False),
        ("gfx90a", (9, 0), False),
    ],
)
def test_arch_compatibility_follows_cuda_rules(entry, capability, runs):
    assert arch_runs_on(entry, capability) is runs


def test_p100_on_the_pypi_build_stops_with_the_legacy_environment(fake_gpu):
    device = fake_gpu(P100, PYPI_CU130)
    with pytest.raises(GpuBuildError) as error:
        runtime.resolve_device("cuda")
    message = str(error.value)
    for part in ("Tesla P100-PCIE-16GB", "compute capability 6.0", " ".join(PYPI_CU130), "no kernel image"):
        assert part in message
    assert "torch==2.14.1+cu126" in message and runtime.LEGACY_INDEX_URL in message
    assert "make venv-gpu-pascal" in message
    with pytest.raises(GpuBuildError, match="compute capability 7.0"):
        fake_gpu(V100, PYPI_CU130, "Tesla V100-SXM2-16GB")
        runtime.check_gpu_arch(device)


def test_builds_that_cover_the_gpu_pass(fake_gpu):
    device = fake_gpu(P100, LEGACY_CU126)
    assert runtime.resolve_device("cuda") == device
    fake_gpu(T4, PYPI_CU130, "Tesla T4")
    runtime.check_gpu_arch(torch.device("cuda"))
    fake_gpu((8, 9), PYPI_CU130, "NVIDIA L4")  # sm_86 cubins run on 8.9
    runtime.check_gpu_arch(torch.device("cuda"))
    fake_gpu((12, 0), ["sm_80", "compute_90"], "RTX 5090")  # by PTX JIT
    runtime.check_gpu_arch(torch.device("cuda"))


def test_a_new_gpu_on_the_legacy_build_points_to_the_default_build(fake_gpu):
    fake_gpu((12, 0), LEGACY_CU126, "NVIDIA RTX PRO 6000")
    with pytest.raises(GpuBuildError, match=r"default GPU environment .*pip install torch==2\.14\.1 torchvision"):
        runtime.check_gpu_arch(torch.device("cuda"))
    fake_gpu((3, 7), LEGACY_CU126, "Tesla K80")
    with pytest.raises(GpuBuildError, match="no build of torch 2.14"):
        runtime.check_gpu_arch(torch.device("cuda"))


def test_an_empty_arch_list_falls_back_to_the_compiled_flags(fake_gpu, monkeypatch):
    fake_gpu(P100, [])
    monkeypatch.setattr(torch._C, "_cuda_getArchFlags", lambda: "sm_75 sm_80 compute_80", raising=False)
    assert runtime.build_architectures() == ["sm_75", "sm_80", "compute_80"]
    with pytest.raises(GpuBuildError, match="sm_75 sm_80 compute_80"):
        runtime.check_gpu_arch(torch.device("cuda"))
    monkeypatch.setattr(torch._C, "_cuda_getArchFlags", lambda: "", raising=False)
    runtime.check_gpu_arch(torch.device("cuda"))  # a build that does not say is not refused


@pytest.mark.parametrize(
    "capability, name, channels_last",
    [(P100, "fp16", False), (V100, "fp16", True), (T4, "fp16", True), (A100, "bf16", True), (H100, "bf16", True)],
)
def test_auto_precision_follows_the_gpu_generation(fake_gpu, capability, name, channels_last):
    precision = resolve_precision("auto", fake_gpu(capability, LEGACY_CU126))
    assert (precision.name, precision.channels_last, precision.device_type) == (name, channels_last, "cuda")
    assert precision.scaled is (name == "fp16")
    assert precision.grad_scaler().is_enabled() is (name == "fp16")


def test_forced_precisions_and_impossible_ones(fake_gpu):
    p100 = fake_gpu(P100, LEGACY_CU126)
    assert resolve_precision("fp32", p100).name == "fp32"
    assert resolve_precision("fp16", p100).name == "fp16"
    with pytest.raises(ValueError, match=r"bf16 needs compute capability >= 8.0.*P100.*use precision fp16"):
        resolve_precision("bf16", p100)
    a100 = fake_gpu(A100, PYPI_CU130, "NVIDIA A100-SXM4-80GB")
    assert resolve_precision("fp16", a100).scaled
    maxwell = fake_gpu((5, 2), LEGACY_CU126, "GeForce GTX 980")
    assert resolve_precision("auto", maxwell).name == "fp32"
    with pytest.raises(ValueError, match="no fast fp16"):
        resolve_precision("fp16", maxwell)
    with pytest.raises(ValueError, match="precision must be one of auto, fp32, fp16, bf16"):
        resolve_precision("half", p100)


def test_cpu_precision_is_fp32_unless_asked_and_possible(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == Precision("fp32", "cpu", False)
    for name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        precision = resolve_precision(name, cpu)  # this torch autocasts to both on the CPU
        with precision.autocast_context():
            assert torch.nn.functional.linear(torch.ones(1, 2), torch.ones(2, 2)).dtype == dtype
    assert resolve_precision("fp16", cpu).grad_scaler().is_enabled()
    monkeypatch.setattr(runtime, "_cpu_autocast_works", lambda dtype: False)
    with pytest.raises(ValueError, match="cannot autocast to fp16 there; use precision fp32"):
        resolve_precision("fp16", cpu)


@pytest.fixture
def restore_torch_flags():
    yield
    runtime.configure(torch.device("cpu"), 1)


def test_deterministic_switch_sets_every_flag_and_the_default_is_fast(restore_torch_flags, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    gpu = torch.device("cuda")  # configure only sets flags; no GPU is touched
    runtime.configure(gpu, 0, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.deterministic
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
    assert runtime.os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    runtime.configure(gpu, 0)
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.deterministic
    assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
    runtime.configure(gpu, 0, tf32=False)  # exact fp32 (occlusion against captum) without determinism
    assert torch.backends.cudnn.benchmark and not torch.backends.cudnn.allow_tf32
    runtime.configure(torch.device("cpu"), 0)
    assert not torch.backends.cudnn.benchmark  # nothing to tune on a CPU
