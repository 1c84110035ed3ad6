#!/usr/bin/env bash
# Installs the Debian packages metaq needs, if any is missing. Safe to run repeatedly.
set -euo pipefail
# python3 runs the REPL's pseudo-terminal tests (scripts/test-repl.py) and the safetensors
# check; curl the server checks; rsvg-convert (librsvg2-bin) renders the plots in
# scripts/check-plots.sh and scripts/render-plots.sh, and metaq's own plot ... to "x.png". Open MPI
# (openmpi-bin, libopenmpi-dev) runs 'mpirun -np N metaq run' (scripts/test-mpi.sh); metaq loads it
# at run time and builds without it.
packages=(libopenblas-dev libedit-dev libpng-dev libturbojpeg0-dev zlib1g-dev libmimalloc-dev pkg-config python3 curl librsvg2-bin openmpi-bin libopenmpi-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "error: swift is not on PATH (Swift 6 toolchain required)" >&2; exit 1; }
