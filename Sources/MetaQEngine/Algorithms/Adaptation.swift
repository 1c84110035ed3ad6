import Dispatch
/// The inner loop shared by the gradient-based learners: plain SGD on a task's support set,
/// over a whole batch of tasks at once (every adapted parameter gets a leading task axis).
public struct InnerLoop: Codable, Equatable, Sendable {
    public var steps: Int
    public var learningRate: Float
    /// Optional per-step learning rates; step i uses `stepLearningRates[min(i, count - 1)]`.
    public var stepLearningRates: [Float]?
    /// Which parameters adapt (nil: all). ANIL adapts only the head.
    public var adapted: [Bool]?

    /// The most inner steps a learner may take: checked when a script declares a learner and
    /// when a checkpoint is read (a step count of 1e9 would never finish).
    public static let maximumSteps = 10_000

    public init(steps: Int, learningRate: Float, stepLearningRates: [Float]? = nil, adapted: [Bool]? = nil) {
        self.steps = steps
        self.learningRate = learningRate
        self.stepLearningRates = stepLearningRates
        self.adapted = adapted
    }

    func rate(at step: Int) -> Float {
        guard let rates = stepLearningRates, !rates.isEmpty else { return learningRate }
        return rates[min(step, rates.count - 1)]
    }

    func isAdapted(_ index: Int) -> Bool { adapted?[index] ?? true }

    /// Per-task fast weights after `steps` SGD steps on `support`, starting from `parameters`
    /// (shared, or already per task). Parameters that do not adapt stay shared (no task axis).
    /// `rates` gives per-parameter learning-rate tensors (Meta-SGD) in place of the scalar.
    /// With `createGraph` the result is a differentiable function of `parameters` and `rates`.
    /// Step i is inner step `firstStep + i`: its learning rate is that step's, and its forward
    /// pass runs at that step (``ForwardContext/innerStep``: MAML++'s per-step batch norm picks
    /// its weights by it). Evaluation that continues adapting from an earlier step count passes
    /// that count, so `steps: [1, 3]` scores after 3 steps what `steps: [3]` scores.
    public func adapt(
        model: Sequential, loss: LossKind, support: Split, from parameters: [Tensor], steps: Int,
        rates: [Tensor]? = nil, createGraph: Bool, firstStep: Int = 0
    ) -> [Tensor] {
        let tasks = support.taskCount
        var fast = parameters
        for i in fast.indices where isAdapted(i) {
            var p = fast[i]
            if p.rank == model.parameterSpecs[i].shape.count { p = p.broadcast(to: [tasks] + p.shape) }
            // Inner gradients are taken with respect to the fast weights, so they must track
            // gradients even when adapting from constants (evaluation, deployment).
            fast[i] = p.requiresGradient ? p : p.requiringGradient()
        }
        let adaptedIndices = fast.indices.filter(isAdapted)
        for step in 0..<steps {
            let context = ForwardContext.current.atStep(firstStep + step)
            let total = ForwardContext.with(context) {
                loss.perTask(model.forward(support.inputs, parameters: fast, tasks: tasks), support.targets).sum()
            }
            let wanted = adaptedIndices.map { fast[$0] }
            if let rates {
                let grads = gradients(of: total, with: wanted, createGraph: createGraph)
                for (g, i) in zip(grads, adaptedIndices) { fast[i] = fast[i] - g * rates[i] }
            } else {
                // The step -lr * g comes straight out of the backward pass seeded with -lr
                // (gradients are linear in the seed), so the update is an addition, whose
                // derivative rule passes gradients through: the second-order pass then has no
                // scaling of a parameter-sized gradient per step and parameter.
                let steps = gradients(of: total, with: wanted, seed: Tensor(-rate(at: firstStep + step)), createGraph: createGraph)
                for (d, i) in zip(steps, adaptedIndices) { fast[i] = fast[i] + d }
            }
        }
        return fast
    }
}

