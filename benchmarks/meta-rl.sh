#!/usr/bin/env bash
# MAML-RL on 2D navigation, the paper's settings (benchmarks/meta-rl.mq), release build.
# Writes the raw log and the JSON results to benchmarks/raw/meta-rl-navigation-<UTC time>.{log,json,svg}
# (the .svg: average return against adaptation steps, 95% bands);
# the trained learners are checkpointed under out/ every 50 iterations, and a second run with
# the same settings resumes them (delete out/meta-rl-bench-*.mqm to start afresh).
# Usage: benchmarks/meta-rl.sh [ITERS] [TEST_TASKS] [extra metaq run arguments...]
# Another family: FAMILY=turned or FAMILY=cartpole benchmarks/meta-rl.sh ... (see meta-rl.mq).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
iters="${1:-500}"; tasks="${2:-200}"; shift $(( $# > 2 ? 2 : $# ))
family="${FAMILY:-navigation2d}"
swift build -c release -j 1 --package-path "$here/.." --product metaq >&2
stamp="$(date -u +%Y-%m-%dT%H%M)"
raw="$here/raw/meta-rl-$family-$stamp"
[ "$family" = navigation2d ] && raw="$here/raw/meta-rl-navigation-$stamp"
cd "$here/.."
mkdir -p out
{
  echo "# $(date -u) $(git rev-parse --short HEAD) iters=$iters test_tasks=$tasks $*"
  echo "# .build/release/metaq run benchmarks/meta-rl.mq --set iters=$iters --set test_tasks=$tasks --set json='\"$raw.json\"' --set figure='\"$raw.svg\"' $*"
  /usr/bin/time -v .build/release/metaq run benchmarks/meta-rl.mq --set "iters=$iters" --set "test_tasks=$tasks" --set "json=\"$raw.json\"" --set "figure=\"$raw.svg\"" --set "family=\"$family\"" --set "save_to=\"out/meta-rl-bench-$family\"" "$@" 2>&1 \
    | tr '\r' '\n' | grep -v '^train maml_rl: \|^eval maml_rl: '
} | tee "$raw.log"
echo "results: $raw.json" >&2
