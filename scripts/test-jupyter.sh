#!/usr/bin/env bash
# The Jupyter kernel end to end: installs ipykernel and nbclient from PyPI into the test venv
# (~/.cache/metaq/venv, as test-deploy.sh does for numpy and safetensors), installs the metaq
# kernelspec into a temporary prefix with `metaq jupyter install`, and runs
# scripts/test-notebook.py. Needs a built metaq (pass its path as $1). Ends with
# "jupyter: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
metaq=$(realpath "${1:-.build/debug/metaq}")
venv=${XDG_CACHE_HOME:-$HOME/.cache}/metaq/venv
if ! "$venv/bin/python" -c "import ipykernel, nbclient, nbformat" 2>/dev/null; then
    echo "installing ipykernel, nbclient and nbformat into $venv" >&2
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q ipykernel nbclient nbformat >&2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$metaq" jupyter install --prefix "$work/prefix" --python "$venv/bin/python" >/dev/null
cd "$work"
# A kernel that stops answering must fail the check, not hold the whole test run: the
# notebook gets 5 minutes (it takes about 20 seconds).
status=0
JUPYTER_PATH="$work/prefix/share/jupyter" JUPYTER_RUNTIME_DIR="$work/runtime" \
    timeout 300 "$venv/bin/python" "$OLDPWD/scripts/test-notebook.py" || status=$?
if [ "$status" -eq 124 ]; then
    echo "FAIL the notebook did not finish within 5 minutes"
    echo "jupyter: 0 passed, 1 failed"
fi
exit "$status"
