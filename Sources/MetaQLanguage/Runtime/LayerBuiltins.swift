import Foundation
import MetaQEngine

// Models built from layer blocks in the language:
//
//     let block = [conv < out 48 kernel 3 pad 1 >, batchnorm < >, relu, maxpool < size 2 >]
//     model net = sequential < in [28, 28, 1] layers [block, block, block, flatten < >, linear < out 5 >] >
//
// A layer block is a value (a record naming its kind and settings, no parameters); a model
// instantiates its layers, inferring each one's input size from the shape flowing through.
// A list inside the layers is a sub-model (its parameters are named inside it: `0.1.weight`),
// so a named list is a sub-model reused with parameters of its own at each use. The
// activations are their functions' names (`relu`, `tanh`, ...).

extension Builtins {
    /// The key that marks a record as a layer block, naming its kind.
    static let layerKey = "layer"

    static func layerBlock(_ name: String, _ summary: String, keys: [KeySpec], example: String) -> BlockBuiltin {
        BlockBuiltin(schema: BlockSchema(name, .layer, summary: summary, keys: keys, example: example)) { b, _ in
            var r = b.record
            r[layerKey] = .string(name)
            return .record(r)
        }
    }

    static let layerBlocks: [BlockBuiltin] = [
        layerBlock("dense", "A fully connected layer x W + b over the last axis; its inputs are inferred.",
                   keys: [KeySpec("out", .size, default: nil, "outputs")], example: "dense < out 40 >"),
        layerBlock("conv", "A 2-D convolution of [height, width, channels] images; its input channels are inferred.",
                   keys: [KeySpec("out", .size, default: nil, "output channels (filters)"),
                          KeySpec("kernel", .int(min: 1, max: 64), default: "3", "kernel side"),
                          KeySpec("stride", .int(min: 1, max: 64), default: "1", "stride"),
                          KeySpec("pad", .int(min: 0, max: 64), default: "0", "zero padding on each side")],
                   example: "conv < out 64 kernel 3 pad 1 >"),
        layerBlock("batchnorm", "Batch normalisation over every axis but the channels, with the batch's statistics (transductive, as in the MAML and ProtoNet reference code), then a learned scale and shift. With 'per_step N', MAML++'s per-step weights and biases (Antoniou et al. 2019): N rows of scale and shift, inner-loop step k of maml, anil, metasgd and reptile using row min(k, N - 1) and every other pass (the query set after adapting, protonet, net(x)) the last row.",
                   keys: [.optional("per_step", .int(min: 1, max: InnerLoop.maximumSteps), "per-step scale and shift for this many inner steps (MAML++)")],
                   example: "batchnorm < per_step 5 >"),
        layerBlock("dropout", "Dropout: in meta-training passes each element is zeroed with probability rate and the others scaled by 1/(1 - rate); the identity when evaluating, adapting (metaq adapt, serve) or calling net(x). The masks follow from the learner's seed and iteration, so a resumed run draws what the uninterrupted one drew.",
                   keys: [KeySpec("rate", .number(min: 0, max: 0.99), default: "0.5", "the probability of zeroing an element")],
                   example: "dropout < rate 0.2 >"),
        layerBlock("layernorm", "Layer normalisation over the last axis, then a learned scale and shift.", keys: [], example: "layernorm < >"),
        layerBlock("maxpool", "Max-pooling over size x size windows with stride size.",
                   keys: [KeySpec("size", .int(min: 1, max: 64), default: "2", "window side")], example: "maxpool < size 2 >"),
        layerBlock("avgpool", "Average-pooling over size x size windows with stride size.",
                   keys: [KeySpec("size", .int(min: 1, max: 64), default: "2", "window side")], example: "avgpool < size 2 >"),
        layerBlock("global_avgpool", "The mean over each image's height and width: [H, W, C] -> [C].", keys: [], example: "global_avgpool < >"),
        layerBlock("flatten", "Each example flattened to one axis.", keys: [], example: "flatten < >"),
        layerBlock("residual", "body(x) + shortcut(x): a residual connection around a list of layers; without a shortcut it is the identity.",
                   keys: [KeySpec("body", .layers, default: nil, "the layers of the residual branch"),
                          KeySpec("shortcut", .layers, default: "[]", "the layers of the shortcut (e.g. a 1x1 conv and batch norm when the widths differ)")],
                   example: "residual < body [dense < out 64 >, tanh] >"),
        layerBlock("lstm", "A long short-term memory layer over [steps, features] sequences: every step's hidden state, or only the last one.",
                   keys: [KeySpec("hidden", .size, default: nil, "hidden units"),
                          KeySpec("sequence", .bool, default: "false", "output every step's hidden state ([steps, hidden]) instead of the last ([hidden])")],
                   example: "lstm < hidden 32 >"),
    ]

