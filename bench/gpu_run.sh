#!/usr/bin/env bash
# The GPU check, as one command on a device machine (no network there: PyAV and transformers travel as wheels
# in .whl/, see README "Benchmarks"): CUDA smoke checks, then inference and training at full size.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src:$PWD/bench PYTHONUNBUFFERED=1 OMNIEMO_BENCH_CACHE=/tmp/bench-cache HF_HUB_OFFLINE=1 \
       OMP_NUM_THREADS=8
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, transformers, av; print('torch', torch.__version__, 'transformers', transformers.__version__, 'av', av.__version__)" | tee -a "$OUT/gpu.txt"
timeout 100 python3 bench/gpu_smoke.py 2>&1 | grep -v Warning | tee "$OUT/smoke.log"
timeout 240 python3 bench/bench_models.py --full --device cuda 2>&1 | tee "$OUT/models.log"
timeout 200 python3 bench/bench_train.py --full --grpo-full 2>&1 | tee "$OUT/train.log"
cp bench/out/*.json "$OUT/" 2>/dev/null
true
