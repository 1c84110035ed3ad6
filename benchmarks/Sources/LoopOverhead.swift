import Foundation
import MetaQEngine

/// The engine called from Swift doing what `benchmarks/loop-overhead.mq` does in the language:
/// `iters` second-order MAML meta-steps on sinusoid tasks (MLP 1-40-40-1, meta-batch 25,
/// K=10, one inner step), then a 100-task evaluation after one step. Run as
/// `metaq-bench loop-overhead --iters N` and compare its wall time with
/// `metaq run benchmarks/loop-overhead.mq --set iters=N` (both whole processes).
func runLoopOverhead(_ arguments: [String]) {
    let iters = optionValue("iters", in: arguments).flatMap { Int($0) } ?? 3000
    var rng = RandomGenerator(seed: 1)
    let net = Sequential.mlp(sizes: [1, 40, 40, 1], using: &rng)
    let maml = MAML(model: net, loss: .meanSquaredError, inner: InnerLoop(steps: 1, learningRate: 0.01),
                    optimizer: Adam(learningRate: 1e-3))
    let sine = RegressionTasks.sinusoid()
    for _ in 0..<iters { maml.metaStep(try! sine.sample(tasks: 25, support: 10, query: 10, using: &rng)) }
    let report = try! maml.evaluate(on: sine, tasks: 100, support: 10, query: 10, steps: [1], using: &rng)
    print(report.rows[0].mean)
}
