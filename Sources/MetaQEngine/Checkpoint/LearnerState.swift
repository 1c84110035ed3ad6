import Foundation

/// What a learner is and how it is configured: everything needed to rebuild it around a
/// model, apart from what it has learned (which is in ``LearnerSnapshot``). It holds one
/// kind's settings (``LearnerSettings``); in a checkpoint it is `{"KEY": settings}`, KEY being
/// the kind's registry key (``LearnerKind``).
///
/// ```swift
/// maml.snapshot.configuration        // maml settings: inner loop, first order or not
/// maml.snapshot.configuration.name   // "maml"
/// maml.snapshot.configuration.kind.outputsEmbeddings   // false
/// ```
public struct LearnerConfiguration: Codable, Equatable, Sendable {
    public let settings: any LearnerSettings

    public init(_ settings: any LearnerSettings) { self.settings = settings }

    /// The kind's registry row.
    public var kind: LearnerKind { type(of: settings).kind }
    /// The learner's name as metaq writes it.
    public var name: String { settings.name }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: LearnerKind.Key.self)
        guard container.allKeys.count == 1, let key = container.allKeys.first else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "a learner configuration has exactly one key, its kind"))
        }
        guard let kind = LearnerKind.all.first(where: { $0.key == key.stringValue }) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath + [key],
                debugDescription: "unknown learner kind '\(key.stringValue)' (known: \(LearnerKind.all.map(\.key).joined(separator: ", ")))"))
        }
        settings = try kind.decode(container.superDecoder(forKey: key))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: LearnerKind.Key.self)
        try settings.encode(to: container.superEncoder(forKey: LearnerKind.Key(kind.key)))
    }

    public static func == (a: Self, b: Self) -> Bool {
        guard a.kind.key == b.kind.key else { return false }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(a)) == (try? encoder.encode(b))
    }

    /// The settings when they are of type `T`.
    public func settings<T: LearnerSettings>(as _: T.Type) -> T? { settings as? T }
}

/// A learner's state at one moment: its configuration, the loss it trains with, its outer
/// optimiser's state and the tensors it has learned besides the model's parameters (Meta-SGD's
/// rates, a memory bank). With the model it is all a checkpoint needs to rebuild the learner.
///
/// ```swift
/// let snapshot = metaSGD.snapshot
/// snapshot.tensors["rates.0.weight"]   // the learned inner rates of the first weight
/// guard case let .meta(copy) = try snapshot.makeLearner(model: Sequential(layers: net.layers, parameters: net.parameters)) else { ... }
/// ```
public struct LearnerSnapshot: @unchecked Sendable {
    public var configuration: LearnerConfiguration
    public var loss: LossKind
    public var optimizer: OptimizerState
    /// The names of the tensors the optimiser updates, in its order: model parameters by their
    /// spec names ("0.weight"), then learned tensors by theirs ("rates.0.weight"). The
    /// optimiser's slots hold one array per name.
    public var optimized: [String]
    /// Learned tensors besides the model's parameters, by name.
    public var tensors: [String: Tensor]

    public init(configuration: LearnerConfiguration, loss: LossKind, optimizer: OptimizerState, optimized: [String], tensors: [String: Tensor] = [:]) {
        self.configuration = configuration
        self.loss = loss
        self.optimizer = optimizer
        self.optimized = optimized
        self.tensors = tensors
    }
}

/// A learner whose whole state can be saved in a checkpoint and restored from one.
///
/// ```swift
/// let checkpoint = Checkpoint(learner: maml, step: 1000)
/// try checkpoint.write(to: "run.mqm")
/// let restored = try Checkpoint.read(from: "run.mqm").makeLearner()
/// ```
public protocol CheckpointableLearner: AnyObject {
    var model: Sequential { get }
    /// The learner's configuration, optimiser state and learned tensors now.
    var snapshot: LearnerSnapshot { get }
}

/// A learner rebuilt from a checkpoint: a meta-learner (trained on task batches) or a
/// continual learner (trained on a stream).
public enum RestoredLearner {
    case meta(MetaLearner)
    case continual(ContinualLearner)
    /// A reinforcement learner (`maml_rl`), trained on an environment.
    case reinforcement(MAMLRL)
}

