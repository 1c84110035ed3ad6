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
    case list(ValueList)
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
    /// A reinforcement-learning environment family (`navigation2d < >`).
    case environment(EnvironmentValue)

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
        case .environment: "environment"
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

    /// A list of these items.
    public static func list(_ items: [Value]) -> Value { .list(ValueList(items)) }

    /// Whether the value holds other values (a list or a record).
    var isContainer: Bool {
        switch self {
        case .list, .record: true
        default: false
        }
    }

    /// Frees `values` (taking them out of their container) one level at a time, so that
    /// freeing a list or record nested 100,000 deep cannot overflow the stack. A container
    /// freed while its thread is already freeing hands its items to that outer loop instead
    /// of freeing them itself, so no release nests in another.
    static func release(_ values: inout [Value]) {
        let dismantler = Dismantler.current
        dismantler.pending.append(contentsOf: values)
        values = []
        guard !dismantler.isActive else { return }
        dismantler.isActive = true
        while let value = dismantler.pending.popLast() { _ = value }
        dismantler.isActive = false
    }
}

/// The values a thread is freeing (see `Value.release`).
final class Dismantler {
    var pending: [Value] = []
    var isActive = false

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<Dismantler>.fromOpaque(pointer).release() }
        }
        return key
    }()

    /// The calling thread's.
    static var current: Dismantler {
        if let pointer = pthread_getspecific(key) { return Unmanaged<Dismantler>.fromOpaque(pointer).takeUnretainedValue() }
        let dismantler = Dismantler()
        pthread_setspecific(key, Unmanaged.passRetained(dismantler).toOpaque())
        return dismantler
    }
}

/// The items of a list value: an array in a box whose release frees nested lists and
/// records without recursion (see `Value.release`); copied on write.
public struct ValueList: RandomAccessCollection, MutableCollection, ExpressibleByArrayLiteral, @unchecked Sendable {
    final class Storage {
        var items: [Value]
        init(_ items: [Value]) { self.items = items }
        deinit {
            if items.contains(where: \.isContainer) { Value.release(&items) }
        }
    }

    var storage: Storage

    public init(_ items: [Value] = []) { storage = Storage(items) }
    public init(arrayLiteral items: Value...) { self.init(items) }

    /// The items as an array.
    public var items: [Value] { storage.items }

    public var startIndex: Int { 0 }
    public var endIndex: Int { storage.items.count }

    public subscript(position: Int) -> Value {
        get { storage.items[position] }
        set {
            if !isKnownUniquelyReferenced(&storage) { storage = Storage(storage.items) }
            storage.items[position] = newValue
        }
    }
}

/// An ordered record: the value of a block such as `< lr 0.01 steps 5 >`. Its fields are
/// kept in a box that, like a list's, frees nested values without recursion.
public struct Record: @unchecked Sendable {
    final class Storage {
        var fields: [(key: String, value: Value)]
        init(_ fields: [(key: String, value: Value)]) { self.fields = fields }
        deinit {
            guard fields.contains(where: \.value.isContainer) else { return }
            var values = fields.map(\.value)
            fields = []
            Value.release(&values)
        }
    }

    var storage: Storage

    public var fields: [(key: String, value: Value)] {
        get { storage.fields }
        _modify {
            if !isKnownUniquelyReferenced(&storage) { storage = Storage(storage.fields) }
            yield &storage.fields
        }
    }

    public init(_ fields: [(key: String, value: Value)] = []) { storage = Storage(fields) }

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

