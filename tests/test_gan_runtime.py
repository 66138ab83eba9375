"""The GAN on GPUs, checked on the CPU: fp16/bf16 blocks as the official network runs them,
micro-batches and 2-process data parallelism that keep the minibatch-std groups and the gradients."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from syndface.gan.networks import (
    Discriminator,
    GanArch,
    Generator,
    label_vectors,
    minibatch_std,
    modulated_conv2d,
    use_reduced_precision,
)
from syndface.gan.train import GanTrainer, TrainOptions
from syndface.parallel import SINGLE, DistEnv, micro_parts, rank_share, split_batch
from syndface.taxonomy import AGE_GROUPS, DISEASES

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
TINY = GanArch(resolution=8, channel_base=64, channel_max=8, z_dim=8, w_dim=8, mapping_layers=2, mbstd_group=2)
SMALL = GanArch(resolution=32, channel_base=512, channel_max=32, z_dim=16, w_dim=16, mapping_layers=2, mbstd_group=2)


def tiny_trainer(micro_batch: int = 0, precision: str = "fp32", arch: GanArch = TINY, env=SINGLE, **opts) -> GanTrainer:
    """A trainer on 12 random images. Style mixing off and ADA p held at 0 (target 2 is never
    reached), and the noise strengths start at 0: until G's first step, G(z) is a function of z alone."""
    n = 12
    images = torch.randint(0, 256, (n, 3, arch.resolution, arch.resolution), generator=torch.Generator().manual_seed(0))
    labels = label_vectors([DISEASES[i % 4] for i in range(n)], [AGE_GROUPS[i % 5] for i in range(n)])
    options = TrainOptions(**{"batch": 8, "style_mixing": 0.0, "ada_target": 2.0, "seed": 3, **opts})
    return GanTrainer(
        arch, options, images.to(torch.uint8), torch.arange(n), labels, CPU, precision, micro_batch, env=env
    )


def fixed_inputs(trainer: GanTrainer) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z, fake labels, real picks, real labels) of one global batch, from the trainer's batch generator."""
    z, labels = trainer._latents(trainer.opts.batch)
    pick = torch.randint(len(trainer.items), (trainer.opts.batch,), generator=trainer.batch_gen)
    return z, labels, pick, trainer.labels[pick]


def grads(net: torch.nn.Module, skip: str = "\0") -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None and skip not in n}


def assert_close_grads(a: dict, b: dict, rel: float = 1e-5) -> None:
    assert a.keys() == b.keys() and a
    for name in a:
        scale = float(b[name].abs().max().clamp(min=1e-12))
        assert float((a[name] - b[name]).abs().max()) <= rel * scale, name


# --- splitting batches --------------------------------------------------------------------------


def test_splits_keep_every_minibatch_std_group_whole():
    """D's minibatch-std statistic groups samples j, j + n/g, ...; every part of a split (a rank's
    share, then its micro-batches) forms exactly those groups again, so each sample gets the statistic
    it gets in the full batch."""
    x = torch.randn(16, 3, 4, 4, dtype=torch.float64)
    full = minibatch_std(x, 4)
    for parts in (2, 4):
        split = split_batch(16, parts, group=4)
        assert sorted(np.concatenate(split).tolist()) == list(range(16))
        for positions in split:
            torch.testing.assert_close(minibatch_std(x[positions], 4), full[positions], rtol=0, atol=0)
    share = rank_share(16, DistEnv(1, 2, 1), group=4)
    for part in micro_parts(len(share), 4, group=4):
        positions = share[part]
        torch.testing.assert_close(minibatch_std(x[positions], 4), full[positions], rtol=0, atol=0)
    assert [p.tolist() for p in split_batch(6, 3)] == [[0, 1], [2, 3], [4, 5]]  # group 1: contiguous


def test_split_errors_name_what_to_change():
    with pytest.raises(ValueError, match="multiple of 4"):
        rank_share(6, DistEnv(0, 2, 0), group=2)
    with pytest.raises(ValueError, match="multiple of the minibatch-std group 4"):
        micro_parts(16, 6, group=4)
    with pytest.raises(ValueError, match="micro_batch must be >= 0"):
        micro_parts(8, -1)
    assert [len(p) for p in micro_parts(5, 2, min_size=2)] == [3, 2]  # never a BatchNorm pass of one image
    assert [len(p) for p in micro_parts(8, 3)] == [3, 3, 2] and len(micro_parts(8, 0)) == 1
    with pytest.raises(ValueError, match="multiple of the minibatch-std group"):
        tiny_trainer(micro_batch=3)


