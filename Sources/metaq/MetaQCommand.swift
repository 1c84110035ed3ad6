import ArgumentParser
import Foundation
import MetaQEngine

@main
struct MetaQ: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metaq",
        abstract: "A scripting language and REPL for meta-learning research.",
        version: "0.1.0",
        subcommands: [Demo.self])
}

/// Engine demonstrations that run without a script.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Meta-train MAML on sinusoid regression and report adaptation on fresh tasks.")

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
        var window: [Float] = []
        for i in 1...max(iterations, 1) {
            window.append(maml.metaStep(try sine.sample(tasks: metaBatch, support: shots, query: shots, using: &rng)))
            if i % max(iterations / 10, 1) == 0 || i == iterations {
                print(String(format: "  iteration %6d  mean query MSE %.4f", i, window.reduce(0, +) / Float(window.count)))
                window.removeAll()
            }
        }
        let seconds = Date().timeIntervalSince(start)
        let test = try sine.sample(tasks: 600, support: shots, query: 100, using: &rng)
        let steps = [0, 1, 5, 10]
        let scores = maml.evaluate(test, steps: steps)
        print(String(format: "trained in %.1f s (%.0f meta-iterations/s); 600 fresh tasks, 100 query points each:", seconds, Double(iterations) / seconds))
        for (n, s) in zip(steps, scores) {
            let mean = s.reduce(0, +) / Float(s.count)
            let sd = (s.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(s.count - 1)).squareRoot()
            print(String(format: "  after %2d steps: MSE %.3f ± %.3f (95%% CI)", n, mean, 1.96 * sd / Float(s.count).squareRoot()))
        }
    }
}
