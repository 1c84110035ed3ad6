/// A learner that meets tasks one at a time and must keep what it learned.
public protocol ContinualLearner: AnyObject {
    var model: Sequential { get }
    var loss: LossKind { get }
    /// Learns a newly arrived task (and, depending on the method, rehearses or regularises
    /// toward earlier ones).
    func learn(_ task: StreamTask, using rng: inout RandomGenerator)
    /// Scores tasks' test episodes with what the learner knows now, adapting on each test
    /// support set with `adaptation` first (zero steps: no adaptation).
    func score(_ tasks: [StreamTask], adaptation: InnerLoop) -> [Float]
}

extension TaskBatch {
    /// Joins batches with equally shaped episodes into one batch (tasks along the first axis).
    public static func concatenate(_ batches: [TaskBatch]) -> TaskBatch {
        TaskBatch(support: Split.concatenate(batches.map(\.support)), query: Split.concatenate(batches.map(\.query)))
    }
}

extension Split {
    public static func concatenate(_ splits: [Split]) -> Split {
        let inputs = Tensor.concatenate(splits.map(\.inputs), axis: 0)
        switch splits[0].targets {
        case .values:
            let values = splits.map { if case let .values(v) = $0.targets { v } else { preconditionFailure("mixed targets") } }
            return Split(inputs: inputs, targets: .values(Tensor.concatenate(values, axis: 0)))
        case .labels:
            return Split(inputs: inputs, targets: .labels(splits.flatMap { if case let .labels(l) = $0.targets { l } else { preconditionFailure("mixed targets") } }))
        }
    }
}

/// Scores tasks with a gradient-adapted model: adapts from `parameters` on every task's test
/// support set together (one batched computation) and scores the query sets.
public func adaptedScores(
    model: Sequential, loss: LossKind, parameters: [Tensor], tasks: [StreamTask], adaptation: InnerLoop
) -> [Float] {
    guard !tasks.isEmpty else { return [] }
    let batch = TaskBatch.concatenate(tasks.map(\.test))
    var fast = model.perTask(parameters.map { $0.detached() }, tasks: tasks.count)
    if adaptation.steps > 0 {
        fast = adaptation.adapt(model: model, loss: loss, support: batch.support, from: fast,
                                steps: adaptation.steps, createGraph: false).map { $0.detached() }
    }
    let predictions = model.forward(batch.query.inputs, parameters: fast, tasks: tasks.count)
    return loss.scores(predictions, batch.query.targets)
}

/// The shared plumbing of learners that train the network directly on each task's pool
/// (naive fine-tuning, experience replay, EWC, generative replay).
public class DirectTrainingLearner {
    public let model: Sequential
    public let loss: LossKind
    public let optimizer: Optimizer
    /// Optimiser steps per task.
    public var steps: Int
    /// Examples per minibatch.
    public var batch: Int

    init(model: Sequential, loss: LossKind, optimizer: Optimizer, steps: Int, batch: Int) {
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.steps = steps
        self.batch = batch
    }

    /// The mean loss of a one-task split under `parameters`.
    func taskLoss(_ split: Split, parameters: [Tensor]) -> Tensor {
        loss.perTask(model.forward(split.inputs, parameters: parameters, tasks: 1), split.targets).mean()
    }

    /// One optimiser step on `objective`, a function of the parameters.
    func step(_ objective: ([Tensor]) -> Tensor) {
        let value = objective(model.parameters)
        model.parameters = optimizer.update(model.parameters, gradients: gradients(of: value, with: model.parameters))
    }

    public func score(_ tasks: [StreamTask], adaptation: InnerLoop) -> [Float] {
        adaptedScores(model: model, loss: loss, parameters: model.parameters, tasks: tasks, adaptation: adaptation)
    }
}

/// Naive sequential fine-tuning: train on each new task's data and nothing else. The
/// baseline that forgets.
public final class SequentialFineTuning: DirectTrainingLearner, ContinualLearner {
    override public init(model: Sequential, loss: LossKind, optimizer: Optimizer, steps: Int, batch: Int) {
        super.init(model: model, loss: loss, optimizer: optimizer, steps: steps, batch: batch)
    }

    public func learn(_ task: StreamTask, using rng: inout RandomGenerator) {
        for _ in 0..<steps {
            let minibatch = task.pool.minibatch(batch, using: &rng)
            step { taskLoss(minibatch, parameters: $0) }
        }
    }
}

/// Experience replay (Chaudhry et al. 2019, "tiny episodic memories"): a reservoir of at most
/// `memorySize` past examples; every step trains on a current minibatch plus a replayed one.
public final class ExperienceReplay: DirectTrainingLearner, ContinualLearner {
    public let memorySize: Int
    /// Stored examples: one-example splits, so tasks of any kind can be mixed.
    public private(set) var memory: [Split] = []
    private var seen = 0

