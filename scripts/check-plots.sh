#!/usr/bin/env bash
# Draws every kind of plot (examples/plots.mq, small settings) and checks each SVG: it parses
# as XML (python3's xml.etree) and renders with rsvg-convert (Debian's librsvg2-bin) into a
# PNG that is not blank. Used by scripts/test.sh; needs a built metaq (pass its path as $1).
# Ends with one line: "plots: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
metaq=${1:-.build/debug/metaq}
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/out/plots"
passes=0
failures=0
kinds="training eval learners list bars records lifelong online"
if ! (cd "$work" && "$root/$metaq" run "$root/examples/plots.mq" --set iters=60 --set test_tasks=10 \
        --set tasks_in_stream=4 --set meta_steps=3) >"$work/run.log" 2>&1; then
    echo "FAIL examples/plots.mq:"; tail -20 "$work/run.log"; failures=$((failures + 1))
fi
command -v rsvg-convert >/dev/null || { echo "FAIL rsvg-convert is missing (apt-get install librsvg2-bin)"; failures=$((failures + 1)); }
for kind in $kinds; do
    svg="$work/out/plots/$kind.svg"
    if [ ! -s "$svg" ]; then echo "FAIL $kind.svg: not written"; failures=$((failures + 1)); continue; fi
    if ! err=$(python3 -c 'import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); assert r.tag.endswith("svg"), r.tag' "$svg" 2>&1); then
        echo "FAIL $kind.svg is not well-formed: $err"; failures=$((failures + 1)); continue
    fi
    if ! err=$(rsvg-convert -f png -o "$work/$kind.png" "$svg" 2>&1); then
        echo "FAIL $kind.svg does not render: $err"; failures=$((failures + 1)); continue
    fi
    # A rendered plot is more than a white page: its PNG is not tiny.
    size=$(stat -c %s "$work/$kind.png")
    if [ "$size" -lt 4000 ]; then echo "FAIL $kind.png is only $size bytes"; failures=$((failures + 1)); continue; fi
    echo "ok   $kind.svg parses and renders ($size-byte PNG)"
    passes=$((passes + 1))
done
echo "plots: $passes passed, $failures failed"
[ "$failures" -eq 0 ]
