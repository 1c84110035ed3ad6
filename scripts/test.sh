#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
swift test 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One plain closing line from Swift Testing's own summary.
summary=$(grep -E "Test run with [0-9]+ tests?" "$log" | tail -n 1)
total=$(sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/' <<<"$summary")
if [ -n "$summary" ]; then
    if [ "$status" -eq 0 ]; then
        echo "tests: $total passed, 0 failed"
    else
        failed=$(grep -cE "^✘ Test .* failed after" "$log" || true)
        echo "tests: $((total - failed)) passed, $failed failed"
    fi
fi
exit "$status"
