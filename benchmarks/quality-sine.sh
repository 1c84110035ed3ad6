#!/usr/bin/env bash
# Sinusoid quality runs for benchmarks/RESULTS.md (release build). About 10 minutes on 2 cores.
#  1. Finn et al. 2017 settings: K=10 training, 70,000 meta-iterations, 600 fresh tasks with
#     5-point support sets, MSE after 1/5/10 steps; for MAML, first-order MAML, Meta-SGD, Reptile.
#  2. The peers' settings (../shared/peers maml_sine_*.py --mode train): 20,000 iterations, K=10,
#     1,000 tasks with 100 query points, seeds 1-3, MSE after 1 and 10 steps.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product metaq-bench >/dev/null
bench=.build/release/metaq-bench
for learner in maml fomaml metasgd reptile; do
    $bench quality-sine --learner "$learner" --iterations 70000 --train-shots 10 --eval-shots 5 --eval-tasks 600 --query 100 --steps 1,5,10
done
for learner in maml fomaml; do
    for seed in 1 2 3; do
        $bench quality-sine --learner "$learner" --iterations 20000 --train-shots 10 --eval-shots 10 --eval-tasks 1000 --query 100 --steps 1,10 --seed "$seed"
    done
done
