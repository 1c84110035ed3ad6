#!/usr/bin/env bash
# MAML-RL on 2D navigation against the PyTorch reference (benchmarks/peers/maml_rl_navigation_torch.py,
# the same algorithm), in interleaved rounds so that a slow patch of a shared machine hits both
# sides of a round. Each round: metaq's GEMM figure (the noise gauge), the PyTorch script's
# seconds per meta-iteration (--mode speed), then metaq's with the same settings
# (benchmarks/meta-rl-speed.mq); each after 2 untimed warm-up meta-iterations, each a process
# of its own with THREADS threads (default 2; the GEMM gauge always runs with metaq's default
# threads, so that gauges compare across runs). The summary gives each round's ratio
# torch / metaq (above 1: metaq is faster) and their median.
#   PY=/path/to/venv/bin/python benchmarks/meta-rl-peers.sh [ROUNDS] [ITERS] [OUT]
# ROUNDS defaults to 3, ITERS (timed meta-iterations per side and round) to 5; OUT to
# out/benchmarks/meta-rl-peers-DATE.txt in the ignored out/ folder (keep a raw file by moving it
# to benchmarks/raw/). PY defaults to .venv-peers/bin/python at the repository root (see
# benchmarks/peers/README.md). NO_BUILD=1 skips the release build;
# BIN=DIR takes metaq and metaq-bench from DIR instead of .build/release.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/.."
py="${PY:-$root/.venv-peers/bin/python}"
rounds="${1:-3}"
iters="${2:-5}"
out="${3:-$root/out/benchmarks/meta-rl-peers-$(date -u +%Y-%m-%dT%H%M).txt}"
threads="${THREADS:-2}"
[ -x "$py" ] || { echo "no python at $py (set PY to a venv with torch, see benchmarks/peers/README.md)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
if [ -z "${NO_BUILD:-}" ]; then
    swift build -c release -j 1 --package-path "$root" --product metaq >&2
    swift build -c release -j 1 --package-path "$root" --product metaq-bench >&2
fi
bin="${BIN:-$root/.build/release}"
# metaq on the same cores the PyTorch script pins itself to (its first THREADS allowed CPUs).
cpus="$(python3 -c "import os, sys; print(','.join(map(str, sorted(os.sched_getaffinity(0))[:int(sys.argv[1])])))" "$threads")"
{
    echo "# $(date -u +%FT%TZ) commit $(git -C "$root" rev-parse --short HEAD) threads=$threads cpus=$cpus iters=$iters warmup=2 $(nproc) cores"
    for r in $(seq "$rounds"); do
        echo "## round $r $(date -u +%FT%TZ)"
        "$bin/metaq-bench" --only sgemm --budget 2 | python3 -c '
import json, sys
for r in json.load(sys.stdin)["results"]:
    print("metaq", r["name"], round(r["value"], 1), r["unit"])'
        "$py" "$here/peers/maml_rl_navigation_torch.py" --mode speed --iters "$iters" --warmup 2 --threads "$threads" 2>/dev/null
        METAQ_THREADS="$threads" taskset -c "$cpus" "$bin/metaq" run "$here/meta-rl-speed.mq" --set "iters=$iters" --set warmup=2 2>&1 \
            | tr '\r' '\n' | grep -v '^train maml_rl: '
    done
} 2>&1 | tee "$out"
(python3 - "$out" <<'PY'
import json, statistics, sys
rounds, cur = [], None
for line in open(sys.argv[1]):
    if line.startswith("## round"):
        cur = {}; rounds.append(cur)
    elif line.startswith("metaq sgemm"):
        cur["gemm"] = float(line.split()[2])
    elif line.startswith("{"):
        d = json.loads(line)
        cur[d["name"]] = d["seconds_per_iteration"]
done = [r for r in rounds if "maml_rl_navigation_torch" in r and "maml_rl_navigation_metaq" in r]
if done:
    cells = [f"{r['maml_rl_navigation_torch']:.3f}/{r['maml_rl_navigation_metaq']:.3f}="
             f"{r['maml_rl_navigation_torch'] / r['maml_rl_navigation_metaq']:.2f}x (GEMM {r.get('gemm', float('nan')):.0f})" for r in done]
    ratios = [r["maml_rl_navigation_torch"] / r["maml_rl_navigation_metaq"] for r in done]
    print("s per meta-iteration, PyTorch/metaq: " + ", ".join(cells) +
          f"; median {statistics.median(ratios):.2f}x, lowest {min(ratios):.2f}x", flush=True)
else:
    print("no complete round", file=sys.stderr)
PY
) | tee -a "$out"
echo "wrote $out" >&2
