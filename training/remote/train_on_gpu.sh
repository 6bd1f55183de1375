#!/usr/bin/env bash
# Model v2's long training on a lent GPU machine (docs/results.md, "Training on a GPU").
#
# That machine has python3 with torch (CUDA), numpy, scipy, onnx and onnxruntime, but no
# FluidSynth, no corpora and no internet, and takes at most 64 MiB of files along. So the
# dataset travels packed (`training dataset pack data/v2 -o data/v2.packed.npz`, <= 60 MiB)
# and the run folder travels back and forth, so every call resumes where the last stopped:
#
#   (here)   training dataset pack data/v2 -o data/v2.packed.npz
#   (device) MINUTES=8 bash training/remote/train_on_gpu.sh      carry: data/v2.packed.npz runs/gpu_v2
#   (here)   copy the files it wrote to $OUT back into runs/gpu_v2, then call again to go on
#
# Settings come from the environment: PACKED (default data/v2.packed.npz), RUN (runs/gpu_v2),
# MINUTES (wall-time cap of this call's training, default 8), INIT (bundle to start from,
# default exported/default; empty = random weights), TRAIN_ARGS (more `training train` options;
# they must stay the same from call to call or the run refuses to resume), DEVICE (cuda),
# MODE (train, default; or student-audio: a narrower audio encoder trained against INIT's fixed
# score encoder, `training student-audio INIT -o RUN --dataset ...`, with TRAIN_ARGS its options).
set -euo pipefail
PACKED=${PACKED:-data/v2.packed.npz}
RUN=${RUN:-runs/gpu_v2}
MINUTES=${MINUTES:-8}
INIT=${INIT-exported/default}
DEVICE=${DEVICE:-cuda}
MODE=${MODE:-train}
PY=${PYTHON:-python3}
OUT=${OUT:-$RUN.out}
TRAIN_ARGS=${TRAIN_ARGS:---loss infonce --lr 0.0002 --epoch-pairs 10000 --patience 4 --refinements 3}

training() { "$PY" -c 'import sys; from training.cli import main; sys.argv[0] = "training"; sys.exit(main())' "$@"; }

missing=$("$PY" - <<'PY'
import importlib
need = ["torch", "numpy", "scipy", "onnx", "onnxruntime", "matplotlib", "tqdm"]
print(" ".join(m for m in need if importlib.util.find_spec(m) is None))
PY
)
if [ -n "$missing" ]; then
  echo "error: $PY lacks $missing; carry their wheels and pip install them first" >&2
  exit 2
fi
if [ "$DEVICE" = cuda ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "error: $PY's torch sees no CUDA device; run with DEVICE=cpu to train on the processor" >&2
  exit 2
fi
if [ ! -f "$PACKED" ]; then
  echo "error: $PACKED not found; make it with 'training dataset pack data/v2 -o $PACKED' and carry it" >&2
  exit 2
fi

data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
training dataset unpack "$PACKED" -o "$data"
init=()
[ -n "$INIT" ] && init=(--init-from "$INIT")
threads=$(( $(nproc) > 8 ? 8 : $(nproc) ))
if [ "$MODE" = student-audio ]; then
  [ -n "$INIT" ] || { echo "error: MODE=student-audio needs INIT, the bundle to train against" >&2; exit 2; }
  # shellcheck disable=SC2086
  training student-audio "$INIT" -o "$RUN" --dataset "$data" --device "$DEVICE" --threads "$threads" \
    --max-minutes "$MINUTES" --no-progress $TRAIN_ARGS
else
  # shellcheck disable=SC2086
  training train "$data" -o "$RUN" "${init[@]}" --device "$DEVICE" --threads "$threads" \
    --max-minutes "$MINUTES" --no-progress $TRAIN_ARGS
fi

mkdir -p "$OUT"
for f in checkpoint.pt best.pt log.csv loss.png run.json; do
  [ -f "$RUN/$f" ] && cp "$RUN/$f" "$OUT/"
done
echo "run files in $OUT: copy them back into $RUN here, then call again to go on"