    public init(model: Sequential, loss: LossKind, optimizer: Optimizer, steps: Int, batch: Int, memorySize: Int) {
        self.memorySize = memorySize
        super.init(model: model, loss: loss, optimizer: optimizer, steps: steps, batch: batch)
    }

    public func learn(_ task: StreamTask, using rng: inout RandomGenerator) {
        for _ in 0..<steps {
            let current = task.pool.minibatch(batch, using: &rng)
            let replayed = memory.isEmpty ? nil : Split.joinExamples((0..<min(batch, memory.count)).map { _ in memory[rng.nextInt(below: memory.count)] })
            step { p in
                let now = taskLoss(current, parameters: p)
                guard let replayed else { return now }
                return now + taskLoss(replayed, parameters: p)
            }
        }
        // Reservoir sampling over every example seen so far.
        for row in 0..<task.pool.count {
            seen += 1
            if memory.count < memorySize {
                memory.append(task.pool.rows([row]))
            } else {
                let slot = rng.nextInt(below: seen)
                if slot < memorySize { memory[slot] = task.pool.rows([row]) }
            }
        }
    }
}

extension Split {
    /// Joins one-task splits along the example axis (into one task).
    static func joinExamples(_ parts: [Split]) -> Split {
        let inputs = Tensor.concatenate(parts.map(\.inputs), axis: 1)
        switch parts[0].targets {
        case .values:
            return Split(inputs: inputs, targets: .values(Tensor.concatenate(parts.map { if case let .values(v) = $0.targets { v } else { preconditionFailure() } }, axis: 1)))
        case .labels:
            var labels: [Int] = []
            for part in parts { if case let .labels(l) = part.targets { labels += l } }
            return Split(inputs: inputs, targets: .labels(labels))
        }
    }
}

/// Elastic Weight Consolidation (Kirkpatrick et al. 2017), online form (Schwarz et al. 2018):
/// after each task the diagonal empirical Fisher information is added to a running total and
/// the parameters become the new anchor; training adds `lambda/2 * sum F (theta - anchor)^2`.
public final class ElasticWeightConsolidation: DirectTrainingLearner, ContinualLearner {
    public let lambda: Float
    public let fisherBatches: Int
    public private(set) var fisher: [Tensor]?
    public private(set) var anchor: [Tensor]?

    public init(model: Sequential, loss: LossKind, optimizer: Optimizer, steps: Int, batch: Int, lambda: Float, fisherBatches: Int = 20) {
        self.lambda = lambda
        self.fisherBatches = fisherBatches
        super.init(model: model, loss: loss, optimizer: optimizer, steps: steps, batch: batch)
    }

    public func learn(_ task: StreamTask, using rng: inout RandomGenerator) {
        for _ in 0..<steps {
            let minibatch = task.pool.minibatch(batch, using: &rng)
            step { p in
                var objective = taskLoss(minibatch, parameters: p)
                if let fisher, let anchor {
                    for i in p.indices { objective = objective + (fisher[i] * (p[i] - anchor[i]).squared()).sum().scaled(by: lambda / 2) }
                }
                return objective
            }
        }
        // Empirical Fisher: mean squared gradient over minibatches of this task.
        var estimate = model.parameters.map { Tensor.zeros($0.shape) }
        for _ in 0..<fisherBatches {
            let grads = gradients(of: taskLoss(task.pool.minibatch(batch, using: &rng), parameters: model.parameters), with: model.parameters)
            estimate = zip(estimate, grads).map { $0 + $1.squared().scaled(by: 1 / Float(fisherBatches)) }
        }
        fisher = fisher.map { zip($0, estimate).map { $0 + $1 } } ?? estimate
        anchor = model.parameters.map { $0.detached() }
    }
}

// MARK: Registry row and checkpoints

public struct FineTuningSettings: LearnerSettings, Equatable {
    public var steps: Int
    public var batch: Int

    public static let kind = LearnerKind(
        "finetune", key: "fineTuning", settings: FineTuningSettings.self, training: .stream,
        summary: "Naive sequential fine-tuning on each new task's data (the baseline that forgets).",
        adaptation: nil)

    public func makeLearner(from snapshot: LearnerSnapshot, model: Sequential, optimizer: Optimizer) throws(CheckpointError) -> RestoredLearner {
        guard steps >= 1, batch >= 1 else { throw snapshot.inconsistent("invalid finetune settings (steps \(steps), batch \(batch))") }
        return .continual(SequentialFineTuning(model: model, loss: snapshot.loss, optimizer: optimizer, steps: steps, batch: batch))
    }
}

extension SequentialFineTuning: CheckpointableLearner {
    public var snapshot: LearnerSnapshot {
        LearnerSnapshot(configuration: LearnerConfiguration(FineTuningSettings(steps: steps, batch: batch)), loss: loss,
                        optimizer: optimizer.state, optimized: model.parameterSpecs.map(\.name))
    }
}
