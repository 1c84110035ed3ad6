#!/usr/bin/env bash
# Installs what is missing, builds, runs the whole test suite, then every example with small
# settings (scripts/check-examples.sh), the REPL in a pseudo-terminal (scripts/test-repl.py),
# the end-to-end checks of checkpoints and deployment (scripts/test-deploy.sh, with its
# Python part scripts/test-safetensors.py), the learning checks of the methods written as
# metaq modules (scripts/test-seed-methods.sh), every kind of plot (scripts/check-plots.sh), the
# Jupyter kernel running a notebook under nbclient (scripts/test-jupyter.sh), parameter sweeps
# (scripts/test-sweep.sh), data-parallel training under Open MPI (scripts/test-mpi.sh), and the
# fuzzer that runs programs (scripts/fuzz-run.py). Ends with one line: "tests: N passed, M failed".
# The end-to-end checks run the release binary, the one scripts/run-example.sh builds and
# users run. METAQ_BUILD_JOBS, when set, bounds the build's parallel jobs (swift build -j).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
build_jobs=(${METAQ_BUILD_JOBS:+-j "$METAQ_BUILD_JOBS"})
swift test "${build_jobs[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
swift build "${build_jobs[@]}" -c release --product metaq 2>&1 | tail -1
metaq=.build/release/metaq
scripts/check-examples.sh "$metaq" 2>&1 | tee -a "$log"
examples=${PIPESTATUS[0]}
scripts/test-repl.py "$metaq" 2>&1 | tee -a "$log"
repl=${PIPESTATUS[0]}
scripts/test-deploy.sh "$metaq" 2>&1 | tee -a "$log"
deploy=${PIPESTATUS[0]}
scripts/test-seed-methods.sh "$metaq" 2>&1 | tee -a "$log"
seedmethods=${PIPESTATUS[0]}
scripts/check-plots.sh "$metaq" 2>&1 | tee -a "$log"
plots=${PIPESTATUS[0]}
scripts/test-jupyter.sh "$metaq" 2>&1 | tee -a "$log"
jupyter=${PIPESTATUS[0]}
scripts/test-tensorboard.sh "$metaq" 2>&1 | tee -a "$log"
tensorboard=${PIPESTATUS[0]}
scripts/test-sweep.sh "$metaq" 2>&1 | tee -a "$log"
sweep=${PIPESTATUS[0]}
scripts/test-mpi.sh "$metaq" 2>&1 | tee -a "$log"
mpi=${PIPESTATUS[0]}
# Generated and mutated programs, checkpoints, CSV and PNG files, run under time and memory
# limits (a fixed seed; scripts/fuzz-run.py METAQ --programs N --files N for a longer run).
python3 scripts/fuzz-run.py "$metaq" --seed 2026 --programs 150 --files 60 2>&1 | tee -a "$log"
fuzz=${PIPESTATUS[0]}
set -e
# Swift Testing's own summary, plus the script checks' "NAME: N passed, M failed" lines; a
# script that ended without its line counts as one failure.
total=$(grep -E "Test run with [0-9]+ tests?" "$log" | tail -n 1 | sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/')
failed=$(grep -E "^✘ Test .* failed after" "$log" | grep -vc "^✘ Test run with" || true)
if [ "$status" -eq 0 ]; then failed=0; fi
passes=$(( ${total:-0} - failed ))
failures=$failed
for name in examples repl deploy safetensors seed-methods plots jupyter tensorboard sweep mpi fuzz; do
    line=$(grep -E "^$name: [0-9]+ passed, [0-9]+ failed" "$log" | tail -n 1 || true)
    if [ -z "$line" ]; then failures=$((failures + 1)); continue; fi
    passes=$(( passes + $(sed -E 's/^[a-z-]+: ([0-9]+) passed.*/\1/' <<<"$line") ))
    failures=$(( failures + $(sed -E 's/.*, ([0-9]+) failed/\1/' <<<"$line") ))
done
echo "tests: $passes passed, $failures failed"
[ "$status" -eq 0 ] && [ "$examples" -eq 0 ] && [ "$repl" -eq 0 ] && [ "$deploy" -eq 0 ] && [ "$seedmethods" -eq 0 ] && [ "$plots" -eq 0 ] && [ "$jupyter" -eq 0 ] && [ "$tensorboard" -eq 0 ] && [ "$sweep" -eq 0 ] && [ "$mpi" -eq 0 ] && [ "$fuzz" -eq 0 ]