# --- micro-batches --------------------------------------------------------------------------------


def test_d_steps_accumulated_over_micro_batches_equal_the_full_batch():
    """D's adversarial step and (from the same start) its R1 step on a batch of 8 in micro-batches of 2
    (whole minibatch-std groups): D's gradients equal the full batch's to 1e-5 of each tensor's largest
    entry (float sums in another order; measured 6e-7), and so do the losses and the ADA sign counts."""
    runs = []
    for micro in (0, 2):
        trainer = tiny_trainer(micro_batch=micro)
        z, labels, pick, real_labels = fixed_inputs(trainer)
        loss, signs = trainer.d_main(z, labels, pick, real_labels)
        main = grads(trainer.D)
        trainer = tiny_trainer(micro_batch=micro)  # R1 from the initial D too (Adam's first step amplifies rounding)
        r1, r1_signs = trainer.d_r1(pick, real_labels)
        runs.append((loss, signs, main, r1, r1_signs, grads(trainer.D)))
    (loss_a, signs_a, main_a, r1_a, r1_signs_a, reg_a), (loss_b, signs_b, main_b, r1_b, r1_signs_b, reg_b) = runs
    assert loss_b == pytest.approx(loss_a, rel=1e-5) and r1_b == pytest.approx(r1_a, rel=1e-5)
    assert torch.equal(signs_a, signs_b) and torch.equal(r1_signs_a, r1_signs_b)
    assert_close_grads(main_b, main_a)
    assert_close_grads(reg_b, reg_a)


def test_g_step_accumulated_over_micro_batches_equals_the_full_batch():
    """G's adversarial step in micro-batches: every gradient but the noise strengths' equals the full
    batch's to 1e-5 (those multiply noise that each forward pass draws anew, so they differ by draw)."""
    runs = []
    for micro in (0, 4):
        trainer = tiny_trainer(micro_batch=micro)
        z, labels, _, _ = fixed_inputs(trainer)
        runs.append((trainer.g_main(z, labels), grads(trainer.G, skip="noise_strength")))
    (loss_a, grads_a), (loss_b, grads_b) = runs
    assert loss_b == pytest.approx(loss_a, rel=1e-5)
    assert_close_grads(grads_b, grads_a)


# --- half precision -------------------------------------------------------------------------------


