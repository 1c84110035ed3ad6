#!/usr/bin/env bash
# Draws every kind of plot (examples/plots.mq, small settings, its image plots on the test
# fixtures) and checks each SVG: it parses as XML (python3's xml.etree) and renders with
# rsvg-convert (Debian's librsvg2-bin) into a PNG that is not blank. Then checks that
# 'plot ... to "x.png"' writes PNG files. Used by scripts/test.sh; needs a built metaq (pass its path as $1).
# Ends with one line: "plots: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
metaq=${1:-.build/debug/metaq}
root=$(pwd)
fixtures=Tests/MetaQEngineTests/Fixtures
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/out/plots"
passes=0
failures=0
kinds="training eval learners list bars records lifelong online scatter task grid"
if ! (cd "$work" && "$root/$metaq" run "$root/examples/plots.mq" --set iters=60 --set test_tasks=10 \
        --set tasks_in_stream=4 --set meta_steps=3 --set omniglot_root="$root/$fixtures/omniglot" \
        --set images_root="$root/$fixtures/mini-imagenet") >"$work/run.log" 2>&1; then
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
# PNG output: 'plot ... to "x.png"' renders the SVG with rsvg-convert into a PNG file.
printf 'plot [3, 1, 4, 1, 5] to "out/plots/line.png"\nlet g = generator(1)\nplot rand(g, [4, 8, 8, 3]) to "out/plots/images.png"\n' >"$work/png.mq"
if ! (cd "$work" && "$root/$metaq" run png.mq) >"$work/png.log" 2>&1; then
    echo "FAIL plot to .png:"; tail -5 "$work/png.log"; failures=$((failures + 1))
else
    for png in line images; do
        magic=$(head -c 8 "$work/out/plots/$png.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')
        size=$(stat -c %s "$work/out/plots/$png.png" 2>/dev/null || echo 0)
        if [ "$magic" = 89504e470d0a1a0a ] && [ "$size" -gt 1000 ]; then
            echo "ok   $png.png written by metaq ($size bytes)"; passes=$((passes + 1))
        else
            echo "FAIL $png.png is not a PNG file ($size bytes)"; failures=$((failures + 1))
        fi
    done
fi
echo "plots: $passes passed, $failures failed"
[ "$failures" -eq 0 ]
