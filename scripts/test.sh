#!/usr/bin/env bash
# Installs what is missing, builds, runs the whole test suite, then every example with small
# settings (scripts/check-examples.sh). Ends with one line: "tests: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
swift test 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
swift build --product metaq 2>&1 | tail -1
scripts/check-examples.sh .build/debug/metaq 2>&1 | tee -a "$log"
examples=${PIPESTATUS[0]}
set -e
# Swift Testing's own summary, plus the example checks.
total=$(grep -E "Test run with [0-9]+ tests?" "$log" | tail -n 1 | sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/')
failed=$(grep -cE "^✘ Test .* failed after" "$log" || true)
example_passes=$(grep -E "^examples: [0-9]+ passed" "$log" | sed -E 's/examples: ([0-9]+) passed.*/\1/')
example_failures=$(grep -E "^examples: [0-9]+ passed" "$log" | sed -E 's/.*, ([0-9]+) failed/\1/')
if [ "$status" -eq 0 ]; then failed=0; fi
echo "tests: $(( ${total:-0} - failed + ${example_passes:-0} )) passed, $(( failed + ${example_failures:-0} )) failed"
[ "$status" -eq 0 ] && [ "$examples" -eq 0 ]
