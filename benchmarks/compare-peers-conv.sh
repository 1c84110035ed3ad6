#!/usr/bin/env bash
# The conv workloads against PyTorch, interleaved: each round runs the PyTorch reference
# scripts (../shared/peers) and then metaq-bench on the same three workloads, so a slow
# patch of the machine hits both sides; RESULTS.md reports the per-round ratios and medians.
#   PY=/path/to/venv/bin/python benchmarks/compare-peers-conv.sh [ROUNDS] [OUT_PREFIX]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
peers="${PEERS:-$here/../../shared/peers}"
py="${PY:-$peers/.venv-peers/bin/python}"
rounds="${1:-3}"
out="${2:-$here/conv-sitting-$(date -u +%Y-%m-%dT%H%M)}"
[ -x "$py" ] || { echo "no python at $py (set PY to the peers' venv)" >&2; exit 1; }
swift build -c release --product metaq-bench --package-path "$here/.." >&2
bench="$here/../.build/release/metaq-bench"
: > "$out.txt"
for r in $(seq "$rounds"); do
  {
    echo "# round $r $(date -u -Is)"
    cd "$peers"
    "$py" protonet_speed_torch.py --iters 200 --warmup 20 --threads 2 2>&1 | grep RESULT
    "$py" maml_omniglot_speed_torch.py --iters 10 --warmup 2 --threads 2 2>&1 | grep RESULT
    "$py" maml_omniglot_speed_torch.py --iters 10 --warmup 2 --first-order --threads 2 2>&1 | grep RESULT
    "$bench" --budget 20 --only protonet_conv4,maml_omniglot,fomaml_omniglot,conv2d | python3 -c '
import json, sys
for r in json.load(sys.stdin)["results"]:
    print("metaq", r["name"], round(r["value"], 4), r["unit"], r["iterations"], "iterations", r["settings"].get("GFLOP/s", ""))'
  } >> "$out.txt"
done
python3 - "$out.txt" <<'PY'
import re, statistics, sys
rounds, cur = [], None
for line in open(sys.argv[1]):
    if line.startswith("# round"):
        cur = {}; rounds.append(cur)
    elif line.startswith("RESULT"):
        # the ms/it figure has more digits than the rounded it/s one
        rate = 1000 / float(re.search(r"\(([\d.]+) ms/it", line).group(1))
        key = "protonet" if "protonet" in line else ("fomaml" if "FOMAML" in line else "maml")
        cur["torch_" + key] = rate
    elif line.startswith("metaq"):
        _, name, value = line.split()[:3]
        cur[{"protonet_conv4": "metaq_protonet", "maml_omniglot": "metaq_maml", "fomaml_omniglot": "metaq_fomaml", "conv2d": "conv_ms"}[name]] = float(value)
for key in ["protonet", "maml", "fomaml"]:
    ratios = [r["metaq_" + key] / r["torch_" + key] for r in rounds]
    print(f"{key}: metaq/PyTorch per round " + ", ".join(f"{x:.2f}" for x in ratios) + f"; median {statistics.median(ratios):.2f}")
print("conv2d ms per round: " + ", ".join(f"{r['conv_ms']:.1f}" for r in rounds))
PY
