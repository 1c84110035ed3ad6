/// A differentiable function with a flat list of parameter tensors, callable with its own
/// parameters or with any other parameter list of the same shapes ("fast weights").
public protocol Module: AnyObject {
    var parameters: [Tensor] { get set }
    var parameterSpecs: [ParameterSpec] { get }
    /// The forward pass with the given parameters; `tasks` is the size of a leading task
    /// axis on the input when every parameter also carries one (a batch of adapted models).
    func forward(_ input: Tensor, parameters: [Tensor], tasks: Int?) -> Tensor
}

extension Module {
    /// The forward pass with the module's own parameters.
    public func callAsFunction(_ input: Tensor) -> Tensor {
        forward(input, parameters: parameters, tasks: nil)
    }

    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }
}

/// A network that applies layers one after another.
///
/// ```swift
/// var rng = RandomGenerator(seed: 1)
/// let net = Sequential.mlp(sizes: [1, 40, 40, 1], activation: .relu, using: &rng)
/// let y = net(Tensor(shape: [5, 1], values: [0, 1, 2, 3, 4]))
/// let adapted = net.parameters.map { $0 * 0.5 }
/// let z = net.forward(x, parameters: adapted, tasks: nil)   // same network, other weights
/// ```
public final class Sequential: Module, @unchecked Sendable {
    public let layers: [Layer]
    public let parameterSpecs: [ParameterSpec]
    public var parameters: [Tensor]
    /// The layers with their parameter layout and fused steps (LayerStack.swift).
    public let stack: LayerStack

    /// Builds the network and initialises its parameters from `rng`.
    public init(layers: [Layer], weightInit: Initializer = .fanInUniform, using rng: inout RandomGenerator) {
        self.layers = layers
        stack = LayerStack(layers)
        parameterSpecs = stack.parameterSpecs(weightInit: weightInit)
        self.parameters = parameterSpecs.map {
            $0.initializer.make(shape: $0.shape, fanIn: $0.fanIn, fanOut: $0.fanOut, using: &rng).requiringGradient()
        }
    }

    /// Builds the network around existing parameters (a restored checkpoint).
    public init(layers: [Layer], parameters: [Tensor]) {
        self.layers = layers
        stack = LayerStack(layers)
        parameterSpecs = stack.parameterSpecs(weightInit: .fanInUniform)
        precondition(parameterSpecs.map(\.shape) == parameters.map(\.shape), "parameters do not match the layers")
        self.parameters = parameters
    }

    public func forward(_ input: Tensor, parameters: [Tensor], tasks: Int?) -> Tensor {
        precondition(parameters.count == parameterSpecs.count, "expected \(parameterSpecs.count) parameters, got \(parameters.count)")
        return stack.forward(input, parameters: parameters[...], tasks: tasks)
    }

    /// The output shape for one example of shape `input`, or the first layer that cannot
    /// take its input.
    public func outputShape(for input: [Int]) throws(ShapeError) -> [Int] {
        try stack.outputShape(for: input)
    }

    /// Gives every parameter a leading task axis of extent `tasks` (those that already have
    /// one are kept): the starting fast weights of a batch of tasks.
    public func perTask(_ parameters: [Tensor], tasks: Int) -> [Tensor] {
        zip(parameters, parameterSpecs).map { p, spec in
            p.rank == spec.shape.count ? p.broadcast(to: [tasks] + spec.shape) : p
        }
    }

    /// The index of the last layer of the feature extractor: everything before the final
    /// linear layer (ANIL adapts only that head; Prototypical Networks embed with the body).
    public var headParameterRange: Range<Int> {
        guard let last = layers.lastIndex(where: { if case .linear = $0 { true } else { false } }) else {
            return parameters.count..<parameters.count
        }
        return stack.offsets[last]..<(last + 1 < stack.offsets.count ? stack.offsets[last + 1] : parameters.count)
    }
}

extension Sequential {
    /// A multilayer perceptron, e.g. the 1-40-40-1 ReLU network of the MAML sinusoid experiments.
    public static func mlp(
        sizes: [Int], activation: Activation = .relu, using rng: inout RandomGenerator
    ) -> Sequential {
        precondition(sizes.count >= 2, "an MLP needs input and output sizes")
        var layers: [Layer] = []
        for i in 0..<(sizes.count - 1) {
            layers.append(.linear(inputs: sizes[i], outputs: sizes[i + 1]))
            if i + 1 < sizes.count - 1 { layers.append(.activation(activation)) }
        }
        return Sequential(layers: layers, using: &rng)
    }

    /// The 4-block convolutional network of the MAML and Prototypical Networks Omniglot
    /// experiments: each block is a 3x3 convolution (padding 1), batch norm, ReLU and 2x2
    /// max-pool; then flatten, and a linear classifier when `classes` is given (omit it for
    /// an embedding network).
    public static func conv4(
        imageSize: Int = 28, channels: Int = 1, filters: Int = 64, classes: Int?,
        using rng: inout RandomGenerator
    ) -> Sequential {
        Sequential(layers: conv4Layers(imageSize: imageSize, channels: channels, filters: filters, classes: classes),
                   weightInit: .kaimingNormal, using: &rng)
    }

    /// The layers of `conv4(imageSize:channels:filters:classes:using:)`, without making its
    /// parameters (to check their size first).
    public static func conv4Layers(imageSize: Int = 28, channels: Int = 1, filters: Int = 64, classes: Int?) -> [Layer] {
        var layers: [Layer] = []
        var size = imageSize
        var inChannels = channels
        for _ in 0..<4 {
            layers += [.conv2d(inChannels: inChannels, outChannels: filters, kernel: 3, stride: 1, padding: 1),
                       .batchNorm(channels: filters), .activation(.relu), .maxPool2d(size: 2)]
            inChannels = filters
            size /= 2
        }
        layers.append(.flatten)
        if let classes { layers.append(.linear(inputs: size * size * filters, outputs: classes)) }
        return layers
    }

    /// The four residual stages of the ResNet-12 of MetaOptNet and TADAM, for images of
    /// `channels` channels: each stage three 3x3 convolutions with batch norm and leaky ReLU
    /// (none after the third batch norm), a 1x1 convolution with batch norm as the shortcut,
    /// then leaky ReLU and a 2x2 max-pool (and dropout of `dropout` after it, when above 0);
    /// each stage one nested layer.
    public static func resnet12Stages(widths: [Int], channels: Int, dropout: Float = 0) -> [Layer] {
        var layers: [Layer] = []
        var c = channels
        for w in widths {
            func conv(_ inputs: Int, _ kernel: Int) -> Layer {
                .conv2d(inChannels: inputs, outChannels: w, kernel: kernel, stride: 1, padding: kernel / 2)
            }
            let body: [Layer] = [conv(c, 3), .batchNorm(channels: w), .activation(.leakyRelu),
                                 conv(w, 3), .batchNorm(channels: w), .activation(.leakyRelu),
                                 conv(w, 3), .batchNorm(channels: w)]
            var stage: [Layer] = [.module(AnyLayer(Residual(body: body, shortcut: [conv(c, 1), .batchNorm(channels: w)]))),
                                  .activation(.leakyRelu), .maxPool2d(size: 2)]
            if dropout > 0 { stage.append(.module(AnyLayer(Dropout(rate: dropout)))) }
            layers.append(.module(AnyLayer(LayerSequence(stage))))
            c = w
        }
        return layers
    }
}
