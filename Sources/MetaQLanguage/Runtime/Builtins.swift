import Foundation
import MetaQEngine

/// A block constructor such as `mlp < ... >` or `maml < ... >`.
public struct BlockBuiltin: @unchecked Sendable {
    public let schema: BlockSchema
    let make: (ValidatedBlock, Interpreter) throws -> Value
}

/// A positional or labelled argument of a builtin function call.
public struct BuiltinArgument {
    public let label: String?
    public let value: Value
    public let range: SourceRange
}

/// A builtin function such as `len(x)` or `sin(x)`.
public struct BuiltinFunction: @unchecked Sendable {
    public let doc: FunctionDoc
    /// How many arguments it takes, when fixed (`metaq check` reports other counts).
    public var arity: ClosedRange<Int>? = nil
    let call: ([BuiltinArgument], SourceRange, Interpreter) throws -> Value

    init(doc: FunctionDoc, arity: ClosedRange<Int>? = nil, call: @escaping ([BuiltinArgument], SourceRange, Interpreter) throws -> Value) {
        self.doc = doc
        self.arity = arity
        self.call = call
    }
}

/// A command argument after evaluation.
public struct CommandArgumentValue {
    public let connector: Connector?
    public let value: Value
    public let range: SourceRange
}

/// One command call: `train m on sine < iters 100 >`.
public struct CommandInvocation {
    public let name: Identifier
    public let arguments: [CommandArgumentValue]
    public let options: ValidatedBlock
    public let range: SourceRange

    /// The file name after `to` (`save m to "f.mqm"`), which must be a string.
    func destinationPath(_ what: String) throws -> (path: String, range: SourceRange) {
        let target = try argument(.to, what)
        guard case let .string(path) = target.value else {
            throw RuntimeError("'\(name.name) ... to' needs a file name string", at: target.range)
        }
        return (path, target.range)
    }

    /// The argument introduced by `connector` (nil: the first, unintroduced one).
    func argument(_ connector: Connector?, _ what: String) throws -> CommandArgumentValue {
        guard let a = arguments.first(where: { $0.connector == connector }) else {
            let form = connector.map { "'\($0.rawValue) \(what)'" } ?? what
            throw RuntimeError("'\(name.name)' needs \(form)", at: range)
        }
        return a
    }
}

/// A command such as `train`, `eval` or `print`.
public struct CommandBuiltin: @unchecked Sendable {
    public let doc: FunctionDoc
    public let options: BlockSchema
    let run: (CommandInvocation, Interpreter) throws -> Value
}

/// The language's builtins. Their schemas and docs are the single source for validation,
/// REPL completion, `:help` and docs/LANGUAGE.md.
public enum Builtins {
    public static let blocks: [String: BlockBuiltin] = Dictionary(
        uniqueKeysWithValues: (modelBlocks + layerModelBlocks + layerBlocks + taskBlocks + imageTaskBlocks + learnerBlocks + environmentBlocks + [scriptEnvironmentBlock, mamlRLBlock, scriptLearnerBlock] + continualBlocks + streamBlocks).map { ($0.schema.name, $0) })
    public static let commands: [String: CommandBuiltin] = Dictionary(
        uniqueKeysWithValues: (commandList + streamCommands + imageCommands).map { ($0.doc.name, $0) })
    public static let functions: [String: BuiltinFunction] = Dictionary(
        uniqueKeysWithValues: (functionList + tensorFunctionList + rlFunctionList).map { ($0.doc.name, $0) })

    /// The words that declare a name (`model net = ...`) and the category of value each
    /// declares: the one list the checker, the interpreter and REPL completion read.
    public static let declarationKinds: [(keyword: String, category: BlockSchema.Category)] = [
        ("model", .model), ("tasks", .tasks), ("env", .environment), ("learner", .learner), ("stream", .stream),
    ]

    /// "model, tasks, env, learner or stream", for messages.
    static var declarationKindList: String {
        let words = declarationKinds.map(\.keyword)
        return words.dropLast().joined(separator: ", ") + " or " + words.last!
    }

