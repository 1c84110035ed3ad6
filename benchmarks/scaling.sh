#!/usr/bin/env bash
# The measurements behind docs/SCALING.md, in one sitting, with the release binary:
#  1. throughput of sine MAML (benchmarks/scaling-sine.mq) and of second-order conv4 MAML on
#     Omniglot at meta-batch 32 (benchmarks/scaling-omniglot.mq) as 1 process x 1 thread,
#     1 process x 2 threads and 2 processes x 1 thread (mpirun), ROUNDS rounds interleaved;
#  2. MPI_Allreduce time over shared memory and over TCP loopback for the meta-gradient sizes
#     of the sine MLP, conv4 and ResNet-12 (benchmarks/mpi/allreduce.c, built with mpicc);
#  3. a sweep of 8 configurations of examples/sine.mq (small settings) 2 at a time against
#     the same 8 one after another (--jobs 1).
# Usage: benchmarks/scaling.sh [ROUNDS] [OMNIGLOT_ROOT] | tee benchmarks/raw/scaling-DATE.txt
set -uo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
root=$(realpath "${2:-../shared/data/omniglot}")
metaq=$(realpath .build/release/metaq)
mpirun=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
work=out/benchmarks/scaling
mkdir -p "$work"
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

throughput() { # label script iters extra...
    local label=$1 script=$2 iters=$3; shift 3
    for config in "1x1" "1x2" "2x1"; do
        local line
        case $config in
        1x1) line=$(METAQ_THREADS=1 "$metaq" run --quiet "$script" --set iters="$iters" "$@" 2>&1) ;;
        1x2) line=$(METAQ_THREADS=2 "$metaq" run --quiet "$script" --set iters="$iters" "$@" 2>&1) ;;
        2x1) line=$(METAQ_THREADS=1 METAQ_MPI_STATS=1 "${mpirun[@]}" -np 2 "$metaq" run --quiet "$script" --set iters="$iters" "$@" 2>&1) ;;
        esac
        echo "$label $config: $(echo "$line" | tr '\n' ' ')"
    done
}

for round in $(seq "$rounds"); do
    echo "## round $round, load $(cut -d' ' -f1-3 /proc/loadavg)"
    throughput sine benchmarks/scaling-sine.mq 2000
    throughput omniglot benchmarks/scaling-omniglot.mq 4 --set root="$root"
done

echo "## MPI_Allreduce, 2 processes (sine MLP 1761, conv4 112261, ResNet-12 12429056 floats)"
mpicc -O2 -o "$work/allreduce" benchmarks/mpi/allreduce.c
echo "# shared memory (Open MPI's default on one machine)"
"${mpirun[@]}" -np 2 "$work/allreduce" 1761 112261 12429056
echo "# TCP over loopback"
"${mpirun[@]}" -np 2 --mca btl self,tcp --mca btl_tcp_if_include lo "$work/allreduce" 1761 112261 12429056

echo "## sweep of 8 configurations of examples/sine.mq"
grid=(--grid 'iters=[400, 800]' --grid 'm.inner.lr=[0.01, 0.02]' --grid 'm.outer.lr=[0.001, 0.002]' --set test_tasks=100)
rm -rf "$work/sweep-2" "$work/sweep-1"
start=$(date +%s.%N)
"$metaq" sweep examples/sine.mq "${grid[@]}" --jobs 2 --out "$work/sweep-2" | tail -n 1
echo "2 at a time: $(echo "$(date +%s.%N) - $start" | bc) s"
start=$(date +%s.%N)
"$metaq" sweep examples/sine.mq "${grid[@]}" --jobs 1 --out "$work/sweep-1" | tail -n 1
echo "one after another: $(echo "$(date +%s.%N) - $start" | bc) s"
echo "# load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
