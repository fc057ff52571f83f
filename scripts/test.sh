#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
if ! command -v tmux >/dev/null 2>&1; then
  # the real-terminal test drives the TUI under tmux
  (apt-get update -qq && apt-get install -y -qq tmux) >/dev/null 2>&1 || echo "note: tmux not installed; its test will be skipped"
fi
# the example third-party plugin packages carry their own tests
PYTHONPATH=examples/third_party_loss/src python -m pytest -q -p no:cacheprovider examples/third_party_loss/tests
PYTHONPATH=examples/third_party_kit/src python -m pytest -q -p no:cacheprovider examples/third_party_kit/tests
python -m pytest -q -p no:cacheprovider "$@"