    /// The engine of a restored task-batch or stream learner; nil for a reinforcement
    /// learner, which a LearnerValue holds apart (`rlLearner`).
    init?(_ restored: RestoredLearner) {
        switch restored {
        case let .meta(m): self = .meta(m)
        case let .continual(c): self = .continual(c)
        case .reinforcement: return nil
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
    /// For a reinforcement learner (`maml_rl`): makes its engine learner when it first
    /// meets an environment; nil for the others.
    var makeRL: ((any MetaEnvironment) throws -> MAMLRL)?
    /// The reinforcement learner, once made.
    public private(set) var rlLearner: MAMLRL?
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

    /// A reinforcement learner (`maml_rl`) loaded from a checkpoint: it trains and evaluates
    /// on any environment with the observations and actions of the one it was saved with.
    init(restoring checkpoint: Checkpoint, reinforcement engine: MAMLRL, rng: RandomGenerator) {
        kind = checkpoint.attributes[CheckpointAttribute.learner] ?? "maml_rl"
        model = ModelValue(network: engine.policy.network, kind: checkpoint.attributes[CheckpointAttribute.model] ?? "model",
                           inputShape: checkpoint.inputShape)
        options = Record()
        metaBatch = checkpoint.attributes[CheckpointAttribute.metaBatch].flatMap { Int($0) }.map { max($0, 1) } ?? 1
        isContinual = false
        make = { _ in throw LearnerMismatch(message: "'maml_rl' learns environments (navigation2d, cartpole), not task batches") }
        makeRL = { _ in engine }
        rlLearner = engine
        iterations = checkpoint.step
        self.rng = checkpoint.generators[CheckpointAttribute.trainGenerator] ?? rng
    }

    /// The reinforcement learner for `environment` (made on first use); its environment is
    /// replaced by `environment`, which must have the same observations and actions.
    func rlEngine(for environment: any MetaEnvironment) throws -> MAMLRL {
        guard let makeRL else { throw LearnerMismatch(message: "'\(kind)' learns task batches, not environments; use 'maml_rl' with an environment") }
        if let rlLearner {
            guard rlLearner.environment.observationSize == environment.observationSize,
                  rlLearner.environment.actionSpace == environment.actionSpace else {
                throw LearnerMismatch(message: "this \(kind) learner was made for \(rlLearner.environment.name), whose observations and actions differ from \(environment.name)'s")
            }
            rlLearner.environment = environment
            return rlLearner
        }
        let made = try makeRL(environment)
        rlLearner = made
        return made
    }

    /// The engine learner for tasks scored with `loss`.
    func engine(for loss: LossKind) throws -> LearnerEngine {
        if makeRL != nil { throw LearnerMismatch(message: "'\(kind)' learns environments (navigation2d, cartpole), not task batches") }
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
        if makeRL != nil {
            guard let rlLearner else {
                throw CheckpointError(.unsupported, "this \(kind) learner has not met an environment yet, so its policy is not made; train or evaluate it on one first, or save its model")
            }
            return Checkpoint(learner: rlLearner, inputShape: model.inputShape, generators: [CheckpointAttribute.trainGenerator: rng], step: iterations,
                              attributes: [CheckpointAttribute.learner: kind, CheckpointAttribute.model: model.kind,
                                           CheckpointAttribute.metaBatch: String(metaBatch)])
        }
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
        if let rlLearner {
            guard case let .reinforcement(saved) = try snapshot.makeLearner(model: Sequential(layers: checkpoint.layers, parameters: checkpoint.parameters)) else {
                throw CheckpointError(.inconsistent, "it does not hold a reinforcement learner")
            }
            guard saved.settings.distribution == rlLearner.settings.distribution, saved.policy.actions == rlLearner.policy.actions else {
                throw CheckpointError(.inconsistent, "its policy (\(saved.settings.distribution), \(saved.policy.actions) actions) differs from this learner's")
            }
            rlLearner.policy.parameters = saved.policy.parameters.map { $0.requiringGradient() }
            rlLearner.optimizer = saved.optimizer
            iterations = checkpoint.step
            if let generator = checkpoint.generators[CheckpointAttribute.trainGenerator] { rng = generator }
            return
        }
        if case let .meta(script as ScriptLearner)? = learner {
            try script.restore(snapshot, parameters: checkpoint.parameters, step: checkpoint.step)
            iterations = checkpoint.step
            if let saved = checkpoint.generators[CheckpointAttribute.trainGenerator] { rng = saved }
            return
        }
        model.network.parameters = checkpoint.parameters.map { $0.requiringGradient() }
        guard let restored = LearnerEngine(try snapshot.makeLearner(model: model.network)) else {
            throw CheckpointError(.inconsistent, "it holds a reinforcement learner, not a \(kind) learner")
        }
        learner = restored
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

/// An environment family declared in a script.
public final class EnvironmentValue: @unchecked Sendable {
    public let environment: any MetaEnvironment
    public let summary: String
    public init(environment: any MetaEnvironment, summary: String) {
        self.environment = environment
        self.summary = summary
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
        case .list, .record: return Value.render(self)
        case let .range(a, b): return "\(Value.format(a))..\(Value.format(b))"
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
        case let .environment(e): return "environment \(e.environment.name): \(e.summary)"
        }
    }

    /// Strings are quoted inside lists and records.
    var nestedText: String {
        if case let .string(s) = self { return "\"\(s)\"" }
        return displayText
    }

    /// A list or record as written, `[1, "a"]`, `< lr 0.1 steps [1, 5] >`: built with a
    /// stack of pending work instead of recursion, so any nesting depth prints.
    private static func render(_ root: Value) -> String {
        enum Work {
            case value(Value)
            case text(String)
        }
        var text = ""
        var pending: [Work] = [.value(root)]
        while let work = pending.popLast() {
            switch work {
            case let .text(t): text += t
            case let .value(.list(items)):
                text += "["
                pending.append(.text("]"))
                for (i, item) in items.enumerated().reversed() {
                    pending.append(.value(item))
                    if i > 0 { pending.append(.text(", ")) }
                }
            case let .value(.record(r)):
                text += "< "
                pending.append(.text(" >"))
                for (i, field) in r.fields.enumerated().reversed() {
                    pending.append(.value(field.value))
                    pending.append(.text((i > 0 ? " " : "") + field.key + " "))
                }
            case let .value(v):
                text += v.nestedText
            }
        }
        return text
    }

    static func format(_ f: Double) -> String {
        if f.isFinite, f == f.rounded(), abs(f) < 1e15 { return String(format: "%.1f", f) }
        return String(format: "%.6g", f)
    }

    /// A layer as metaq prints it: `linear(1->40)`, `conv3x3(1->64, pad 1)`, `relu`.
    public static func layerText(_ layer: Layer) -> String { layer.text }

    /// The value as JSON text (for `--json` and `write ... to "x.json"`): lists as arrays,
    /// records as objects with sorted keys, reports as objects of their fields, models and
    /// other engine objects as their printed text. JSON has no NaN or infinity: such floats
    /// are written as the strings "nan", "inf" and "-inf". Written with a stack of pending
    /// work instead of recursion, so any nesting depth is written.
    public func jsonText(pretty: Bool = false) -> String {
        JSONText(pretty: pretty).text(of: self)
    }

    /// The JSON form of a value that holds no other values, as Foundation objects; lists and
    /// records are written by `JSONText` itself.
    fileprivate var leafJSONObject: Any {
        switch self {
        case .none: return NSNull()
        case let .int(i): return i
        case let .float(f): return f
        case let .bool(b): return b
        case let .string(s), let .symbol(s): return s
        case .list, .record: preconditionFailure("lists and records are written by JSONText")
        case let .range(a, b): return [a, b]
        case let .tensor(t): return ["shape": t.shape, "values": t.scalars.map(Double.init)]
        case let .report(r):
            var object: [String: Any] = ["metric": r.metric, "rows": r.rows.map { row -> [String: Any] in
                var fields: [String: Any] = ["steps": row.steps, "mean": row.mean, "ci95": row.confidence95, "tasks": row.tasks]
                if let scores = row.scores { fields["scores"] = scores }
                return fields
            }]
            if let names = r.episodes { object["episodes"] = names }
            return object
        case let .lifelongReport(r):
            return ["method": r.method, "metric": r.metric, "tasks": r.taskNames, "matrix": r.matrix, "initial": r.initial,
                    "acc": r.averageScore, "bwt": r.backwardTransfer, "fwt": r.forwardTransfer, "forgetting": r.forgetting, "seconds": r.seconds]
        case let .onlineReport(r):
            return ["metric": r.metric, "proficiency": r.proficiency, "before": r.before, "after": r.after,
                    "steps_to_proficiency": r.stepsToProficiency, "scratch_steps_to_proficiency": r.scratchStepsToProficiency,
                    "scratch_after": r.scratchAfter, "seconds": r.seconds]
        case .function, .model, .tasks, .learner, .stream, .environment: return displayText
        }
    }
}

/// Writes values as JSON text, compact or indented by two spaces, without recursion.
/// Indentation stops growing past `maximumIndent` levels, so that a deeply nested value's
/// text grows in proportion to it, not to the square of its depth.
private struct JSONText {
    let pretty: Bool
    static let maximumIndent = 32

    private enum Work {
        case value(Value, depth: Int)
        case object(Any, depth: Int)
        case text(String)
    }

    func text(of root: Value) -> String {
        var text = ""
        var pending: [Work] = [.value(root, depth: 0)]
        while let work = pending.popLast() {
            switch work {
            case let .text(t):
                text += t
            case let .value(.list(items), depth):
                open("[", "]", items.map { (nil, Work.value($0, depth: depth + 1)) }, depth: depth, into: &text, pending: &pending)
            case let .value(.record(r), depth):
                // Sorted keys; of repeated keys the last is kept.
                var byKey: [String: Value] = [:]
                for field in r.fields { byKey[field.key] = field.value }
                let members = byKey.keys.sorted().map { (Optional($0), Work.value(byKey[$0]!, depth: depth + 1)) }
                open("{", "}", members, depth: depth, into: &text, pending: &pending)
            case let .value(v, depth):
                pending.append(.object(v.leafJSONObject, depth: depth))
            case let .object(object, depth):
                if let array = object as? [Any] {
                    open("[", "]", array.map { (nil, Work.object($0, depth: depth + 1)) }, depth: depth, into: &text, pending: &pending)
                } else if let dictionary = object as? [String: Any] {
                    let members = dictionary.keys.sorted().map { (Optional($0), Work.object(dictionary[$0]!, depth: depth + 1)) }
                    open("{", "}", members, depth: depth, into: &text, pending: &pending)
                } else {
                    text += scalar(object)
                }
            }
        }
        return text
    }

    /// Writes a container's opening bracket and schedules its members (with their keys,
    /// for an object) and its closing bracket.
    private func open(_ opening: String, _ closing: String, _ members: [(key: String?, work: Work)], depth: Int,
                      into text: inout String, pending: inout [Work]) {
        text += opening
        guard !members.isEmpty else { text += closing; return }
        func newline(_ level: Int) -> String { pretty ? "\n" + String(repeating: "  ", count: min(level, Self.maximumIndent)) : "" }
        let indent = newline(depth + 1)
        pending.append(.text(newline(depth) + closing))
        for (i, member) in members.enumerated().reversed() {
            pending.append(member.work)
            let key = member.key.map { quoted($0) + (pretty ? ": " : ":") } ?? ""
            pending.append(.text((i > 0 ? "," : "") + indent + key))
        }
    }

    private func scalar(_ object: Any) -> String {
        switch object {
        case is NSNull: return "null"
        case let b as Bool: return b ? "true" : "false"
        case let i as Int: return String(i)
        case let f as Double: return f.isFinite ? "\(f)" : quoted(String(f))
        case let f as Float: return f.isFinite ? "\(Double(f))" : quoted(String(f))
        case let s as String: return quoted(s)
        default: return quoted("\(object)")
        }
    }

    private func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
