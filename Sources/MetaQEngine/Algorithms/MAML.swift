/// The protocol every meta-learner follows: adapt to a task from its support set,
/// meta-update from a batch of tasks, and evaluate after adaptation.
public protocol MetaLearner: AnyObject {
    var model: Sequential { get }
    var loss: LossKind { get }
    /// One meta-update from a batch of tasks. Returns the mean query loss of the batch
    /// (after inner adaptation, before the update).
    @discardableResult
    func metaStep(_ batch: TaskBatch) -> Float
    /// Per-task scores on the query sets (MSE, or accuracy for classification) after adapting
    /// on the support sets for each of `steps` step counts; `result[i][t]` is task t after
    /// `steps[i]` steps. Never changes the learner.
    func evaluate(_ batch: TaskBatch, steps: [Int]) -> [[Float]]
}

/// Model-Agnostic Meta-Learning (Finn, Abbeel and Levine, 2017), and ANIL (Raghu et al.,
/// 2020) when only the head adapts.
///
/// The inner loop takes `inner.steps` SGD steps on each task's support set, starting from
/// the meta-parameters; the outer loop minimises the query loss of the adapted parameters.
/// With `firstOrder` off the meta-gradient is exact: it differentiates through the inner
/// loop's gradients (second order). Adaptation builds new tensors and never writes into the
/// meta-parameters. All tasks of a batch run as one computation with a leading task axis.
///
/// ```swift
/// var rng = RandomGenerator(seed: 0)
/// let net = Sequential.mlp(sizes: [1, 40, 40, 1], using: &rng)
/// let maml = MAML(model: net, loss: .meanSquaredError,
///                 inner: InnerLoop(steps: 1, learningRate: 0.01), optimizer: Adam(learningRate: 1e-3))
/// let sine = RegressionTasks.sinusoid()
/// for _ in 0..<1000 { maml.metaStep(try sine.sample(tasks: 25, support: 10, query: 10, using: &rng)) }
/// ```
public final class MAML: MetaLearner {
    public let model: Sequential
    public let loss: LossKind
    public var inner: InnerLoop
    public var firstOrder: Bool
    public let optimizer: Optimizer

    public init(model: Sequential, loss: LossKind, inner: InnerLoop, firstOrder: Bool = false, optimizer: Optimizer) {
        self.model = model
        self.loss = loss
        self.inner = inner
        self.firstOrder = firstOrder
        self.optimizer = optimizer
    }

    /// ANIL: MAML that adapts only the final linear layer (the head) in the inner loop.
    public static func anil(
        model: Sequential, loss: LossKind, inner: InnerLoop, firstOrder: Bool = false, optimizer: Optimizer
    ) -> MAML {
        var headOnly = inner
        let head = model.headParameterRange
        headOnly.adapted = model.parameters.indices.map { head.contains($0) }
        return MAML(model: model, loss: loss, inner: headOnly, firstOrder: firstOrder, optimizer: optimizer)
    }

    /// Per-task fast weights after `steps` inner steps on `support` from `parameters`.
    public func adapt(_ support: Split, from parameters: [Tensor], steps: Int, createGraph: Bool) -> [Tensor] {
        inner.adapt(model: model, loss: loss, support: support, from: parameters, steps: steps, createGraph: createGraph)
    }

    /// The mean query loss over the batch after adaptation, as a differentiable function of
    /// `parameters`.
    public func metaLoss(_ batch: TaskBatch, parameters: [Tensor]) -> Tensor {
        let fast = adapt(batch.support, from: parameters, steps: inner.steps, createGraph: !firstOrder)
        let predictions = model.forward(batch.query.inputs, parameters: fast, tasks: batch.taskCount)
        return loss.perTask(predictions, batch.query.targets).mean()
    }

    /// The summed query loss of the batch's tasks after adaptation.
    func summedMetaLoss(_ batch: TaskBatch, parameters: [Tensor]) -> Tensor {
        let fast = adapt(batch.support, from: parameters, steps: inner.steps, createGraph: !firstOrder)
        let predictions = model.forward(batch.query.inputs, parameters: fast, tasks: batch.taskCount)
        return loss.perTask(predictions, batch.query.targets).sum()
    }

    @discardableResult
    public func metaStep(_ batch: TaskBatch) -> Float {
        let (total, grads) = summedLossGradients(batch, parameters: model.parameters, objective: summedMetaLoss)
        let scale = 1 / Float(batch.taskCount)
        model.parameters = optimizer.update(model.parameters, gradients: grads.map { $0.scaled(by: scale) })
        return total * scale
    }

    public func evaluate(_ batch: TaskBatch, steps: [Int]) -> [[Float]] {
        evaluateByAdapting(model: model, loss: loss, batch: batch, steps: steps) { support, params, n in
            adapt(support, from: params, steps: n, createGraph: false)
        }
    }
}
