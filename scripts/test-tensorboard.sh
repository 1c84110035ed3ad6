#!/usr/bin/env bash
# TensorBoard event files written by `train ... < log "DIR" >`, read back with TensorBoard's
# own event reader (the `tensorboard` package from PyPI, installed into the test venv under
# ~/.cache/metaq if missing). Needs a built metaq (pass its path as $1). Ends with
# "tensorboard: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
metaq=$root/${1:-.build/release/metaq}
venv=${XDG_CACHE_HOME:-$HOME/.cache}/metaq/venv
if ! "$venv/bin/python" -c "import tensorboard" 2>/dev/null; then
    echo "installing tensorboard into $venv" >&2
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q tensorboard >&2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/log.mq" <<'EOF'
seed 1
model net = mlp < in 1 hidden [16] out 1 >
tasks sine = sinusoid < support 5 query 5 >
learner m = maml < model net outer < batch 4 lr 0.002 decay 0.5 every 40 > >
train m on sine < iters 100 log_every 10 log "runs/maml" eval_every 50 eval_tasks 10 >
EOF
status=0
(cd "$work" && "$metaq" run log.mq > run.log 2>&1) || status=$?
"$venv/bin/python" - "$work/runs/maml" "$status" <<'PY'
import sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
passes = failures = 0
def check(name, ok, detail=""):
    global passes, failures
    if ok:
        passes += 1
        print("ok   " + name)
    else:
        failures += 1
        print("FAIL %s %s" % (name, detail))
check("the script runs", sys.argv[2] == "0", "exit status " + sys.argv[2])
try:
    acc = EventAccumulator(sys.argv[1])
    acc.Reload()
    tags = acc.Tags()["scalars"]
    loss = acc.Scalars("loss")
    check("the loss is logged every window", [e.step for e in loss] == list(range(10, 101, 10)), [e.step for e in loss])
    check("the losses are finite numbers", all(e.value == e.value and abs(e.value) < 1e6 for e in loss), [e.value for e in loss])
    rate = acc.Scalars("learning_rate")
    check("the learning rate follows its decay", abs(rate[0].value - 0.002) < 1e-7 and abs(rate[-1].value - 0.0005) < 1e-7,
          [(e.step, e.value) for e in rate])
    evals = sorted(t for t in tags if t.startswith("eval/"))
    check("evaluation scores are logged", evals == ["eval/mse_after_0_steps", "eval/mse_after_1_steps"], tags)
    check("evaluations come every eval_every iterations", [e.step for e in acc.Scalars(evals[0])] == [50, 100])
except Exception as e:  # noqa: BLE001
    check("TensorBoard reads the event file", False, repr(e))
print("tensorboard: %d passed, %d failed" % (passes, failures))
sys.exit(1 if failures else 0)
PY
