"""Options of the GAN stage's commands (train-gan, generate-fakes, gan-figures, fake-fidelity, privacy-audit)."""

from __future__ import annotations

from dataclasses import dataclass

from syndface.options import Options, setting


@dataclass(frozen=True)
class GanOptions(Options):
    resolution: int = setting("gan.resolution")
    channel_base: int = setting("gan.channel_base")
    channel_max: int = setting("gan.channel_max")
    z_dim: int = setting("gan.z_dim")
    w_dim: int = setting("gan.w_dim")
    mapping_layers: int = setting("gan.mapping_layers")
    mbstd_group: int = setting("gan.mbstd_group")
    kimg: float = setting("gan.kimg")
    batch: int = setting("gan.batch")
    lr: float = setting("gan.lr")
    r1_gamma: float = setting("gan.r1_gamma")
    pl_weight: float = setting("gan.pl_weight")
    style_mixing: float = setting("gan.style_mixing")
    ema_kimg: float = setting("gan.ema_kimg")
    ada_target: float = setting("gan.ada_target")
    ada_kimg: float = setting("gan.ada_kimg")
    oversample: int = setting("gan.oversample")
    unaffected_per_age: int = setting("gan.unaffected_per_age")
    snapshot_kimg: float = setting("gan.snapshot_kimg")
    snapshots_kept: int = setting("gan.snapshots_kept")
    select: str = setting("gan.select")
    metric_extractor: str = setting("gan.metric_extractor")
    metric_fakes: int = setting("gan.metric_fakes")
    balance: str = setting("gan.balance")
    precision: str = setting("gan.precision")
    micro_batch: int = setting("gan.micro_batch")
    num_fp16_res: int = setting("gan.num_fp16_res")
    seed: int = setting("seed")
    device: str = setting("device")
    deterministic: bool = setting("deterministic")


@dataclass(frozen=True)
class FakesOptions(Options):
    psi: float = setting("fakes.psi")
    noise: str = setting("fakes.noise")
    seed: int = setting("seed")
    device: str = setting("device")


@dataclass(frozen=True)
class PrivacyOptions(Options):
    embedding: str = setting("fakes.privacy.embedding")
    pixel_size: int = setting("fakes.privacy.pixel_size")
    sample_per_set: int = setting("fakes.privacy.sample_per_set")
    seed: int = setting("seed")


@dataclass(frozen=True)
class FidelityOptions(Options):
    device: str = setting("device")
