import Foundation

/// A kind of layer defined in a file of its own: its parameters (with names), its forward
/// pass with given parameters and an optional task axis, its output shape, and its checkpoint
/// encoding (the type's Codable form). Adding one is that file plus one row of
/// ``LayerRegistry/kinds``; checkpoints, the language's printing and validation reach it
/// through this protocol.
///
/// Like the built-in layers, a module holds no tensors: the network owns its parameters in a
/// flat list, so the same module runs with the meta-parameters or with fast weights.
public protocol LayerModule: Codable, Sendable {
    /// The name in checkpoints and in the language.
    static var kind: String { get }
    /// The parameters, in order, named within the layer (`weight`, `body.0.weight`).
    func parameterSpecs(weightInit: Initializer) -> [ParameterSpec]
    /// The forward pass; `tasks` is the extent of a leading task axis of `x` (and of any
    /// parameter that has one).
    func apply(_ x: Tensor, parameters: ArraySlice<Tensor>, tasks: Int?) -> Tensor
    /// The output shape for one example (no batch axis), or why the input does not fit.
    func outputShape(for input: [Int]) throws(ShapeError) -> [Int]
    /// Every size the layer was given (each must be in 1...2^24 in a checkpoint).
    var sizes: [Int] { get }
    /// How metaq prints the layer: `layernorm(64)`.
    var text: String { get }
}

/// A ``LayerModule`` as a value of ``Layer``: encoded as `{"kind": ..., "settings": ...}`.
public struct AnyLayer: Codable, Sendable, Equatable {
    public let module: any LayerModule

    public init(_ module: any LayerModule) { self.module = module }

    private enum Keys: String, CodingKey { case kind, settings }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        let kind = try c.decode(String.self, forKey: .kind)
        guard let type = LayerRegistry.byKind[kind] else {
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "unknown layer kind '\(kind)'")
        }
        module = try type.decodeSettings(from: c.superDecoder(forKey: .settings))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(type(of: module).kind, forKey: .kind)
        try module.encode(to: c.superEncoder(forKey: .settings))
    }

    /// The encoded form, for equality.
    var encoded: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(self)) ?? Data()
    }

    public static func == (a: AnyLayer, b: AnyLayer) -> Bool {
        type(of: a.module).kind == type(of: b.module).kind && a.encoded == b.encoded
    }
}

extension LayerModule {
    static func decodeSettings(from decoder: Decoder) throws -> any LayerModule { try Self(from: decoder) }
}

/// The layer kinds beyond the built-in cases of ``Layer``: one row each.
public enum LayerRegistry {
    public static let kinds: [any LayerModule.Type] = [
        LayerNorm.self, AveragePool.self, GlobalAveragePool.self, LayerSequence.self, Residual.self, LSTMLayer.self,
        Dropout.self, StepBatchNorm.self,
    ]

    static let byKind: [String: any LayerModule.Type] = Dictionary(uniqueKeysWithValues: kinds.map { ($0.kind, $0) })
}

// MARK: The modules

/// Layer normalisation: each example normalised over its last axis, then a learned
/// per-feature scale and shift.
public struct LayerNorm: LayerModule {
    public static let kind = "layernorm"
    public let features: Int
    public init(features: Int) { self.features = features }

    public func parameterSpecs(weightInit: Initializer) -> [ParameterSpec] {
        [ParameterSpec(name: "scale", shape: [features], initializer: .ones, fanIn: features, fanOut: features),
         ParameterSpec(name: "shift", shape: [features], initializer: .zeros, fanIn: features, fanOut: features)]
    }

    public func apply(_ x: Tensor, parameters p: ArraySlice<Tensor>, tasks: Int?) -> Tensor {
        let p = Array(p)
        let normalized = x.normalized(overAxes: [x.rank - 1])
        if let tasks, p[0].rank == 2 {
            let shape = [tasks] + Array(repeating: 1, count: x.rank - 2) + [features]
            return normalized * p[0].reshaped(to: shape) + p[1].reshaped(to: shape)
        }
        return normalized * p[0] + p[1]
    }

    public func outputShape(for input: [Int]) throws(ShapeError) -> [Int] {
        guard input.last == features else { throw ShapeError("layer norm expects \(features) features, got shape \(input)") }
        return input
    }

    public var sizes: [Int] { [features] }
    public var text: String { "layernorm(\(features))" }
}

/// Average-pooling of images over size x size windows with stride size (trailing rows and
/// columns that do not fill a window are dropped).
public struct AveragePool: LayerModule {
    public static let kind = "avgpool"
    public let size: Int
    public init(size: Int) { self.size = size }

    public func parameterSpecs(weightInit: Initializer) -> [ParameterSpec] { [] }

