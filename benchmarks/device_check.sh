#!/usr/bin/env bash
# The one prepared run for a session that is lent an accelerator (GPU/TPU).
#
# In order of importance, each bounded by STEP_TIMEOUT seconds (default 150) so
# that one slow part cannot use up the device time of the rest:
#   1. bfloat16 vs float32 training on the device: loss curves side by side
#      (benchmarks/loss_curves.py, the smoke config);
#   2. the training step at the official per-GPU batch (13 images x 24 pairs),
#      bfloat16 (goal on one H100/H200: >= 6,000 pairs/s);
#   3. extraction at one size, bfloat16, batch 64 (goal: >= 1,500 images/s at
#      512x384 on an H100), then the mixed-size folder against PyTorch;
#   4. the augmentation throughput (goal: >= 20,000 distorted images/s);
#   5. whole pictures vs 384 x 512 windows over the official sizes mix (whole
#      steps per canvas, 13 pictures, bfloat16), and the step's device memory
#      at the largest canvases (compiled, not run).
# Every benchmark records its table, with device and date, in RESULTS.md.
#
#   bash benchmarks/device_check.sh            # PY=/path/to/python to choose another
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STEP_TIMEOUT=${STEP_TIMEOUT:-150}
failed=0

step() {
    echo "== $*"
    if ! timeout "$STEP_TIMEOUT" "$@"; then
        echo "!! failed or over ${STEP_TIMEOUT}s: $*"
        failed=1
    fi
}

"$PY" -c "import jax; print('devices:', jax.devices())"
step "$PY" benchmarks/loss_curves.py --steps 120 --write-results
step "$PY" benchmarks/train_step.py --images 13 --dtype bfloat16 --devices 1 --no-torch \
    --write-results
step "$PY" benchmarks/extract.py --dtype bfloat16 --batch-size 64 --no-torch --write-results
step "$PY" benchmarks/extract_mixed.py --write-results
step "$PY" benchmarks/augment.py
step "$PY" benchmarks/train_step.py --pictures --full --images 13 --dtype bfloat16 \
    --repeats 2 --no-torch --write-results
step "$PY" benchmarks/train_step.py --memory --images 13 --dtype bfloat16 --write-results
exit "$failed"
