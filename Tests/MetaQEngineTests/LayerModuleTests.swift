import Foundation
import Testing
@testable import MetaQEngine

/// The layers of their own files (LayerModule.swift): gradients, nesting, task batching,
/// checkpoints, and that a nested model computes what the same layers flat compute.
@Suite("Layer modules")
struct LayerModuleTests {
    static func random(_ shape: [Int], _ seed: UInt64) -> Tensor { GradientCheck.random(shape, low: -1, high: 1, seed: seed) }

    /// A network's output as a function of its parameters and input, for gradient checks.
    static func check(_ layers: [Layer], input: [Int], batch: Int = 3, seed: UInt64 = 1) {
        var rng = RandomGenerator(seed: seed)
        let net = Sequential(layers: layers, using: &rng)
        let x = random([batch] + input, seed + 100)
        GradientCheck.firstOrder({ ts in net.forward(ts[0], parameters: Array(ts.dropFirst()), tasks: nil) }, [x] + net.parameters.map { $0.detached() })
        GradientCheck.hessianVector({ ts in net.forward(ts[0], parameters: Array(ts.dropFirst()), tasks: nil) }, [x] + net.parameters.map { $0.detached() })
    }

    @Test func layerNormGradients() { Self.check([.linear(inputs: 4, outputs: 5), .module(AnyLayer(LayerNorm(features: 5)))], input: [4]) }

    @Test func residualGradients() {
        Self.check([.module(AnyLayer(Residual(body: [.linear(inputs: 4, outputs: 4), .activation(.tanh)]))),
                    .module(AnyLayer(Residual(body: [.linear(inputs: 4, outputs: 3)], shortcut: [.linear(inputs: 4, outputs: 3)])))], input: [4])
    }

    @Test func lstmGradients() {
        Self.check([.module(AnyLayer(LSTMLayer(inputs: 2, hidden: 3, sequence: true))), .flatten], input: [4, 2])
        Self.check([.module(AnyLayer(LSTMLayer(inputs: 2, hidden: 3, sequence: false)))], input: [3, 2])
    }

    @Test func poolingGradients() {
        Self.check([.module(AnyLayer(AveragePool(size: 2))), .module(AnyLayer(GlobalAveragePool()))], input: [5, 4, 2])
    }

    @Test("a nested sequence computes what the same layers flat compute, bit for bit")
    func nestingIsFree() throws {
        let block: [Layer] = [.conv2d(inChannels: 1, outChannels: 4, kernel: 3, stride: 1, padding: 1), .batchNorm(channels: 4), .activation(.relu), .maxPool2d(size: 2)]
        var rng = RandomGenerator(seed: 5)
        let flat = Sequential(layers: block + [.flatten, .linear(inputs: 36, outputs: 2)], using: &rng)
        let nested = Sequential(layers: [.module(AnyLayer(LayerSequence(block))), .flatten, .linear(inputs: 36, outputs: 2)], parameters: flat.parameters)
        #expect(nested.parameterSpecs.map(\.name) == ["0.0.weight", "0.0.bias", "0.1.scale", "0.1.shift", "2.weight", "2.bias"])
        let x = Self.random([3, 6, 6, 1], 9)
        #expect(flat(x).scalars == nested(x).scalars)
        // Per-task fast weights over a task axis, as MAML runs them.
        let tasks = 2
        let fast = flat.perTask(flat.parameters, tasks: tasks).map { $0 + 0.01 }
        let xt = Self.random([tasks, 3, 6, 6, 1], 10)
        #expect(flat.forward(xt, parameters: fast, tasks: tasks).scalars == nested.forward(xt, parameters: fast, tasks: tasks).scalars)
    }

    @Test("per-task parameters give each task its own model")
    func perTaskParameters() {
        var rng = RandomGenerator(seed: 2)
        let net = Sequential(layers: [.module(AnyLayer(LSTMLayer(inputs: 2, hidden: 3, sequence: false))), .module(AnyLayer(LayerNorm(features: 3))),
                                      .module(AnyLayer(Residual(body: [.linear(inputs: 3, outputs: 3)])))], using: &rng)
        let x = Self.random([2, 4, 5, 2], 3)
        var fast = net.perTask(net.parameters, tasks: 2)
        fast = fast.map { p in Tensor.concatenate([p.slice(axis: 0, 0..<1), p.slice(axis: 0, 1..<2) * 1.5], axis: 0) }
        let together = net.forward(x, parameters: fast, tasks: 2)
        for t in 0..<2 {
            let own = fast.map { $0.slice(axis: 0, t..<t + 1).reshaped(to: Array($0.shape.dropFirst())) }
            let alone = net.forward(x.slice(axis: 0, t..<t + 1).reshaped(to: [4, 5, 2]), parameters: own, tasks: nil)
            let part = together.slice(axis: 0, t..<t + 1).reshaped(to: alone.shape)
            for (a, b) in zip(part.scalars, alone.scalars) { #expect(abs(a - b) <= 1e-5) }
        }
    }

    @Test("modules round-trip through checkpoints; a version-1 file still loads")
    func checkpoints() throws {
        var rng = RandomGenerator(seed: 4)
        let layers: [Layer] = [.module(AnyLayer(LSTMLayer(inputs: 2, hidden: 3, sequence: true))), .flatten,
                               .module(AnyLayer(Residual(body: [.linear(inputs: 12, outputs: 12), .activation(.gelu)], shortcut: []))),
                               .module(AnyLayer(LayerNorm(features: 12))), .linear(inputs: 12, outputs: 1)]
        let net = Sequential(layers: layers, using: &rng)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("modules-\(UUID().uuidString).mqm").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Checkpoint(model: net, inputShape: [4, 2]).write(to: path)
        let read = try Checkpoint.read(from: path)
        #expect(read.layers == layers)
        let restored = read.makeModel()
        #expect(restored.parameterSpecs.map(\.name).contains("2.body.0.weight"))
        let x = Self.random([2, 4, 2], 5)
        #expect(restored(x).scalars == net(x).scalars)

        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/checkpoint-v1.mqm").path
        let old = try Checkpoint.read(from: fixture)
        #expect(old.layers == [.linear(inputs: 1, outputs: 8), .activation(.relu), .linear(inputs: 8, outputs: 1)])
        #expect(old.step == 3)
    }

    @Test("bad shapes are errors naming the layer")
    func shapeErrors() {
        #expect(throws: ShapeError.self) { try Layer.module(AnyLayer(LSTMLayer(inputs: 2, hidden: 3, sequence: true))).outputShape(for: [4, 3]) }
        #expect(throws: ShapeError.self) { try Layer.module(AnyLayer(Residual(body: [.linear(inputs: 4, outputs: 3)]))).outputShape(for: [4]) }
        #expect(throws: ShapeError.self) { try Layer.module(AnyLayer(GlobalAveragePool())).outputShape(for: [4]) }
    }
}
