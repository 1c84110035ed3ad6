import ArgumentParser
import Foundation
import MetaQEngine

/// An engine demonstration that runs without a script.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Meta-train MAML on sinusoid regression from Swift (no script) and report adaptation on fresh tasks.")

    @Option(help: "Meta-iterations.") var iterations = 2000
    @Option(help: "Tasks per meta-batch.") var metaBatch = 25
    @Option(help: "Support (and query) points per task.") var shots = 10
    @Option(help: "Inner SGD steps during meta-training.") var innerSteps = 1
    @Flag(help: "First-order MAML (no second derivatives).") var firstOrder = false
    @Option(help: "Random seed.") var seed: UInt64 = 7

    func run() throws {
        var rng = RandomGenerator(seed: seed)
        let net = Sequential.mlp(sizes: [1, 40, 40, 1], activation: .relu, using: &rng)
        let maml = MAML(model: net, loss: .meanSquaredError, inner: InnerLoop(steps: innerSteps, learningRate: 0.01),
                        firstOrder: firstOrder, optimizer: Adam(learningRate: 1e-3))
        let sine = RegressionTasks.sinusoid()
        print("MAML (\(firstOrder ? "first" : "second")-order) on sinusoids: MLP 1-40-40-1, K=\(shots), meta-batch \(metaBatch), \(iterations) iterations")
        let start = Date()
        for _ in 0..<max(iterations, 1) {
            maml.metaStep(try sine.sample(tasks: metaBatch, support: shots, query: shots, using: &rng))
        }
        let seconds = Date().timeIntervalSince(start)
        print(String(format: "trained in %.1f s (%.0f meta-iterations/s)", seconds, Double(iterations) / seconds))
        print(try maml.evaluate(on: sine, tasks: 600, support: shots, query: 100, steps: [0, 1, 5, 10], using: &rng))
    }
}
