/// What a learner is and how it is configured: everything needed to rebuild it around a
/// model, apart from what it has learned (which is in ``LearnerSnapshot``).
///
/// ```swift
/// maml.snapshot.configuration   // .maml(inner: InnerLoop(steps: 1, learningRate: 0.01, ...), firstOrder: false)
/// maml.snapshot.configuration.name   // "maml"
/// ```
public enum LearnerConfiguration: Codable, Equatable, Sendable {
    /// MAML; ANIL when `inner.adapted` limits adaptation to the head.
    case maml(inner: InnerLoop, firstOrder: Bool)
    /// Meta-SGD; its learned per-parameter rates are tensors of the snapshot.
    case metaSGD(innerSteps: Int, firstOrder: Bool)
    case reptile(inner: InnerLoop, batched: Bool)
    case pretrained(inner: InnerLoop)
    case prototypical(distance: PrototypeDistance)
    /// Prototypical Networks with a memory bank; the bank is tensors of the snapshot.
    case prototypeMemory(distance: PrototypeDistance, budget: Int, transferWeight: Float, steps: Int, support: Int, query: Int)
    case fineTuning(steps: Int, batch: Int)
    /// A learner written in a script, with this many extra learned tensors (`extras.0`...);
    /// its code is the script's, so only the script that declares it can rebuild it.
    case script(extras: Int)

    /// The learner's name as metaq writes it.
    public var name: String {
        switch self {
        case let .maml(inner, _): inner.adapted == nil ? "maml" : "anil"
        case .metaSGD: "metasgd"
        case .reptile: "reptile"
        case .pretrained: "pretrain"
        case .prototypical: "protonet"
        case .prototypeMemory: "protomem"
        case .fineTuning: "finetune"
        case .script: "custom"
        }
    }
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
}

extension MAML: CheckpointableLearner {
    public var snapshot: LearnerSnapshot {
        LearnerSnapshot(configuration: .maml(inner: inner, firstOrder: firstOrder), loss: loss,
                        optimizer: optimizer.state, optimized: model.parameterSpecs.map(\.name))
    }
}

extension MetaSGD: CheckpointableLearner {
    public var snapshot: LearnerSnapshot {
        let names = model.parameterSpecs.map(\.name)
        let rates = Dictionary(uniqueKeysWithValues: zip(names.map { "rates.\($0)" }, learningRates.map { $0.detached() }))
        return LearnerSnapshot(configuration: .metaSGD(innerSteps: innerSteps, firstOrder: firstOrder), loss: loss,
                               optimizer: optimizer.state, optimized: names + names.map { "rates.\($0)" }, tensors: rates)
    }
}

extension Reptile: CheckpointableLearner {
    public var snapshot: LearnerSnapshot {
        LearnerSnapshot(configuration: .reptile(inner: inner, batched: batched), loss: loss,
                        optimizer: optimizer.state, optimized: model.parameterSpecs.map(\.name))
    }
}

extension PretrainedBaseline: CheckpointableLearner {
    public var snapshot: LearnerSnapshot {
        LearnerSnapshot(configuration: .pretrained(inner: inner), loss: loss,
                        optimizer: optimizer.state, optimized: model.parameterSpecs.map(\.name))
    }
}

extension PrototypicalNetwork: CheckpointableLearner {
    public var snapshot: LearnerSnapshot {
        LearnerSnapshot(configuration: .prototypical(distance: distance), loss: loss,
                        optimizer: optimizer.state, optimized: model.parameterSpecs.map(\.name))
    }
}

extension PrototypeMemoryLearner: CheckpointableLearner {
    public var snapshot: LearnerSnapshot {
        var tensors: [String: Tensor] = [:]
        for (i, pool) in bank.enumerated() {
            guard case let .labels(labels) = pool.targets else { continue }
            tensors["memory.\(i).inputs"] = pool.inputs.detached()
            tensors["memory.\(i).labels"] = Tensor(labels.map(Float.init))
        }
        return LearnerSnapshot(
            configuration: .prototypeMemory(distance: protonet.distance, budget: budget, transferWeight: transferWeight,
                                            steps: steps, support: support, query: query),
            loss: loss, optimizer: protonet.optimizer.state, optimized: model.parameterSpecs.map(\.name), tensors: tensors)
    }
}

