#!/usr/bin/env bash
# One GPU, under 8 minutes: the CUDA-relevant tests, then PTB training throughput of elbo,
# aggressive and SA-VAE in bf16 (fp16 where the GPU has no bf16) against the same model in
# plain PyTorch. Writes benchmarks/results/gpu_check.json (the GPU named in it) and
# benchmarks/results/gpu_check_tests.txt.
#
#   bash benchmarks/gpu_check.sh              # from the repository root
#   PYTHON=.venv/bin/python VAEHUB_SHARED_DATA=/data bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
export PYTHONPATH=${PYTHONPATH:-src}
RESULTS=benchmarks/results
mkdir -p "$RESULTS"

"$PYTHON" - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA GPU visible: this check is for a GPU machine"
print("GPU:", torch.cuda.get_device_name(), "| torch", torch.__version__, "| CUDA",
      torch.version.cuda, "| cuDNN", torch.backends.cudnn.version(),
      "| bf16", torch.cuda.is_bf16_supported())
PY

# The tests whose code paths change on CUDA: training device and precision, the aggressive
# loop and SA-VAE's refinement under autocast, the fused loss, evaluation and generation.
# About 2 minutes.
timeout 240 "$PYTHON" -m pytest -q -p no:cacheprovider \
    tests/test_cuda.py tests/test_fused_loss.py tests/test_svi.py tests/test_trainer.py \
    2>&1 | tee "$RESULTS/gpu_check_tests.txt" | tail -20 \
    || echo "some CUDA tests failed: see $RESULTS/gpu_check_tests.txt"

# Throughput: 300 updates of elbo and SA-VAE, 50 of aggressive (each with up to 100 inner
# encoder steps), and 300 of plain PyTorch. About 3 minutes on an H100.
timeout 300 "$PYTHON" benchmarks/gpu_check.py --json "$RESULTS/gpu_check.json"
echo "wrote $RESULTS/gpu_check.json"
