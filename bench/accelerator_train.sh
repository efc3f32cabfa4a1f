#!/usr/bin/env bash
# One accelerator command: train the generator for a time budget, export as it goes, bring the exports back.
#
#   bash bench/accelerator_train.sh CONFIG MINUTES [more `reelbase train generator` options]
#
# For the `device` tool's machine (README, "Training on an accelerator"): it has PyTorch but not open_clip,
# so carry `.whl` (the wheels of open_clip_torch, ftfy and wcwidth) and this installs them. It then prints the
# device's training speed for CONFIG (bench/train_speed.py; SPEED=0 skips it), trains
# `reelbase train generator --config CONFIG --minutes MINUTES` on the GPU (the CPU where there is none) in
# runs/accelerator-CONFIG, which resumes, and copies each export (every 2 minutes and at the end) and the
# logs to $OUT (./accelerator-out where OUT is unset). The budget starts when training does: under a 10-minute
# command limit, give at most 7 minutes (the install, the speed bench, the workers' start and the last export
# take the rest).
set -euo pipefail
config=${1:?usage: bench/accelerator_train.sh CONFIG MINUTES [options]}
minutes=${2:?usage: bench/accelerator_train.sh CONFIG MINUTES [options]}
shift 2
out=${OUT:-accelerator-out}
mkdir -p "$out"
touch "$out/started.txt"  # an export older than this is the one the checkout brought, not this run's
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
device=$(python3 -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU')" \
  | tee "$out/device.txt"
if [ "${SPEED:-1}" != 0 ]; then
  python3 bench/train_speed.py --configs "$config" --batch "${SPEED_BATCH:-256}" --steps 5 --device "$device" \
    --data-workers "${SPEED_WORKERS:-8}" 2>&1 | tee "$out/speed.txt" || echo "the speed bench failed; training anyway"
fi
exported=generator/weights/generator-$config.safetensors
copy_export() {
  if [ "$exported" -nt "$out/started.txt" ] && [ "$exported" -nt "$out/generator-$config.safetensors" ]; then
    cp "$exported" "$out/"
  fi
}
(while sleep 10; do copy_export; done) &
copier=$!
trap 'kill $copier 2>/dev/null || true' EXIT
python3 -m search.cli train generator --config "$config" --minutes "$minutes" --device "$device" \
  --run-dir "runs/accelerator-$config" "$@" 2>&1 | tee "$out/train.log"
copy_export
ls -l "$out"
