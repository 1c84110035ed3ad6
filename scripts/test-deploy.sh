#!/usr/bin/env bash
# End-to-end checks of checkpoints and deployment with a built metaq (pass its path as $1):
# a process killed while saving leaves a loadable checkpoint; `metaq adapt` and `metaq serve`
# work from the command line; a checkpoint reads in Python with numpy and the `safetensors`
# package (installed into a virtual environment under ~/.cache/metaq if missing), which
# reproduces metaq's predictions. Ends with "deploy: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
metaq=$root/${1:-.build/debug/metaq}
work=$(mktemp -d)
server_pid=""
loop_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    [ -n "$loop_pid" ] && kill -9 "$loop_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
passes=0
failures=0
pass() { echo "ok   $1"; passes=$((passes + 1)); }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }

# start_server CHECKPOINT LOG: starts metaq serve on a free port, waits (up to 60 s) until it
# says it is serving, and sets server_pid and url (empty if it never started).
start_server() {
    "$metaq" serve "$1" --port 0 > "$2" 2>&1 &
    server_pid=$!
    local deadline=$((SECONDS + 60))
    until grep -q "^serving" "$2"; do
        [ $SECONDS -lt $deadline ] && kill -0 "$server_pid" 2>/dev/null || { cat "$2"; break; }
        sleep 0.1
    done
    url=$(grep -o 'http://127.0.0.1:[0-9]*' "$2" | head -1)
}
# Stops the server start_server started.
stop_server() {
    kill -TERM "$server_pid"; wait "$server_pid" || true
    server_pid=""
}

# --- A process killed while saving leaves the previous checkpoint intact. ---
cat > save-loop.mq <<'EOF'
seed 1
model big = mlp < in 1 hidden [1500, 1500] out 1 >
tasks sine = sinusoid < support 2 query 2 >
learner m = pretrain < model big outer < batch 1 > >
while true {
  train m on sine < iters 1 >
  save m to "big.mqm"
}
EOF
printf 'let m = load("big.mqm")\nprint m.iterations\n' > check.mq

# kill_round MODE: starts the save loop, waits for a first checkpoint, then SIGKILLs the
# process either while a save is being written (MODE=mid-write: as soon as its temporary
# file appears) or after a random delay (MODE=random); then the checkpoint must load.
kill_round() {
    local mode=$1 deadline
    "$metaq" run save-loop.mq > loop.log 2>&1 &
    loop_pid=$!
    deadline=$((SECONDS + 120))
    while [ ! -e big.mqm ] || [ "$(find . -name 'big.mqm' -newer check.mq | wc -l)" -eq 0 ]; do
        [ $SECONDS -lt $deadline ] || { fail "kill ($mode): no checkpoint written"; kill -9 "$loop_pid"; loop_pid=""; return; }
        sleep 0.05
    done
    if [ "$mode" = mid-write ]; then
        while [ ! -e "big.mqm.tmp-$loop_pid" ]; do
            [ $SECONDS -lt $deadline ] || { fail "kill ($mode): never saw a save in progress"; kill -9 "$loop_pid"; loop_pid=""; return; }
        done
    else
        sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.2 + 1.8 * r / 32767 }')"
    fi
    kill -9 "$loop_pid"
    wait "$loop_pid" 2>/dev/null || true
    local leftover=""
    [ -e "big.mqm.tmp-$loop_pid" ] && leftover=" (a partial big.mqm.tmp-$loop_pid was left behind)"
    loop_pid=""
    local out
    if out=$("$metaq" run check.mq 2>&1) && grep -Eq '^[1-9][0-9]*$' <<<"$out"; then
        pass "kill ($mode): the checkpoint still loads, at iteration $out$leftover"
    else
        fail "kill ($mode): the checkpoint does not load after a kill: $out"
    fi
    touch check.mq
}
touch check.mq
for mode in mid-write mid-write random random; do kill_round "$mode"; done
rm -f big.mqm big.mqm.tmp-*

# --- metaq adapt and metaq serve on a small sinusoid model. ---
cat > train.mq <<'EOF'
seed 2
model net = mlp < in 1 hidden [40, 40] out 1 >
tasks sine = sinusoid < support 10 query 10 >
learner m = maml < model net inner < steps 1 lr 0.01 > outer < lr 0.001 batch 8 > >
train m on sine < iters 50 checkpoint "sine.mqm" every 25 >
EOF
"$metaq" run train.mq > /dev/null
if out=$("$metaq" inspect sine.mqm 2>&1) && grep -q "learner:    maml (mse), 50 iterations trained" <<<"$out"; then
    pass "inspect describes a checkpoint"
else
    fail "inspect: $out"
fi
head -c 2000 sine.mqm > truncated.mqm
if out=$("$metaq" inspect truncated.mqm 2>&1); then
    fail "inspect accepted a truncated checkpoint"
elif grep -q "truncated.mqm: truncated" <<<"$out"; then
    pass "inspect names a truncated checkpoint"