extension SequentialFineTuning: CheckpointableLearner {
    public var snapshot: LearnerSnapshot {
        LearnerSnapshot(configuration: .fineTuning(steps: steps, batch: batch), loss: loss,
                        optimizer: optimizer.state, optimized: model.parameterSpecs.map(\.name))
    }
}

extension LearnerSnapshot {
    /// Rebuilds the learner around `model`, with its optimiser state and learned tensors.
    ///
    /// - Throws: `CheckpointError` (`inconsistent`) when the snapshot does not fit the model
    ///   or its own configuration.
    public func makeLearner(model: Sequential) throws(CheckpointError) -> RestoredLearner {
        let optimizer = try restoredOptimizer(model: model)
        switch configuration {
        case let .maml(inner, firstOrder):
            try validate(inner, model: model)
            return .meta(MAML(model: model, loss: loss, inner: inner, firstOrder: firstOrder, optimizer: optimizer))
        case let .metaSGD(innerSteps, firstOrder):
            guard innerSteps >= 0, innerSteps <= InnerLoop.maximumSteps else {
                throw inconsistent("inner loop of \(innerSteps) steps (at most \(InnerLoop.maximumSteps))")
            }
            let learner = MetaSGD(model: model, loss: loss, innerSteps: innerSteps, initialRate: 0, firstOrder: firstOrder, optimizer: optimizer)
            learner.learningRates = try model.parameterSpecs.map { spec throws(CheckpointError) in
                try tensor("rates.\(spec.name)", shape: spec.shape).requiringGradient()
            }
            return .meta(learner)
        case let .reptile(inner, batched):
            try validate(inner, model: model)
            return .meta(Reptile(model: model, loss: loss, inner: inner, batched: batched, optimizer: optimizer))
        case let .pretrained(inner):
            try validate(inner, model: model)
            return .meta(PretrainedBaseline(model: model, loss: loss, inner: inner, optimizer: optimizer))
        case let .prototypical(distance):
            try requireClassification()
            return .meta(PrototypicalNetwork(model: model, distance: distance, optimizer: optimizer))
        case let .prototypeMemory(distance, budget, transferWeight, steps, support, query):
            try requireClassification()
            guard budget >= 1, steps >= 1, support >= 1, query >= 1, transferWeight.isFinite else {
                throw inconsistent("invalid protomem settings (budget \(budget), steps \(steps), support \(support), query \(query))")
            }
            let learner = PrototypeMemoryLearner(
                protonet: PrototypicalNetwork(model: model, distance: distance, optimizer: optimizer),
                budget: budget, transferWeight: transferWeight, steps: steps, support: support, query: query)
            learner.restoreBank(try memoryBank())
            return .continual(learner)
        case let .fineTuning(steps, batch):
            guard steps >= 1, batch >= 1 else { throw inconsistent("invalid finetune settings (steps \(steps), batch \(batch))") }
            return .continual(SequentialFineTuning(model: model, loss: loss, optimizer: optimizer, steps: steps, batch: batch))
        case .script:
            throw CheckpointError(.unsupported, "it holds a learner written in a script (custom): run the script that declares it and resume with 'train ... < checkpoint FILE resume true >'")
        }
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

    private func validate(_ inner: InnerLoop, model: Sequential) throws(CheckpointError) {
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

    private func requireClassification() throws(CheckpointError) {
        guard loss == .crossEntropy else { throw inconsistent("\(configuration.name) needs the cross_entropy loss, not \(loss.rawValue)") }
    }

    private func tensor(_ name: String, shape: [Int]) throws(CheckpointError) -> Tensor {
        guard let t = tensors[name] else { throw inconsistent("the learned tensor '\(name)' is missing") }
        guard t.shape == shape else { throw inconsistent("the learned tensor '\(name)' has shape \(t.shape), expected \(shape)") }
        return t
    }

    /// The memory bank of a protomem learner: pools `memory.I.inputs` with `memory.I.labels`
    /// (class-major, the same number of examples for each class 0..<C).
    private func memoryBank() throws(CheckpointError) -> [ExamplePool] {
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

    private func inconsistent(_ message: String) -> CheckpointError { CheckpointError(.inconsistent, message) }
}
