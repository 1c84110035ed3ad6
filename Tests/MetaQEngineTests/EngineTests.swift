import Foundation
import Testing
@testable import MetaQEngine

@Suite("Tensor operations")
struct TensorTests {
    @Test func broadcastingArithmetic() {
        let a = Tensor([[1, 2, 3], [4, 5, 6]])
        #expect((a + Tensor([10, 20, 30])).scalars == [11, 22, 33, 14, 25, 36])
        #expect((a * Tensor(shape: [2, 1], values: [2, 3])).scalars == [2, 4, 6, 12, 15, 18])
        #expect((Tensor(shape: [2, 1, 1], values: [1, 2]) - Tensor(shape: [1, 3], values: [1, 2, 3])).shape == [2, 1, 3])
    }

    @Test func shapeRulesReportMismatches() {
        #expect(throws: ShapeError.self) { try ShapeRules.broadcast([2, 3], [4]) }
        #expect(throws: ShapeError.self) { try ShapeRules.matmul([2, 3], [4, 5]) }
        #expect(throws: ShapeError.self) { try ShapeRules.reshape([2, 3], to: [4, -1]) }
        #expect((try? ShapeRules.matmul([7, 2, 3], [3, 5])) == [7, 2, 5])
        #expect((try? ShapeRules.reshape([2, 3, 4], to: [-1, 4])) == [6, 4])
    }

    @Test func matmulAgreesWithNaiveProduct() {
        var rng = RandomGenerator(seed: 1)
        let a = Tensor.uniform([3, 5, 4], using: &rng), b = Tensor.uniform([3, 4, 2], using: &rng)
        let c = a.matmul(b)
        for t in 0..<3 { for i in 0..<5 { for j in 0..<2 {
            var s: Float = 0
            for k in 0..<4 { s += a.scalars[(t * 5 + i) * 4 + k] * b.scalars[(t * 4 + k) * 2 + j] }
            #expect(abs(c.scalars[(t * 5 + i) * 2 + j] - s) < 1e-5)
        } } }
    }

    @Test func convolutionMatchesDirectSum() {
        var rng = RandomGenerator(seed: 2)
        let x = Tensor.uniform([2, 5, 5, 3], using: &rng), w = Tensor.uniform([27, 4], using: &rng)
        let y = x.convolved(with: w, bias: nil, geometry: WindowGeometry(kernel: 3, stride: 2, padding: 1))
        #expect(y.shape == [2, 3, 3, 4])
        let xs = x.scalars, ws = w.scalars, ys = y.scalars
        for n in 0..<2 { for oh in 0..<3 { for ow in 0..<3 { for o in 0..<4 {
            var s: Float = 0
            for ki in 0..<3 { for kj in 0..<3 { for c in 0..<3 {
                let ih = oh * 2 - 1 + ki, iw = ow * 2 - 1 + kj
                guard ih >= 0, ih < 5, iw >= 0, iw < 5 else { continue }
                s += xs[((n * 5 + ih) * 5 + iw) * 3 + c] * ws[((ki * 3 + kj) * 3 + c) * 4 + o]
            } } }
            #expect(abs(ys[((n * 3 + oh) * 3 + ow) * 4 + o] - s) < 1e-4)
        } } } }
    }

    @Test func maxPoolPicksWindowMaxima() {
        let x = Tensor(shape: [1, 2, 4, 1], values: [1, 5, 2, 0, 3, 4, 7, 6])
        #expect(x.maxPooled(size: 2).scalars == [5, 7])
    }

    @Test func softmaxRowsSumToOneAndCrossEntropyIsCorrect() {
        let logits = Tensor([[1, 2, 3], [0, 0, 0]])
        let p = logits.softmax().scalars
        #expect(abs(p[0] + p[1] + p[2] - 1) < 1e-6)
        #expect(abs(p[3] - 1.0 / 3) < 1e-6)
        let ce = logits.crossEntropy(labels: [2, 0]).scalar
        let expected = (-Foundation.log(Double(p[2])) + Foundation.log(3.0)) / 2
        #expect(abs(Double(ce) - expected) < 1e-5)
    }

    @Test func batchNormNormalisesEachChannel() {
        var rng = RandomGenerator(seed: 4)
        let x = Tensor.uniform([4, 3, 3, 2], low: 2, high: 9, using: &rng).normalized(overAxes: [0, 1, 2])
        let mean = x.mean(axes: [0, 1, 2]).scalars
        let variance = x.squared().mean(axes: [0, 1, 2]).scalars
        for c in 0..<2 {
            #expect(abs(mean[c]) < 1e-5)
            #expect(abs(variance[c] - 1) < 1e-3)
        }
    }