def test_fp16_modulated_conv_prenormalises_where_plain_fp16_overflows():
    """Styles of ~300 on a 64-channel 3x3 conv: the plain fp16 product overflows to inf; the
    pre-normalised fp16 path equals the fp32 result to fp16 rounding."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 64, 8, 8, generator=gen) * 30
    weight = torch.randn(16, 64, 3, 3, generator=gen) * 10
    styles = 300 + torch.rand(2, 64, generator=gen)
    reference = modulated_conv2d(x, weight, styles, demodulate=True)
    naive = F.conv2d(x.half() * styles.half()[:, :, None, None], weight.half(), padding=1)
    assert not torch.isfinite(naive).all()
    half = modulated_conv2d(x.half(), weight, styles, demodulate=True)
    assert half.dtype == torch.float16 and torch.isfinite(half).all()
    assert float((half.float() - reference).norm() / reference.norm()) < 2e-3


@pytest.mark.parametrize("dtype, tolerance", [(torch.float16, 5e-3), (torch.bfloat16, 5e-2)])
@torch.no_grad()
def test_reduced_precision_runs_the_top_resolutions_in_that_dtype(dtype, tolerance):
    """num_fp16_res 4 at 32 px: G's 8-32 px blocks and D's 32-8 px blocks (not below 8 px, as the
    official network) in half precision; the image and the logits come out fp32
    and close to the fp32 network's (relative L2: fp16 < 5e-3, bf16 < 5e-2 on this random network)."""
    torch.manual_seed(0)
    G, D = Generator(SMALL), Discriminator(SMALL)
    z, labels = torch.randn(4, SMALL.z_dim), label_vectors(["WS", "22q", "control", "unaffected"], AGE_GROUPS[:4])
    image, logits = G(z, labels, noise_mode="const"), D(G(z, labels, noise_mode="const"), labels)
    assert use_reduced_precision(G, dtype) == [8, 16, 32] and use_reduced_precision(D, dtype) == [32, 16, 8]
    seen = {}  # G's blocks' activations x (a block returns x and the image so far)

    def keep(block, inputs, output, name):
        seen[name] = output[0]

    for name, block in G.synthesis.named_children():
        block.register_forward_hook(lambda block, inputs, output, name=name: keep(block, inputs, output, name))
    half_image = G(z, labels, noise_mode="const")
    half_logits = D(half_image, labels)
    assert seen["b4"].dtype == torch.float32 and seen["b32"].dtype == dtype  # G: x of each block
    assert half_image.dtype == half_logits.dtype == torch.float32
    assert float((half_image - image).norm() / image.norm()) < tolerance
    assert float((half_logits - logits).norm() / logits.norm()) < tolerance
    use_reduced_precision(G, torch.float32)
    torch.testing.assert_close(G(z, labels, noise_mode="const"), image)
    with pytest.raises(ValueError, match="need conv_clamp"):
        use_reduced_precision(Generator(GanArch(**{**SMALL.as_dict(), "conv_clamp": None})), torch.float16)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_training_steps_stay_finite(precision):
    arch = GanArch(**{**SMALL.as_dict(), "resolution": 16})
    trainer = tiny_trainer(precision=precision, arch=arch, batch=4)
    assert trainer.runtime()["reduced_precision_resolutions"] == {"G": [8, 16], "D": [16, 8]}
    assert trainer.G_ema.synthesis.b16.compute_dtype == trainer.precision.dtype
    stats = trainer.train_step()  # step 0 runs both regularisers
    assert {"loss_G", "pl_penalty", "loss_D", "r1_penalty"} <= stats.keys()
    assert all(np.isfinite(v) for v in stats.values()), stats
    assert all(torch.isfinite(p).all() for p in [*trainer.G.parameters(), *trainer.D.parameters()])
    assert all(p.dtype == torch.float32 for p in trainer.G.parameters())  # master weights stay fp32


# --- two processes --------------------------------------------------------------------------------

DDP_WORKER = """
import sys, torch
from test_gan_runtime import fixed_inputs, tiny_trainer
trainer = tiny_trainer(micro_batch=int(sys.argv[2]), env=None)  # joins torchrun's group itself
loss, signs = trainer.d_main(*fixed_inputs(trainer))
d_grads = {n: p.grad.clone() for n, p in trainer.D.named_parameters()}
for _ in range(3):
    trainer.train_step()
state = {k: trainer.state_dict()[k] for k in ("G", "D", "G_ema", "pl_mean", "augment")}
torch.save({"loss": loss, "signs": signs, "grads": d_grads, "state": state}, f"{sys.argv[1]}/rank{trainer.env.rank}.pt")
"""


def test_two_process_gan_step_shares_the_batch_and_keeps_the_ranks_identical(tmp_path):
    """torchrun, 2 gloo processes, micro-batches of 2: D's step on a global batch of 8 gives the
    single process's gradients (1e-5), and after 3 full steps (both regularisers, EMA, ADA) both
    ranks hold bitwise the same G, D, G_ema, path-length mean and ADA p."""
    single = tiny_trainer()
    loss, signs = single.d_main(*fixed_inputs(single))
    expected = grads(single.D)

    script = tmp_path / "worker.py"
    script.write_text(DDP_WORKER)
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT / 'tests'}", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script)]
    proc = subprocess.run([*cmd, str(tmp_path), "2"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["loss"] == pytest.approx(loss, rel=1e-5)
    assert float(rank0["signs"][1]) == float(rank1["signs"][1]) == 4  # each rank saw its 4 of the 8 reals
    assert_close_grads(rank0["grads"], expected)
    for part in ("G", "D", "G_ema", "augment"):
        for name, tensor in rank0["state"][part].items():
            assert torch.equal(tensor, rank1["state"][part][name]), f"{part}.{name}"
    assert torch.equal(rank0["state"]["pl_mean"], rank1["state"]["pl_mean"])
