import Foundation
import Testing
@testable import MetaQEngine

/// Layers that behave differently in meta-training: dropout (masks from the forward context)
/// and MAML++'s per-step batch norm (weights picked by the inner step).
@Suite("Training-time layers")
struct TrainingLayerTests {
    static func random(_ shape: [Int], _ seed: UInt64) -> Tensor { GradientCheck.random(shape, low: -1, high: 1, seed: seed) }
    static let dropout = Layer.module(AnyLayer(Dropout(rate: 0.2)))

    // MARK: Dropout

    @Test("dropout is the identity outside meta-training")
    func dropoutIdentityAtEvaluation() {
        var rng = RandomGenerator(seed: 1)
        let net = Sequential(layers: [Self.dropout], using: &rng)
        let x = Self.random([3, 4, 50], 2)
        #expect(net.forward(x, parameters: [], tasks: 3).scalars == x.scalars)
        #expect(net(x.reshaped(to: [12, 50])).scalars == x.scalars)
        // An explicit evaluation context, and a step of an inner loop outside training, too.
        let y = ForwardContext.with(ForwardContext.evaluation.atStep(2)) { net.forward(x, parameters: [], tasks: 3) }
        #expect(y.scalars == x.scalars)
    }

    @Test("in training, the expected fraction is zeroed and the rest scaled by 1/(1-p)")
    func dropoutTrainingMask() {
        var rng = RandomGenerator(seed: 1)
        let net = Sequential(layers: [Self.dropout], using: &rng)
        let x = Tensor.ones([4, 50, 100])
        let y = ForwardContext.with(.training(key: 7)) { net.forward(x, parameters: [], tasks: 4) }.scalars
        let zeros = y.filter { $0 == 0 }.count
        let fraction = Double(zeros) / Double(y.count)
        // 20,000 draws: the standard deviation of the fraction is 0.0028.
        #expect(abs(fraction - 0.2) < 0.015, "zeroed \(fraction)")
        #expect(y.allSatisfy { $0 == 0 || abs($0 - 1 / 0.8) < 1e-6 })
        // Each task has its own mask, and each call in a pass its own.
        let perTask = 5000
        #expect(Array(y[0..<perTask]) != Array(y[perTask..<2 * perTask]))
        let twice = ForwardContext.with(.training(key: 7)) { (net.forward(x, parameters: [], tasks: 4), net.forward(x, parameters: [], tasks: 4)) }
        #expect(twice.0.scalars == y)
        #expect(twice.1.scalars != y)
        // Another key, other masks; rate 0 is the identity even in training.
        #expect(ForwardContext.with(.training(key: 8)) { net.forward(x, parameters: [], tasks: 4) }.scalars != y)
        let none = Sequential(layers: [.module(AnyLayer(Dropout(rate: 0)))], using: &rng)
        #expect(ForwardContext.with(.training(key: 7)) { none.forward(x, parameters: [], tasks: 4) }.scalars == x.scalars)
    }

    @Test("a task's mask does not depend on how the batch is split")
    func dropoutMaskFollowsTheTask() {
        var rng = RandomGenerator(seed: 1)
        let net = Sequential(layers: [Self.dropout], using: &rng)
        let x = Self.random([4, 6, 10], 3)
        let whole = ForwardContext.with(.training(key: 11)) { net.forward(x, parameters: [], tasks: 4) }
        let part = ForwardContext.with(ForwardContext.training(key: 11).offset(by: 2)) {
            net.forward(x.slice(axis: 0, 2..<4), parameters: [], tasks: 2)
        }
        #expect(whole.slice(axis: 0, 2..<4).scalars == part.scalars)
    }

