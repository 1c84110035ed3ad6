import Foundation
import MetaQEngine

/// Trains a learner on sinusoid regression (Finn et al. 2017 settings by default) and prints
/// post-adaptation MSE on fresh tasks as JSON.
func runSineQuality(_ arguments: [String]) {
    func option(_ name: String, _ fallback: String) -> String { optionValue(name, in: arguments) ?? fallback }
    let learnerName = option("learner", "maml")
    let iterations = Int(option("iterations", "70000"))!
    let trainShots = Int(option("train-shots", "10"))!
    let evalShots = Int(option("eval-shots", "5"))!
    let evalTasks = Int(option("eval-tasks", "600"))!
    let query = Int(option("query", "100"))!
    let seed = UInt64(option("seed", "1"))!
    let steps = option("steps", "1,5,10").split(separator: ",").map { Int($0)! }

    var rng = RandomGenerator(seed: seed)
    let net = Sequential.mlp(sizes: [1, 40, 40, 1], activation: .relu, using: &rng)
    let inner = InnerLoop(steps: 1, learningRate: 0.01)
    let learner: MetaLearner = switch learnerName {
    case "maml": MAML(model: net, loss: .meanSquaredError, inner: inner, optimizer: Adam(learningRate: 1e-3))
    case "fomaml": MAML(model: net, loss: .meanSquaredError, inner: inner, firstOrder: true, optimizer: Adam(learningRate: 1e-3))
    case "metasgd": MetaSGD(model: net, loss: .meanSquaredError, innerSteps: 1, initialRate: 0.01, optimizer: Adam(learningRate: 1e-3))
    case "reptile": Reptile(model: net, loss: .meanSquaredError, inner: InnerLoop(steps: 5, learningRate: 0.01),
                            optimizer: SGD(learningRate: 1))
    default: fatalError("unknown learner \(learnerName)")
    }
    let sine = RegressionTasks.sinusoid()
    let start = Date()
    for _ in 0..<iterations {
        learner.metaStep(try! sine.sample(tasks: 25, support: trainShots, query: trainShots, using: &rng))
    }
    let seconds = Date().timeIntervalSince(start)
    var testRNG = RandomGenerator(seed: 1_000_000 + seed)
    let report = try! learner.evaluate(on: sine, tasks: evalTasks, support: evalShots, query: query, steps: steps, using: &testRNG)
    let result: [String: String] = [
        "learner": learnerName, "iterations": "\(iterations)", "train_shots": "\(trainShots)",
        "eval_shots": "\(evalShots)", "eval_tasks": "\(evalTasks)", "query": "\(query)", "seed": "\(seed)",
        "train_seconds": String(format: "%.1f", seconds),
        "mse": report.rows.map { String(format: "%d:%.4f±%.4f", $0.steps, $0.mean, $0.confidence95) }.joined(separator: " "),
    ]
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    print(String(decoding: try! encoder.encode(result), as: UTF8.self))
}