    @Test func randomGeneratorIsReproducibleAndRestorable() {
        var a = RandomGenerator(seed: 42), b = RandomGenerator(seed: 42)
        let first = (0..<5).map { _ in a.next() }
        #expect(first == (0..<5).map { _ in b.next() })
        var restored = RandomGenerator(state: a.state)
        #expect(a.next() == restored.next())
        var c = RandomGenerator(seed: 43)
        #expect(c.next() != first[0])
        let draws = (0..<10_000).map { _ in a.nextNormal() }
        let mean = draws.reduce(0, +) / 10_000
        #expect(abs(mean) < 0.05)
    }
}

@Suite("Networks and optimisers")
struct NetworkTests {
    @Test func mlpHasPaperShapeAndRunsWithFastWeights() {
        var rng = RandomGenerator(seed: 1)
        let net = Sequential.mlp(sizes: [1, 40, 40, 1], using: &rng)
        #expect(net.parameterCount == 40 + 40 + 1600 + 40 + 40 + 1)
        let x = Tensor(shape: [5, 1], values: [0, 1, 2, 3, 4])
        let doubled = net.parameters.map { $0 * 2 }
        let own = net(x).scalars
        let other = net.forward(x, parameters: doubled, tasks: nil).scalars
        #expect(own != other)
        #expect(net(x).scalars == own, "the module's own parameters are untouched")
    }

