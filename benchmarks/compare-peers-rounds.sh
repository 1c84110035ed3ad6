#!/usr/bin/env bash
# Every issue-8 speed benchmark against the PyTorch and JAX reference scripts
# (../shared/peers), in interleaved rounds: each round runs the reference scripts and then
# metaq-bench on the same workloads, so a slow patch of a shared machine hits both sides of
# a round; the summary gives each round's ratios and their medians (RESULTS.md quotes these).
#   PY=/path/to/venv/bin/python benchmarks/compare-peers-rounds.sh [ROUNDS] [OUT_PREFIX]
# OUT_PREFIX defaults to out/benchmarks/rounds-DATE in the ignored out/ folder (keep a raw file
# by moving it to benchmarks/raw/). Set ONLY=conv to run just the conv workloads. JAX's sine
# scripts time 2,000 iterations (their default 500 is 0.2-0.9 s, and their rate moved by up
# to 35% between sittings).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
peers="${PEERS:-$here/../../shared/peers}"
py="${PY:-$peers/.venv-peers/bin/python}"
rounds="${1:-3}"
out="${2:-$here/../out/benchmarks/rounds-$(date -u +%Y-%m-%dT%H%M)}"
mkdir -p "$(dirname "$out")"
only="${ONLY:-all}"
[ -x "$py" ] || { echo "no python at $py (set PY to the peers' venv)" >&2; exit 1; }
swift build -c release --product metaq-bench --package-path "$here/.." >&2
bench="$here/../.build/release/metaq-bench"
conv="protonet_speed_torch.py --iters 200 --warmup 20
maml_omniglot_speed_torch.py --iters 10 --warmup 2
maml_omniglot_speed_torch.py --iters 10 --warmup 2 --first-order"
sine="maml_sine_torch.py
maml_sine_jax.py --iters 2000
maml_sine_torch.py --first-order
maml_sine_jax.py --first-order --iters 2000
maml_sine_torch.py --inner-steps 5
maml_sine_jax.py --inner-steps 5 --iters 2000"
if [ "$only" = conv ]; then
  scripts="$conv"; names=sgemm,conv2d,protonet_conv4,maml_omniglot,fomaml_omniglot
else
  scripts="$sine
$conv"; names=sgemm,conv2d,protonet_conv4,maml_omniglot,fomaml_omniglot,maml_sine,fomaml_sine,maml_sine_5step
fi
: > "$out.txt"
for r in $(seq "$rounds"); do
  {
    echo "# round $r $(date -u -Is)"
    cd "$peers"
    while IFS= read -r args; do
      # shellcheck disable=SC2086
      "$py" $args --threads 2 2>&1 | grep RESULT
    done <<< "$scripts"
    "$bench" --budget "${BUDGET:-10}" --only "$names" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["results"]:
    print("metaq", r["name"], round(r["value"], 4), r["unit"], r["iterations"], "iterations", r["settings"].get("GFLOP/s", ""))'
  } >> "$out.txt"
done
python3 - "$out.txt" <<'PY'
import re, statistics, sys
rounds, cur = [], None
def kind(line):
    if "protonet" in line: return "protonet"
    if "omniglot" in line: return "fomaml_omniglot" if "FOMAML" in line else "maml_omniglot"
    if "FOMAML" in line: return "fomaml_sine"
    return "maml_sine_5step" if "steps=5" in line else "maml_sine"
for line in open(sys.argv[1]):
    if line.startswith("# round"):
        cur = {}; rounds.append(cur)
    elif line.startswith("RESULT"):
        # the ms/it figure has more digits than the rounded it/s one
        rate = 1000 / float(re.search(r"\(([\d.]+) ms/it", line).group(1))
        cur[("jax" if "_jax" in line else "torch", kind(line))] = rate
    elif line.startswith("metaq"):
        fields = line.split()
        cur[("metaq", fields[1])] = float(fields[2])
        if fields[1] == "conv2d": cur["conv_gflops"] = float(fields[-1])
names = [("maml_sine", "sine MAML 2nd order"), ("fomaml_sine", "sine first-order"), ("maml_sine_5step", "sine 5 steps"),
         ("protonet", "ProtoNet conv4"), ("maml_omniglot", "Omniglot MAML"), ("fomaml_omniglot", "Omniglot FOMAML")]
for key, title in names:
    metaq = "protonet_conv4" if key == "protonet" else key
    for peer in ["torch", "jax"]:
        if all((peer, key) in r and ("metaq", metaq) in r for r in rounds):
            ratios = [r[("metaq", metaq)] / r[(peer, key)] for r in rounds]
            cells = ", ".join(f"{r[('metaq', metaq)]:.4g}/{r[(peer, key)]:.4g}={x:.2f}x" for r, x in zip(rounds, ratios))
            print(f"{title} vs {'PyTorch' if peer == 'torch' else 'JAX'}: {cells}; median {statistics.median(ratios):.2f}x, lowest {min(ratios):.2f}x")
if all("conv_gflops" in r for r in rounds):
    print("conv layer: " + ", ".join(f"{r[('metaq', 'conv2d')]:.1f} ms ({100 * r['conv_gflops'] / 194:.0f}% of 194 GFLOP/s)" for r in rounds))
if all(("metaq", "sgemm") in r for r in rounds):
    print("GEMM n=1024 (GFLOP/s): " + ", ".join(f"{r[('metaq', 'sgemm')]:.0f}" for r in rounds))
PY