    static func install(into env: Environment) {
        for (name, f) in functions {
            env.define(name, .function(Function(name: name, body: .builtin(f))))
        }
    }

    /// Every block schema, commands' option blocks included, by name.
    public static var allSchemas: [BlockSchema] {
        blocks.values.map(\.schema).sorted { $0.name < $1.name } + (commandList + streamCommands + imageCommands).map(\.options)
    }

    /// The schema of the block or nested block at a path such as `["maml", "inner"]`.
    public static func schema(at path: [String]) -> BlockSchema? {
        guard let first = path.first else { return nil }
        var schema = blocks[first]?.schema ?? commands[first]?.options
        for key in path.dropFirst() {
            guard let s = schema, case let .record(inner)? = s.key(key)?.type else { return nil }
            schema = inner
        }
        return schema
    }
}

// MARK: Models

extension Builtins {
    static let activationNames = Activation.allCases.filter { $0 != .identity }.map(\.rawValue)

    static let modelBlocks: [BlockBuiltin] = [
        BlockBuiltin(schema: BlockSchema(
            "mlp", .model, summary: "A multilayer perceptron: linear layers with an activation between them. `mlp < in 1 hidden [40, 40] out 1 >` is `sequential < in [1] layers [dense < out 40 >, relu, dense < out 40 >, relu, dense < out 1 >] >`.",
            keys: [
                KeySpec("in", .size, default: nil, "input features"),
                KeySpec("hidden", .intList, default: "[40, 40]", "sizes of the hidden layers"),
                KeySpec("out", .size, default: nil, "outputs (1 for regression, N for N-way classification, the embedding size for a ProtoNet)"),
                KeySpec("act", .choice(activationNames), default: "relu", "activation between layers"),
                KeySpec("init", .choice(Initializer.allCases.filter { $0 != .zeros && $0 != .ones }.map(\.rawValue)), default: "fan_in_uniform", "weight initialisation"),
                KeySpec("flatten", .bool, default: "false", "flatten each input (an image) into `in` features first"),
            ],
            example: "model net = mlp < in 1 hidden [40, 40] out 1 act relu >")) { b, interp in
            let sizes = [b.int("in")] + b.ints("hidden") + [b.int("out")]
            guard sizes.allSatisfy({ $0 > 0 }) else { throw b.error("layer sizes must be positive", key: "hidden") }
            if let large = sizes.first(where: { $0 > Limits.maximumSize }) {
                throw b.error("layer size \(large) is too large (at most \(Limits.maximumSize))", key: "hidden")
            }
            var layers: [Layer] = b.bool("flatten") ? [.flatten] : []
            for i in 0..<(sizes.count - 1) {
                layers.append(.linear(inputs: sizes[i], outputs: sizes[i + 1]))
                if i + 1 < sizes.count - 1 { layers.append(.activation(Activation(rawValue: b.string("act")!)!)) }
            }
            try Limits.requireParameters(layers, for: "this mlp", at: b.range)
            let net = Sequential(layers: layers, weightInit: Initializer(rawValue: b.string("init")!)!, using: &interp.rng)
            return .model(ModelValue(network: net, kind: "mlp", inputShape: [b.int("in")]))
        },
        BlockBuiltin(schema: BlockSchema(
            "conv4", .model,
            summary: "The 4-block convolutional network of MAML and Prototypical Networks: each block a 3x3 convolution, batch norm, ReLU and 2x2 max-pool; then a linear classifier, or none for an embedding network. Batch norm is transductive, as in the MAML and ProtoNet reference code: it normalises with the statistics of the images in the forward pass, in meta-training and at meta-test alike, and keeps no running averages. `conv4 < out 5 >` is `sequential < in [28, 28, 1] layers [b, b, b, b, flatten < >, dense < out 5 >] >` with the block `b = [conv < out 64 kernel 3 pad 1 >, batchnorm < >, relu, maxpool < size 2 >]` and kaiming_normal initialisation.",
            keys: [
                KeySpec("size", .int(min: 16, max: 512), default: "28", "input image side in pixels"),
                KeySpec("channels", .size, default: "1", "input channels"),
                KeySpec("filters", .size, default: "64", "filters per convolution"),
                .optional("out", .size, "classes of the linear classifier; omit for an embedding network (ProtoNet)"),
            ],
            example: "model net = conv4 < size 28 filters 64 out 5 >")) { b, interp in
            let layers = Sequential.conv4Layers(imageSize: b.int("size"), channels: b.int("channels"), filters: b.int("filters"),
                                                classes: b.optionalInt("out"))
            try Limits.requireParameters(layers, for: "this conv4", at: b.range)
            let net = Sequential(layers: layers, weightInit: .kaimingNormal, using: &interp.rng)
            return .model(ModelValue(network: net, kind: "conv4", inputShape: [b.int("size"), b.int("size"), b.int("channels")]))
        },
    ]
}

