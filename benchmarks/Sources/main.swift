// metaq-bench: the engine's performance yardsticks, printed as JSON.
//
//   swift run -c release metaq-bench [--quick] [--budget SECONDS] [--threads N] [--only NAME[,NAME...]]
//   swift run -c release metaq-bench loop-overhead --iters N   (the engine from Swift; see loop-overhead.mq)
//   swift run -c release metaq-bench script-learners [--rounds N] [--budget SECONDS] [--only NAME[,NAME...]]
//       (learners written in metaq against the built-in ones, alternating in one process)
//   swift run -c release metaq-bench quality-sine --learner maml|fomaml|metasgd|reptile \
//       [--iterations N] [--train-shots K] [--eval-shots K] [--eval-tasks N] [--query N] [--seed N]
//
// Speed benchmarks warm up, then run for a fixed wall-clock budget and report their rate.
// Quality runs train a learner and report post-adaptation scores with 95% CIs.
import Foundation
import MetaQEngine

if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "maml-memory" {
    runMAMLMemory(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
}
if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "loop-overhead" {
    runLoopOverhead(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
}
if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "probe-products" {
    probeProducts()
    exit(0)
}
if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "script-learners" {
    runScriptLearners(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
}
if CommandLine.arguments.count > 1, CommandLine.arguments[1] == "quality-sine" {
    runSineQuality(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
}

struct Measurement: Encodable {
    var name: String
    var value: Double
    var unit: String
    var iterations: Int
    var seconds: Double
    var settings: [String: String]
}

let arguments = CommandLine.arguments
let quick = arguments.contains("--quick")
let only: Set<String>? = optionValue("only", in: arguments).map { Set($0.split(separator: ",").map(String.init)) }
let budget = optionValue("budget", in: arguments).flatMap(Double.init) ?? (quick ? 0.5 : 3.0)

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

/// Runs `body` for about `budget` seconds after `warmup` calls; returns (iterations, seconds).
func time(warmup: Int = 2, _ body: () -> Void) -> (Int, Double) {
    for _ in 0..<warmup { body() }
    let start = now()
    var n = 0
    repeat { body(); n += 1 } while now() - start < budget
    return (n, now() - start)
}

var results: [Measurement] = []
@MainActor func run(_ name: String, _ body: () -> Measurement) {
    guard only == nil || only!.contains(name) else { return }
    results.append(body())
}

/// The benchmarks are defined on 2 threads; `--threads N` measures scaling.
let threads = optionValue("threads", in: arguments).flatMap { Int($0) } ?? 2
Parallel.setThreads(threads)

run("sgemm") {
    let n = 1024
    var rng = RandomGenerator(seed: 1)
    let a = Tensor.uniform([n, n], using: &rng), b = Tensor.uniform([n, n], using: &rng)
    let (iters, secs) = time { _ = a.matmul(b) }
    return Measurement(name: "sgemm", value: 2 * Double(n * n * n) * Double(iters) / secs / 1e9, unit: "GFLOP/s",
                       iterations: iters, seconds: secs, settings: ["n": "\(n)", "threads": "\(threads)"])
}

run("conv2d") {
    // The second block of the Omniglot conv4 net for a 5-way 1-shot task with 15 queries
    // (80 images): 14x14x64 -> 14x14x64, 3x3, padding 1; forward and backward.
    var rng = RandomGenerator(seed: 2)
    let x = Tensor.uniform([80, 14, 14, 64], using: &rng).requiringGradient()
    let w = Tensor.normal([576, 64], standardDeviation: 0.05, using: &rng).requiringGradient()
    let b = Tensor.zeros([64]).requiringGradient()
    let g = WindowGeometry(kernel: 3, stride: 1, padding: 1)
    let (iters, secs) = time {
        let y = x.convolved(with: w, bias: b, geometry: g)
        _ = gradients(of: y.sum(), with: [x, w, b])
    }
    let flops = 3 * 2 * Double(80 * 14 * 14) * 576 * 64
    return Measurement(name: "conv2d", value: 1e3 * secs / Double(iters), unit: "ms per forward+backward",
                       iterations: iters, seconds: secs,
                       settings: ["input": "80x14x14x64", "filters": "64", "kernel": "3", "GFLOP/s": String(format: "%.1f", flops * Double(iters) / secs / 1e9)])
}

func sineMAML(name: String, firstOrder: Bool, innerSteps: Int) -> Measurement {
    var rng = RandomGenerator(seed: 3)
    let net = Sequential.mlp(sizes: [1, 40, 40, 1], using: &rng)
    let maml = MAML(model: net, loss: .meanSquaredError, inner: InnerLoop(steps: innerSteps, learningRate: 0.01),
                    firstOrder: firstOrder, optimizer: Adam(learningRate: 1e-3))
    let sine = RegressionTasks.sinusoid()
    let (iters, secs) = time(warmup: 10) {
        maml.metaStep(try! sine.sample(tasks: 25, support: 10, query: 10, using: &rng))
    }
    return Measurement(name: name, value: Double(iters) / secs, unit: "meta-iterations/s", iterations: iters, seconds: secs,
                       settings: ["meta_batch": "25", "K": "10", "inner_steps": "\(innerSteps)", "order": firstOrder ? "1" : "2"])
}

/// A random 5-way 1-shot batch of 28x28 images with 15 queries per class (speed only).
func randomImageTasks(_ tasks: Int, using rng: inout RandomGenerator) -> TaskBatch {
    let ways = 5, shots = 1, queries = 15
    return TaskBatch(
        support: Split(inputs: Tensor.uniform([tasks, ways * shots, 28, 28, 1], using: &rng),
                       targets: .labels((0..<tasks).flatMap { _ in (0..<ways).flatMap { Array(repeating: $0, count: shots) } })),
        query: Split(inputs: Tensor.uniform([tasks, ways * queries, 28, 28, 1], using: &rng),
                     targets: .labels((0..<tasks).flatMap { _ in (0..<ways).flatMap { Array(repeating: $0, count: queries) } })))
}

run("protonet_conv4") {
    var rng = RandomGenerator(seed: 4)
    let embed = Sequential.conv4(classes: nil, using: &rng)
    let protonet = PrototypicalNetwork(model: embed, optimizer: Adam(learningRate: 1e-3))
    let batch = randomImageTasks(1, using: &rng)
    let (iters, secs) = time { protonet.metaStep(batch) }
    return Measurement(name: "protonet_conv4", value: Double(iters) / secs, unit: "episodes/s", iterations: iters, seconds: secs,
                       settings: ["ways": "5", "shots": "1", "queries": "15", "filters": "64"])
}

func omniglotMAML(name: String, firstOrder: Bool) -> Measurement {
    var rng = RandomGenerator(seed: 5)
    let net = Sequential.conv4(classes: 5, using: &rng)
    let maml = MAML(model: net, loss: .crossEntropy, inner: InnerLoop(steps: 1, learningRate: 0.4), firstOrder: firstOrder,
                    optimizer: Adam(learningRate: 1e-3))
    let batch = randomImageTasks(32, using: &rng)
    let (iters, secs) = time(warmup: 1) { maml.metaStep(batch) }
    return Measurement(name: name, value: Double(iters) / secs, unit: "meta-iterations/s", iterations: iters, seconds: secs,
                       settings: ["ways": "5", "shots": "1", "queries": "15", "meta_batch": "32", "order": firstOrder ? "1" : "2"])
}

/// A random 5-way 1-shot batch of 84x84 RGB images with 15 queries per class (speed only).
func randomRGBTasks(using rng: inout RandomGenerator) -> TaskBatch {
    let ways = 5, queries = 15
    return TaskBatch(
        support: Split(inputs: Tensor.uniform([1, ways, 84, 84, 3], using: &rng), targets: .labels(Array(0..<ways))),
        query: Split(inputs: Tensor.uniform([1, ways * queries, 84, 84, 3], using: &rng),
                     targets: .labels((0..<ways).flatMap { Array(repeating: $0, count: queries) })))
}

run("protonet_resnet12") {
    var rng = RandomGenerator(seed: 6)
    // As the language's `resnet12 < pool flatten >` builds it: the peers' reference flattens
    // its 5x5x640 output to 16,000-d embeddings.
    let embed = Sequential(layers: Sequential.resnet12Stages(widths: [64, 160, 320, 640], channels: 3) + [.flatten],
                           weightInit: .kaimingNormal, using: &rng)
    let protonet = PrototypicalNetwork(model: embed, optimizer: Adam(learningRate: 1e-3))
    let batch = randomRGBTasks(using: &rng)
    let (iters, secs) = time(warmup: 1) { protonet.metaStep(batch) }
    return Measurement(name: "protonet_resnet12", value: Double(iters) / secs, unit: "episodes/s", iterations: iters, seconds: secs,
                       settings: ["ways": "5", "shots": "1", "queries": "15", "image": "84x84x3", "widths": "64-160-320-640", "embedding": "16000 (flattened)"])
}

/// conv4 (Omniglot, 5-way) written as nested layer blocks, as `sequential < layers [block,
/// block, block, block, flatten < >, dense < out 5 >] >` builds it: same work as `conv4`.
func blockConv4Layers(classes: Int?) -> [Layer] {
    var layers: [Layer] = []
    var c = 1
    for _ in 0..<4 {
        layers.append(.module(AnyLayer(LayerSequence([.conv2d(inChannels: c, outChannels: 64, kernel: 3, stride: 1, padding: 1), .batchNorm(channels: 64),
                                                      .activation(.relu), .maxPool2d(size: 2)]))))
        c = 64
    }
    layers.append(.flatten)
    if let classes { layers.append(.linear(inputs: 64, outputs: classes)) }
    return layers
}

run("protonet_conv4_blocks") {
    var rng = RandomGenerator(seed: 4)
    let embed = Sequential(layers: blockConv4Layers(classes: nil), weightInit: .kaimingNormal, using: &rng)
    let protonet = PrototypicalNetwork(model: embed, optimizer: Adam(learningRate: 1e-3))
    let batch = randomImageTasks(1, using: &rng)
    let (iters, secs) = time { protonet.metaStep(batch) }
    return Measurement(name: "protonet_conv4_blocks", value: Double(iters) / secs, unit: "episodes/s", iterations: iters, seconds: secs,
                       settings: ["ways": "5", "shots": "1", "queries": "15", "filters": "64", "model": "layer blocks"])
}

run("maml_omniglot_blocks") {
    var rng = RandomGenerator(seed: 5)
    let net = Sequential(layers: blockConv4Layers(classes: 5), weightInit: .kaimingNormal, using: &rng)
    let maml = MAML(model: net, loss: .crossEntropy, inner: InnerLoop(steps: 1, learningRate: 0.4), optimizer: Adam(learningRate: 1e-3))
    let batch = randomImageTasks(32, using: &rng)
    let (iters, secs) = time(warmup: 1) { maml.metaStep(batch) }
    return Measurement(name: "maml_omniglot_blocks", value: Double(iters) / secs, unit: "meta-iterations/s", iterations: iters, seconds: secs,
                       settings: ["ways": "5", "shots": "1", "queries": "15", "meta_batch": "32", "order": "2", "model": "layer blocks"])
}

run("maml_sine_blocks") {
    var rng = RandomGenerator(seed: 3)
    let net = Sequential(layers: [.module(AnyLayer(LayerSequence([.linear(inputs: 1, outputs: 40), .activation(.relu)]))),
                                  .module(AnyLayer(LayerSequence([.linear(inputs: 40, outputs: 40), .activation(.relu)]))),
                                  .linear(inputs: 40, outputs: 1)], using: &rng)
    let maml = MAML(model: net, loss: .meanSquaredError, inner: InnerLoop(steps: 1, learningRate: 0.01), optimizer: Adam(learningRate: 1e-3))
    let sine = RegressionTasks.sinusoid()
    let (iters, secs) = time(warmup: 10) { maml.metaStep(try! sine.sample(tasks: 25, support: 10, query: 10, using: &rng)) }
    return Measurement(name: "maml_sine_blocks", value: Double(iters) / secs, unit: "meta-iterations/s", iterations: iters, seconds: secs,
                       settings: ["meta_batch": "25", "K": "10", "inner_steps": "1", "order": "2", "model": "layer blocks"])
}

run("maml_omniglot") { omniglotMAML(name: "maml_omniglot", firstOrder: false) }
run("fomaml_omniglot") { omniglotMAML(name: "fomaml_omniglot", firstOrder: true) }

run("maml_sine") { sineMAML(name: "maml_sine", firstOrder: false, innerSteps: 1) }
run("fomaml_sine") { sineMAML(name: "fomaml_sine", firstOrder: true, innerSteps: 1) }
run("maml_sine_5step") { sineMAML(name: "maml_sine_5step", firstOrder: false, innerSteps: 5) }

printReport(results)

/// Prints a benchmark report: the date, the core count and the results, as JSON.
func printReport(_ results: some Encodable) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let report: [String: AnyEncodable] = [
        "date": AnyEncodable(ISO8601DateFormatter().string(from: Date())),
        "cores": AnyEncodable(ProcessInfo.processInfo.activeProcessorCount),
        "results": AnyEncodable(results),
    ]
    print(String(decoding: try! encoder.encode(report), as: UTF8.self))
}

struct AnyEncodable: Encodable {
    let value: any Encodable
    init(_ value: any Encodable) { self.value = value }
    func encode(to encoder: Encoder) throws { try value.encode(to: encoder) }
}
