import Foundation
import MetaQEngine

/// Peak resident memory of second-order MAML on the sinusoid MLP (meta-batch 25, K=10) for
/// a number of inner steps: `metaq-bench maml-memory --steps N [--checkpoint]`, one process
/// per setting so peaks do not mix. Prints one JSON line.
func runMAMLMemory(_ arguments: [String]) {
    func option(_ name: String, _ fallback: String) -> String { optionValue(name, in: arguments) ?? fallback }
    let steps = Int(option("steps", "1"))!
    let checkpoint = arguments.contains("--checkpoint")
    let width = Int(option("width", "40"))!
    var rng = RandomGenerator(seed: 1)
    let net = Sequential.mlp(sizes: [1, width, width, 1], using: &rng)
    let maml = MAML(model: net, loss: .meanSquaredError, inner: InnerLoop(steps: steps, learningRate: 0.01),
                    checkpointInnerLoop: checkpoint, optimizer: Adam(learningRate: 1e-3))
    let sine = RegressionTasks.sinusoid()
    var baseline = rusage()
    getrusage(RUSAGE_SELF.rawValue, &baseline)
    TensorMemory.resetPeak()
    for _ in 0..<20 { maml.metaStep(try! sine.sample(tasks: 25, support: 10, query: 10, using: &rng)) }
    let tensorPeak = String(format: "%.2f", Double(TensorMemory.peakBytes) / 1_048_576)
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let peak = String(format: "%.1f", Double(usage.ru_maxrss) / 1024), before = String(format: "%.1f", Double(baseline.ru_maxrss) / 1024)
    print("{\"inner_steps\": \(steps), \"checkpoint\": \(checkpoint), \"width\": \(width), \"peak_rss_mib\": \(peak), \"peak_tensor_mib\": \(tensorPeak), \"rss_before_mib\": \(before)}")
}
