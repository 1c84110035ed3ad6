/// A list of layers run one after another, with its parameters laid out flat and its fused
/// steps planned once: what a ``Sequential`` network runs, and what nested layers (a
/// sequence inside a residual inside a network) run for their children.
///
/// Fusions are a pass over the layers (`plan`), made when the stack is built: a batch norm
/// followed by ReLU (and a max-pool) runs as one fused operation with the same values and
/// derivatives as the separate layers. At run time a planned fusion still falls back to the
/// separate layers when its parameters differ per task.
public struct LayerStack: Sendable, Equatable {
    /// One step of the forward pass.
    enum Step: Sendable, Equatable {
        case layer(Int)
        /// Batch norm at this index, then the ReLU after it.
        case batchNormReLU(Int)
        /// Batch norm, ReLU and the max-pool of this size after them.
        case batchNormReLUMaxPool(Int, size: Int)
    }

    public let layers: [Layer]
    /// Where each layer's parameters start in the stack's parameters.
    let offsets: [Int]
    public let parameterCount: Int
    let plan: [Step]

    public init(_ layers: [Layer]) {
        self.layers = layers
        var offsets: [Int] = []
        var count = 0
        for layer in layers {
            offsets.append(count)
            count += layer.parameterSpecs(weightInit: .fanInUniform).count
        }
        self.offsets = offsets
        parameterCount = count
        plan = LayerStack.fusionPass(layers)
    }

    /// The fusion pass: which neighbouring layers run as one operation.
    static func fusionPass(_ layers: [Layer]) -> [Step] {
        var steps: [Step] = []
        var i = 0
        while i < layers.count {
            if case .batchNorm = layers[i], i + 1 < layers.count, layers[i + 1] == .activation(.relu) {
                if i + 2 < layers.count, case let .maxPool2d(size) = layers[i + 2] {
                    steps.append(.batchNormReLUMaxPool(i, size: size))
                    i += 3
                } else {
                    steps.append(.batchNormReLU(i))
                    i += 2
                }
                continue
            }
            steps.append(.layer(i))
            i += 1
        }
        return steps
    }

    /// Every layer's parameter specs, named `INDEX.NAME` (nested layers add their own parts:
    /// `3.body.0.weight`).
    public func parameterSpecs(weightInit: Initializer) -> [ParameterSpec] {
        var specs: [ParameterSpec] = []
        for (i, layer) in layers.enumerated() {
            for var spec in layer.parameterSpecs(weightInit: weightInit) {
                spec.name = "\(i).\(spec.name)"
                specs.append(spec)
            }
        }
        return specs
    }

    private func parameters(of i: Int, in p: ArraySlice<Tensor>) -> ArraySlice<Tensor> {
        let start = p.startIndex + offsets[i]
        let end = i + 1 < offsets.count ? p.startIndex + offsets[i + 1] : p.startIndex + parameterCount
        return p[start..<end]
    }

    public func forward(_ input: Tensor, parameters p: ArraySlice<Tensor>, tasks: Int?) -> Tensor {
        var x = input
        for step in plan {
            switch step {
            case let .layer(i):
                x = layers[i].apply(x, parameters: parameters(of: i, in: p), tasks: tasks)
            case let .batchNormReLU(i):
                let own = parameters(of: i, in: p)
                x = layers[i].applyBatchNormThenReLU(x, parameters: own, tasks: tasks)
                    ?? layers[i + 1].apply(layers[i].apply(x, parameters: own, tasks: tasks), parameters: [], tasks: tasks)
            case let .batchNormReLUMaxPool(i, size):
                let own = parameters(of: i, in: p)
                if let fused = layers[i].applyBatchNormReLUMaxPool(x, poolSize: size, parameters: own, tasks: tasks) {
                    x = fused
                } else if let fused = layers[i].applyBatchNormThenReLU(x, parameters: own, tasks: tasks) {
                    x = layers[i + 2].apply(fused, parameters: [], tasks: tasks)
                } else {
                    x = layers[i].apply(x, parameters: own, tasks: tasks)
                    x = layers[i + 2].apply(layers[i + 1].apply(x, parameters: [], tasks: tasks), parameters: [], tasks: tasks)
                }
            }
        }
        return x
    }

    /// The output shape for one example of shape `input`, or the first layer that cannot
    /// take its input.
    public func outputShape(for input: [Int]) throws(ShapeError) -> [Int] {
        var shape = input
        for (i, layer) in layers.enumerated() {
            do { shape = try layer.outputShape(for: shape) } catch {
                throw ShapeError("layer \(i): \(error.message)")
            }
        }
        return shape
    }

    public static func == (a: LayerStack, b: LayerStack) -> Bool { a.layers == b.layers }
}