else
    fail "inspect on a truncated checkpoint: $out"
fi
printf 'x,y\n-3,0.2\n-1,-1.1\n0,-0.4\n1,0.9\n3,0.3\n' > support.csv
printf 'x\n-2\n0.5\n2\n' > query.csv
if out=$("$metaq" adapt sine.mqm --support support.csv --query query.csv --steps 5 2>&1) \
    && [ "$(head -1 <<<"$out")" = "x,prediction" ] && [ "$(wc -l <<<"$out")" -eq 4 ]; then
    pass "adapt writes one prediction per query row"
else
    fail "adapt: $out"
fi
if out=$("$metaq" adapt train.mq --support support.csv --query query.csv 2>&1); then
    fail "adapt accepted a script as a checkpoint"
elif grep -q "not a metaq checkpoint" <<<"$out"; then
    pass "adapt names a foreign file"
else
    fail "adapt on a foreign file: $out"
fi
printf 'x,y\n1,2,3\n' > ragged.csv
if out=$("$metaq" adapt sine.mqm --support ragged.csv --query query.csv 2>&1); then
    fail "adapt accepted a ragged CSV"
elif grep -q "ragged.csv:2: row has 3 fields" <<<"$out"; then
    pass "adapt names the bad CSV row"
else
    fail "adapt on a ragged CSV: $out"
fi
if out=$("$metaq" adapt sine.mqm --support support.csv --query query.csv --steps -1 2>&1); then
    fail "adapt accepted --steps -1"
elif grep -q -- "--steps must be from 0 to 10000, got -1" <<<"$out"; then
    pass "adapt explains a negative --steps"
else
    fail "adapt --steps -1: $out"
fi

# A classifier: labels and one probability column per class.
awk 'BEGIN { srand(4); print "task,x1,x2,y"; for (t = 0; t < 6; t++) for (c = 0; c < 2; c++) for (i = 0; i < 6; i++)
    printf "t%d,%.3f,%.3f,%d\n", t, 3 * c + rand(), t + rand(), c }' > classes.csv
cat > classify.mq <<'EOF'
seed 3
model embed = mlp < in 2 hidden [16] out 8 >
tasks pairs = csv < path "classes.csv" classification true support 2 query 2 >
learner p = protonet < model embed >
train p on pairs < iters 5 >
save p to "protonet.mqm"
EOF
"$metaq" run classify.mq > /dev/null
printf 'x1,x2,y\n0.2,1,0\n0.5,1.5,0\n3.1,1,1\n3.6,1.2,1\n' > labelled.csv
printf 'x1,x2\n0.3,1.1\n3.4,1.3\n' > unlabelled.csv
if out=$("$metaq" adapt protonet.mqm --support labelled.csv --query unlabelled.csv 2>&1) \
    && [ "$(head -1 <<<"$out")" = "x1,x2,label,p0,p1" ] && [ "$(wc -l <<<"$out")" -eq 3 ]; then
    pass "adapt gives a classifier's labels and probabilities"
else
    fail "adapt with a classifier: $out"
fi

start_server sine.mqm serve.log
request() { curl -s -o body.json -w '%{http_code}' "$@"; }
if [ -n "$url" ] && [ "$(request "$url/health")" = 200 ] && grep -q '"status":"ok"' body.json; then
    pass "serve: health"
else
    fail "serve: health ($(cat serve.log body.json 2>/dev/null))"
fi
good='{"support": {"x": [[-3], [-1], [0], [1], [3]], "y": [0.2, -1.1, -0.4, 0.9, 0.3]}, "query": {"x": [[-2], [0.5]]}, "steps": 5}'
if [ "$(request -X POST -d "$good" "$url/v1/predict")" = 200 ] && grep -Eq '"predictions":\[[-0-9.e]+,[-0-9.e]+\]' body.json; then
    pass "serve: predict"
else
    fail "serve: predict ($(cat body.json))"
fi
if [ "$(request -X POST -d '{"support": {"x": [[1, 2]], "y": [1]}, "query": {"x": [[1]]}}' "$url/v1/predict")" = 422 ] \
    && grep -q "the model takes 1" body.json; then
    pass "serve: mismatched features get 422"
else
    fail "serve: mismatched features ($(cat body.json))"
fi
if [ "$(request -X POST -d '{"support": ' "$url/v1/predict")" = 400 ]; then
    pass "serve: malformed JSON gets 400"
else
    fail "serve: malformed JSON ($(cat body.json))"
fi
kill -TERM "$server_pid"
if wait "$server_pid"; then pass "serve: stops cleanly on SIGTERM"; else fail "serve: exit status $? on SIGTERM"; fi
server_pid=""

