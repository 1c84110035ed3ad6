#!/usr/bin/env python3
"""The scaling model of docs/SCALING.md: predicted speed-up of data-parallel meta-training.

A step of a meta-batch of B tasks on N processes (one core each) takes

    T(N) = ceil(B / N) * c  +  R(N, bytes)

c is the compute per task on one core (measured: 1 process x 1 thread, seconds per step / B);
R is a ring all-reduce of the meta-gradient: 2 (N - 1) messages of latency alpha each and
2 (N - 1) / N * bytes over the link of bandwidth beta:

    R(N, bytes) = 2 (N - 1) alpha + 2 (N - 1) / N * bytes / beta

Speed-up = T(1) / T(N), T(1) = B * c (no communication). When N > B a meta-batch cannot be
split (metaq refuses it): the prediction then grows the batch to N tasks (one per process,
weak scaling) and reports tasks per second against one process.

    benchmarks/scaling-model.py NAME SECONDS_PER_STEP_1x1 BATCH BYTES [NAME ...]
"""
import math
import sys

networks = {"10 Gbit/s": (10e9 / 8, 50e-6), "100 Gbit/s": (100e9 / 8, 5e-6)}


def predict(step, batch, nbytes):
    c = step / batch
    rows = []
    for n in (8, 32, 128):
        b = max(batch, n)
        for net, (beta, alpha) in networks.items():
            r = 2 * (n - 1) * alpha + 2 * (n - 1) / n * nbytes / beta
            t = math.ceil(b / n) * c + r
            speedup = (b / t) / (1 / c)  # tasks per second against one process
            rows.append((n, b, net, t, r, speedup, speedup / n))
    return rows


args = sys.argv[1:]
while args:
    name, step, batch, nbytes = args[0], float(args[1]), int(args[2]), int(args[3])
    args = args[4:]
    print(f"{name}: {step:.4g} s per step of {batch} tasks on 1 process x 1 thread, {nbytes} bytes summed per step")
    print("| processes | meta-batch | network | step (s) | all-reduce (s) | speed-up | efficiency |")
    print("|---|---|---|---|---|---|---|")
    for n, b, net, t, r, s, e in predict(step, batch, nbytes):
        print(f"| {n} | {b} | {net} | {t:.4g} | {r:.3g} | {s:.1f}x | {100 * e:.0f}% |")
    print()
