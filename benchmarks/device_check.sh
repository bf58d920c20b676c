#!/usr/bin/env bash
# The one prepared run for a session that is lent an accelerator (GPU/TPU).
#
# Parts, in order of importance; each is bounded in seconds (the number after
# the colon, or STEP_TIMEOUT) so that one slow part cannot use up the device
# time of the rest:
#   loss      bfloat16 vs float32 training on the device: loss curves side by
#             side (benchmarks/loss_curves.py on configs/demo.py, the recipe
#             that visibly learns, at 600 steps);
#   step      the training step at the official per-GPU batch (13 images x 24
#             pairs), bfloat16, beside the official PyTorch step on the same
#             device (goal on one H100/H200: >= 6,000 pairs/s);
#   extract   extraction at two sizes, bfloat16, batch 64, beside PyTorch
#             (goal: >= 1,500 images/s at 512x384 on an H100);
#   augment   the distortions' throughput (goal: >= 20,000 distorted images/s);
#   gputests  the augmentation tests on the device (the per-level ops'
#             non-CPU code paths are otherwise tested on CPU only);
#   mixed     the mixed-size folder against PyTorch;
#   memory    the step's device memory at the largest canvases (compiled, not run);
#   pictures  whole pictures vs 384 x 512 windows over the official sizes mix.
# Every benchmark records its table, with device and date, in RESULTS.md; with
# OUT set, RESULTS.md and each part's log are copied there after every part.
#
#   bash benchmarks/device_check.sh                      # every part, 150 s each
#   bash benchmarks/device_check.sh loss:270 step:150    # some parts, own bounds
#   PY=/path/to/python bash benchmarks/device_check.sh   # another interpreter
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STEP_TIMEOUT=${STEP_TIMEOUT:-150}
OUT=${OUT:-}
failed=0

run_part() {
    local name=$1 bound=$2
    shift 2
    echo "== $name (at most ${bound}s): $*"
    local start=$SECONDS
    if ! timeout "$bound" "$@" 2>&1 | tee ${OUT:+"$OUT/$name.log"}; then
        echo "!! $name failed or went over ${bound}s"
        failed=1
    fi
    echo "== $name: $((SECONDS - start))s"
    [ -n "$OUT" ] && cp benchmarks/RESULTS.md "$OUT/RESULTS.md"
}

part() {
    local name=${1%%:*} bound=${1#*:}
    [ "$bound" = "$1" ] && bound=$STEP_TIMEOUT
    case $name in
        loss) run_part loss "$bound" "$PY" benchmarks/loss_curves.py --config demo --steps 600 \
                  --set input.threads=8 --write-results ;;
        step) run_part step "$bound" "$PY" benchmarks/train_step.py --images 13 --dtype bfloat16 \
                  --devices 1 --write-results ;;
        extract) run_part extract "$bound" "$PY" benchmarks/extract.py --dtype bfloat16 \
                  --batch-size 64 --write-results ;;
        augment) run_part augment "$bound" "$PY" benchmarks/augment.py ;;
        gputests) run_part gputests "$bound" "$PY" -m pytest -q -p no:cacheprovider -n 0 \
                  tests/test_augment_*.py ;;
        mixed) run_part mixed "$bound" "$PY" benchmarks/extract_mixed.py --write-results ;;
        memory) run_part memory "$bound" "$PY" benchmarks/train_step.py --memory --images 13 \
                  --dtype bfloat16 --write-results ;;
        pictures) run_part pictures "$bound" "$PY" benchmarks/train_step.py --pictures --full \
                  --images 13 --dtype bfloat16 --repeats 2 --no-torch --write-results ;;
        *) echo "device_check: unknown part '$name'" >&2; exit 2 ;;
    esac
}

"$PY" -c "import jax; print('jax', jax.__version__, 'devices:', jax.devices())"
if [ $# -eq 0 ]; then
    set -- loss step extract augment gputests mixed memory pictures
fi
for p in "$@"; do
    part "$p"
done
exit "$failed"
