#!/usr/bin/env bash
# A segmenter burst on a lent GPU machine (docs/training.md section 4). It runs THERE, from the
# repo root, with `.cache/bundle` (python -m model_export.train.bundle) and `.whl` (pydantic,
# which that machine's image lacks) carried; the EMA weights come back as a travel folder in
# $OUT/seg. Usage: model_export/train/gpu_burst.sh [MINUTES] [INIT_WEIGHTS]
# (BURST_EXTRA="--edge-weight 2" passes further training options.)
set -u
MINUTES=${1:-7}
INIT=${2:-models/segmenter.onnx}
DEVICE=${BURST_DEVICE:-cuda}
WORKERS=${BURST_WORKERS:-14}
BATCH=${BURST_BATCH:-64}
LR=${BURST_LR:-0.0008}
CCP_SHARE=${BURST_CCP_SHARE:-0.5}
if ! python3 -c "import pydantic" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1
RUN=runs/seg_burst
nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null
# SIGINT ends the run cleanly (checkpoint, validate) should the budget overrun the command's limit.
LIMIT_S=$(python3 -c "print(int(($MINUTES + 2) * 60))")
timeout -s INT "$LIMIT_S" python3 -m model_export.train seg --run-dir "$RUN" \
  --init-weights "$INIT" --device "$DEVICE" --data-cache .cache/bundle/cache \
  --ccp-root .cache/bundle/ccp_fashion --size 320 --batch-size "$BATCH" \
  --loader-workers "$WORKERS" --epoch-size 40000 --lr "$LR" --ccp-share "$CCP_SHARE" \
  --warmup-steps 150 --time-budget-min "$MINUTES" \
  --validate-every-min 2 --checkpoint-every-min 100 --log-every-steps 20 ${BURST_EXTRA:-}
BEST="$RUN/${BURST_PACK:-best}.pt"; [ -f "$BEST" ] || BEST="$RUN/last.pt"
mkdir -p "$OUT"
python3 -m model_export.train.travel pack "$BEST" "$OUT/seg"
cp "$RUN/train.log" "$OUT/train_seg_burst.log"
ls -la "$OUT" "$OUT/seg"
