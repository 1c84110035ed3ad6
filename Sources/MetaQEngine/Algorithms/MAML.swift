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
    /// Whether `evaluate` may run on several threads at once for parts of a batch (false
    /// for learners whose code is not thread-safe, such as those written in a script).
    var evaluatesConcurrently: Bool { get }
    /// The optimiser of the outer loop, when the learner has one (logs read its rate).
    var outerOptimizer: Optimizer? { get }
}

extension MetaLearner {
    public var evaluatesConcurrently: Bool { true }
    public var outerOptimizer: Optimizer? { nil }
}

extension MAML { public var outerOptimizer: Optimizer? { optimizer } }
extension MetaSGD { public var outerOptimizer: Optimizer? { optimizer } }
extension Reptile { public var outerOptimizer: Optimizer? { optimizer } }
extension PretrainedBaseline { public var outerOptimizer: Optimizer? { optimizer } }
extension PrototypicalNetwork { public var outerOptimizer: Optimizer? { optimizer } }

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
    /// Trade compute for memory: keep only the inner loop's parameters, not its graph, and
    /// recompute each step's graph during the backward pass (about twice the compute). Memory
    /// then grows with the inner steps only by the per-task parameters of each step (about
    /// 0.18 MiB per step for the sine MLP at meta-batch 25), not by each step's graph.
    /// Applies when every parameter adapts.
    public var checkpointInnerLoop: Bool
    public let optimizer: Optimizer

    public init(
        model: Sequential, loss: LossKind, inner: InnerLoop, firstOrder: Bool = false,
        checkpointInnerLoop: Bool = false, optimizer: Optimizer
    ) {
        self.model = model
        self.loss = loss
        self.inner = inner
        self.firstOrder = firstOrder
        self.checkpointInnerLoop = checkpointInnerLoop
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
    public func adapt(_ support: Split, from parameters: [Tensor], steps: Int, createGraph: Bool, firstStep: Int = 0) -> [Tensor] {
        inner.adapt(model: model, loss: loss, support: support, from: parameters, steps: steps, createGraph: createGraph, firstStep: firstStep)
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

    /// The summed query loss and its meta-gradient by recomputation: the forward pass keeps
    /// the inner loop's parameters `theta_0 ... theta_k` only; the backward pass carries
    /// `v = dL/dtheta_i` back through each step, `v <- v - lr_i * H_i v`, where the
    /// Hessian-vector product `H_i v` of the support loss at `theta_i` is taken on a graph
    /// rebuilt for that one step.
    func checkpointedMetaGradient(_ batch: TaskBatch, parameters: [Tensor]) -> (loss: Float, gradients: [Tensor]) {
        let tasks = batch.taskCount
        // Each step's forward pass at its inner step, the same passes (and dropout masks) when
        // a step's graph is rebuilt in the backward pass.
        let context = ForwardContext.current
        func supportLoss(_ p: [Tensor], step: Int) -> Tensor {
            ForwardContext.with(context.atStep(step)) {
                loss.perTask(model.forward(batch.support.inputs, parameters: p, tasks: tasks), batch.support.targets).sum()
            }
        }
        var trajectory = [model.perTask(parameters.map { $0.detached() }, tasks: tasks)]
        for step in 0..<inner.steps {
            let p = trajectory[step].map { $0.requiringGradient() }
            let g = gradients(of: supportLoss(p, step: step), with: p)
            trajectory.append(zip(trajectory[step], g).map { $0.subtracting($1, scaledBy: inner.rate(at: step)) })
        }
        let final = trajectory[inner.steps].map { $0.requiringGradient() }
        let query = loss.perTask(model.forward(batch.query.inputs, parameters: final, tasks: tasks), batch.query.targets).sum()
        var v = gradients(of: query, with: final)
        if !firstOrder {
            for step in stride(from: inner.steps - 1, through: 0, by: -1) {
                let p = trajectory[step].map { $0.requiringGradient() }
                let g = gradients(of: supportLoss(p, step: step), with: p, createGraph: true)
                var inner = Tensor(0)
                for (gi, vi) in zip(g, v) { inner = inner + (gi * vi).sum() }
                let hv = gradients(of: inner, with: p)
                v = zip(v, hv).map { $0.subtracting($1, scaledBy: self.inner.rate(at: step)) }
            }
        }
        return (query.scalar, v.map { $0.sum(axis: 0) })
    }

    @discardableResult
    public func metaStep(_ batch: TaskBatch) -> Float {
        if checkpointInnerLoop && inner.adapted == nil {
            let (total, grads) = checkpointedMetaGradient(batch, parameters: model.parameters)
            let scale = 1 / Float(batch.taskCount)
            model.parameters = optimizer.update(model.parameters, gradients: grads.map { $0.scaled(by: scale) })
            return total * scale
        }
        let (total, grads) = summedLossGradients(batch, parameters: model.parameters, objective: summedMetaLoss)
        let scale = 1 / Float(batch.taskCount)
        model.parameters = optimizer.update(model.parameters, gradients: grads.map { $0.scaled(by: scale) })
        return total * scale
    }

    public func evaluate(_ batch: TaskBatch, steps: [Int]) -> [[Float]] {
        evaluateByAdapting(model: model, loss: loss, batch: batch, steps: steps) { support, params, n, first in
            adapt(support, from: params, steps: n, createGraph: false, firstStep: first)
        }
    }
}

// MARK: Registry row and checkpoints

/// MAML's settings; ANIL when `inner.adapted` limits adaptation to the head.
public struct MAMLSettings: LearnerSettings, Equatable {
    public var inner: InnerLoop
    public var firstOrder: Bool

    public static let kind = LearnerKind(
        "maml", aliases: ["anil"], key: "maml", settings: MAMLSettings.self, training: .taskBatches, adaptsParameters: true,
        summary: "MAML (Finn et al. 2017) and ANIL: inner SGD steps on the support set, outer update on the query loss.",
        adaptation: { learner in
            guard case let .meta(maml as MAML) = learner else { return nil }
            return .gradient(maml.inner, rates: nil)
        })

    public var name: String { inner.adapted == nil ? "maml" : "anil" }

    public func makeLearner(from snapshot: LearnerSnapshot, model: Sequential, optimizer: Optimizer) throws(CheckpointError) -> RestoredLearner {
        try snapshot.validate(inner, model: model)
        return .meta(MAML(model: model, loss: snapshot.loss, inner: inner, firstOrder: firstOrder, optimizer: optimizer))
    }
}

extension MAML: CheckpointableLearner {
    public var snapshot: LearnerSnapshot {
        LearnerSnapshot(configuration: LearnerConfiguration(MAMLSettings(inner: inner, firstOrder: firstOrder)), loss: loss,
                        optimizer: optimizer.state, optimized: model.parameterSpecs.map(\.name))
    }
}