    /// The activations a layer list accepts by their function's name.
    static let layerActivations: [String: Activation] = Dictionary(
        uniqueKeysWithValues: Activation.allCases.filter { $0 != .identity }.map { ($0.rawValue, $0) })

    /// Instantiates layer values for examples of shape `input`: the layers and the output shape.
    static func resolveLayers(_ value: Value, input: [Int], at range: SourceRange) throws -> ([Layer], [Int]) {
        guard case let .list(items) = value else {
            throw RuntimeError("layers must be a list of layer blocks, got a \(value.typeName)", at: range)
        }
        var shape = input
        var layers: [Layer] = []
        for (i, item) in items.enumerated() {
            let layer: Layer
            do { (layer, shape) = try resolveLayer(item, input: shape, at: range) } catch var e as RuntimeError {
                e.message = "layer \(i): " + e.message
                throw e
            }
            layers.append(layer)
        }
        return (layers, shape)
    }

    static func resolveLayer(_ value: Value, input: [Int], at range: SourceRange) throws -> (Layer, [Int]) {
        func check(_ layer: Layer) throws -> (Layer, [Int]) {
            do { return (layer, try layer.outputShape(for: input)) } catch {
                throw RuntimeError(error.message, at: range)
            }
        }
        switch value {
        case let .function(f):
            guard let a = layerActivations[f.name] else {
                throw RuntimeError("'\(f.name)' is not a layer (activations: \(layerActivations.keys.sorted().joined(separator: ", ")))", at: range)
            }
            return try check(.activation(a))
        case .list:
            let (layers, out) = try resolveLayers(value, input: input, at: range)
            return (.module(AnyLayer(LayerSequence(layers))), out)
        case let .record(r):
            guard case let .string(kind)? = r[layerKey] else {
                throw RuntimeError("a record is not a layer; use a layer block such as conv < out 64 > (got \(value.nestedText))", at: range)
            }
            func int(_ key: String) -> Int { if case let .int(i)? = r[key] { i } else { 0 } }
            func last() throws -> Int {
                guard let n = input.last else { throw RuntimeError("\(kind) needs an input with a feature axis, got shape \(input)", at: range) }
                return n
            }
            switch kind {
            case "dense": return try check(.linear(inputs: last(), outputs: int("out")))
            case "conv":
                guard input.count == 3 else { throw RuntimeError("conv expects [height, width, channels] images, got \(input)", at: range) }
                return try check(.conv2d(inChannels: input[2], outChannels: int("out"), kernel: int("kernel"), stride: int("stride"), padding: int("pad")))
            case "batchnorm":
                if case let .int(steps)? = r["per_step"] { return try check(.module(AnyLayer(StepBatchNorm(channels: last(), steps: steps)))) }
                return try check(.batchNorm(channels: last()))
            case "dropout":
                let rate: Double = switch r["rate"] { case let .int(i)?: Double(i); case let .float(f)?: f; default: 0.5 }
                guard rate >= 0, rate < 1 else { throw RuntimeError("a dropout rate must be in 0 ..< 1, got \(Value.format(rate))", at: range) }
                return try check(.module(AnyLayer(Dropout(rate: Float(rate)))))
            case "layernorm": return try check(.module(AnyLayer(LayerNorm(features: last()))))
            case "maxpool": return try check(.maxPool2d(size: int("size")))
            case "avgpool": return try check(.module(AnyLayer(AveragePool(size: int("size")))))
            case "global_avgpool": return try check(.module(AnyLayer(GlobalAveragePool())))
            case "flatten": return try check(.flatten)
            case "lstm":
                guard input.count == 2 else { throw RuntimeError("lstm expects [steps, features] sequences, got \(input)", at: range) }
                let sequence = if case .bool(true)? = r["sequence"] { true } else { false }
                return try check(.module(AnyLayer(LSTMLayer(inputs: input[1], hidden: int("hidden"), sequence: sequence))))
            case "residual":
                let (body, _) = try resolveLayers(r["body"] ?? .list([]), input: input, at: range)
                let (shortcut, _) = try resolveLayers(r["shortcut"] ?? .list([]), input: input, at: range)
                return try check(.module(AnyLayer(Residual(body: body, shortcut: shortcut))))
            default:
                throw RuntimeError("unknown layer '\(kind)'", at: range)
            }
        default:
            throw RuntimeError("a \(value.typeName) is not a layer; use a layer block such as conv < out 64 >, a list of them, or an activation's name", at: range)
        }
    }

