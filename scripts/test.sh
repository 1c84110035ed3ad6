#!/usr/bin/env bash
# Installs what is missing, builds, runs the whole test suite, then every example with small
# settings (scripts/check-examples.sh), then the REPL in a pseudo-terminal
# (scripts/test-repl.py). Ends with one line: "tests: N passed, M failed".
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
scripts/test-repl.py .build/debug/metaq 2>&1 | tee -a "$log"
repl=${PIPESTATUS[0]}
set -e
# Swift Testing's own summary, plus the example and REPL checks.
total=$(grep -E "Test run with [0-9]+ tests?" "$log" | tail -n 1 | sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/')
failed=$(grep -cE "^✘ Test .* failed after" "$log" || true)
example_passes=$(grep -E "^examples: [0-9]+ passed" "$log" | sed -E 's/examples: ([0-9]+) passed.*/\1/')
example_failures=$(grep -E "^examples: [0-9]+ passed" "$log" | sed -E 's/.*, ([0-9]+) failed/\1/')
repl_passes=$(grep -E "^repl: [0-9]+ passed" "$log" | sed -E 's/repl: ([0-9]+) passed.*/\1/')
repl_failures=$(grep -E "^repl: [0-9]+ passed" "$log" | sed -E 's/.*, ([0-9]+) failed/\1/')
if [ "$status" -eq 0 ]; then failed=0; fi
# A REPL test run that ended without its summary line counts as one failure.
if [ "$repl" -ne 0 ] && [ "${repl_failures:-0}" -eq 0 ]; then repl_failures=1; fi
echo "tests: $(( ${total:-0} - failed + ${example_passes:-0} + ${repl_passes:-0} )) passed, $(( failed + ${example_failures:-0} + ${repl_failures:-0} )) failed"
[ "$status" -eq 0 ] && [ "$examples" -eq 0 ] && [ "$repl" -eq 0 ]
