#!/usr/bin/env bash
# One prepared GPU check (see scripts/gpu_check.py and the README's GPU section).
#   scripts/gpu-check.sh OUT_DIR [DATA_ROOT]
# Installs nothing from a network: benchbox goes in editable mode over the machine's own packages
# (pip --no-deps --no-build-isolation); missing packages are named in OUT_DIR/gpu-check.json and only the steps
# that need them are skipped. On a machine without a GPU it exits 0 and says what it skipped and why.
set -u
cd "$(dirname "$0")/.."
out="${1:?usage: scripts/gpu-check.sh OUT_DIR [DATA_ROOT]}"
mkdir -p "$out"
if ! python3 -c "import benchbox" >/dev/null 2>&1; then
  python3 -m pip install --no-deps --no-build-isolation -q -e . >/dev/null 2>&1 \
    || echo "[gpu-check] could not install benchbox in editable mode; running it from the source tree"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec python3 scripts/gpu_check.py "$out" "${2:-../shared/data/imagenet-sample}"