// MARK: Task distributions

extension Builtins {
    static let shotKeys = [
        KeySpec("support", .size, default: "10", "support (adaptation) examples per task"),
        KeySpec("query", .size, default: "10", "query (evaluation) examples per task"),
    ]

    static let taskBlocks: [BlockBuiltin] = [
        BlockBuiltin(schema: BlockSchema(
            "sinusoid", .tasks, summary: "Sinusoid regression tasks y = amplitude * sin(x - phase) (Finn et al. 2017).",
            keys: [
                KeySpec("amplitude", .range, default: "0.1..5.0", "amplitude range"),
                KeySpec("phase", .range, default: "0..pi", "phase range"),
                KeySpec("x", .range, default: "-5..5", "input range"),
                KeySpec("noise", .positive, default: "0", "standard deviation of Gaussian target noise"),
            ] + shotKeys,
            example: "tasks sine = sinusoid < amplitude 0.1..5.0 phase 0..pi x -5..5 support 10 query 10 >")) { b, _ in
            var d = RegressionTasks.sinusoid(amplitude: b.range("amplitude"), phase: b.range("phase"), inputRange: b.range("x"))
            d.noise = Float(b.number("noise"))
            return .tasks(TasksValue(distribution: d, kind: "sinusoid", support: b.int("support"), query: b.int("query"),
                                     summary: "amplitude \(b.record["amplitude"]!.displayText), phase \(b.record["phase"]!.displayText), x \(b.record["x"]!.displayText), \(b.int("support")) support / \(b.int("query")) query"))
        },
        BlockBuiltin(schema: BlockSchema(
            "linear", .tasks, summary: "Linear regression tasks y = slope * x + intercept.",
            keys: [
                KeySpec("slope", .range, default: "-3..3", "slope range"),
                KeySpec("intercept", .range, default: "-3..3", "intercept range"),
                KeySpec("x", .range, default: "-5..5", "input range"),
                KeySpec("noise", .positive, default: "0", "standard deviation of Gaussian target noise"),
            ] + shotKeys,
            example: "tasks lines = linear < slope -2..2 intercept 0..1 >")) { b, _ in
            var d = RegressionTasks.line(slope: b.range("slope"), intercept: b.range("intercept"), inputRange: b.range("x"))
            d.noise = Float(b.number("noise"))
            return .tasks(TasksValue(distribution: d, kind: "linear", support: b.int("support"), query: b.int("query"),
                                     summary: "slope \(b.record["slope"]!.displayText), intercept \(b.record["intercept"]!.displayText), \(b.int("support")) support / \(b.int("query")) query"))
        },
        BlockBuiltin(schema: BlockSchema(
            "regression", .tasks,
            summary: "A family of 1-D regression tasks written in the language: f(x, p1, p2, ...) with each task drawing its parameters from the ranges given as extra keys named after f's parameters.",
            keys: [
                KeySpec("f", .function, default: nil, "the family, a function of x (a tensor of points) and the task parameters"),
                KeySpec("x", .range, default: "-5..5", "input range"),
                KeySpec("noise", .positive, default: "0", "standard deviation of Gaussian target noise"),
            ] + shotKeys,
            extraKeys: "one range per parameter of f after x, named like the parameter",
            example: "tasks quad = regression < f fn(x, a, b) -> a * x * x + b  a -1..1  b 0..2  x -3..3 >")) { b, interp in
            guard case let .function(f)? = b.record["f"], case let .script(parameters, _, _) = f.body, parameters.count >= 1 else {
                throw b.error("'f' must be a function written in the script, taking x first", key: "f")
            }
            var ranges: [(name: String, range: ClosedRange<Float>)] = []
            for p in parameters.dropFirst() {
                guard let v = b.record[p] else {
                    throw b.error("'regression' needs a range for parameter '\(p)' of f, e.g. '\(p) -1..1'", key: "f")
                }
                guard case let .range(lo, hi) = v else {
                    throw b.error("key '\(p)' of 'regression' expects a range a..b, got \(v.typeName)", key: p)
                }
                ranges.append((p, Float(min(lo, hi))...Float(max(lo, hi))))
            }
            let known = Set(b.schema.keys.map(\.name) + parameters.dropFirst())
            if let stray = b.keyRanges.keys.sorted().first(where: { !known.contains($0) }) {
                let hint = nearest(stray, in: Array(known)).map { "; did you mean '\($0)'?" } ?? ""
                throw b.error("unknown key '\(stray)' in 'regression': f has no parameter '\(stray)'\(hint)", key: stray)
            }
            let box = InterpreterBox(interp)
            let callRange = b.range(of: "f")
            var d = RegressionTasks(name: "regression", parameterRanges: ranges, inputRange: b.range("x")) { x, params in
                let args = [(String?.none, Value.tensor(x), callRange)] + params.map { (String?.none, Value.float(Double($0)), callRange) }
                switch try box.interpreter.call(f, arguments: args, at: callRange) {
                case let .tensor(t): return t.broadcast(to: x.shape)
                case let v where v.number != nil: return Tensor.full(Float(v.number!), shape: x.shape)
                case let v: throw RuntimeError("the task function returned a \(v.typeName); it must return a number or tensor", at: callRange)
                }
            }
            d.noise = Float(b.number("noise"))
            return .tasks(TasksValue(distribution: d, kind: "regression", support: b.int("support"), query: b.int("query"),
                                     summary: "f(\(parameters.joined(separator: ", "))), " + ranges.map { "\($0.name) \(Value.format(Double($0.range.lowerBound)))..\(Value.format(Double($0.range.upperBound)))" }.joined(separator: ", ")))
        },
        BlockBuiltin(schema: BlockSchema(
            "omniglot", .tasks,
            summary: "N-way K-shot classification over images in the Omniglot layout ROOT/<alphabet>/<character>/<image>.png, resized to size x size. The first load decodes every image and writes the results to one cache file (in ROOT/.metaq-cache, or ~/.cache/metaq/images when ROOT is not writable, or 'cache_dir'), as 'images' does; later loads with the same size map that file instead of decoding, and it is rebuilt when an image is added, removed, renamed or changed or the file is damaged.",
            keys: [
                KeySpec("root", .string, default: nil, "the folder of alphabet folders"),
                KeySpec("ways", .int(min: 2, max: 10_000), default: "5", "classes per task"),
                KeySpec("support", .size, default: "1", "support images per class (K shots)"),
                KeySpec("query", .size, default: "15", "query images per class"),
                .optional("alphabets", .stringList, "alphabets to draw classes from (default: all)"),
                KeySpec("rotations", .bool, default: "false", "count 90/180/270-degree rotations as extra classes"),
                KeySpec("within_alphabet", .bool, default: "false", "draw all classes of a task from one alphabet"),
                KeySpec("size", .int(min: 4, max: 512), default: "28", "image side after resizing"),
                KeySpec("shift", .number(min: 0, max: 64), default: "0", "augmentation: random translation of up to this many pixels along each axis"),
                KeySpec("angle", .number(min: 0, max: 180), default: "0", "augmentation: random rotation of up to this many degrees either way"),
                KeySpec("zoom", .number(min: 0, max: 0.9), default: "0", "augmentation: random scaling by a factor in 1 - zoom .. 1 + zoom"),
                KeySpec("cache", .bool, default: "true", "keep the decoded images in a cache file, mapped into memory on later loads (false: decode every time, write nothing)"),
                .optional("cache_dir", .string, "the cache folder (default ROOT/.metaq-cache, or ~/.cache/metaq/images if that cannot be written)"),
            ],
            example: "tasks train = omniglot < root \"data/images_background\" ways 5 support 1 query 15 rotations true >")) { b, interp in
            let root = b.string("root")!
            let size = b.int("size")
            let cache = try imageCache(b)
            let cacheKey = "\(root)#\(size)#\(cache)"
            let data: ImageFolderDataset
            if let cached = interp.datasets[cacheKey] { data = cached } else {
                do { data = try ImageFolderDataset(root: root, imageSize: size, cache: cache) } catch { throw b.error("\(error)", key: "root") }
                interp.datasets[cacheKey] = data
            }
            var d: ImageClassificationTasks
            do {
                d = try ImageClassificationTasks(dataset: data, alphabets: b.strings("alphabets"), ways: b.int("ways"),
                                                 rotations: b.bool("rotations"), withinAlphabet: b.bool("within_alphabet"))
                try data.requireImages(shots: b.int("support"), queries: b.int("query"), classes: d.classes)
            } catch { throw b.error("\(error)", key: b.keyRanges["alphabets"] != nil ? "alphabets" : "ways") }
            let augmentation = ImageAugmentation(shift: Float(b.number("shift")), angle: Float(b.number("angle")), zoom: Float(b.number("zoom")))
            if !augmentation.isIdentity { d.augmentation = augmentation }
            return .tasks(TasksValue(distribution: d, kind: "omniglot", support: b.int("support"), query: b.int("query"),
                                     summary: "\(b.int("ways"))-way \(b.int("support"))-shot, \(d.classCount) classes from \(b.strings("alphabets")?.count ?? data.alphabets.count) alphabets in \(root)\(cacheNote(data.cacheOutcome))" + (d.augmentation.map { ", augmented (shift \(Value.format(Double($0.shift))), angle \(Value.format(Double($0.angle))), zoom \(Value.format(Double($0.zoom))))" } ?? "")))
        },
        BlockBuiltin(schema: BlockSchema(
            "csv", .tasks,
            summary: "Tasks from a CSV file: rows grouped by a task-id column, feature columns as inputs, a target column (regression values, or class labels with classification).",
            keys: [
                KeySpec("path", .string, default: nil, "the CSV file (header row first)"),
                KeySpec("task", .string, default: "\"task\"", "the task-id column"),
                KeySpec("target", .string, default: "\"y\"", "the target column"),
                .optional("features", .stringList, "feature columns (default: every other column)"),
                KeySpec("classification", .bool, default: "false", "targets are integer class labels"),
                KeySpec("support", .size, default: "5", "support rows per task"),
                KeySpec("query", .size, default: "5", "query rows per task"),
            ],
            example: "tasks mine = csv < path \"tasks.csv\" task \"id\" target \"y\" support 5 query 10 >")) { b, _ in
            let d: CSVTasks
            do {
                let table = try CSVTaskTable(path: b.string("path")!, taskColumn: b.string("task")!,
                                             featureColumns: b.strings("features"), targetColumn: b.string("target")!)
                d = try CSVTasks(table: table, classification: b.bool("classification"))
            } catch { throw b.error("\(error)", key: "path") }
            return .tasks(TasksValue(distribution: d, kind: "csv", support: b.int("support"), query: b.int("query"),
                                     summary: "\(d.table.tasks.count) tasks, \(d.table.featureCount) features from \(b.string("path")!)"))
        },
    ]
}

/// Lets an engine callback (a task family written in the script) call back into the
/// interpreter that owns it; the interpreter runs on one thread.
final class InterpreterBox: @unchecked Sendable {
    let interpreter: Interpreter
    init(_ interpreter: Interpreter) { self.interpreter = interpreter }
}
