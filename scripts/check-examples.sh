#!/usr/bin/env bash
# Runs every example with small settings (via --set) and checks what it prints, not only its
# exit status; metaq's exit statuses (0, 65, 70, 130); and that examples write only under
# out/ and the source tree holds no stray outputs. Used by scripts/test.sh; needs a built metaq (pass its path as $1).
set -euo pipefail
cd "$(dirname "$0")/.."
metaq=${1:-.build/debug/metaq}
fixtures=Tests/MetaQEngineTests/Fixtures
work=$(mktemp -d)
mkdir "$work/out"
trap 'rm -rf "$work"' EXIT
failures=0
passes=0

# expect NAME PATTERN COMMAND...: runs COMMAND in $work, requires exit 0 and PATTERN (an
# extended regex) in its standard output.
expect() {
    local name=$1 pattern=$2
    shift 2
    local out status=0
    out=$(cd "$work" && "$@" 2>&1) || status=$?
    if [ "$status" -ne 0 ]; then
        echo "FAIL $name: exit status $status"; echo "$out" | tail -20; failures=$((failures + 1)); return
    fi
    if ! grep -Eq "$pattern" <<<"$out"; then
        echo "FAIL $name: output lacks /$pattern/"; echo "$out" | tail -20; failures=$((failures + 1)); return
    fi
    echo "ok   $name"
    passes=$((passes + 1))
}

root=$(pwd)
# Copies of fixtures, outside $work (examples may write only under out/): the decoded-image
# cache of 'images' and 'omniglot' tasks is written into the dataset's folder.
inputs=$(mktemp -d)
trap 'rm -rf "$work" "$inputs"' EXIT
cp -r "$root/$fixtures/omniglot" "$inputs/omniglot"
rm -rf "$inputs/omniglot/.metaq-cache"
for example in examples/*.mq examples/algorithms/*.mq benchmarks/*.mq; do
    expect "check $example" "ok$" "$root/$metaq" check "$root/$example"
done
expect "examples/sine.mq" "10-shot:" "$root/$metaq" run "$root/examples/sine.mq" --set iters=200 --set test_tasks=20
expect "examples/sine.mq writes CSV" "^steps,mse,ci95,tasks" cat out/sine-maml.csv
printf 'print load("out/sine.mqm")\n' > "$work/show.mq"
expect "examples/sine.mq saves its learner" "^learner maml on model mlp .* 200 meta-iterations trained" "$root/$metaq" run show.mq
expect "examples/sine.mq adapts" "^ +10 +[0-9.]+ " "$root/$metaq" run "$root/examples/sine.mq" --set iters=200 --set test_tasks=20
expect "examples/omniglot.mq (fixture)" "3-way 1-shot accuracy on unseen alphabets:" \
    "$root/$metaq" run "$root/examples/omniglot.mq" --set train_root="$inputs/omniglot" --set test_root="$inputs/omniglot" --set ways=3 \
    --set iters=5 --set test_tasks=10 --set embed.filters=8 --set train.query=2 --set test.query=2 \
    --set 'test_alphabets=["Latin"]'
cp -r "$root/$fixtures/mini-imagenet" "$inputs/mini-imagenet"
# Fixed episodes as images, from the fixture's test images: 2 episodes of its 3 test classes,
# 1 support and 2 query images each.
for e in 1 2; do
    for c in n02000001 n02000002 n02000003; do
        mkdir -p "$inputs/fixed/$e/$c"
        cp "$inputs/mini-imagenet/images/${c}0000000$e.jpg" "$inputs/fixed/$e/$c/support.jpg"
        cp "$inputs/mini-imagenet/images/${c}0000000$((e + 2)).jpg" "$inputs/fixed/$e/$c/query_0.jpg"
        cp "$inputs/mini-imagenet/images/${c}00000005.jpg" "$inputs/fixed/$e/$c/query_1.jpg"
    done
done
images_run=("$root/$metaq" run "$root/examples/images.mq" --set root="$inputs/mini-imagenet" --set size=16 --set ways=3
    --set iters=5 --set test_episodes=10 --set filters=8 --set train.query=2 --set test.query=2 --set episode_folder="$inputs/fixed")
expect "examples/images.mq (fixture) caches the decoded images" "decoded and cached in .*/mini-imagenet/.metaq-cache/test.csv-16x3-" "${images_run[@]}"
expect "examples/images.mq (fixture) maps the cache the second time" "mapped from the cache .*/mini-imagenet/.metaq-cache/test.csv-16x3-" "${images_run[@]}"
expect "examples/images.mq (fixture)" "3-way 1-shot accuracy on the listed test episodes:" "${images_run[@]}"
expect "examples/images.mq scores fixed episode folders" "^2,0,[0-9.]+$" tail -1 out/images-folder-scores.csv
expect "examples/images.mq lists its episodes" "^episode,class,role,file" head -1 out/images-test-episodes.csv
expect "examples/images.mq writes CSV" "^0,[0-9.]+,[0-9.]+,10$" tail -1 out/images-protonet.csv
expect "examples/images.mq scores each episode" "^9,0,[0-9.]+$" tail -1 out/images-episode-scores.csv
expect "examples/lifelong.mq" "decayed_maml: ACC [0-9.]+ ± [0-9.]+  BWT" \
    "$root/$metaq" run "$root/examples/lifelong.mq" --set 'seeds=[1, 2]' --set tasks_in_stream=4 --set steps=5
