#!/usr/bin/env bash
# One sitting of the speed comparison in RESULTS.md: the PyTorch and JAX reference scripts
# from ../shared/peers, then metaq-bench, one after another (run on an otherwise idle machine).
#   PY=/path/to/venv/bin/python [BUDGET=SECONDS] benchmarks/compare-peers.sh [OUT_PREFIX]
# BUDGET is metaq-bench's seconds per benchmark (default 10: the Omniglot MAML benchmarks
# run at under 1 it/s, and 3 s gave them only 1-2 iterations).
# The venv is the peers' own (pip install -r ../shared/peers/requirements.txt, from PyPI).
# Writes OUT_PREFIX-peers.txt (RESULT lines) and OUT_PREFIX-metaq.json; OUT_PREFIX defaults to
# out/benchmarks/sitting-DATE in the ignored out/ folder (keep a raw file by moving it to
# benchmarks/raw/).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
peers="${PEERS:-$here/../../shared/peers}"
py="${PY:-$peers/.venv-peers/bin/python}"
out="${1:-$here/../out/benchmarks/sitting-$(date -u +%Y-%m-%dT%H%M)}"
mkdir -p "$(dirname "$out")"
[ -x "$py" ] || { echo "no python at $py (set PY to the peers' venv)" >&2; exit 1; }
swift build -c release --product metaq-bench --package-path "$here/.." >&2
{
  echo "# $(date -u -Is) $(nproc) cores"
  cd "$peers"
  for args in "maml_sine_torch.py" "maml_sine_jax.py" "maml_sine_torch.py --first-order" "maml_sine_jax.py --first-order" \
              "maml_sine_torch.py --inner-steps 5" "maml_sine_jax.py --inner-steps 5" \
              "protonet_speed_torch.py --iters 200 --warmup 20" \
              "maml_omniglot_speed_torch.py --iters 10 --warmup 2" "maml_omniglot_speed_torch.py --iters 10 --warmup 2 --first-order"; do
    echo "## $args"
    # shellcheck disable=SC2086
    "$py" $args --threads 2 2>&1 | grep RESULT
  done
  echo "# $(date -u -Is)"
} > "$out-peers.txt"
"$here/../.build/release/metaq-bench" --budget "${BUDGET:-10}" > "$out-metaq.json"
cat "$out-peers.txt"
python3 -c '
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print("metaq", r["name"], round(r["value"], 3), r["unit"], r["settings"].get("GFLOP/s", ""))
' "$out-metaq.json"
