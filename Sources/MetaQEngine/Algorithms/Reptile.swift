/// Reptile (Nichol, Achiam and Schulman, 2018): train on each task with plain SGD, then move
/// the meta-parameters toward the adapted ones: `theta += epsilon * mean(phi - theta)`.
///
/// `batched` runs the tasks of a meta-batch together (one computation, one meta-update from
/// the mean of their adapted weights); otherwise tasks are taken one after another, each
/// moving the meta-parameters before the next starts (the serial algorithm of the paper).
/// The meta-update goes through `optimizer` with the "gradient" `theta - phi`, so SGD with
/// learning rate epsilon is exactly Reptile's update.
///
/// ```swift
/// let reptile = Reptile(model: net, loss: .meanSquaredError,
///                       inner: InnerLoop(steps: 5, learningRate: 0.02), optimizer: SGD(learningRate: 0.1))
/// ```
public final class Reptile: MetaLearner {
    public let model: Sequential
    public let loss: LossKind
    public var inner: InnerLoop
    public var batched: Bool
    public let optimizer: Optimizer

    public init(model: Sequential, loss: LossKind, inner: InnerLoop, batched: Bool = true, optimizer: Optimizer) {
        self.model = model
        self.loss = loss
        self.inner = inner
        self.batched = batched
        self.optimizer = optimizer
    }

    @discardableResult
    public func metaStep(_ batch: TaskBatch) -> Float {
        let groups = batched ? [batch] : (0..<batch.taskCount).map { batch.task($0) }
        var total: Float = 0
        let context = ForwardContext.current
        for (i, group) in groups.enumerated() {
            let start = model.parameters.map { $0.detached() }
            // One task at a time keeps each task's place in the batch (its dropout masks).
            let (adapted, predictions) = ForwardContext.with(context.offset(by: batched ? 0 : i)) {
                let adapted = inner.adapt(model: model, loss: loss, support: group.support, from: start,
                                          steps: inner.steps, createGraph: false).map { $0.detached() }
                return (adapted, model.forward(group.query.inputs, parameters: adapted, tasks: group.taskCount))
            }
            total += loss.perTask(predictions, group.query.targets).sum().scalar
            let direction = zip(start, adapted).map { theta, phi in
                phi.rank > theta.rank ? theta - phi.mean(axis: 0) : theta - phi
            }
            model.parameters = optimizer.update(model.parameters, gradients: direction)
        }
        return total / Float(batch.taskCount)
    }

    public func evaluate(_ batch: TaskBatch, steps: [Int]) -> [[Float]] {
        evaluateByAdapting(model: model, loss: loss, batch: batch, steps: steps) { support, params, n, first in
            inner.adapt(model: model, loss: loss, support: support, from: params, steps: n, createGraph: false, firstStep: first)
        }
    }
}

/// The "pretrained" baseline of the MAML paper: one network trained on the pooled data of all
/// tasks (no inner loop), then fine-tuned on each test task's support set with SGD.
public final class PretrainedBaseline: MetaLearner {
    public let model: Sequential
    public let loss: LossKind
    /// The fine-tuning used at evaluation.
    public var inner: InnerLoop
    public let optimizer: Optimizer

    public init(model: Sequential, loss: LossKind, inner: InnerLoop, optimizer: Optimizer) {
        self.model = model
        self.loss = loss
        self.inner = inner
        self.optimizer = optimizer
    }

    @discardableResult
    public func metaStep(_ batch: TaskBatch) -> Float {
        let tasks = batch.taskCount
        let objective = (loss.perTask(model.forward(batch.support.inputs, parameters: model.parameters, tasks: tasks), batch.support.targets)
            + loss.perTask(model.forward(batch.query.inputs, parameters: model.parameters, tasks: tasks), batch.query.targets))
            .mean().scaled(by: 0.5)
        model.parameters = optimizer.update(model.parameters, gradients: gradients(of: objective, with: model.parameters))
        return objective.scalar
    }

    public func evaluate(_ batch: TaskBatch, steps: [Int]) -> [[Float]] {
        evaluateByAdapting(model: model, loss: loss, batch: batch, steps: steps) { support, params, n, first in
            inner.adapt(model: model, loss: loss, support: support, from: params, steps: n, createGraph: false, firstStep: first)
        }
    }
}

// MARK: Registry rows and checkpoints

public struct ReptileSettings: LearnerSettings, Equatable {
    public var inner: InnerLoop
    public var batched: Bool

    public static let kind = LearnerKind(
        "reptile", key: "reptile", settings: ReptileSettings.self, training: .taskBatches, adaptsParameters: true,
        summary: "Reptile (Nichol et al. 2018): SGD on each task, then the meta-parameters move toward the adapted ones.",
        adaptation: { learner in
            guard case let .meta(reptile as Reptile) = learner else { return nil }
            return .gradient(reptile.inner, rates: nil)
        })

    public func makeLearner(from snapshot: LearnerSnapshot, model: Sequential, optimizer: Optimizer) throws(CheckpointError) -> RestoredLearner {
        try snapshot.validate(inner, model: model)
        return .meta(Reptile(model: model, loss: snapshot.loss, inner: inner, batched: batched, optimizer: optimizer))
    }
}

extension Reptile: CheckpointableLearner {
    public var snapshot: LearnerSnapshot {
        LearnerSnapshot(configuration: LearnerConfiguration(ReptileSettings(inner: inner, batched: batched)), loss: loss,
                        optimizer: optimizer.state, optimized: model.parameterSpecs.map(\.name))
    }
}

public struct PretrainedSettings: LearnerSettings, Equatable {
    public var inner: InnerLoop

    public static let kind = LearnerKind(
        "pretrain", key: "pretrained", settings: PretrainedSettings.self, training: .taskBatches, adaptsParameters: true,
        summary: "The pretrained baseline: one network trained on the pooled tasks, fine-tuned on each support set.",
        adaptation: { learner in
            guard case let .meta(baseline as PretrainedBaseline) = learner else { return nil }
            return .gradient(baseline.inner, rates: nil)
        })

    public func makeLearner(from snapshot: LearnerSnapshot, model: Sequential, optimizer: Optimizer) throws(CheckpointError) -> RestoredLearner {
        try snapshot.validate(inner, model: model)
        return .meta(PretrainedBaseline(model: model, loss: snapshot.loss, inner: inner, optimizer: optimizer))
    }
}

extension PretrainedBaseline: CheckpointableLearner {
    public var snapshot: LearnerSnapshot {
        LearnerSnapshot(configuration: LearnerConfiguration(PretrainedSettings(inner: inner)), loss: loss,
                        optimizer: optimizer.state, optimized: model.parameterSpecs.map(\.name))
    }
}
