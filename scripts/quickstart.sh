#!/usr/bin/env bash
# Set up (scripts/setup.sh), then train the quickstart plan on the bundled demo data (about a
# minute on a 2-core CPU). The run lands in runs/quickstart-<UTC time>/; extra arguments go to
# lvm-workbench (for example --device cuda or --run-dir DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
exec lvm-workbench --run examples/quickstart.toml "$@"
