#!/usr/bin/env bash
# Learning checks of the methods that ship as metaq modules (metaq/matching, metaq/meta_lstm,
# metaq/metagan), run with a built metaq (pass its path as $1): each trains for a short run on
# a generated image dataset and must end well above chance (1/3) and above where it started,
# on classes it never saw in training. Ends with "seed-methods: N passed, M failed".
#
# The dataset: gray 12 x 12 PNG images, 8 per class, 12 training classes and 8 test classes.
# A class is a random pattern in the top half (faint, with a little noise per image); the
# bottom half is loud noise, new in every image, so the network must learn where to look.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
metaq=$root/${1:-.build/release/metaq}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passes=0
failures=0
pass() { echo "ok   $1"; passes=$((passes + 1)); }
fail() { echo "FAIL $1"; failures=$((failures + 1)); }

python3 - "$work/data" <<'EOF'
import os, random, struct, sys, zlib
def png(path, w, h, pixels):
    rows = b"".join(b"\x00" + bytes(int(max(0.0, min(1.0, pixels[y * w + x])) * 255) for x in range(w)) for y in range(h))
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
r = random.Random(5)
for split, classes in (("train", 12), ("test", 8)):
    for c in range(classes):
        folder = os.path.join(sys.argv[1], split, "c%d" % c)
        os.makedirs(folder)
        pattern = [0.65 if r.random() < 0.5 else 0.35 for _ in range(72)]
        for i in range(8):
            png(os.path.join(folder, "%d.png" % i), 12, 12,
                [pattern[p] + 0.1 * (r.random() - 0.5) if p < 72 else r.random() for p in range(144)])
EOF

# check NAME MODULE LEARNER ITERS STEPS MINIMUM: trains LEARNER (written with the models
# `embed` and `classifier`) for ITERS episodes; the accuracy on 60 test tasks after STEPS
# adaptation steps must reach MINIMUM and exceed the untrained learner's by 0.08.
check() {
    local name=$1 module=$2 learner=$3 iters=$4 steps=$5 minimum=$6 out
    cat > "$work/$name.mq" <<EOF
import "metaq/$module"
seed 3
tasks train = images < root "$work/data" split "train" size 12 channels 1 ways 3 support 1 query 4 cache false >
tasks test = images < root "$work/data" split "test" size 12 channels 1 ways 3 support 1 query 4 cache false >
model embed = sequential < in [12, 12, 1] layers [flatten < >, dense < out 64 >, relu, dense < out 32 >] >
model classifier = sequential < in [12, 12, 1] layers [flatten < >, dense < out 64 >, relu, dense < out 3 >] >
learner l = $learner
let before = eval l on test < tasks 60 steps [$steps] >
let log = train l on train < iters $iters >
let after = eval l on test < tasks 60 steps [$steps] >
print str(before.means[0]) + " " + str(after.means[0]) + " " + str(round(log.seconds, 1))
EOF
    if ! out=$("$metaq" run "$work/$name.mq" --quiet 2>&1); then
        fail "$name: $(tail -5 <<<"$out")"
        return
    fi
    read -r before after seconds <<<"$(tail -1 <<<"$out")"
    if awk -v b="$before" -v a="$after" -v m="$minimum" 'BEGIN { exit !(a >= m && a >= b + 0.08) }'; then
        pass "$name learns: test accuracy $before -> $after (chance 0.33), $iters episodes in $seconds s"
    else
        fail "$name does not learn enough: test accuracy $before -> $after (needs $minimum and 0.08 more than before)"
    fi
}

check matching matching "matching < model embed ways 3 outer < lr 0.003 > >" 150 0 0.6
check matching-fce matching "matching < model embed ways 3 fce true fce_steps 2 outer < lr 0.003 > >" 150 0 0.6
check metagan-maml metagan 'metagan < model classifier ways 3 base "maml" fakes 2 noise 8 hidden 32 inner < steps 3 lr 0.4 > outer < lr 0.003 > >' 300 3 0.6
check metagan-protonet metagan 'metagan < model embed ways 3 base "protonet" fakes 2 noise 8 hidden 32 outer < lr 0.003 > >' 150 0 0.6
check meta-lstm meta_lstm "meta_lstm < model classifier steps 3 outer < lr 0.003 batch 4 > >" 300 3 0.45

echo "seed-methods: $passes passed, $failures failed"
[ "$failures" -eq 0 ]
