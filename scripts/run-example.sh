#!/usr/bin/env bash
# Installs what is missing, builds metaq in release mode and runs the main example.
# Extra arguments go to the example run. Its outputs go under the ignored out/ folder.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product metaq
mkdir -p out
exec .build/release/metaq run examples/lifelong.mq "$@"
