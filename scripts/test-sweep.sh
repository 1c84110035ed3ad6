#!/usr/bin/env bash
# End-to-end checks of 'metaq sweep' with the release binary: a 4-configuration sweep of a
# tiny sine MAML script (its results.csv and files.csv), a second run that skips the finished
# configurations, a failing configuration, an interrupted sweep (SIGINT stops every run and
# leaves no marker), the Slurm array script, and bad grids.
# Usage: scripts/test-sweep.sh [path/to/metaq]. Ends with "sweep: N passed, M failed".
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
cd "$dir"
cat >tiny.mq <<'EOF'
seed 3
let iters = 20
let lr = 0.001
model net = mlp < in 1 hidden [8] out 1 >
tasks sine = sinusoid < support 5 query 5 >
learner m = maml < model net inner < steps 1 lr 0.01 > outer < lr lr batch 4 > >
let log = train m on sine < iters iters >
print "final loss: " + str(log.loss)
let r = eval m on sine < tasks 20 steps [0, 1] >
print "eval:"
print r
write r to "out/eval.csv"
EOF

# A sweep of 4 configurations, 2 at a time.
"$metaq" sweep tiny.mq --grid 'lr=[0.001, 0.01]' --grid 'iters=[5, 10]' --jobs 2 >first.log 2>&1
status=$?
check "the sweep succeeds (exit $status; $(tail -n 3 first.log))" '[ $status -eq 0 ]'
root=out/sweep-tiny
check "results.csv has a header and 4 rows" '[ "$(wc -l <$root/results.csv)" -eq 5 ]'
check "results.csv's header names the grid, status and printed results" \
    'head -n 1 $root/results.csv | grep -q "^id,lr,iters,status,exit,seconds,error,final loss,eval.mse@0,eval.ci95@0,eval.mse@1,eval.ci95@1$"'
check "every row is done, in grid order" \
    '[ "$(cut -d, -f1-4 $root/results.csv | tail -n 4 | tr "\n" " ")" = "000_lr=0.001_iters=5,0.001,5,done 001_lr=0.001_iters=10,0.001,10,done 002_lr=0.01_iters=5,0.01,5,done 003_lr=0.01_iters=10,0.01,10,done " ]'
# The printed final loss of each run is the one in its own stdout.log.
loss2=$(grep -o '"final loss: [^"]*"' $root/002_lr=0.01_iters=5/stdout.log | sed -E 's/"final loss: (.*)"/\1/')
check "a row's result is its run's printed value ($loss2)" 'grep -q "^002_lr=0.01_iters=5,0.01,5,done,0,[0-9.]*,,$loss2," $root/results.csv'
check "the runs' losses differ" '[ "$(tail -n 4 $root/results.csv | cut -d, -f8 | sort -u | wc -l)" -eq 4 ]'
check "files.csv stacks each run's out/eval.csv (2 rows each)" '[ "$(grep -c ",out/eval.csv," $root/files.csv)" -eq 8 ]'
check "files.csv's header" 'head -n 1 $root/files.csv | grep -q "^id,lr,iters,file,steps,mse,ci95,tasks$"'
check "a run's CSV rows are its own file's" \
    '[ "$(grep "^001_" $root/files.csv | cut -d, -f5- )" = "$(tail -n +2 $root/001_lr=0.001_iters=10/out/eval.csv)" ]'
check "every configuration has its marker and logs" \
    '[ "$(ls $root/*/done | wc -l)" -eq 4 ] && [ "$(ls $root/*/stderr.log | wc -l)" -eq 4 ]'
check "the runs wrote only in their own folders" '[ ! -e out/eval.csv ]'

# Running it again skips every finished configuration; removing one marker reruns that one.
before=$(stat -c %Y.%s $root/000_lr=0.001_iters=5/stdout.log)
"$metaq" sweep tiny.mq --grid 'lr=[0.001, 0.01]' --grid 'iters=[5, 10]' >second.log 2>&1
status=$?
check "a second run succeeds" '[ $status -eq 0 ]'
check "a second run skips all 4 ($(head -n 1 second.log))" 'grep -q "4 already done, 0 to run" second.log'
check "a skipped run's log is untouched" '[ "$(stat -c %Y.%s $root/000_lr=0.001_iters=5/stdout.log)" = "$before" ]'
check "the table still lists the skipped runs' results" \
    '[ "$(grep -c ",done before,0," $root/results.csv)" -eq 4 ] && grep -q ",$loss2," $root/results.csv'
rm $root/003_lr=0.01_iters=10/done
"$metaq" sweep tiny.mq --grid 'lr=[0.001, 0.01]' --grid 'iters=[5, 10]' >third.log 2>&1
check "a configuration without its marker runs again" 'grep -q "3 already done, 1 to run" third.log && grep -q "^\[1/1\] 003_lr=0.01_iters=10: done" third.log'

# A configuration that fails: the sweep exits 70, the row says why.
"$metaq" sweep tiny.mq --grid 'lr=[0.001, "fast"]' --set iters=3 --out out/failing >failing.log 2>&1
status=$?
check "a failing run makes the sweep exit 70 (got $status)" '[ $status -eq 70 ]'
check "the failing row has its status, exit and error" \
    'grep -q "^001_lr=_fast_,\"\"\"fast\"\"\",failed,70,[0-9.]*,.*error" out/failing/results.csv'
