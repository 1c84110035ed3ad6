#!/usr/bin/env bash
# Data-parallel meta-training under Open MPI, with the release binary: sine MAML for 100
# meta-steps on 1 and on 2 processes (mpirun) ends with the same parameters and loss (within
# 1e-5 relative), two 2-process runs are bit-identical, a learner written in metaq matches
# too, a run checkpointed on 2 processes resumes on 1, only the first process prints, and an
# error stops every process with a clear message. Open MPI comes from scripts/install-deps.sh
# (openmpi-bin); its absence is a failure, not a skip.
# Usage: scripts/test-mpi.sh [path/to/metaq]. Ends with "mpi: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
metaq=$(realpath "${1:-.build/release/metaq}")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
passed=0
failed=0
check() {
    if eval "$2"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $1" >&2; fi
}
if ! command -v mpirun >/dev/null; then
    echo "FAIL: mpirun is not installed (scripts/install-deps.sh installs openmpi-bin)" >&2
    echo "mpi: 0 passed, 1 failed"
    exit 1
fi
# As root Open MPI needs --allow-run-as-root; 2 processes on 2 (shared) cores need
# --oversubscribe and no binding. One thread per process: the machine has 2 cores.
mpi() { local n=$1; shift; METAQ_THREADS=1 timeout 300 mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$n" "$@"; }
cd "$dir"
mkdir out
cat >sine.mq <<'EOF'
seed 7
let iters = 100
let name = "run"
let resume = false
let every = 1000
model net = mlp < in 1 hidden [40, 40] out 1 >
tasks sine = sinusoid < amplitude 0.1..5.0 phase 0..pi x -5..5 support 10 query 10 >
learner m = maml < model net inner < steps 1 lr 0.01 > outer < opt adam lr 0.001 batch 25 > >
let log = train m on sine < iters iters checkpoint "out/" + name + ".mqm" every every resume resume >
print "final loss: " + str(log.loss)
EOF
cat >custom.mq <<'EOF'
seed 7
let name = "custom"
model net = mlp < in 1 hidden [16] out 1 >
tasks sine = sinusoid < support 5 query 5 >
fn adapt(params, extras, support, steps) {
    var fast = per_task(params, support.tasks)
    for i in range(steps) {
        fast = fast + grad(fn(p) -> sum(task_mse(net(support.x, p), support.y)), fast, -0.01)
    }
    return fast
}
let meta_loss = fn(params, extras, batch) -> task_mse(net(batch.query.x, adapt(params, extras, batch.support, 1)), batch.query.y)
learner mine = custom < model net loss meta_loss adapt adapt outer < batch 6 > >
let log = train mine on sine < iters 30 checkpoint "out/" + name + ".mqm" >
print "final loss: " + str(log.loss)
EOF
cat >eval.mq <<'EOF'
seed 5
let name = "eval"
model net = mlp < in 1 hidden [16] out 1 >
tasks sine = sinusoid < support 5 query 20 >
learner m = maml < model net inner < steps 1 lr 0.01 > >
let r = eval m on sine < tasks 30 steps [0, 1, 5] batch 7 >
write r to "out/" + name + ".csv"
EOF
# The float32 tensors of two checkpoints: same names and shapes, and the largest difference
# relative to the tensor's largest magnitude (0 when bit-identical).
cat >compare.py <<'EOF'
import json, struct, sys
def tensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        a, b = info["data_offsets"]
        raw = data[8 + n + a:8 + n + b]
        out[name] = struct.unpack("<%df" % (len(raw) // 4), raw)
    return out
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
if sorted(a) != sorted(b):
    print("different tensors"); sys.exit(1)
worst = 0.0
for name in a:
    scale = max(max(abs(x) for x in a[name]), 1e-30)
    worst = max(worst, max(abs(x - y) for x, y in zip(a[name], b[name])) / scale)
print("%.3g" % worst)
EOF
loss() { grep -o "final loss: .*" "$1" | sed 's/final loss: //'; }

mpi 1 "$metaq" run --quiet --set 'name="one"' sine.mq >one.log 2>&1
status=$?
check "1 process trains ($(tail -n 2 one.log | tr '\n' ' '))" '[ $status -eq 0 ] && [ -s out/one.mqm ]'
mpi 2 "$metaq" run --quiet --set 'name="two"' sine.mq >two.log 2>&1
status=$?
check "2 processes train ($(tail -n 3 two.log | tr '\n' ' '))" '[ $status -eq 0 ] && [ -s out/two.mqm ]'
check "only the first process prints" '[ "$(grep -c "final loss" two.log)" -eq 1 ]'
difference=$(python3 compare.py out/one.mqm out/two.mqm)
echo "sine MAML, 100 meta-steps: 1 vs 2 processes: largest relative parameter difference $difference; loss $(loss one.log) vs $(loss two.log)"
check "parameters on 1 and 2 processes agree within 1e-5 relative ($difference)" 'python3 -c "import sys; sys.exit(0 if float(\"$difference\") <= 1e-5 else 1)"'
check "the loss on 1 and 2 processes agrees within 1e-5 relative" \
    'python3 -c "import sys; a, b = float(\"$(loss one.log)\"), float(\"$(loss two.log)\"); sys.exit(0 if abs(a - b) <= 1e-5 * abs(a) else 1)"'
mpi 2 "$metaq" run --quiet --set 'name="again"' sine.mq >again.log 2>&1
check "a second 2-process run is bit-identical" '[ "$(python3 compare.py out/two.mqm out/again.mqm)" = "0" ] && [ "$(loss two.log)" = "$(loss again.log)" ]'

# resume works with any number of processes: 60 steps on 2, then on to 100 on 1.
mpi 2 "$metaq" run --quiet --set 'name="resumed"' --set iters=60 sine.mq >first-half.log 2>&1
mpi 1 "$metaq" run --quiet --set 'name="resumed"' --set resume=true sine.mq >second-half.log 2>&1
check "the resumed run says so" 'grep -q "resuming from out/resumed.mqm at iteration 60" second-half.log'
difference=$(python3 compare.py out/one.mqm out/resumed.mqm)
check "60 steps on 2 processes then 40 on 1 match 100 on 1 ($difference)" 'python3 -c "import sys; sys.exit(0 if float(\"$difference\") <= 1e-5 else 1)"'

# A learner written in metaq (custom) splits its meta-batch the same way.
mpi 1 "$metaq" run --quiet --set 'name="custom1"' custom.mq >custom1.log 2>&1
mpi 2 "$metaq" run --quiet --set 'name="custom2"' custom.mq >custom2.log 2>&1
difference=$(python3 compare.py out/custom1.mqm out/custom2.mqm 2>&1)
check "a custom learner on 1 and 2 processes agrees within 1e-5 ($difference; $(tail -n 1 custom2.log))" 'python3 -c "import sys; sys.exit(0 if float(\"$difference\") <= 1e-5 else 1)"'

# Evaluation is split across processes: the same tasks, the same scores.
mpi 1 "$metaq" run --quiet --set 'name="eval1"' eval.mq >eval1.log 2>&1
mpi 2 "$metaq" run --quiet --set 'name="eval2"' eval.mq >eval2.log 2>&1
python3 - out/eval1.csv out/eval2.csv >evaldiff.log 2>&1 <<'PY'
import csv, sys
a, b = (list(csv.DictReader(open(p))) for p in sys.argv[1:3])
assert len(a) == 3 and len(b) == 3 and [r["tasks"] for r in b] == ["30"] * 3, (a, b)
worst = max(abs(float(x[k]) - float(y[k])) / max(abs(float(x[k])), 1e-12) for x, y in zip(a, b) for k in ("mse", "ci95"))
print(worst)
sys.exit(0 if worst <= 1e-6 else 1)
PY
status=$?
check "eval on 2 processes reports what it reports on 1 ($(tail -n 1 evaldiff.log))" '[ $status -eq 0 ]'
"$metaq" run --quiet --set 'name="eval0"' eval.mq >eval0.log 2>&1
check "and what it reports without mpirun" 'cmp -s out/eval0.csv out/eval1.csv'

# An error stops every process, with the message, and a non-zero status.
mpi 2 "$metaq" run --quiet --set 'name="small"' --set m.outer.batch=1 sine.mq >small.log 2>&1
status=$?
check "an error ends the run with a failure status (got $status)" '[ $status -ne 0 ] && [ $status -ne 124 ]'
check "the error says why" 'grep -q "a meta-batch of 1 task cannot be split across 2 processes" small.log'
check "the error names the process" 'grep -q "metaq: rank 0 of 2: stopping all 2 processes after an error" small.log'

# A process that dies ends the whole run; the last checkpoint stays intact.
mpi 2 "$metaq" run --quiet --set 'name="killed"' --set iters=100000000 --set every=20 --set 'm.outer.batch=4' sine.mq >killed.log 2>&1 &
job=$!
for _ in $(seq 200); do [ -s out/killed.mqm ] && break; sleep 0.1; done
victim=$(pgrep -f 'name="killed"' -a | grep -v mpirun | awk '{print $1}' | tail -n 1)
[ -n "$victim" ] && kill -9 "$victim"
wait $job
status=$?
check "killing one process ends the run (mpirun exit $status)" '[ -n "$victim" ] && [ $status -ne 0 ] && [ $status -ne 124 ]'
check "no process of the run is left" '! pgrep -f "name=\"killed\"" >/dev/null'
check "the last checkpoint is intact" '"$metaq" inspect out/killed.mqm >/dev/null 2>&1'

echo 'print 1' | mpi 2 "$metaq" run - >stdin.log 2>&1
status=$?
check "a script on standard input is refused under mpirun (exit $status)" '[ $status -ne 0 ] && grep -q "give a file, not standard input" stdin.log'

# Without mpirun nothing changes: the script runs as one process.
"$metaq" run --quiet --set 'name="plain"' --set iters=5 sine.mq >plain.log 2>&1
status=$?
check "without mpirun the script runs as before" '[ $status -eq 0 ] && grep -q "final loss" plain.log'

echo "mpi: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