expect "examples/lifelong.mq writes CSV and SVG" "^seed,method,acc,bwt,fwt" cat out/lifelong-runs.csv
# svgok FILE: well-formed XML (python3) that rsvg-convert renders.
svgok() { python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' "$1" && rsvg-convert -f png "$1" | wc -c | grep -qv "^0$" && echo "svg ok"; }
expect "examples/lifelong.mq SVG parses and renders" "^svg ok$" svgok out/lifelong-decayed-maml.svg
expect "examples/lifelong-omniglot.mq (fixture)" "protomem: ACC [0-9.]+% ± [0-9.]+  BWT" \
    "$root/$metaq" run "$root/examples/lifelong-omniglot.mq" --set root="$inputs/omniglot" --set seeds=[1] \
    --set steps=3 --set filters=4 --set ways=2 --set pool=2 --set query=1
expect "examples/online.mq" "mean steps to proficiency, first half" \
    "$root/$metaq" run "$root/examples/online.mq" --set tasks_in_stream=4 --set meta_steps=3
expect "examples/online.mq JSON" '"steps_to_proficiency"' cat out/online.json
expect "examples/online.mq SVG parses and renders" "^svg ok$" svgok out/online.svg
expect "examples/layers.mq (fixture)" "ResNet-12, ProtoNet \(accuracy\): [0-9.]+" \
    "$root/$metaq" run "$root/examples/layers.mq" --set root="$inputs/omniglot" --set ways=2 --set iters=8 --set test_tasks=4 \
    --set filters=4 --set 'widths=[4, 4, 8, 8]' --set train.query=1
# Progress: a run whose standard error is not a terminal prints plain progress lines (every
# METAQ_PROGRESS_SECONDS, 5 by default; 0 here: at every update, so the check does not
# depend on timing) for train and eval; --quiet prints none.
printf 'tasks sine = sinusoid < support 4 query 4 >\nlearner m = maml < model mlp < in 1 hidden [8] out 1 > >\ntrain m on sine < iters 300 >\nlet r = eval m on sine < tasks 50 batch 5 >\n' > "$work/progress.mq"
expect "a piped run shows train progress on standard error" "^train maml: [0-9]+/300 \([0-9.]+%\), loss [0-9.]+, [0-9.]+ it/s, (ETA|in) [0-9]+:[0-9]{2}$" \
    sh -c "METAQ_PROGRESS_SECONDS=0 '$root/$metaq' run progress.mq 2>&1 >/dev/null"
expect "a piped run shows eval progress on standard error" "^eval maml: 50/50 \(100.0%\), [0-9.]+ tasks/s, in 0:[0-9]{2}$" \
    sh -c "METAQ_PROGRESS_SECONDS=0 '$root/$metaq' run progress.mq 2>&1 >/dev/null"
expect "--quiet shows no progress" "^0$" \
    sh -c "METAQ_PROGRESS_SECONDS=0 '$root/$metaq' run --quiet progress.mq 2>&1 >/dev/null | grep -c maml || true"
rm "$work/progress.mq"
# Learners written in metaq (examples/algorithms), small settings.
expect "examples/algorithms/maml.mq" "script MAML: final loss [0-9.]+" \
    "$root/$metaq" run "$root/examples/algorithms/maml.mq" --set iters=50
expect "examples/algorithms/mamlpp.mq" "learned inner rates of the last layer's weight" \
    "$root/$metaq" run "$root/examples/algorithms/mamlpp.mq" --set iters=30 --set test_tasks=20
expect "examples/algorithms/custom-inner.mq" "step 40  query L1 [0-9.]+  \|fast - params\| [0-9.]+  \|meta-gradient\| [0-9.]+" \
    "$root/$metaq" run "$root/examples/algorithms/custom-inner.mq" --set iters=40 --set every=20
expect "examples/algorithms/matching.mq (fixture)" "matching networks \([0-9.]+ s\): [0-9.]+% ± [0-9.]+" \
    "$root/$metaq" run "$root/examples/algorithms/matching.mq" --set train_root="$inputs/omniglot" --set test_root="$inputs/omniglot" \
    --set ways=3 --set iters=5 --set test_tasks=10 --set filters=8 --set train.query=2 --set test.query=2 --set 'test_alphabets=["Latin"]'
# Meta-RL: a few meta-iterations of MAML-RL, the pretrained and random baselines on 2D
# navigation, then cart-pole, then the turned navigation written in metaq (metaq/envs) (the
# 2x100 policy of the paper, few iterations and test tasks).
expect "examples/meta-rl.mq" "^turned controls, return after 0 and 1 adaptation steps: MAML \\[-[0-9.]+, -[0-9.]+\\], pretrained" \
    "$root/$metaq" run "$root/examples/meta-rl.mq" --set iters=3 --set test_tasks=10
expect "examples/meta-rl.mq writes CSV" "^steps,return,ci95,tasks" head -1 out/meta-rl-maml.csv
expect "examples/meta-rl.mq reports the return after 3 steps" "^3,-[0-9.]+,[0-9.]+,10$" tail -1 out/meta-rl-maml.csv
expect "examples/meta-rl.mq compares with the baselines" "^random,-[0-9.]+,-[0-9.]+,[0-9.]+$" tail -1 out/meta-rl-summary.csv
expect "examples/meta-rl.mq plots the return per adaptation step" "<svg" head -c 300 out/meta-rl-returns.svg
printf 'env nav = navigation2d < horizon 10 >\nlet m = load("out/meta-rl-maml.mqm")\nprint m.kind\nlet r = eval m on nav < tasks 2 steps [0, 1] >\nprint r.rows[1].steps\n' > "$work/out/load-rl.mq"
expect "examples/meta-rl.mq saves a learner that loads and adapts" "^1$" "$root/$metaq" run out/load-rl.mq
expect "metaq run --json" '"type":"report"' "$root/$metaq" run --json "$root/examples/sine.mq" --set iters=20 --set test_tasks=5

# status NAME EXPECTED COMMAND...: runs COMMAND in $work, requires exit status EXPECTED and,
# for a failure, an error on standard error that ends with a line break.
status() {
    local name=$1 expected=$2
    shift 2
    local actual=0
    (cd "$work" && "$@" > /dev/null 2> "$work/stderr.txt") || actual=$?
    if [ "$actual" -ne "$expected" ]; then
        echo "FAIL $name: exit status $actual, expected $expected"; tail -5 "$work/stderr.txt"; failures=$((failures + 1))
    elif [ "$expected" -ne 0 ] && { [ ! -s "$work/stderr.txt" ] || [ -n "$(tail -c 1 "$work/stderr.txt")" ]; }; then
        echo "FAIL $name: no error, or one without a final line break"; failures=$((failures + 1))
    else
        echo "ok   $name"; passes=$((passes + 1))
    fi
    rm -f "$work/stderr.txt"
}
mkdir "$work/status"
printf 'print 1\n' > "$work/status/ok.mq"
printf 'let x =\n' > "$work/status/syntax.mq"
printf 'print nope\n' > "$work/status/undefined.mq"
printf 'print [1][3]\n' > "$work/status/runtime.mq"
printf 'write [1] to "status/written.json"\nlet iters = 1\n' > "$work/status/set.mq"
printf 'var i = 0\nwhile true { i = i + 1 }\n' > "$work/status/loop.mq"
status "exit status 0 on success" 0 "$root/$metaq" run status/ok.mq
status "exit status 65 for a syntax error" 65 "$root/$metaq" run status/syntax.mq
status "exit status 65 for a check error" 65 "$root/$metaq" check status/undefined.mq
status "exit status 70 for a run-time error" 70 "$root/$metaq" run status/runtime.mq
status "exit status 65 for a --set key that matches nothing" 65 "$root/$metaq" run status/set.mq --set itres=2
if [ -e "$work/status/written.json" ]; then
    echo "FAIL a --set key that matches nothing is reported before the script runs"; failures=$((failures + 1))
else
    echo "ok   a --set key that matches nothing is reported before the script runs"; passes=$((passes + 1))
fi
(cd "$work" && exec "$root/$metaq" run status/loop.mq) &
loop=$!
# SIGINT until it has ended (a signal sent before metaq installs its handler is ignored, as
# in any background job of a script); after 10 s, SIGKILL, which fails the check.
for _ in $(seq 100); do
    sleep 0.1
    kill -INT "$loop" 2>/dev/null || break
    [ "$(awk '{ print $3 }' "/proc/$loop/stat" 2>/dev/null)" = Z ] && break
done
kill -KILL "$loop" 2>/dev/null || true
interrupted=0
wait "$loop" || interrupted=$?
if [ "$interrupted" -eq 130 ]; then
    echo "ok   exit status 130 at Ctrl-C"; passes=$((passes + 1))
else
    echo "FAIL exit status $interrupted at Ctrl-C, expected 130"; failures=$((failures + 1))
fi
rm -r "$work/status"

# check NAME OUTPUT: passes when OUTPUT is empty, otherwise fails showing it.
check() {
    if [ -z "$2" ]; then echo "ok   $1"; passes=$((passes + 1)); else echo "FAIL $1:"; echo "$2"; failures=$((failures + 1)); fi
}
check "examples write only under out/" "$(cd "$work" && ls -A | grep -vx -e out -e show.mq || true)"
if git rev-parse --git-dir > /dev/null 2>&1; then
    check "no stray outputs at the root of the source tree" \
        "$(git ls-files ':(top)*.csv' ':(top)*.json' ':(top)*.svg' ':(top)*.mqm' | grep -v / || true)"
    check "dated benchmark outputs are under benchmarks/raw/" \
        "$(git ls-files 'benchmarks/*-20[0-9][0-9]-*' | grep -v '^benchmarks/raw/' || true)"
fi
echo "examples: $passes passed, $failures failed"
[ "$failures" -eq 0 ]
