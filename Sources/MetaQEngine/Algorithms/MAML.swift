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

/// Model-Agnostic Meta-Learning (Finn, Abbeel and Levine, 2017).
///
/// The inner loop takes `innerSteps` SGD steps on each task's support set, starting from the
/// meta-parameters; the outer loop minimises the query loss of the adapted parameters. With
/// `firstOrder` off the meta-gradient is exact: it differentiates through the inner loop's
/// gradients (second order). Adaptation builds new tensors and never writes into the
/// meta-parameters. All tasks of a batch run as one computation with a leading task axis.
///
/// ```swift
/// var rng = RandomGenerator(seed: 0)
/// let net = Sequential.mlp(sizes: [1, 40, 40, 1], using: &rng)
/// let maml = MAML(model: net, loss: .meanSquaredError, innerSteps: 1, innerLearningRate: 0.01,
///                 optimizer: Adam(learningRate: 1e-3))
/// let sine = RegressionTasks.sinusoid()
/// for _ in 0..<1000 { maml.metaStep(try sine.sample(tasks: 25, support: 10, query: 10, using: &rng)) }
/// ```
public final class MAML: MetaLearner {
    public let model: Sequential
    public let loss: LossKind
    public var innerSteps: Int
    public var innerLearningRate: Float
    /// Optional per-step inner learning rates (overrides `innerLearningRate` for step i).
    public var stepLearningRates: [Float]?
    public var firstOrder: Bool
    public let optimizer: Optimizer

    public init(
        model: Sequential, loss: LossKind, innerSteps: Int, innerLearningRate: Float,
        stepLearningRates: [Float]? = nil, firstOrder: Bool = false, optimizer: Optimizer
    ) {
        self.model = model
        self.loss = loss
        self.innerSteps = innerSteps
        self.innerLearningRate = innerLearningRate
        self.stepLearningRates = stepLearningRates
        self.firstOrder = firstOrder
        self.optimizer = optimizer
    }

    /// Per-task fast weights (every tensor with a leading task axis) after `steps` SGD steps
    /// on `support` from `parameters` (shared, or already per task). With `createGraph` the
    /// result stays a differentiable function of `parameters`.
    public func adapt(
        _ support: Split, from parameters: [Tensor], steps: Int, createGraph: Bool
    ) -> [Tensor] {
        // Inner gradients are taken with respect to the fast weights, so they must track
        // gradients even when adapting from constants (evaluation, deployment).
        var fast = model.perTask(parameters, tasks: support.taskCount).map {
            $0.requiresGradient ? $0 : $0.requiringGradient()
        }
        for step in 0..<steps {
            let rate = stepLearningRates.map { $0[min(step, $0.count - 1)] } ?? innerLearningRate
            let predictions = model.forward(support.inputs, parameters: fast, tasks: support.taskCount)
            let total = loss.perTask(predictions, support.targets).sum()
            let grads = gradients(of: total, with: fast, createGraph: createGraph)
            fast = zip(fast, grads).map { $0 - $1.scaled(by: rate) }
        }
        return fast
    }

    /// The mean query loss over the batch after adaptation, as a differentiable function of
    /// `parameters`.
    public func metaLoss(_ batch: TaskBatch, parameters: [Tensor]) -> Tensor {
        let fast = adapt(batch.support, from: parameters, steps: innerSteps, createGraph: !firstOrder)
        let predictions = model.forward(batch.query.inputs, parameters: fast, tasks: batch.taskCount)
        return loss.perTask(predictions, batch.query.targets).mean()
    }

    @discardableResult
    public func metaStep(_ batch: TaskBatch) -> Float {
        let objective = metaLoss(batch, parameters: model.parameters)
        let grads = gradients(of: objective, with: model.parameters)
        model.parameters = optimizer.update(model.parameters, gradients: grads)
        return objective.scalar
    }

    public func evaluate(_ batch: TaskBatch, steps: [Int]) -> [[Float]] {
        evaluateByAdapting(model: model, loss: loss, batch: batch, steps: steps) { support, params, n in
            adapt(support, from: params, steps: n, createGraph: false)
        }
    }
}

/// Scores the query sets after adapting for each step count; adaptation continues from the
/// previous count, so `steps: [1, 5, 10]` costs 10 steps, not 16.
func evaluateByAdapting(
    model: Sequential, loss: LossKind, batch: TaskBatch, steps: [Int],
    adapt: (Split, [Tensor], Int) -> [Tensor]
) -> [[Float]] {
    let tasks = batch.taskCount
    var fast = model.perTask(model.parameters.map { $0.detached() }, tasks: tasks)
    var taken = 0
    var scores: [[Float]] = []
    for target in steps.sorted() {
        if target > taken {
            fast = adapt(batch.support, fast, target - taken).map { $0.detached() }
            taken = target
        }
        let predictions = model.forward(batch.query.inputs, parameters: fast, tasks: tasks)
        scores.append(loss.scores(predictions, batch.query.targets))
    }
    let order = steps.enumerated().sorted { $0.element < $1.element }.map(\.offset)
    var result = [[Float]](repeating: [], count: steps.count)
    for (rank, original) in order.enumerated() { result[original] = scores[rank] }
    return result
}
