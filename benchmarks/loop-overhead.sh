#!/usr/bin/env bash
# The language's own cost: the same second-order MAML training (sinusoid, 5,000 meta-steps,
# then a 100-task evaluation) three ways, alternating, each a whole process:
#   swift  - the engine called from Swift (metaq-bench loop-overhead)
#   train  - metaq run benchmarks/loop-overhead.mq with the built-in train
#   loop   - the same script with an explicit for loop of meta_step
# Usage: benchmarks/loop-overhead.sh [ROUNDS] [ITERS]   (run on an otherwise idle machine)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rounds="${1:-5}"; iters="${2:-5000}"
swift build -c release --package-path "$here/.." --product metaq >&2
swift build -c release --package-path "$here/.." --product metaq-bench >&2
bin="$here/../.build/release"
secs() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }
declare -A total=([swift]=0 [train]=0 [loop]=0)
for r in $(seq "$rounds"); do
  for which in swift train loop; do
    if [ "$which" = swift ]; then t=$(secs "$bin/metaq-bench" loop-overhead --iters "$iters")
    else t=$(secs "$bin/metaq" run "$here/loop-overhead.mq" --set "which=\"$which\"" --set "iters=$iters"); fi
    printf '%s round %d: %.3f s\n' "$which" "$r" "$t"
    total[$which]=$(echo "${total[$which]} + $t" | bc -l)
  done
done
for which in swift train loop; do
  printf '%s mean: %.3f s\n' "$which" "$(echo "${total[$which]} / $rounds" | bc -l)"
done
printf 'train / swift: %.4f, loop / swift: %.4f\n' "$(echo "${total[train]} / ${total[swift]}" | bc -l)" "$(echo "${total[loop]} / ${total[swift]}" | bc -l)"
