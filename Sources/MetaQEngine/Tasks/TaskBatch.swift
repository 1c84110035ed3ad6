/// What a task's targets are: real values (regression) or class labels (classification).
public enum Targets: Sendable {
    /// Values shaped like the model's output, with the same leading axes as the inputs.
    case values(Tensor)
    /// One label per example, flattened over the leading axes of the inputs.
    case labels([Int])
}

/// One side of a batch of tasks: inputs with a leading task axis, and their targets.
public struct Split: Sendable {
    /// `[tasks, examples, ...example shape]`.
    public var inputs: Tensor
    public var targets: Targets

    public init(inputs: Tensor, targets: Targets) {
        self.inputs = inputs
        self.targets = targets
    }

    public var taskCount: Int { inputs.shape[0] }
    public var examplesPerTask: Int { inputs.shape[1] }

    /// The examples of task `index` alone, keeping a task axis of extent 1.
    public func task(_ index: Int) -> Split { tasks(index..<index + 1) }
}

/// A batch of tasks, each with a support set (to adapt on) and a query set (to score the
/// adapted model on), stored with a leading task axis so the batch runs as one computation.
public struct TaskBatch: Sendable {
    public var support: Split
    public var query: Split

    public init(support: Split, query: Split) {
        precondition(support.taskCount == query.taskCount, "support and query have different task counts")
        self.support = support
        self.query = query
    }

    public var taskCount: Int { support.taskCount }

    /// Task `index` alone, as a batch of one.
    public func task(_ index: Int) -> TaskBatch {
        TaskBatch(support: support.task(index), query: query.task(index))
    }
}

/// The loss a task family is scored with.
public enum LossKind: String, Codable, Sendable {
    case meanSquaredError = "mse"
    case crossEntropy = "cross_entropy"

    /// Whether a lower score is better (losses) or a higher one (accuracy).
    public var reportsAccuracy: Bool { self == .crossEntropy }
}

extension LossKind {
    /// The loss of each task, shape `[tasks]`, for predictions `[tasks, examples, outputs]`.
    public func perTask(_ predictions: Tensor, _ targets: Targets) -> Tensor {
        let tasks = predictions.shape[0]
        switch (self, targets) {
        case let (.meanSquaredError, .values(y)):
            return Tensor.meanSquaredErrorPerTask(predictions, y.reshaped(to: predictions.shape))
        case let (.crossEntropy, .labels(labels)):
            let classes = predictions.shape.last!
            let rows = labels.count
            precondition(rows * classes == predictions.count, "\(labels.count) labels for predictions \(predictions.shape)")
            var picks = [Int32](repeating: 0, count: rows)
            for (row, label) in labels.enumerated() { picks[row] = Int32(row * classes + label) }
            let picked = predictions.logSoftmax().gathering(flatIndices: IndexList(picks), shape: [tasks, rows / tasks])
            return -picked.mean(axis: 1)
        default:
            preconditionFailure("loss \(self) does not fit these targets")
        }
    }

    /// The score reported in evaluation, per task: the loss itself for regression, the
    /// accuracy for classification.
    public func scores(_ predictions: Tensor, _ targets: Targets) -> [Float] {
        switch (self, targets) {
        case let (.crossEntropy, .labels(labels)):
            let tasks = predictions.shape[0]
            let perTask = labels.count / tasks
            let predicted = predictions.argmax()
            return (0..<tasks).map { t in
                let range = t * perTask..<(t + 1) * perTask
                return Float(range.filter { predicted[$0] == labels[$0] }.count) / Float(perTask)
            }
        default:
            return perTask(predictions.detached(), targets).scalars
        }
    }
}

/// A distribution over tasks that can be sampled in batches.
public protocol TaskDistribution: Sendable {
    var loss: LossKind { get }
    /// The shape of one input example.
    var inputShape: [Int] { get }
    /// The number of model outputs a task needs (1 for scalar regression, N for N-way).
    var outputCount: Int { get }
    /// Samples `tasks` tasks with `support` and `query` examples each (per class, for
    /// classification) from `rng`.
    func sample(tasks: Int, support: Int, query: Int, using rng: inout RandomGenerator) throws -> TaskBatch
}
