#!/usr/bin/env bash
# Runs benchmarks/seed-methods.mq for every method, 5-way (scored at 1 and 5 shots) and
# 20-way 1-shot, with a built metaq (default .build/release/metaq); the lines go to
# benchmarks/raw/seed-methods-<date>.log. Usage: benchmarks/seed-methods.sh [ITERS] [METHODS...]
set -euo pipefail
cd "$(dirname "$0")/.."
metaq=${METAQ:-.build/release/metaq}
root=${OMNIGLOT:-../shared/data/omniglot}
iters=${1:-1000}
shift || true
methods=("$@")
[ ${#methods[@]} -gt 0 ] || methods=(protonet matching matching_fce maml protonet_metagan maml_metagan meta_lstm)
mkdir -p benchmarks/raw
log=benchmarks/raw/seed-methods-$(date +%Y%m%d-%H%M%S)-$$.log
for m in "${methods[@]}"; do
    "$metaq" run benchmarks/seed-methods.mq --quiet --set root="\"$root\"" --set method="\"$m\"" --set iters="$iters" --set ways=5 --set 'eval_shots=[1, 5]' | tee -a "$log"
    "$metaq" run benchmarks/seed-methods.mq --quiet --set root="\"$root\"" --set method="\"$m\"" --set iters="$iters" --set ways=20 --set 'eval_shots=[1]' | tee -a "$log"
done
echo "lines in $log"