/// Scores the query sets after adapting for each step count; adaptation continues from the
/// previous count, so `steps: [1, 5, 10]` costs 10 steps, not 16. `result[i][t]` is task t
/// after `steps[i]` steps.
func evaluateByAdapting(
    model: Sequential, loss: LossKind, batch: TaskBatch, steps: [Int],
    adapt: (_ support: Split, _ from: [Tensor], _ steps: Int, _ firstStep: Int) -> [Tensor]
) -> [[Float]] {
    let tasks = batch.taskCount
    var fast = model.parameters.map { $0.detached() }
    var taken = 0
    var scores: [Int: [Float]] = [:]
    for target in Set(steps).sorted() {
        if target > taken {
            fast = adapt(batch.support, fast, target - taken, taken).map { $0.detached() }
            taken = target
        }
        let predictions = model.forward(batch.query.inputs, parameters: fast, tasks: tasks)
        scores[target] = loss.scores(predictions, batch.query.targets)
    }
    return steps.map { scores[$0]! }
}

extension TaskBatch {
    /// The tasks in `range`, as a batch.
    public func tasks(_ range: Range<Int>) -> TaskBatch {
        TaskBatch(support: support.tasks(range), query: query.tasks(range))
    }

    /// How many tasks fit `elements` input floats (support and query together); at least one.
    func tasksPerGroup(elements: Int) -> Int {
        let perTask = (support.inputs.count + query.inputs.count) / max(taskCount, 1)
        return max(1, elements / max(perTask, 1))
    }

    /// Calls `body` with the tasks of `range` as consecutive batches of at most `size` tasks.
    func forEachGroup(of range: Range<Int>, tasksPerGroup size: Int, _ body: (_ first: Int, TaskBatch) -> Void) {
        var start = range.lowerBound
        while start < range.upperBound {
            let end = min(start + size, range.upperBound)
            body(start, tasks(start..<end))
            start = end
        }
    }
}

extension Split {
    /// The tasks in `range`, as a split.
    public func tasks(_ range: Range<Int>) -> Split {
        if range == 0..<taskCount { return self }
        let n = examplesPerTask
        let targets: Targets = switch self.targets {
        case let .values(v): .values(v.slice(axis: 0, range))
        case let .labels(l): .labels(Array(l[range.lowerBound * n..<range.upperBound * n]))
        }
        return Split(inputs: inputs.slice(axis: 0, range), targets: targets)
    }
}

/// The gradient of a sum of per-task losses with respect to `parameters`, with the tasks of
/// the batch split across the engine's worker threads: each worker builds and differentiates
/// its own graph for its share of the tasks (small meta-learning graphs are bound by per-op
/// overhead, which only more cores reduce), and the shares are added in a fixed order, so
/// the result is the same on every run with the same thread count.
///
/// A worker whose share holds more input data than `groupElements` floats (image tasks)
/// goes through it a few tasks at a time, one graph per group, adding the gradients: the
/// activations of a whole meta-batch of image tasks run to gigabytes, while one group's stay
/// in malloc's reused heap (no fresh pages to fault in) and in cache.
///
/// - Parameter objective: the summed loss of some tasks, a function of the parameters.
/// - Returns: the summed loss and its gradients.
func summedLossGradients(
    _ batch: TaskBatch, parameters: [Tensor], minimumTasksPerWorker: Int = 4, threads: Int = Parallel.threads,
    groupElements: Int = 1 << 16,
    objective: (TaskBatch, [Tensor]) -> Tensor
) -> (loss: Float, gradients: [Tensor]) {
    let t = batch.taskCount
    let groupSize = batch.tasksPerGroup(elements: groupElements)
    // The workers run under the caller's context, each group at its tasks' place in the batch.
    let context = ForwardContext.current
    let shares = Parallel.mapShares(t, shares: min(threads, t / minimumTasksPerWorker)) { range -> (Float, [Tensor]) in
        var loss: Float = 0
        var total: [Tensor]? = nil
        batch.forEachGroup(of: range, tasksPerGroup: groupSize) { first, group in
            let value = ForwardContext.with(context.offset(by: first)) { objective(group, parameters) }
            let grads = gradients(of: value, with: parameters)
            loss += value.scalar
            total = total.map { zip($0, grads).map { $0 + $1 } } ?? grads
        }
        return (loss, total ?? parameters.map { Tensor.zeros($0.shape) })
    }
    var (loss, total) = shares[0]
    for share in shares.dropFirst() {
        loss += share.0
        total = zip(total, share.1).map { $0 + $1 }
    }
    return (loss, total)
}