    @Test func conv4ShapesAndTaskBatchedForwardAgree() throws {
        var rng = RandomGenerator(seed: 2)
        let net = Sequential.conv4(imageSize: 28, filters: 8, classes: 5, using: &rng)
        #expect(try net.outputShape(for: [28, 28, 1]) == [5])
        let x = Tensor.uniform([2, 3, 28, 28, 1], using: &rng)
        let batched = net.forward(x, parameters: net.perTask(net.parameters, tasks: 2), tasks: 2)
        #expect(batched.shape == [2, 3, 5])
        for t in 0..<2 {
            let single = net(x.slice(axis: 0, t..<t + 1).reshaped(to: [3, 28, 28, 1])).scalars
            let part = batched.slice(axis: 0, t..<t + 1).scalars
            for (a, b) in zip(single, part) { #expect(abs(a - b) < 1e-4) }
        }
        #expect(throws: ShapeError.self) { try net.outputShape(for: [28, 28, 3]) }
    }

    @Test(arguments: ["sgd", "momentum", "adam"])
    func optimisersMinimiseAQuadratic(kind: String) throws {
        let optimizer: Optimizer = switch kind {
        case "sgd": SGD(learningRate: 0.1)
        case "momentum": SGD(learningRate: 0.05, momentum: 0.9)
        default: Adam(learningRate: 0.1)
        }
        var p = [Tensor([3, -2]).requiringGradient()]
        let target = Tensor([1, 1])
        for _ in 0..<300 {
            let loss = (p[0] - target).squared().sum()
            p = optimizer.update(p, gradients: gradients(of: loss, with: p))
        }
        for v in p[0].scalars { #expect(abs(v - 1) < 1e-2) }
        // The state round-trips through JSON and restores.
        let data = try JSONEncoder().encode(optimizer.state)
        let decoded = try JSONDecoder().decode(OptimizerState.self, from: data)
        #expect(decoded == optimizer.state)
        #expect(decoded.step == 300)
        try optimizer.restore(decoded)
        #expect(optimizer.state == decoded)
    }

    /// Adam's C kernel (vectorised) rounds like the textbook formula written out in Swift,
    /// element for element, over several steps and a length that is no multiple of 8.
    @Test func adamKernelMatchesTheFormulaBitForBit() {
        var rng = RandomGenerator(seed: 7)
        let n = 37
        let adam = Adam(learningRate: 0.01)
        var p = Tensor.normal([n], using: &rng)
        var (m, v) = ([Float](repeating: 0, count: n), [Float](repeating: 0, count: n))
        for step in 1...4 {
            let g = Tensor.normal([n], using: &rng)
            let expected = p.scalars.indices.map { j -> Float in
                let (b1, b2, eps): (Float, Float, Float) = (0.9, 0.999, 1e-8)
                let c1 = 1 - Float(Foundation.pow(Double(b1), Double(step)))
                let c2 = 1 - Float(Foundation.pow(Double(b2), Double(step)))
                let gj = g.scalars[j]
                m[j] = b1 * m[j] + (1 - b1) * gj
                v[j] = b2 * v[j] + (1 - b2) * gj * gj
                return p.scalars[j] - (0.01 / c1) * m[j] / (v[j].squareRoot() / c2.squareRoot() + eps)
            }
            p = adam.update([p], gradients: [g])[0]
            #expect(p.scalars == expected)
        }
    }

    @Test func stepDecayScalesTheLearningRateAndSurvivesASaveAndRestore() throws {
        let decay = StepDecay(factor: 0.5, every: 2)
        #expect([1, 2, 3, 4, 5].map { decay.rate(base: 1, step: $0) } == [1, 1, 0.5, 0.5, 0.25])
        // Plain SGD on the gradient 1 moves the parameter by exactly the decayed rate.
        let sgd = SGD(learningRate: 0.1)
        sgd.decay = decay
        var p = [Tensor([0]).requiringGradient()]
        var moves: [Float] = []
        for _ in 0..<5 {
            let next = sgd.update(p, gradients: [Tensor([1])])
            moves.append(p[0].scalars[0] - next[0].scalars[0])
            p = next
        }
        for (move, expected) in zip(moves, [0.1, 0.1, 0.05, 0.05, 0.025] as [Float]) { #expect(abs(move - expected) < 1e-6) }
        // A restored optimiser keeps the schedule and its place in it.
        let adam = Adam(learningRate: 0.01)
        adam.decay = StepDecay(factor: 0.1, every: 3)
        var q = [Tensor([1, 2]).requiringGradient()]
        for _ in 0..<4 { q = adam.update(q, gradients: [Tensor([0.5, -1])]) }
        let copy = try makeOptimizer(restoring: adam.state)
        #expect((copy as? Adam)?.decay == adam.decay)
        let a = adam.update(q, gradients: [Tensor([0.5, -1])]), b = copy.update(q, gradients: [Tensor([0.5, -1])])
        #expect(a[0].scalars == b[0].scalars)
        #expect(try makeOptimizer(restoring: Adam().state) is Adam)
        var broken = adam.state
        broken.hyperparameters["decay_factor"] = 3
        #expect(throws: OptimizerStateError.self) { try makeOptimizer(restoring: broken) }
    }

    @Test func restoringForeignOptimizerStateFails() {
        #expect(throws: OptimizerStateError.self) { try SGD(learningRate: 1).restore(Adam().state) }
    }
}

@Suite("MAML learns and is deterministic")
struct MAMLTrainingTests {
    static func trainedLosses(seed: UInt64, steps: Int) -> [Float] {
        var rng = RandomGenerator(seed: seed)
        let net = Sequential.mlp(sizes: [1, 40, 40, 1], using: &rng)
        let maml = MAML(model: net, loss: .meanSquaredError, inner: InnerLoop(steps: 1, learningRate: 0.01), optimizer: Adam(learningRate: 1e-3))
        let sine = RegressionTasks.sinusoid()
        return (0..<steps).map { _ in maml.metaStep(try! sine.sample(tasks: 5, support: 10, query: 10, using: &rng)) }
    }

    @Test func sameSeedGivesBitIdenticalLosses() {
        let a = Self.trainedLosses(seed: 7, steps: 20), b = Self.trainedLosses(seed: 7, steps: 20)
        #expect(a.map(\.bitPattern) == b.map(\.bitPattern))
        #expect(a != Self.trainedLosses(seed: 8, steps: 20))
    }

    @Test(arguments: [false, true])
    func adaptationReducesLossAfterMetaTraining(firstOrder: Bool) throws {
        var rng = RandomGenerator(seed: 1)
        let net = Sequential.mlp(sizes: [1, 40, 40, 1], using: &rng)
        let maml = MAML(model: net, loss: .meanSquaredError, inner: InnerLoop(steps: 1, learningRate: 0.01),
                        firstOrder: firstOrder, optimizer: Adam(learningRate: 5e-3))
        let sine = RegressionTasks.sinusoid()
        for _ in 0..<400 { maml.metaStep(try sine.sample(tasks: 10, support: 10, query: 10, using: &rng)) }
        let test = try sine.sample(tasks: 100, support: 10, query: 20, using: &rng)
        let before = maml.parameters(evaluatedOn: test, steps: 0)
        let scores = maml.evaluate(test, steps: [0, 10])
        let mean = scores.map { $0.reduce(0, +) / Float($0.count) }
        #expect(mean[0] == before)
        #expect(mean[1] < 0.8 * mean[0], "10 steps should cut the MSE well below the unadapted \(mean[0]); got \(mean[1])")
    }
}

extension MAML {
    fileprivate func parameters(evaluatedOn batch: TaskBatch, steps: Int) -> Float {
        let s = evaluate(batch, steps: [steps])[0]
        return s.reduce(0, +) / Float(s.count)
    }
}