    @Test("dropout's gradients (first and second order) match finite differences")
    func dropoutGradients() {
        var rng = RandomGenerator(seed: 3)
        let net = Sequential(layers: [.linear(inputs: 4, outputs: 6), .activation(.tanh), Self.dropout, .linear(inputs: 6, outputs: 2)], using: &rng)
        let x = Self.random([5, 4], 4)
        // Every evaluation of f under the same context draws the same masks.
        let f: ([Tensor]) -> Tensor = { ts in
            ForwardContext.with(.training(key: 5)) { net.forward(ts[0], parameters: Array(ts.dropFirst()), tasks: nil) }
        }
        let inputs = [x] + net.parameters.map { $0.detached() }
        GradientCheck.firstOrder(f, inputs)
        GradientCheck.hessianVector(f, inputs)
        // The mask really is applied in the gradient: some of the first layer's gradient
        // columns (units always dropped in this batch) differ from the evaluation gradient.
        let leaves = net.parameters.map { $0.detached().requiringGradient() }
        let trained = gradients(of: f([x] + leaves).sum(), with: leaves)[0].scalars
        let plain = gradients(of: net.forward(x, parameters: leaves, tasks: nil).sum(), with: leaves)[0].scalars
        #expect(trained != plain)
    }

    @Test("MAML with dropout: deterministic given the key, the key matters, the split of the batch does not")
    func mamlWithDropout() throws {
        var rng = RandomGenerator(seed: 9)
        let net = Sequential(layers: [.linear(inputs: 1, outputs: 16), .activation(.relu), .module(AnyLayer(Dropout(rate: 0.3))),
                                      .linear(inputs: 16, outputs: 1)], using: &rng)
        let maml = MAML(model: net, loss: .meanSquaredError, inner: InnerLoop(steps: 2, learningRate: 0.01), optimizer: Adam(learningRate: 1e-3))
        var data = RandomGenerator(seed: 10)
        let batch = try RegressionTasks.sinusoid().sample(tasks: 8, support: 5, query: 5, using: &data)
        func gradient(key: UInt64?, threads: Int, groupElements: Int = 1 << 16) -> [Float] {
            let context = key.map { ForwardContext.training(key: $0) } ?? .evaluation
            return ForwardContext.with(context) {
                summedLossGradients(batch, parameters: net.parameters, minimumTasksPerWorker: 1, threads: threads,
                                    groupElements: groupElements, objective: maml.summedMetaLoss)
            }.gradients.flatMap(\.scalars)
        }
        let a = gradient(key: 1, threads: 1)
        #expect(gradient(key: 1, threads: 1) == a)
        #expect(gradient(key: 2, threads: 1) != a)
        #expect(gradient(key: nil, threads: 1) != a)
        // Four workers of two tasks, or groups of one task, draw each task's masks as one
        // worker does (sums in another order: equal up to rounding).
        for b in [gradient(key: 1, threads: 4), gradient(key: 1, threads: 1, groupElements: 1)] {
            #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($0)) })
        }
        // A meta-step under a training context changes the parameters as the gradient says.
        let before = net.parameters.flatMap(\.scalars)
        let loss = ForwardContext.with(.training(key: 1)) { maml.metaStep(batch) }
        #expect(loss.isFinite)
        #expect(net.parameters.flatMap(\.scalars) != before)
    }

    // MARK: Per-step batch norm