extension LearnerSnapshot {
    /// Rebuilds the learner around `model`, with its optimiser state and learned tensors.
    ///
    /// - Throws: `CheckpointError` (`inconsistent`) when the snapshot does not fit the model
    ///   or its own configuration.
    public func makeLearner(model: Sequential) throws(CheckpointError) -> RestoredLearner {
        let optimizer = try restoredOptimizer(model: model)
        return try configuration.settings.makeLearner(from: self, model: model, optimizer: optimizer)
    }

    /// The optimiser, rebuilt from its kind and hyperparameters, with its slots checked
    /// against the shapes of the tensors it updates.
    private func restoredOptimizer(model: Sequential) throws(CheckpointError) -> Optimizer {
        let shapes = Dictionary(uniqueKeysWithValues: model.parameterSpecs.map { ($0.name, $0.shape) })
        for (slot, arrays) in optimizer.slots where !arrays.isEmpty {
            guard arrays.count == optimized.count else {
                throw inconsistent("optimizer slot '\(slot)' has \(arrays.count) arrays for \(optimized.count) optimized tensors")
            }
            for (name, values) in zip(optimized, arrays) {
                guard let shape = shapes[name] ?? tensors[name]?.shape else {
                    throw inconsistent("the optimizer updates '\(name)', which is neither a parameter nor a learned tensor")
                }
                guard values.count == shape.reduce(1, *) else {
                    throw inconsistent("optimizer slot '\(slot)' of '\(name)' has \(values.count) values for shape \(shape)")
                }
            }
        }
        do {
            return try makeOptimizer(restoring: optimizer)
        } catch {
            throw inconsistent("\(error)")
        }
    }

    func validate(_ inner: InnerLoop, model: Sequential) throws(CheckpointError) {
        guard inner.steps >= 0, inner.steps <= InnerLoop.maximumSteps else {
            throw inconsistent("inner loop of \(inner.steps) steps (at most \(InnerLoop.maximumSteps))")
        }
        guard inner.learningRate.isFinite, inner.learningRate >= 0 else {
            throw inconsistent("inner learning rate \(inner.learningRate) is not a non-negative number")
        }
        if let rates = inner.stepLearningRates, !rates.allSatisfy({ $0.isFinite && $0 >= 0 }) {
            throw inconsistent("the inner loop's per-step learning rates \(rates) are not all non-negative numbers")
        }
        if let adapted = inner.adapted, adapted.count != model.parameterSpecs.count {
            throw inconsistent("the inner loop marks \(adapted.count) parameters as adapted; the model has \(model.parameterSpecs.count)")
        }
    }

    func requireClassification() throws(CheckpointError) {
        guard loss == .crossEntropy else { throw inconsistent("\(configuration.name) needs the cross_entropy loss, not \(loss.rawValue)") }
    }

    func tensor(_ name: String, shape: [Int]) throws(CheckpointError) -> Tensor {
        guard let t = tensors[name] else { throw inconsistent("the learned tensor '\(name)' is missing") }
        guard t.shape == shape else { throw inconsistent("the learned tensor '\(name)' has shape \(t.shape), expected \(shape)") }
        return t
    }

    /// The memory bank of a protomem learner: pools `memory.I.inputs` with `memory.I.labels`
    /// (class-major, the same number of examples for each class 0..<C).
    func memoryBank() throws(CheckpointError) -> [ExamplePool] {
        var bank: [ExamplePool] = []
        while let inputs = tensors["memory.\(bank.count).inputs"] {
            let name = "memory.\(bank.count)"
            guard let labelTensor = tensors["\(name).labels"], labelTensor.rank == 1, inputs.rank >= 2,
                  labelTensor.count == inputs.shape[0], labelTensor.count > 0 else {
                throw inconsistent("'\(name)' needs inputs [n, ...] and n labels")
            }
            let labels = labelTensor.scalars.map { Int(exactly: $0) ?? -1 }
            let classes = (labels.max() ?? 0) + 1
            let perClass = labels.count / classes
            let expected = (0..<classes).flatMap { Array(repeating: $0, count: perClass) }
            guard labels.allSatisfy({ $0 >= 0 }), labels == expected else {
                throw inconsistent("'\(name).labels' must list classes 0..<C in order, the same number of times each")
            }
            let split = Split(inputs: inputs.reshaped(to: [1] + inputs.shape), targets: .labels(labels))
            bank.append(ExamplePool(split, classes: classes))
        }
        return bank
    }

    func inconsistent(_ message: String) -> CheckpointError { CheckpointError(.inconsistent, message) }
}
