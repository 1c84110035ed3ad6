import Foundation
import MetaQEngine

/// A runtime value of the metaq language.
public enum Value: @unchecked Sendable {
    case none
    case int(Int)
    case float(Double)
    case bool(Bool)
    case string(String)
    /// A symbol: a bare name used as a choice in a block (`act relu`, `opt adam`).
    case symbol(String)
    case list([Value])
    /// A closed numeric range `a..b`.
    case range(Double, Double)
    case record(Record)
    case tensor(Tensor)
    case function(Function)
    case model(ModelValue)
    case tasks(TasksValue)
    case learner(LearnerValue)
    case report(EvaluationReport)
    case stream(StreamValue)
    case lifelongReport(ContinualReport)
    case onlineReport(OnlineReport)

    /// The name of the value's type, as diagnostics and `:type` show it.
    public var typeName: String {
        switch self {
        case .none: "none"
        case .int: "int"
        case .float: "float"
        case .bool: "bool"
        case .string: "string"
        case .symbol: "name"
        case .list: "list"
        case .range: "range"
        case .record: "record"
        case .tensor: "tensor"
        case .function: "function"
        case .model: "model"
        case .tasks: "tasks"
        case .learner: "learner"
        case .report: "report"
        case .stream: "stream"
        case .lifelongReport: "lifelong report"
        case .onlineReport: "online report"
        }
    }

    /// The value as a number, when it is one.
    public var number: Double? {
        switch self {
        case let .int(i): Double(i)
        case let .float(f): f
        default: nil
        }
    }
}

/// An ordered record: the value of a block such as `< lr 0.01 steps 5 >`.
public struct Record: Sendable {
    public var fields: [(key: String, value: Value)]

    public init(_ fields: [(key: String, value: Value)] = []) { self.fields = fields }

    public subscript(key: String) -> Value? {
        get { fields.first { $0.key == key }?.value }
        set {
            if let i = fields.firstIndex(where: { $0.key == key }) {
                if let newValue { fields[i].value = newValue } else { fields.remove(at: i) }
            } else if let newValue {
                fields.append((key, newValue))
            }
        }
    }

    public var keys: [String] { fields.map(\.key) }
}

/// A function value: a lambda or named function of the script, or a builtin.
public final class Function: @unchecked Sendable {
    public enum Body {
        case script(parameters: [String], body: FunctionBody, closure: Environment)
        case builtin(BuiltinFunction)
    }

    public enum FunctionBody {
        case expression(Expression)
        case block(Block)
    }

    public let name: String
    public let body: Body

    public init(name: String, body: Body) {
        self.name = name
        self.body = body
    }

    public var arity: Int? {
        switch body {
        case let .script(parameters, _, _): parameters.count
        case .builtin: nil
        }
    }
}

/// A network declared in a script, with what is known about its input.
public final class ModelValue: @unchecked Sendable {
    public let network: Sequential
    /// The block the model was declared with (for printing and checkpoints).
    public let kind: String
    public let inputShape: [Int]?

    public init(network: Sequential, kind: String, inputShape: [Int]?) {
        self.network = network
        self.kind = kind
        self.inputShape = inputShape
    }
}

/// A task distribution declared in a script, with its default support and query sizes.
public final class TasksValue: @unchecked Sendable {
    public let distribution: TaskDistribution
    public let kind: String
    public let support: Int
    public let query: Int
    public let summary: String

    public init(distribution: TaskDistribution, kind: String, support: Int, query: Int, summary: String) {
        self.distribution = distribution
        self.kind = kind
        self.support = support
        self.query = query
        self.summary = summary
    }
}

/// The engine object behind a learner: a meta-learner (trained on task batches) or a
/// continual learner (trained on a stream, one task after another).
public enum LearnerEngine {
    case meta(MetaLearner)
    case continual(ContinualLearner)

    init(_ restored: RestoredLearner) {
        switch restored {
        case let .meta(m): self = .meta(m)
        case let .continual(c): self = .continual(c)
        }
    }

    var loss: LossKind {
        switch self {
        case let .meta(m): m.loss
        case let .continual(c): c.loss
        }
    }

    var model: Sequential {
        switch self {
        case let .meta(m): m.model
        case let .continual(c): c.model
        }
    }

    /// The engine learner when its state can be saved.
    var checkpointable: CheckpointableLearner? {
        switch self {
        case let .meta(m): m as? CheckpointableLearner
        case let .continual(c): c as? CheckpointableLearner
        }
    }
}