    static let layerModelBlocks: [BlockBuiltin] = [
        BlockBuiltin(schema: BlockSchema(
            "sequential", .model,
            summary: "A model built from layer blocks, run one after another; each layer's input size is inferred from `in`. A list inside the layers is a sub-model (reuse a named list to repeat a block with parameters of its own); activations go by their names (relu, tanh, sigmoid, leaky_relu, elu, gelu, swish).",
            keys: [
                KeySpec("in", .intList, default: nil, "the shape of one input example: [features], [height, width, channels] or [steps, features]"),
                KeySpec("layers", .layers, default: nil, "the layers"),
                KeySpec("init", .choice(Initializer.allCases.filter { $0 != .zeros && $0 != .ones }.map(\.rawValue)), default: "kaiming_normal", "weight initialisation"),
            ],
            example: "model net = sequential < in [1] layers [dense < out 40 >, tanh, layernorm < >, residual < body [dense < out 40 >, tanh] >, dense < out 1 >] >")) { b, interp in
            let input = b.ints("in")
            guard !input.isEmpty, input.allSatisfy({ $0 >= 1 && $0 <= Limits.maximumSize }) else {
                throw b.error("'in' needs a shape of sizes in 1...\(Limits.maximumSize)", key: "in")
            }
            let (layers, _) = try resolveLayers(b.record["layers"] ?? .list([]), input: input, at: b.range(of: "layers"))
            if let problem = layers.lazy.compactMap(\.sizeProblem).first { throw b.error("a layer has \(problem)", key: "layers") }
            try Limits.requireParameters(layers, for: "this model", at: b.range)
            let net = Sequential(layers: layers, weightInit: Initializer(rawValue: b.string("init")!)!, using: &interp.rng)
            return .model(ModelValue(network: net, kind: "sequential", inputShape: input))
        },
        BlockBuiltin(schema: BlockSchema(
            "resnet12", .model,
            summary: "ResNet-12 (MetaOptNet, TADAM): four residual stages of three 3x3 convolutions with batch norm and leaky ReLU, a 1x1 convolution shortcut, leaky ReLU and 2x2 max-pool; then global average pooling and, with `out`, a linear classifier (omit it for an embedding network).",
            keys: [
                KeySpec("size", .int(min: 16, max: 512), default: "84", "input image side in pixels"),
                KeySpec("channels", .size, default: "3", "input channels"),
                KeySpec("widths", .intList, default: "[64, 160, 320, 640]", "the four stages' widths"),
                KeySpec("pool", .choice(["avg", "flatten"]), default: "avg", "global average pooling or flattening after the last stage"),
                KeySpec("dropout", .number(min: 0, max: 0.99), default: "0", "dropout rate at the end of each stage, active in meta-training only (MetaOptNet uses 0.1, with DropBlock in its last two stages)"),
                .optional("out", .size, "classes of the linear classifier; omit for an embedding network (ProtoNet)"),
            ],
            example: "model embed = resnet12 < size 84 channels 3 widths [64, 160, 320, 640] >")) { b, interp in
            let widths = b.ints("widths")
            guard widths.count == 4, widths.allSatisfy({ $0 >= 1 && $0 <= 4096 }) else {
                throw b.error("'widths' needs four widths in 1...4096", key: "widths")
            }
            let input = [b.int("size"), b.int("size"), b.int("channels")]
            var layers = Sequential.resnet12Stages(widths: widths, channels: b.int("channels"), dropout: Float(b.number("dropout")))
            layers.append(b.string("pool") == "avg" ? .module(AnyLayer(GlobalAveragePool())) : .flatten)
            let features: [Int]
            do throws(ShapeError) { features = try LayerStack(layers).outputShape(for: input) } catch {
                throw b.error("a \(input[0])x\(input[1]) image does not fit: \(error.message)", key: "size")
            }
            if let out = b.optionalInt("out") { layers.append(.linear(inputs: features[0], outputs: out)) }
            try Limits.requireParameters(layers, for: "this resnet12", at: b.range)
            let net = Sequential(layers: layers, weightInit: .kaimingNormal, using: &interp.rng)
            return .model(ModelValue(network: net, kind: "resnet12", inputShape: input))
        },
    ]
}
