#!/usr/bin/env bash
# Throughput and latency of `metaq serve` for a sinusoid meta-model: trains MAML on sinusoids
# (release build), serves it on a loopback port and drives POST /v1/predict with wrk, each
# request a 10-shot support set and 10 query points, for a few adaptation step counts.
# Prints wrk's requests/s and latency percentiles per configuration. Installs wrk from
# Debian's packages when it is missing. Traffic goes to 127.0.0.1 only and every run is
# bounded in time.
#
# Usage: benchmarks/serve-bench.sh [SECONDS_PER_RUN] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-10}
connections=${2:-8}
if ! command -v wrk >/dev/null; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
fi
scripts/install-deps.sh
swift build -c release --product metaq 2>&1 | tail -1
metaq=$(pwd)/.build/release/metaq
work=$(mktemp -d)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

cat > train.mq <<'EOF'
seed 1
model net = mlp < in 1 hidden [40, 40] out 1 >
tasks sine = sinusoid < support 10 query 10 >
learner m = maml < model net inner < steps 1 lr 0.01 > outer < lr 0.001 batch 25 > >
train m on sine < iters 2000 checkpoint "sine.mqm" >
EOF
echo "training the sinusoid meta-model (MAML, 2000 meta-iterations)..."
"$metaq" run train.mq > /dev/null

"$metaq" serve sine.mqm --port 0 > serve.log 2>&1 &
server_pid=$!
for _ in $(seq 100); do grep -q "^serving" serve.log && break; sleep 0.1; done
url=$(grep -o 'http://127.0.0.1:[0-9]*' serve.log | head -1)
[ -n "$url" ] || { cat serve.log; exit 1; }

# One request body per step count: a 10-shot support set of a fixed sinusoid, 10 queries.
body() {
    python3 - "$1" <<'EOF'
import json, math, sys
xs = [-4.5 + i for i in range(10)]
print(json.dumps({"support": {"x": [[x] for x in xs], "y": [2.0 * math.sin(x - 0.7) for x in xs]},
                  "query": {"x": [[-4.0 + 0.9 * i] for i in range(10)]}, "steps": int(sys.argv[1])}))
EOF
}

echo "server: $url  (cores: $(nproc), wrk: 2 threads, $connections connections, ${duration}s per run)"
for steps in 1 5 10; do
    cat > post.lua <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[$(body "$steps")]==]
EOF
    status=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data @<(body "$steps") "$url/v1/predict")
    [ "$status" = 200 ] || { echo "a sample request failed with HTTP $status"; exit 1; }
    echo
    echo "== 10-shot support, 10 queries, $steps adaptation step(s) =="
    timeout $((duration + 30)) wrk -t2 -c"$connections" -d"${duration}s" --latency -s post.lua "$url/v1/predict" > wrk.log
    grep -E "Requests/sec|^ +Latency|^ +(50|75|90|99)%|requests in|Non-2xx" wrk.log
    if grep -q "Non-2xx" wrk.log; then echo "some requests failed"; exit 1; fi
done