/// A learner declared in a script. The engine learner is made when it first meets tasks,
/// because the loss (regression or classification) comes from the tasks.
public final class LearnerValue: @unchecked Sendable {
    public let kind: String
    public let model: ModelValue
    public let options: Record
    public let metaBatch: Int
    /// Whether it learns streams (`lifelong`) rather than task batches (`train`).
    public let isContinual: Bool
    let make: (LossKind) throws -> LearnerEngine
    public private(set) var learner: LearnerEngine?
    /// Meta-iterations trained so far.
    public var iterations = 0
    /// The generator `train` and `meta_step` draw tasks from: split from the session's
    /// generator when the learner is declared, and saved in checkpoints, so that a run
    /// resumed from a checkpoint draws the same tasks as one that never stopped.
    public var rng: RandomGenerator

    init(kind: String, model: ModelValue, options: Record, metaBatch: Int, isContinual: Bool = false,
         rng: RandomGenerator, make: @escaping (LossKind) throws -> LearnerEngine) {
        self.kind = kind
        self.model = model
        self.options = options
        self.metaBatch = metaBatch
        self.isContinual = isContinual
        self.rng = rng
        self.make = make
    }

    /// A learner loaded from a checkpoint, ready to train or evaluate; `rng` is used when the
    /// checkpoint saved no training generator.
    init(restoring checkpoint: Checkpoint, engine: LearnerEngine, rng: RandomGenerator) {
        let name = checkpoint.learner?.configuration.name ?? "learner"
        kind = checkpoint.attributes[CheckpointAttribute.learner] ?? name
        model = ModelValue(network: engine.model, kind: checkpoint.attributes[CheckpointAttribute.model] ?? "model",
                           inputShape: checkpoint.inputShape)
        options = Record()
        metaBatch = checkpoint.attributes[CheckpointAttribute.metaBatch].flatMap { Int($0) }.map { max($0, 1) } ?? 1
        if case .continual = engine { isContinual = true } else { isContinual = false }
        make = { _ in engine }
        learner = engine
        iterations = checkpoint.step
        self.rng = checkpoint.generators[CheckpointAttribute.trainGenerator] ?? rng
    }

    /// The engine learner for tasks scored with `loss`.
    func engine(for loss: LossKind) throws -> LearnerEngine {
        if let learner {
            guard learner.loss == loss else {
                throw LearnerMismatch(message: "this \(kind) learner was trained with \(learner.loss.rawValue) tasks; these tasks use \(loss.rawValue)")
            }
            return learner
        }
        let made = try make(loss)
        learner = made
        return made
    }

    /// The learner's whole state as a checkpoint.
    func checkpoint() throws(CheckpointError) -> Checkpoint {
        guard let learner else {
            throw CheckpointError(.unsupported, "this \(kind) learner has not met any tasks yet, so its loss is unknown; train or evaluate it first, or save its model")
        }
        guard let saveable = learner.checkpointable else {
            throw CheckpointError(.unsupported, "the state of a \(kind) learner is not part of checkpoints; save its model instead")
        }
        var attributes = [CheckpointAttribute.learner: kind, CheckpointAttribute.model: model.kind,
                          CheckpointAttribute.metaBatch: String(metaBatch)]
        if case let .meta(script as ScriptLearner) = learner {
            attributes.merge(script.sourceAttributes(in: script.interpreter)) { $1 }
        }
        return Checkpoint(learner: saveable, inputShape: model.inputShape,
                          generators: [CheckpointAttribute.trainGenerator: rng], step: iterations,
                          attributes: attributes)
    }

    /// Replaces the learner's state with a checkpoint's (`train ... < resume true >`): the
    /// model's parameters (in place, so other names for the model see them), the optimiser,
    /// learned extras, the training generator and the iteration count.
    func restore(_ checkpoint: Checkpoint) throws(CheckpointError) {
        guard let snapshot = checkpoint.learner else {
            throw CheckpointError(.inconsistent, "it holds a model, not a learner")
        }
        let savedKind = checkpoint.attributes[CheckpointAttribute.learner] ?? snapshot.configuration.name
        guard savedKind == kind else {
            throw CheckpointError(.inconsistent, "it holds a \(savedKind) learner, not a \(kind) learner")
        }
        guard checkpoint.layers == model.network.layers else {
            throw CheckpointError(.inconsistent, "its model's layers differ from this learner's model")
        }
        if case let .meta(script as ScriptLearner)? = learner {
            try script.restore(snapshot, parameters: checkpoint.parameters, step: checkpoint.step)
            iterations = checkpoint.step
            if let saved = checkpoint.generators[CheckpointAttribute.trainGenerator] { rng = saved }
            return
        }
        model.network.parameters = checkpoint.parameters.map { $0.requiringGradient() }
        learner = LearnerEngine(try snapshot.makeLearner(model: model.network))
        iterations = checkpoint.step
        if let saved = checkpoint.generators[CheckpointAttribute.trainGenerator] { rng = saved }
    }
}

/// The keys the language writes into a checkpoint's attributes and generators.
enum CheckpointAttribute {
    static let learner = "learner"
    static let model = "model"
    static let metaBatch = "meta_batch"
    static let trainGenerator = "train"
}