    public func apply(_ x: Tensor, parameters: ArraySlice<Tensor>, tasks: Int?) -> Tensor {
        let lead = Array(x.shape.dropLast(3))
        let (h, w, c) = (x.shape[x.rank - 3], x.shape[x.rank - 2], x.shape[x.rank - 1])
        let (ho, wo) = (h / size, w / size)
        var y = x
        if ho * size != h { y = y.slice(axis: x.rank - 3, 0..<ho * size) }
        if wo * size != w { y = y.slice(axis: x.rank - 2, 0..<wo * size) }
        let r = lead.count
        return y.reshaped(to: lead + [ho, size, wo, size, c]).mean(axes: [r + 1, r + 3])
    }

    public func outputShape(for input: [Int]) throws(ShapeError) -> [Int] {
        guard input.count == 3, input[0] >= size, input[1] >= size else {
            throw ShapeError("average-pool \(size)x\(size) expects [height, width, channels] of at least \(size)x\(size), got \(input)")
        }
        return [input[0] / size, input[1] / size, input[2]]
    }

    public var sizes: [Int] { [size] }
    public var text: String { "avgpool(\(size))" }
}

/// The mean over each image's height and width: `[H, W, C] -> [C]`.
public struct GlobalAveragePool: LayerModule {
    public static let kind = "global_avgpool"
    public init() {}

    public func parameterSpecs(weightInit: Initializer) -> [ParameterSpec] { [] }

    public func apply(_ x: Tensor, parameters: ArraySlice<Tensor>, tasks: Int?) -> Tensor {
        x.mean(axes: [x.rank - 3, x.rank - 2])
    }

    public func outputShape(for input: [Int]) throws(ShapeError) -> [Int] {
        guard input.count == 3 else { throw ShapeError("global average pooling expects [height, width, channels], got \(input)") }
        return [input[2]]
    }

    public var sizes: [Int] { [] }
    public var text: String { "global_avgpool" }
}

/// Layers run one after another, as one layer: a named sub-model reused inside others.
/// Its parameters are named by position: `0.weight`, `1.scale`, ...
public struct LayerSequence: LayerModule {
    public static let kind = "sequence"
    public let stack: LayerStack
    public init(_ layers: [Layer]) { stack = LayerStack(layers) }

    private enum Keys: String, CodingKey { case layers }
    public init(from decoder: Decoder) throws {
        stack = LayerStack(try decoder.container(keyedBy: Keys.self).decode([Layer].self, forKey: .layers))
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(stack.layers, forKey: .layers)
    }

    public func parameterSpecs(weightInit: Initializer) -> [ParameterSpec] { stack.parameterSpecs(weightInit: weightInit) }
    public func apply(_ x: Tensor, parameters: ArraySlice<Tensor>, tasks: Int?) -> Tensor { stack.forward(x, parameters: parameters, tasks: tasks) }
    public func outputShape(for input: [Int]) throws(ShapeError) -> [Int] { try stack.outputShape(for: input) }
    public var sizes: [Int] { stack.layers.flatMap(\.sizes) }
    public var text: String { "[" + stack.layers.map(\.text).joined(separator: " -> ") + "]" }
}

/// `body(x) + shortcut(x)`: a residual connection around a sub-model; an empty shortcut is the
/// identity. Parameters are named `body.0.weight`, `shortcut.0.weight`, ...
public struct Residual: LayerModule {
    public static let kind = "residual"
    public let body: LayerStack
    public let shortcut: LayerStack

    public init(body: [Layer], shortcut: [Layer] = []) {
        self.body = LayerStack(body)
        self.shortcut = LayerStack(shortcut)
    }

    private enum Keys: String, CodingKey { case body, shortcut }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        body = LayerStack(try c.decode([Layer].self, forKey: .body))
        shortcut = LayerStack(try c.decode([Layer].self, forKey: .shortcut))
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(body.layers, forKey: .body)
        try c.encode(shortcut.layers, forKey: .shortcut)
    }

    public func parameterSpecs(weightInit: Initializer) -> [ParameterSpec] {
        body.parameterSpecs(weightInit: weightInit).map { var s = $0; s.name = "body." + s.name; return s }
            + shortcut.parameterSpecs(weightInit: weightInit).map { var s = $0; s.name = "shortcut." + s.name; return s }
    }

    public func apply(_ x: Tensor, parameters p: ArraySlice<Tensor>, tasks: Int?) -> Tensor {
        let split = p.startIndex + body.parameterCount
        let y = body.forward(x, parameters: p[p.startIndex..<split], tasks: tasks)
        let s = shortcut.layers.isEmpty ? x : shortcut.forward(x, parameters: p[split..<p.endIndex], tasks: tasks)
        return y + s
    }

    public func outputShape(for input: [Int]) throws(ShapeError) -> [Int] {
        let y: [Int], s: [Int]
        do { y = try body.outputShape(for: input) } catch { throw ShapeError("residual body: \(error.message)") }
        do { s = try shortcut.outputShape(for: input) } catch { throw ShapeError("residual shortcut: \(error.message)") }
        guard y == s else {
            throw ShapeError("residual: the body gives \(y) but the shortcut gives \(s)\(shortcut.layers.isEmpty ? " (the input; add a shortcut that matches)" : "")")
        }
        return y
    }

    public var sizes: [Int] { (body.layers + shortcut.layers).flatMap(\.sizes) }
    public var text: String {
        "residual(" + body.layers.map(\.text).joined(separator: " -> ")
            + (shortcut.layers.isEmpty ? "" : "; shortcut " + shortcut.layers.map(\.text).joined(separator: " -> ")) + ")"
    }
}