    @Test("per-step batch norm: step k uses its own weights; outside an inner loop the last")
    func stepBatchNormPicksItsRow() {
        let layer = StepBatchNorm(channels: 3, steps: 4)
        var rng = RandomGenerator(seed: 2)
        let net = Sequential(layers: [.module(AnyLayer(layer))], using: &rng)
        #expect(net.parameterSpecs.map(\.name) == ["0.scale", "0.shift"])
        #expect(net.parameterSpecs.map(\.shape) == [[4, 3], [4, 3]])
        let scale = Self.random([4, 3], 5), shift = Self.random([4, 3], 6)
        let x = Self.random([6, 3], 7)
        let normalized = x.normalized(overAxes: [0])
        func expected(_ k: Int) -> [Float] {
            (normalized * scale.slice(axis: 0, k..<k + 1).reshaped(to: [3]) + shift.slice(axis: 0, k..<k + 1).reshaped(to: [3])).scalars
        }
        for k in 0..<4 {
            let y = ForwardContext.with(ForwardContext.current.atStep(k)) { net.forward(x, parameters: [scale, shift], tasks: nil) }
            #expect(y.scalars == expected(k))
        }
        #expect(ForwardContext.with(ForwardContext.current.atStep(9)) { net.forward(x, parameters: [scale, shift], tasks: nil) }.scalars == expected(3))
        #expect(net.forward(x, parameters: [scale, shift], tasks: nil).scalars == expected(3))
        // The gradient at step 1 reaches row 1 only.
        let p = [scale.requiringGradient(), shift.requiringGradient()]
        let g = ForwardContext.with(ForwardContext.current.atStep(1)) { gradients(of: GradientCheck.project(net.forward(x, parameters: p, tasks: nil)), with: p) }
        for row in 0..<4 {
            let part = g[0].slice(axis: 0, row..<row + 1).scalars + g[1].slice(axis: 0, row..<row + 1).scalars
            #expect(part.contains { $0 != 0 } == (row == 1), "row \(row)")
        }
    }

    @Test("per-step batch norm's gradients match finite differences, with and without a task axis")
    func stepBatchNormGradients() {
        var rng = RandomGenerator(seed: 4)
        let net = Sequential(layers: [.linear(inputs: 3, outputs: 4), .module(AnyLayer(StepBatchNorm(channels: 4, steps: 3))), .activation(.tanh)], using: &rng)
        let f: ([Tensor]) -> Tensor = { ts in
            ForwardContext.with(ForwardContext.evaluation.atStep(1)) { net.forward(ts[0], parameters: Array(ts.dropFirst()), tasks: nil) }
        }
        let inputs = [Self.random([5, 3], 8)] + net.parameters.map { $0.detached() }
        GradientCheck.firstOrder(f, inputs)
        GradientCheck.hessianVector(f, inputs)
        let perTask: ([Tensor]) -> Tensor = { ts in
            ForwardContext.with(ForwardContext.evaluation.atStep(2)) { net.forward(ts[0], parameters: Array(ts.dropFirst()), tasks: 2) }
        }
        GradientCheck.firstOrder(perTask, [Self.random([2, 5, 3], 9)] + net.perTask(net.parameters, tasks: 2).map { $0.detached() + Self.random($0.shape, 10) * 0.1 })
    }

    @Test("MAML's inner loop indexes per-step batch norm by its step")
    func innerLoopUsesStepRows() {
        var rng = RandomGenerator(seed: 6)
        let net = Sequential(layers: [.linear(inputs: 1, outputs: 8), .module(AnyLayer(StepBatchNorm(channels: 8, steps: 3))), .activation(.relu),
                                      .linear(inputs: 8, outputs: 1)], using: &rng)
        var data = RandomGenerator(seed: 7)
        let batch = try! RegressionTasks.sinusoid().sample(tasks: 3, support: 6, query: 6, using: &data)
        let inner = InnerLoop(steps: 2, learningRate: 0.1)
        let fast = inner.adapt(model: net, loss: .meanSquaredError, support: batch.support, from: net.parameters, steps: 2, createGraph: false)
        // Steps 0 and 1 moved rows 0 and 1 of the scale (index 2) and shift (index 3); row 2,
        // the query's, was never used by the inner loop.
        for index in [2, 3] {
            let moved = fast[index] - net.parameters[index].broadcast(to: fast[index].shape)
            for row in 0..<3 {
                let changed = moved.slice(axis: 1, row..<row + 1).scalars.contains { $0 != 0 }
                #expect(changed == (row < 2), "parameter \(index) row \(row)")
            }
        }
        // Continuing from step 1 (evaluation with steps [1, 2]) takes step 1, not step 0 again.
        let one = inner.adapt(model: net, loss: .meanSquaredError, support: batch.support, from: net.parameters, steps: 1, createGraph: false)
        let two = inner.adapt(model: net, loss: .meanSquaredError, support: batch.support, from: one, steps: 1, createGraph: false, firstStep: 1)
        let rowZeroAfterOne = one[2].slice(axis: 1, 0..<1).scalars
        #expect(two[2].slice(axis: 1, 0..<1).scalars == rowZeroAfterOne)
        #expect(two[2].slice(axis: 1, 1..<2).scalars != one[2].slice(axis: 1, 1..<2).scalars)
        // A meta-step trains every row: the query's row (2) through the outer loss.
        let maml = MAML(model: net, loss: .meanSquaredError, inner: inner, optimizer: SGD(learningRate: 0.1))
        let before = net.parameters[2].scalars
        maml.metaStep(batch)
        let after = net.parameters[2]
        for row in 0..<3 {
            #expect(after.slice(axis: 0, row..<row + 1).scalars != Array(before[row * 8..<(row + 1) * 8]), "row \(row)")
        }
    }