check "the good row is done" 'grep -q "^000_lr=0.001,0.001,done,0," out/failing/results.csv'

# Ctrl-C: every run stops, no marker is written, the table says what happened; running again
# continues.
cat >slow.mq <<'EOF'
let iters = 100000000
model net = mlp < in 1 hidden [8] out 1 >
tasks sine = sinusoid < support 5 query 5 >
learner m = maml < model net inner < steps 1 lr 0.01 > outer < batch 4 > >
train m on sine < iters iters >
print "finished"
EOF
"$metaq" sweep slow.mq --grid 'iters=[100000000, 100000001, 100000002]' --jobs 2 >slow.log 2>&1 &
sweep=$!
for _ in $(seq 100); do
    [ "$(pgrep -f -c "$dir/slow.mq" 2>/dev/null)" -ge 2 ] && break
    sleep 0.1
done
sleep 0.5
check "two runs started" '[ "$(pgrep -f -c "$dir/slow.mq")" -eq 2 ]'
kill -INT $sweep
wait $sweep
status=$?
check "an interrupted sweep exits 130 (got $status)" '[ $status -eq 130 ]'
check "it says it was interrupted" 'grep -q "sweep: interrupted: stopped 2 runs; 1 not started" slow.log'
check "no run is left" '[ "$(pgrep -f -c "$dir/slow.mq")" -eq 0 ]'
check "no marker for interrupted runs" '! ls out/sweep-slow/*/done >/dev/null 2>&1'
check "the table lists 2 interrupted runs and 1 not run" \
    '[ "$(grep -c ",interrupted,," out/sweep-slow/results.csv)" -eq 2 ] && [ "$(grep -c ",not run,," out/sweep-slow/results.csv)" -eq 1 ]'

# Ctrl-C on a terminal reaches the whole process group (the sweep and its runs) at once.
rm -rf out/sweep-slow
setsid "$metaq" sweep slow.mq --grid 'iters=[100000000, 100000001, 100000002]' --jobs 2 >group.log 2>&1 &
sweep=$!
for _ in $(seq 100); do
    [ "$(pgrep -f -c "$dir/slow.mq" 2>/dev/null)" -ge 2 ] && break
    sleep 0.1
done
sleep 0.5
kill -INT -- -$sweep
wait $sweep
status=$?
check "Ctrl-C to the process group: exit 130 (got $status)" '[ $status -eq 130 ]'
check "Ctrl-C to the process group: runs are interrupted, not failed" \
    '[ "$(grep -c ",interrupted," out/sweep-slow/results.csv)" -eq 2 ] && ! grep -q ",failed," out/sweep-slow/results.csv'
check "Ctrl-C to the process group: no run is left" '[ "$(pgrep -f -c "$dir/slow.mq")" -eq 0 ]'

# The Slurm array script: task i runs configuration i into the same folder.
"$metaq" sweep tiny.mq --grid 'lr=[0.001, 0.01]' --grid 'iters=[5, 10]' --out out/cluster --slurm array.sh >slurm.log 2>&1
check "--slurm writes an array job of 4 tasks" 'grep -q "^#SBATCH --array=0-3$" array.sh && [ -x array.sh ]'
check "--slurm runs nothing" '[ ! -e out/cluster/results.csv ]'
SLURM_ARRAY_TASK_ID=2 bash array.sh >task.log 2>&1
check "an array task runs its configuration" '[ -e out/cluster/002_lr=0.01_iters=5/done ] && [ "$(ls out/cluster/*/done | wc -l)" -eq 1 ]'
"$metaq" sweep tiny.mq --grid 'lr=[0.001, 0.01]' --grid 'iters=[5, 10]' --out out/cluster >collect.log 2>&1
check "the local sweep then skips what the array ran" 'grep -q "1 already done, 3 to run" collect.log'

# Bad input: a clear error, exit 64, nothing run.
"$metaq" sweep tiny.mq --grid 'lr=0.1' >bad.log 2>&1
status=$?
check "a grid that is not a list is refused (exit $status)" '[ $status -eq 64 ] && grep -q "expected a list of values in brackets" bad.log'
"$metaq" sweep tiny.mq --grid 'lr=[1]' --set lr=2 >bad.log 2>&1
check "a key both swept and fixed is refused" 'grep -q "both swept (--grid) and fixed (--set)" bad.log'
"$metaq" sweep tiny.mq --grid 'itres=[1, 2]' >bad.log 2>&1
status=$?
check "a swept key the script lacks is refused before anything runs (exit $status)" \
    '[ $status -eq 64 ] && grep -q -e "--grid itres: no top-level .let., .var. or declaration key .itres. in tiny.mq" bad.log && [ ! -e out/sweep-tiny/000_itres=1 ]'
"$metaq" sweep missing.mq --grid 'lr=[1]' >bad.log 2>&1
check "a missing script is refused" 'grep -q "cannot read missing.mq: no such file" bad.log'

echo "sweep: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
