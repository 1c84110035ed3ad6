#!/usr/bin/env bash
# ProtoNet with ResNet-12 on 84x84 RGB (5-way 1-shot, 15 queries) against the PyTorch
# reference (../shared/peers/protonet_speed_torch.py --backbone resnet12), interleaved rounds
# with metaq's GEMM figure as the noise gauge; and the models built from layer blocks against
# the built-in ones (conv4 and MLP), alternately in the same rounds.
#   PY=/path/to/peers/venv/bin/python benchmarks/resnet12-rounds.sh [ROUNDS] [OUT]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
peers="${PEERS:-$here/../../shared/peers}"
py="${PY:-$peers/.venv-peers/bin/python}"
rounds="${1:-2}"
out="${2:-$here/../out/benchmarks/resnet12-$(date -u +%Y-%m-%dT%H%M).txt}"
mkdir -p "$(dirname "$out")"
swift build -c release --product metaq-bench --package-path "$here/.." >&2
bench="$here/../.build/release/metaq-bench"
{
    echo "# $(date -u +%FT%TZ) commit $(git -C "$here/.." rev-parse --short HEAD)"
    for r in $(seq 1 "$rounds"); do
        echo "## round $r"
        "$bench" --only sgemm --budget 2 | grep -E '"value"'
        "$py" "$peers/protonet_speed_torch.py" --backbone resnet12 --iters 3 --warmup 1 --threads 2
        "$bench" --only protonet_resnet12 --budget 20 | grep -E '"value"|"iterations"'
        for pair in "protonet_conv4 protonet_conv4_blocks" "maml_sine maml_sine_blocks" "maml_omniglot maml_omniglot_blocks"; do
            set -- $pair
            "$bench" --only "$1" --budget 4 | grep -E '"name"|"value"'
            "$bench" --only "$2" --budget 4 | grep -E '"name"|"value"'
        done
    done
} 2>&1 | tee "$out"
echo "wrote $out" >&2
