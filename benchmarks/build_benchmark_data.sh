#!/usr/bin/env bash
# Build the benchmark datasets (never committed) in a user cache directory:
#   in-distribution  a pool of Debian doc packages around linux-doc-6.1
#   near-OOD         held-out doc packages of the same genre (PostgreSQL manual)
#   far-OOD          the King James Bible, books cut into pseudo-documents of 30 chunks
#
# Usage: benchmarks/build_benchmark_data.sh [EMBEDDER] [OUT_DIR]
#   EMBEDDER  minilm (default; ~40 chunks/s on 2 cores, ~30 min for the pool)
#             or potion-base-8m (thousands of chunks/s; a quick, lower-quality build)
#   OUT_DIR   default: ${LVM_WORKBENCH_CACHE:-${XDG_CACHE_HOME:-~/.cache}/lvm-workbench}/benchmark
# Needs apt-get (run `apt-get update` once as root if a package is not found) and dpkg-deb.
# Downloads and embeddings are cached: an interrupted run picks up where it stopped.
set -euo pipefail

EMBEDDER="${1:-minilm}"
CACHE="${LVM_WORKBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lvm-workbench}"
OUT="${2:-$CACHE/benchmark}"
LVM="${LVM:-lvm-workbench}"

IN_DIST=(linux-doc-6.1 python3.11-doc python-django-doc llvm-15-doc)
NEAR_OOD=(postgresql-doc-15)

build() {  # name, then data build arguments
  local name="$1"; shift
  local out="$OUT/$name-$EMBEDDER"
  if [ -d "$out" ]; then echo "exists: $out (delete it to rebuild)"; return; fi
  $LVM data build --embedder "$EMBEDDER" --cache "$CACHE" --out "$out" "$@"
  $LVM data info "$out"
}

src() { for p in "$@"; do printf -- '--source %s ' "$p"; done; }

# shellcheck disable=SC2046
build in-dist  --reader debian-doc $(src "${IN_DIST[@]}")  --min-chunks 10
# shellcheck disable=SC2046
build near-ood --reader debian-doc $(src "${NEAR_OOD[@]}") --min-chunks 10
build far-ood  --reader kjv --split-chunks 30 --min-chunks 10
echo "benchmark stores in $OUT"