/// A long short-term memory layer unrolled over a sequence axis: each example is
/// `[steps, inputs]`; the output is every step's hidden state `[steps, hidden]`, or the last
/// one `[hidden]`. Gates in the order input, forget, cell, output:
/// `g = x_t W_ih + h W_hh + b`, `c = sigmoid(f) c + sigmoid(i) tanh(g)`, `h = sigmoid(o) tanh(c)`.
public struct LSTMLayer: LayerModule {
    public static let kind = "lstm"
    public let inputs: Int
    public let hidden: Int
    public let sequence: Bool

    public init(inputs: Int, hidden: Int, sequence: Bool) {
        self.inputs = inputs
        self.hidden = hidden
        self.sequence = sequence
    }

    public func parameterSpecs(weightInit: Initializer) -> [ParameterSpec] {
        [ParameterSpec(name: "weight_ih", shape: [inputs, 4 * hidden], initializer: .fanInUniform, fanIn: hidden, fanOut: 4 * hidden),
         ParameterSpec(name: "weight_hh", shape: [hidden, 4 * hidden], initializer: .fanInUniform, fanIn: hidden, fanOut: 4 * hidden),
         ParameterSpec(name: "bias", shape: [4 * hidden], initializer: .fanInUniform, fanIn: hidden, fanOut: 4 * hidden)]
    }

    /// One step of the cell: new hidden and cell states from the input `x [..., inputs]`.
    public static func cell(_ x: Tensor, _ h: Tensor, _ c: Tensor, weightIH: Tensor, weightHH: Tensor, bias: Tensor, hidden: Int) -> (Tensor, Tensor) {
        let gates = x.matmul(weightIH) + h.matmul(weightHH) + bias
        let axis = gates.rank - 1
        if let state = try? gates.lstmGates(cell: c) {
            return (state.slice(axis: axis, 0..<hidden), state.slice(axis: axis, hidden..<2 * hidden))
        }
        // A cell state that broadcasts against the gates: the same step, unfused.
        let i = gates.slice(axis: axis, 0..<hidden).sigmoid()
        let f = gates.slice(axis: axis, hidden..<2 * hidden).sigmoid()
        let g = gates.slice(axis: axis, 2 * hidden..<3 * hidden).tanh()
        let o = gates.slice(axis: axis, 3 * hidden..<4 * hidden).sigmoid()
        let cNext = f * c + i * g
        return (o * cNext.tanh(), cNext)
    }

    public func apply(_ x: Tensor, parameters p: ArraySlice<Tensor>, tasks: Int?) -> Tensor {
        let p = Array(p)
        // x: [N, S, F] or, with tasks, [T, N, S, F]; per-task weights [T, F, 4H] multiply the
        // task's [T, N, F] rows; a per-task bias [T, 4H] broadcasts over the examples.
        let steps = x.shape[x.rank - 2]
        let lead = Array(x.shape.dropLast(2))
        var bias = p[2]
        if let tasks, bias.rank == 2 { bias = bias.reshaped(to: [tasks, 1, 4 * hidden]) }
        var (wih, whh) = (p[0], p[1])
        if let tasks, x.rank == 4 {
            if wih.rank == 3 && whh.rank == 2 { whh = whh.broadcast(to: [tasks] + whh.shape) }
            if whh.rank == 3 && wih.rank == 2 { wih = wih.broadcast(to: [tasks] + wih.shape) }
        }
        var h = Tensor.zeros(lead + [hidden])
        var c = Tensor.zeros(lead + [hidden])
        var outputs: [Tensor] = []
        for t in 0..<steps {
            let xt = x.slice(axis: x.rank - 2, t..<t + 1).reshaped(to: lead + [inputs])
            (h, c) = LSTMLayer.cell(xt, h, c, weightIH: wih, weightHH: whh, bias: bias, hidden: hidden)
            if sequence { outputs.append(h.reshaped(to: lead + [1, hidden])) }
        }
        return sequence ? Tensor.concatenate(outputs, axis: lead.count) : h
    }

    public func outputShape(for input: [Int]) throws(ShapeError) -> [Int] {
        guard input.count == 2, input[1] == inputs, input[0] >= 1 else {
            throw ShapeError("an LSTM expects [steps, \(inputs)] sequences, got \(input)")
        }
        return sequence ? [input[0], hidden] : [hidden]
    }

    public var sizes: [Int] { [inputs, hidden] }
    public var text: String { "lstm(\(inputs)->\(hidden)\(sequence ? ", sequence" : ""))" }
}
