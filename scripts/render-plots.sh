#!/usr/bin/env bash
# Regenerates the README's pictures, docs/plots/*.png: runs examples/plots.mq (full settings,
# in a temporary folder) and renders each SVG with rsvg-convert. Needs a built metaq ($1).
set -euo pipefail
cd "$(dirname "$0")/.."
metaq=${1:-.build/release/metaq}
root=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/out/plots" docs/plots
(cd "$work" && "$root/$metaq" run "$root/examples/plots.mq" --set omniglot_root="$root/Tests/MetaQEngineTests/Fixtures/omniglot" \
    --set images_root="$root/Tests/MetaQEngineTests/Fixtures/mini-imagenet" "${@:2}")
for svg in "$work"/out/plots/*.svg; do
    rsvg-convert -f png -o "docs/plots/$(basename "$svg" .svg).png" "$svg"
done
ls docs/plots
