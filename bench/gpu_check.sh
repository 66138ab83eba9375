#!/usr/bin/env bash
# The paper-size benchmarks the README's Performance and GPU sections ask for, in one run on a
# GPU machine (about 3-5 minutes on an H100, plus up to MEMORY_LIMIT_S for the memory plan):
#   train_step  EfficientNet-B4 @448, batch 64: img/s fp32-NCHW vs the GPU's auto precision + channels_last
#   occlusion   EfficientNet-B4 @448, window 20 / stride 10: s/image captum (ppe 256) vs ours
#   gan_step    StyleGAN2 @256 with the paper's widths, batch 64: kimg/s of a training step (auto
#               precision; then fp16 in micro-batches of 16, as on a 16 GB P100/V100)
#   memory      EfficientNet-B4 @448, batch 64: peak memory and img/s per precision x micro-batch x
#               activation checkpointing; the README's memory table is written to $OUT/memory_table.md
#
# Run from the repository root with a python3 that has torch (CUDA) and timm; the syndface package
# is taken from src/ (no install). captum, for the occlusion baseline, is installed from wheels
# in .whl/ when that folder holds any (pip download --no-deps captum -d .whl on a machine with
# internet). Output: the GPU's name, versions and every benchmark's lines, also in
# $OUT/gpu_bench.txt (or bench-gpu/gpu_bench.txt).
#
#   bench/gpu_check.sh           the paper sizes (needs a GPU)
#   bench/gpu_check.sh --smoke   tiny models on whatever device there is: checks the script itself
set -uo pipefail
cd "$(dirname "$0")/.."

smoke=0
[[ "${1:-}" == "--smoke" ]] && smoke=1
out=${OUT:-bench-gpu}
mkdir -p "$out"
log=$out/gpu_bench.txt
: >"$log"
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
limit=${BENCH_LIMIT_S:-200}   # per benchmark
memory_limit=${MEMORY_LIMIT_S:-540}   # the memory sweep (cuDNN tunes each new shape: ~1 min each on an H200)

if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi

{
    date -u +"%Y-%m-%dT%H:%M:%SZ"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import torch, timm; print('torch', torch.__version__, '| timm', timm.__version__, '| cuda', torch.cuda.is_available())"
} 2>&1 | tee -a "$log"

status=0
run() {
    echo "== python3 $*" | tee -a "$log"
    timeout "${RUN_LIMIT_S:-$limit}" python3 "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    [[ $rc -ne 0 ]] && { echo "!! exit $rc" | tee -a "$log"; status=1; }
    return 0
}

if [[ $smoke -eq 1 ]]; then
    run bench/train_step.py --model test_efficientnet --image-size 64 --batch-size 8 --steps 2 --warmup 1
    run bench/occlusion.py --model test_efficientnet --size 32 --window 8 --stride 4 --images 1
    run bench/gan_step.py --resolution 32 --channel-base 512 --channel-max 64 --mapping-layers 2 --z-dim 64 --w-dim 64 --batch 4 --mbstd-group 4 --steps 2 --warmup 1
    run bench/memory.py --smoke
else
    run bench/train_step.py --model tf_efficientnet_b4 --image-size 448 --batch-size 64 --steps 20 --device cuda
    run bench/occlusion.py --model tf_efficientnet_b4 --size 448 --window 20 --stride 10 --images 2 --device cuda
    run bench/gan_step.py --resolution 256 --channel-base 16384 --channel-max 512 --mapping-layers 8 --batch 64 --mbstd-group 8 --device cuda
    run bench/gan_step.py --resolution 256 --channel-base 16384 --channel-max 512 --mapping-layers 8 --batch 64 --mbstd-group 8 --device cuda --precision fp16 --micro-batch 16
    RUN_LIMIT_S=$memory_limit run bench/memory.py --sweep --model tf_efficientnet_b4 --image-size 448 --batch 64 \
        --precisions fp16,bf16,fp32 --micro-batches 8,16,32,64 --checkpointing off,on --budget-s $((memory_limit - 60)) \
        --markdown "$out/memory_table.md" --device cuda
fi
exit $status
