#!/usr/bin/env bash
# Learners written in metaq against the built-in ones (issue 16's speed criterion): for each
# sitting, the GEMM figure (noise gauge), then `metaq-bench script-learners`, which times the
# script MAML and the built-in maml alternately in one process over ROUNDS rounds, then the
# GEMM figure again. Output (JSON lines) goes to OUT, by default under the ignored out/.
#   benchmarks/script-learners.sh [ROUNDS] [OUT]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rounds="${1:-5}"
out="${2:-$here/../out/benchmarks/script-learners-$(date -u +%Y-%m-%dT%H%M).txt}"
mkdir -p "$(dirname "$out")"
swift build -c release --product metaq-bench --package-path "$here/.." >&2
bench="$here/../.build/release/metaq-bench"
{
    echo "# $(date -u +%FT%TZ) commit $(git -C "$here/.." rev-parse --short HEAD)"
    "$bench" --only sgemm --budget 2
    "$bench" script-learners --rounds "$rounds" --budget 2 --only script_maml_sine,script_maml_sine_5step
    "$bench" script-learners --rounds "$rounds" --budget 8 --only script_maml_omniglot
    "$bench" --only sgemm --budget 2
} | tee "$out"
echo "wrote $out" >&2