# --- A learner written in metaq deploys like a built-in one: metaq adapt rebuilds its
# functions from the script saved in its checkpoint (no training runs), and predicts exactly
# what the built-in maml trained on the same seed predicts. ---
cat > script-learner.mq <<'EOF'
seed 7
model net = mlp < in 1 hidden [40, 40] out 1 >
tasks sine = sinusoid < amplitude 0.1..5.0 phase 0..pi x -5..5 support 10 query 10 >
fn adapt(params, extras, support, steps) {
    var fast = per_task(params, support.tasks)
    for i in range(steps) {
        fast = fast + grad(fn(p) -> sum(task_mse(net(support.x, p), support.y)), fast, -0.01)
    }
    return fast
}
let meta_loss = fn(params, extras, batch) -> task_mse(net(batch.query.x, adapt(params, extras, batch.support, 1)), batch.query.y)
learner mine = custom < model net loss meta_loss adapt adapt steps 5 >
train mine on sine < iters 60 >
save mine to "mine.mqm"
seed 7
model net2 = mlp < in 1 hidden [40, 40] out 1 >
learner ref = maml < model net2 inner < steps 1 lr 0.01 > >
train ref on sine < iters 60 >
save ref to "ref.mqm"
EOF
printf 'x,y\n-4,0.5\n-2,-1.2\n0,0.9\n2,1.1\n3,0.2\n' > script-support.csv
printf 'x\n-3.5\n0.5\n2.5\n' > script-query.csv
if "$metaq" run script-learner.mq > script-train.log 2>&1 \
    && "$metaq" adapt mine.mqm --support script-support.csv --query script-query.csv --steps 5 > mine.csv \
    && "$metaq" adapt ref.mqm --support script-support.csv --query script-query.csv --steps 5 > ref.csv \
    && [ "$(wc -l < mine.csv)" -eq 4 ] && cmp -s mine.csv ref.csv; then
    pass "adapt: a script learner predicts as the built-in maml"
else
    fail "adapt: script learner ($(cat script-train.log mine.csv ref.csv 2>/dev/null | tail -12))"
fi
start_server mine.mqm serve-script.log
if [ -n "$url" ] && [ "$(request -X POST -d "$good" "$url/v1/predict")" = 200 ] && grep -Eq '"predictions":\[[-0-9.e]+,[-0-9.e]+\]' body.json \
    && [ "$(request "$url/health")" = 200 ] && grep -q '"learner":"custom"' body.json && grep -q '"default_steps":5' body.json; then
    pass "serve: a script learner"
else
    fail "serve: script learner ($(cat serve-script.log body.json 2>/dev/null))"
fi
stop_server

# --- A learner from a module that ships with metaq (Matching Networks with full context,
# written in metaq) deploys like a built-in classifier: metaq adapt and metaq serve rebuild it
# from its checkpoint, label the queries of the two classes apart, and give probabilities. ---
cat > matching.mq <<'EOF'
import "metaq/matching"
seed 5
model embed = mlp < in 2 hidden [16] out 8 >
tasks pairs = csv < path "classes.csv" classification true support 2 query 2 >
learner mn = matching < model embed ways 2 fce true fce_steps 2 outer < lr 0.003 > >
train mn on pairs < iters 40 >
save mn to "matching.mqm"
EOF
if "$metaq" run matching.mq > matching.log 2>&1 \
    && out=$("$metaq" adapt matching.mqm --support labelled.csv --query unlabelled.csv 2>&1) \
    && [ "$(head -1 <<<"$out")" = "x1,x2,label,p0,p1" ] && [ "$(wc -l <<<"$out")" -eq 3 ] \
    && [ "$(sed -n 2p <<<"$out" | cut -d, -f3)" = 0 ] && [ "$(sed -n 3p <<<"$out" | cut -d, -f3)" = 1 ]; then
    pass "adapt: a Matching Network from metaq/matching labels the queries"
else
    fail "adapt: matching ($(cat matching.log; echo "${out:-}"))"
fi
start_server matching.mqm serve-matching.log
pairs='{"support": {"x": [[0.2, 1], [0.5, 1.5], [3.1, 1], [3.6, 1.2]], "y": [0, 0, 1, 1]}, "query": {"x": [[0.3, 1.1], [3.4, 1.3]]}}'
if [ -n "$url" ] && [ "$(request -X POST -d "$pairs" "$url/v1/predict")" = 200 ] && grep -q '"predictions":\[0,1\]' body.json \
    && [ "$(request "$url/health")" = 200 ] && grep -q '"task":"classification"' body.json && grep -q '"learner":"matching"' body.json; then
    pass "serve: a Matching Network from metaq/matching"
else
    fail "serve: matching ($(cat serve-matching.log body.json 2>/dev/null))"
fi
stop_server

echo "deploy: $passes passed, $failures failed"

# --- Python reads the checkpoint format. ---
venv=${XDG_CACHE_HOME:-$HOME/.cache}/metaq/venv
if ! "$venv/bin/python" -c "import numpy, safetensors" 2>/dev/null; then
    echo "installing numpy and safetensors into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q numpy safetensors >&2
fi
python_status=0
"$venv/bin/python" "$root/scripts/test-safetensors.py" "$metaq" || python_status=$?
[ "$failures" -eq 0 ] && [ "$python_status" -eq 0 ]
