/// An elementwise nonlinearity.
public enum Activation: String, Codable, Sendable, CaseIterable {
    case relu, tanh, sigmoid, leakyRelu = "leaky_relu", identity
    /// x for x > 0, e^x - 1 otherwise.
    case elu
    /// x * sigmoid(1.702 x), the sigmoid approximation of GELU.
    case gelu
    /// x * sigmoid(x) (SiLU).
    case swish

    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .relu: x.relu()
        case .tanh: x.tanh()
        case .sigmoid: x.sigmoid()
        case .leakyRelu: x.leakyRelu()
        case .identity: x
        case .elu: x.relu() + ((x - x.relu()).exp() - 1)
        case .gelu: x * (x * 1.702).sigmoid()
        case .swish: x * x.sigmoid()
        }
    }
}

/// How a parameter tensor starts.
public enum Initializer: String, Codable, Sendable, CaseIterable {
    /// U(-1/sqrt(fanIn), 1/sqrt(fanIn)): PyTorch's default for Linear and Conv2d weights and
    /// biases (kaiming_uniform with a = sqrt(5)).
    case fanInUniform = "fan_in_uniform"
    /// N(0, 2/fanIn): Kaiming/He normal for ReLU networks.
    case kaimingNormal = "kaiming_normal"
    /// U(-a, a) with a = sqrt(6/(fanIn + fanOut)): Glorot/Xavier uniform.
    case xavierUniform = "xavier_uniform"
    case zeros, ones

    func make(shape: [Int], fanIn: Int, fanOut: Int, using rng: inout RandomGenerator) -> Tensor {
        switch self {
        case .fanInUniform:
            let bound = 1 / Float(max(fanIn, 1)).squareRoot()
            return .uniform(shape, low: -bound, high: bound, using: &rng)
        case .kaimingNormal:
            return .normal(shape, standardDeviation: (2 / Float(max(fanIn, 1))).squareRoot(), using: &rng)
        case .xavierUniform:
            let bound = (6 / Float(max(fanIn + fanOut, 1))).squareRoot()
            return .uniform(shape, low: -bound, high: bound, using: &rng)
        case .zeros: return .zeros(shape)
        case .ones: return .ones(shape)
        }
    }
}

/// The description of one parameter tensor of a layer.
public struct ParameterSpec: Codable, Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var initializer: Initializer
    public var fanIn: Int
    public var fanOut: Int
}

/// One layer of a ``Sequential`` network. Layers hold no tensors: parameters live in a flat
/// list owned by the network (or passed in as fast weights), which is what lets a forward
/// pass run with any parameter set.
///
/// Images use the NHWC layout `[batch, height, width, channels]`. With task batching every
/// activation has an extra leading task axis and every parameter a leading task axis too.
public enum Layer: Codable, Sendable, Equatable {
    case linear(inputs: Int, outputs: Int)
    case conv2d(inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int)
    /// Batch normalisation with batch statistics over every axis but the last (channels or
    /// features), then a learned per-channel scale and shift.
    case batchNorm(channels: Int)
    case maxPool2d(size: Int)
    case flatten
    case activation(Activation)
    /// A layer kind of its own file (LayerModule.swift): layer norm, pooling, nested
    /// sequences and residual blocks, LSTMs.
    case module(AnyLayer)

    /// The parameters this layer needs, in order.
    public func parameterSpecs(weightInit: Initializer) -> [ParameterSpec] {
        switch self {
        case let .linear(i, o):
            return [ParameterSpec(name: "weight", shape: [i, o], initializer: weightInit, fanIn: i, fanOut: o),
                    ParameterSpec(name: "bias", shape: [o], initializer: .fanInUniform, fanIn: i, fanOut: o)]
        case let .conv2d(ci, co, k, _, _):
            let fanIn = ci * k * k
            return [ParameterSpec(name: "weight", shape: [fanIn, co], initializer: weightInit, fanIn: fanIn, fanOut: co * k * k),
                    ParameterSpec(name: "bias", shape: [co], initializer: .fanInUniform, fanIn: fanIn, fanOut: co)]
        case let .batchNorm(c):
            return [ParameterSpec(name: "scale", shape: [c], initializer: .ones, fanIn: c, fanOut: c),
                    ParameterSpec(name: "shift", shape: [c], initializer: .zeros, fanIn: c, fanOut: c)]
        case .maxPool2d, .flatten, .activation:
            return []
        case let .module(m):
            return m.module.parameterSpecs(weightInit: weightInit)
        }
    }

    /// Applies the layer. `parameters` are this layer's own, in spec order; `tasks` is the
    /// size of the leading task axis when running a batch of tasks with per-task parameters.
    public func apply(_ x: Tensor, parameters p: ArraySlice<Tensor>, tasks: Int?) -> Tensor {
        let p = Array(p)
        switch self {
        case .linear:
            if tasks != nil, p[0].rank == 3 || p[1].rank == 2 {
                // Per-task weights (or a per-task bias): give both a task axis.
                let t = x.shape[0]
                let w = p[0].rank == 3 ? p[0] : p[0].broadcast(to: [t] + p[0].shape)
                let b = p[1].rank == 2 ? p[1] : p[1].broadcast(to: [t] + p[1].shape)
                return Tensor.affine(x, w, b)
            }
            return Tensor.affine(x, p[0], p[1])
        case let .conv2d(_, _, k, stride, padding):
            let g = WindowGeometry(kernel: k, stride: stride, padding: padding)
            // Per-task filters [T, kkC, O] are filter groups over the folded [T * N, H, W, C];
            // a per-task bias with shared filters gives the filters a task axis too.
            var w = p[0]
            if let tasks, x.rank == 5, w.rank == 2, p[1].rank == 2 { w = w.broadcast(to: [tasks] + w.shape) }
            return foldingTasks(x, tasks: tasks) { Tensor.convolution($0, w, bias: p[1], geometry: g) }
        case let .batchNorm(c):
            let axes = Array((tasks == nil ? 0 : 1)..<(x.rank - 1))
            let normalized = x.normalized(overAxes: axes)
            if let tasks, p[0].rank == 2 {
                let shape = [tasks] + Array(repeating: 1, count: x.rank - 2) + [c]
                return normalized * p[0].reshaped(to: shape) + p[1].reshaped(to: shape)
            }
            return normalized * p[0] + p[1]
        case let .maxPool2d(size):
            return foldingTasks(x, tasks: tasks) { $0.maxPooled(size: size) }
        case .flatten:
            let lead = tasks == nil ? 1 : 2
            return x.reshaped(to: Array(x.shape.prefix(lead)) + [x.shape.dropFirst(lead).reduce(1, *)])
        case let .activation(f):
            return f(x)
        case let .module(m):
            return m.module.apply(x, parameters: p[...], tasks: tasks)
        }
    }

