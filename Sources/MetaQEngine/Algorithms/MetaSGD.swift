/// Meta-SGD (Li et al., 2017): MAML whose inner learning rates are themselves meta-learned,
/// one per parameter element. The rates start at `initialRate` and are updated by the outer
/// optimiser together with the parameters.
///
/// ```swift
/// let learner = MetaSGD(model: net, loss: .meanSquaredError, innerSteps: 1, initialRate: 0.01,
///                       optimizer: Adam(learningRate: 1e-3))
/// ```
public final class MetaSGD: MetaLearner {
    public let model: Sequential
    public let loss: LossKind
    public var innerSteps: Int
    public var firstOrder: Bool
    public let optimizer: Optimizer
    /// The learned inner learning rates, shaped like the parameters.
    public var learningRates: [Tensor]

    public init(
        model: Sequential, loss: LossKind, innerSteps: Int, initialRate: Float, firstOrder: Bool = false,
        optimizer: Optimizer
    ) {
        self.model = model
        self.loss = loss
        self.innerSteps = innerSteps
        self.firstOrder = firstOrder
        self.optimizer = optimizer
        learningRates = model.parameters.map { Tensor.full(initialRate, shape: $0.shape).requiringGradient() }
    }

    private var inner: InnerLoop { InnerLoop(steps: innerSteps, learningRate: 0) }

    public func metaLoss(_ batch: TaskBatch, parameters: [Tensor], rates: [Tensor]) -> Tensor {
        let fast = inner.adapt(model: model, loss: loss, support: batch.support, from: parameters,
                               steps: innerSteps, rates: rates, createGraph: !firstOrder)
        let predictions = model.forward(batch.query.inputs, parameters: fast, tasks: batch.taskCount)
        return loss.perTask(predictions, batch.query.targets).mean()
    }

    @discardableResult
    public func metaStep(_ batch: TaskBatch) -> Float {
        let count = model.parameters.count
        let all = model.parameters + learningRates
        let (total, grads) = summedLossGradients(batch, parameters: all) { part, p in
            metaLoss(part, parameters: Array(p.prefix(count)), rates: Array(p.suffix(from: count))).scaled(by: Float(part.taskCount))
        }
        let scale = 1 / Float(batch.taskCount)
        let updated = optimizer.update(all, gradients: grads.map { $0.scaled(by: scale) })
        model.parameters = Array(updated.prefix(model.parameters.count))
        learningRates = Array(updated.suffix(learningRates.count))
        return total * scale
    }

    public func evaluate(_ batch: TaskBatch, steps: [Int]) -> [[Float]] {
        let rates = learningRates.map { $0.detached() }
        return evaluateByAdapting(model: model, loss: loss, batch: batch, steps: steps) { support, params, n, first in
            inner.adapt(model: model, loss: loss, support: support, from: params, steps: n, rates: rates, createGraph: false, firstStep: first)
        }
    }
}

// MARK: Registry row and checkpoints

/// Meta-SGD's settings; its learned per-parameter rates are tensors of the snapshot
/// (`rates.NAME`).
public struct MetaSGDSettings: LearnerSettings, Equatable {
    public var innerSteps: Int
    public var firstOrder: Bool

    public static let kind = LearnerKind(
        "metasgd", key: "metaSGD", settings: MetaSGDSettings.self, training: .taskBatches, adaptsParameters: true,
        summary: "Meta-SGD (Li et al. 2017): MAML with a meta-learned learning rate for every parameter element.",
        adaptation: { learner in
            guard case let .meta(metaSGD as MetaSGD) = learner else { return nil }
            return .gradient(InnerLoop(steps: metaSGD.innerSteps, learningRate: 0), rates: metaSGD.learningRates.map { $0.detached() })
        })

    public func makeLearner(from snapshot: LearnerSnapshot, model: Sequential, optimizer: Optimizer) throws(CheckpointError) -> RestoredLearner {
        guard innerSteps >= 0, innerSteps <= InnerLoop.maximumSteps else {
            throw snapshot.inconsistent("inner loop of \(innerSteps) steps (at most \(InnerLoop.maximumSteps))")
        }
        let learner = MetaSGD(model: model, loss: snapshot.loss, innerSteps: innerSteps, initialRate: 0, firstOrder: firstOrder, optimizer: optimizer)
        learner.learningRates = try model.parameterSpecs.map { spec throws(CheckpointError) in
            try snapshot.tensor("rates.\(spec.name)", shape: spec.shape).requiringGradient()
        }
        return .meta(learner)
    }
}

extension MetaSGD: CheckpointableLearner {
    public var snapshot: LearnerSnapshot {
        let names = model.parameterSpecs.map(\.name)
        let rates = Dictionary(uniqueKeysWithValues: zip(names.map { "rates.\($0)" }, learningRates.map { $0.detached() }))
        return LearnerSnapshot(configuration: LearnerConfiguration(MetaSGDSettings(innerSteps: innerSteps, firstOrder: firstOrder)), loss: loss,
                               optimizer: optimizer.state, optimized: names + names.map { "rates.\($0)" }, tensors: rates)
    }
}