extension ModelValue {
    /// The model alone as a checkpoint.
    func checkpoint() -> Checkpoint {
        Checkpoint(model: network, inputShape: inputShape, attributes: [CheckpointAttribute.model: kind])
    }
}

/// A task stream declared in a script.
public final class StreamValue: @unchecked Sendable {
    public let stream: TaskStream
    public let summary: String
    /// Support and query sizes for training episodes drawn from the tasks' pools.
    public let support: Int
    public let query: Int

    public init(stream: TaskStream, summary: String, support: Int, query: Int) {
        self.stream = stream
        self.summary = summary
        self.support = support
        self.query = query
    }
}

struct LearnerMismatch: Error { let message: String }

extension Value {
    /// A readable rendering: numbers, lists and records as written; tensors summarised;
    /// models with their layers and parameter count; reports as tables.
    public var displayText: String {
        switch self {
        case .none: return "none"
        case let .int(i): return String(i)
        case let .float(f): return Value.format(f)
        case let .bool(b): return b ? "true" : "false"
        case let .string(s): return s
        case let .symbol(s): return s
        case let .list(items): return "[" + items.map(\.nestedText).joined(separator: ", ") + "]"
        case let .range(a, b): return "\(Value.format(a))..\(Value.format(b))"
        case let .record(r): return "< " + r.fields.map { "\($0.key) \($0.value.nestedText)" }.joined(separator: " ") + " >"
        case let .tensor(t): return t.description
        case let .function(f): return "<function \(f.name)>"
        case let .model(m):
            let layers = m.network.layers.map(Value.layerText).joined(separator: " -> ")
            return "model \(m.kind): \(layers) (\(m.network.parameterCount) parameters)"
        case let .tasks(t): return "tasks \(t.kind): \(t.summary)"
        case let .learner(l):
            return "learner \(l.kind) on model \(l.model.kind) (\(l.model.network.parameterCount) parameters, \(l.iterations) meta-iterations trained)"
        case let .report(r): return r.description
        case let .stream(s): return "stream: \(s.stream.tasks.count) tasks, \(s.summary)"
        case let .lifelongReport(r): return r.table
        case let .onlineReport(r): return r.table
        }
    }

    /// Strings are quoted inside lists and records.
    var nestedText: String {
        if case let .string(s) = self { return "\"\(s)\"" }
        return displayText
    }

    static func format(_ f: Double) -> String {
        if f.isFinite, f == f.rounded(), abs(f) < 1e15 { return String(format: "%.1f", f) }
        return String(format: "%.6g", f)
    }

    /// A layer as metaq prints it: `linear(1->40)`, `conv3x3(1->64, pad 1)`, `relu`.
    public static func layerText(_ layer: Layer) -> String {
        switch layer {
        case let .linear(i, o): "linear(\(i)->\(o))"
        case let .conv2d(i, o, k, s, p): "conv\(k)x\(k)(\(i)->\(o)\(s != 1 ? ", stride \(s)" : "")\(p != 0 ? ", pad \(p)" : ""))"
        case let .batchNorm(c): "batchnorm(\(c))"
        case let .maxPool2d(s): "maxpool(\(s))"
        case .flatten: "flatten"
        case let .activation(a): a.rawValue
        }
    }

    /// A JSON-compatible rendering (for `--json` and `write ... to "x.json"`).
    public var jsonObject: Any {
        switch self {
        case .none: return NSNull()
        case let .int(i): return i
        case let .float(f): return f.isFinite ? f : String(f)
        case let .bool(b): return b
        case let .string(s), let .symbol(s): return s
        case let .list(items): return items.map(\.jsonObject)
        case let .range(a, b): return [a, b]
        case let .record(r): return Dictionary(r.fields.map { ($0.key, $0.value.jsonObject) }, uniquingKeysWith: { $1 })
        case let .tensor(t): return ["shape": t.shape, "values": t.scalars.map(Double.init)]
        case let .report(r):
            return ["metric": r.metric, "rows": r.rows.map { ["steps": $0.steps, "mean": $0.mean, "ci95": $0.confidence95, "tasks": $0.tasks] }]
        case let .lifelongReport(r):
            return ["method": r.method, "metric": r.metric, "tasks": r.taskNames, "matrix": r.matrix, "initial": r.initial,
                    "acc": r.averageScore, "bwt": r.backwardTransfer, "fwt": r.forwardTransfer, "forgetting": r.forgetting, "seconds": r.seconds]
        case let .onlineReport(r):
            return ["metric": r.metric, "proficiency": r.proficiency, "before": r.before, "after": r.after,
                    "steps_to_proficiency": r.stepsToProficiency, "scratch_steps_to_proficiency": r.scratchStepsToProficiency,
                    "scratch_after": r.scratchAfter, "seconds": r.seconds]
        case .function, .model, .tasks, .learner, .stream: return displayText
        }
    }
}