    /// A batch-norm layer followed by ReLU in one fused operation (the same values and
    /// derivatives as the two layers), or nil when this is not a batch-norm layer or its
    /// parameters differ per task across several tasks.
    func applyBatchNormThenReLU(_ x: Tensor, parameters p: ArraySlice<Tensor>, tasks: Int?) -> Tensor? {
        guard case let .batchNorm(c) = self else { return nil }
        let p = Array(p)
        guard p[0].count == c, p[1].count == c else { return nil }
        let axes = Array((tasks == nil ? 0 : 1)..<(x.rank - 1))
        return x.normalized(overAxes: axes).scaledShiftedReLU(scale: p[0], shift: p[1])
    }

    /// A batch-norm layer followed by ReLU and a max-pool in one fused operation (the same
    /// values and derivatives as the three layers), or nil when this is not a batch-norm layer
    /// over images or its parameters differ per task across several tasks.
    func applyBatchNormReLUMaxPool(_ x: Tensor, poolSize: Int, parameters p: ArraySlice<Tensor>, tasks: Int?) -> Tensor? {
        guard case let .batchNorm(c) = self else { return nil }
        let p = Array(p)
        guard p[0].count == c, p[1].count == c, x.rank == (tasks == nil ? 4 : 5) else { return nil }
        // With tasks, each task's images are a statistics group of the folded batch.
        let groups = tasks == nil ? 1 : x.shape[0]
        return foldingTasks(x, tasks: tasks) {
            $0.normalizedReLUMaxPooled(scale: p[0], shift: p[1], poolSize: poolSize, groups: groups)
        }
    }

    /// Runs an image operation on `[T, N, H, W, C]` by folding tasks into the batch.
    private func foldingTasks(_ x: Tensor, tasks: Int?, _ body: (Tensor) -> Tensor) -> Tensor {
        guard tasks != nil, x.rank == 5 else { return body(x) }
        let y = body(x.reshaped(to: [x.shape[0] * x.shape[1]] + x.shape.suffix(3)))
        return y.reshaped(to: [x.shape[0], x.shape[1]] + y.shape.suffix(3))
    }

    /// The output shape for one example of shape `input` (no batch axis), or an error that
    /// says why the layer cannot take it.
    public func outputShape(for input: [Int]) throws(ShapeError) -> [Int] {
        switch self {
        case let .linear(i, o):
            guard input.last == i else { throw ShapeError("linear layer expects \(i) features, got shape \(input)") }
            return Array(input.dropLast()) + [o]
        case let .conv2d(ci, co, k, s, p):
            guard input.count == 3, input[2] == ci else {
                throw ShapeError("conv2d expects [height, width, \(ci)] images, got \(input)")
            }
            let g = WindowGeometry(kernel: k, stride: s, padding: p)
            guard let h = g.outputExtent(input[0]), let w = g.outputExtent(input[1]) else {
                throw ShapeError("a \(k)x\(k) convolution does not fit a \(input[0])x\(input[1]) image")
            }
            return [h, w, co]
        case let .batchNorm(c):
            guard input.last == c else { throw ShapeError("batch norm expects \(c) channels, got shape \(input)") }
            return input
        case let .maxPool2d(size):
            guard input.count == 3, input[0] >= size, input[1] >= size else {
                throw ShapeError("max-pool \(size)x\(size) expects [height, width, channels] of at least \(size)x\(size), got \(input)")
            }
            return [input[0] / size, input[1] / size, input[2]]
        case .flatten:
            return [input.reduce(1, *)]
        case .activation:
            return input
        case let .module(m):
            return try m.module.outputShape(for: input)
        }
    }

    /// Every size the layer was given.
    public var sizes: [Int] {
        switch self {
        case let .linear(i, o): [i, o]
        case let .conv2d(ci, co, k, s, _): [ci, co, k, s]
        case let .batchNorm(c): [c]
        case let .maxPool2d(size): [size]
        case .flatten, .activation: []
        case let .module(m): m.module.sizes
        }
    }

    /// The layer as metaq prints it: `linear(1->40)`, `conv3x3(1->64, pad 1)`, `relu`.
    public var text: String {
        switch self {
        case let .linear(i, o): "linear(\(i)->\(o))"
        case let .conv2d(i, o, k, s, p): "conv\(k)x\(k)(\(i)->\(o)\(s != 1 ? ", stride \(s)" : "")\(p != 0 ? ", pad \(p)" : ""))"
        case let .batchNorm(c): "batchnorm(\(c))"
        case let .maxPool2d(s): "maxpool(\(s))"
        case .flatten: "flatten"
        case let .activation(a): a.rawValue
        case let .module(m): m.module.text
        }
    }
}