    @Test("evaluation that continues adapting takes the later steps' rates and rows: steps [1, 3] ends where [3] does")
    func evaluationContinuesAtTheRightStep() throws {
        var rng = RandomGenerator(seed: 8)
        let net = Sequential(layers: [.linear(inputs: 1, outputs: 8), .module(AnyLayer(StepBatchNorm(channels: 8, steps: 3))), .activation(.tanh),
                                      .linear(inputs: 8, outputs: 1)], using: &rng)
        let maml = MAML(model: net, loss: .meanSquaredError, inner: InnerLoop(steps: 3, learningRate: 0.01, stepLearningRates: [0.05, 0.2, 0.01]),
                        optimizer: SGD(learningRate: 0.1))
        var data = RandomGenerator(seed: 9)
        let batch = try RegressionTasks.sinusoid().sample(tasks: 4, support: 6, query: 6, using: &data)
        let continued = maml.evaluate(batch, steps: [1, 3])[1]
        let direct = maml.evaluate(batch, steps: [3])[0]
        #expect(zip(continued, direct).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) }, "\(continued) vs \(direct)")
    }

    // MARK: Checkpoints

    @Test("dropout and per-step batch norm round-trip through checkpoints; a bad rate is an error")
    func checkpoints() throws {
        var rng = RandomGenerator(seed: 4)
        let layers: [Layer] = [.linear(inputs: 3, outputs: 6), .module(AnyLayer(StepBatchNorm(channels: 6, steps: 5))), .activation(.relu),
                               .module(AnyLayer(Dropout(rate: 0.25))), .linear(inputs: 6, outputs: 2)]
        let net = Sequential(layers: layers, using: &rng)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("training-layers-\(UUID().uuidString).mqm").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Checkpoint(model: net, inputShape: [3]).write(to: path)
        let read = try Checkpoint.read(from: path)
        #expect(read.layers == layers)
        let restored = read.makeModel()
        #expect(restored.parameterSpecs.map(\.name) == net.parameterSpecs.map(\.name))
        let x = Self.random([4, 3], 5)
        #expect(restored(x).scalars == net(x).scalars)
        #expect(restored.layers[3].text == "dropout(0.25)")
        #expect(restored.layers[1].text == "batchnorm(6, per step 5)")

        // A rate outside 0 ..< 1 in a checkpoint's layer list is refused when decoding.
        let bad = Data(#"{"kind": "dropout", "settings": {"rate": 1.5}}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(AnyLayer.self, from: bad) }
        let good = try JSONDecoder().decode(AnyLayer.self, from: Data(#"{"kind": "dropout", "settings": {"rate": 0.5}}"#.utf8))
        #expect(good == AnyLayer(Dropout(rate: 0.5)))
    }
}
