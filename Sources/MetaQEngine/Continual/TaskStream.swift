/// The examples of one task held as a pool to draw training batches from: inputs
/// `[n, ...]` and their targets, ordered class by class for classification.
public struct ExamplePool: Sendable {
    public let inputs: Tensor
    public let targets: Targets
    /// For classification: the number of classes and examples per class (class-major order).
    public let classes: Int?
    public let perClass: Int

    public var count: Int { inputs.shape[0] }

    /// Takes the single task of a split (`[1, n, ...]`) as a pool.
    public init(_ split: Split, classes: Int?) {
        inputs = split.inputs.reshaped(to: Array(split.inputs.shape.dropFirst()))
        targets = split.targets
        self.classes = classes
        perClass = classes.map { split.examplesPerTask / $0 } ?? split.examplesPerTask
    }

    /// A training episode of this task: `support` and `query` distinct examples (per class for
    /// classification), as a batch of one task. Needs at least two examples (per class).
    public func episode(support: Int, query: Int, using rng: inout RandomGenerator) -> TaskBatch {
        precondition((classes == nil ? count : perClass) >= 2, "an episode needs at least two examples per class")
        var supportRows: [Int] = [], queryRows: [Int] = []
        if let classes {
            let s = min(support, perClass - 1), q = min(query, perClass - s)
            for c in 0..<classes {
                let picks = rng.sample(s + q, from: perClass).map { c * perClass + $0 }
                supportRows += picks.prefix(s)
                queryRows += picks.suffix(q)
            }
        } else {
            let s = min(support, count - 1), q = min(query, count - s)
            let picks = rng.sample(s + q, from: count)
            supportRows = Array(picks.prefix(s))
            queryRows = Array(picks.suffix(q))
        }
        return TaskBatch(support: rows(supportRows), query: rows(queryRows))
    }

    /// A minibatch of `size` random examples as a one-task split.
    public func minibatch(_ size: Int, using rng: inout RandomGenerator) -> Split {
        rows(rng.sample(min(size, count), from: count))
    }

    /// The given examples as a one-task split.
    public func rows(_ indices: [Int]) -> Split {
        let x = inputs.gatheringRows(indices)
        let inputs = x.reshaped(to: [1] + x.shape)
        switch targets {
        case let .values(y):
            let picked = y.reshaped(to: [count, -1]).gatheringRows(indices)
            return Split(inputs: inputs, targets: .values(picked.reshaped(to: [1] + picked.shape)))
        case let .labels(labels):
            return Split(inputs: inputs, targets: .labels(indices.map { labels[$0] }))
        }
    }
}

/// One task of a stream: a pool of training examples, and a fixed test episode (a support set
/// to adapt on and a query set to score) that every evaluation of this task reuses.
public struct StreamTask: Sendable {
    public let index: Int
    public let name: String
    /// When the task recurs, the index of its first appearance.
    public let recurrenceOf: Int?
    public let pool: ExamplePool
    public let test: TaskBatch
}

/// An ordered, reproducible sequence of tasks arriving one at a time.
///
/// ```swift
/// var rng = RandomGenerator(seed: 1)
/// let stream = try TaskStream.regression(.sinusoid(), count: 20, drift: 0.02, recurrence: 0.1,
///                                        pool: 50, support: 10, query: 50, using: &rng)
/// ```
public struct TaskStream: Sendable {
    public let tasks: [StreamTask]
    public let loss: LossKind
    /// Examples per class in test support sets for classification; examples otherwise.
    public let support: Int

    public init(tasks: [StreamTask], loss: LossKind, support: Int) {
        self.tasks = tasks
        self.loss = loss
        self.support = support
    }

    /// A stream of regression tasks whose parameters are drawn from `family`, then drift by
    /// `drift` (a fraction of each parameter's range per task, wrapping around the range) and
    /// with probability `recurrence` repeat an earlier task exactly.
    public static func regression(
        _ family: RegressionTasks, count: Int, drift: Float = 0, recurrence: Double = 0,
        pool: Int, support: Int, query: Int, using rng: inout RandomGenerator
    ) throws -> TaskStream {
        var parameters: [[Float]] = []
        var tasks: [StreamTask] = []
        let base = family.sampleParameters(using: &rng)
        for t in 0..<count {
            var recurs: Int?
            var p: [Float]
            if t > 0, recurrence > 0, rng.nextDouble() < recurrence {
                let earlier = rng.nextInt(below: t)
                recurs = tasks[earlier].recurrenceOf ?? earlier
                p = parameters[earlier]
            } else if drift > 0 {
                p = zip(base, family.parameterRanges).map { value, r in
                    let width = r.range.upperBound - r.range.lowerBound
                    var moved = value + drift * Float(t) * width
                    while moved > r.range.upperBound { moved -= width }
                    return moved
                }
            } else {
                p = family.sampleParameters(using: &rng)
            }
            parameters.append(p)
            let poolBatch = try family.sample(parameters: [p], support: pool, query: 0, using: &rng)
            let test = try family.sample(parameters: [p], support: support, query: query, using: &rng)
            let name = zip(family.parameterRanges, p).map { "\($0.name) \(String(format: "%.2f", $1))" }.joined(separator: ", ")
            tasks.append(StreamTask(index: t, name: name, recurrenceOf: recurs,
                                    pool: ExamplePool(poolBatch.support, classes: nil), test: test))
        }
        return TaskStream(tasks: tasks, loss: .meanSquaredError, support: support)
    }

    /// A stream of classification tasks, one per distribution in `sources` (for example one
    /// Omniglot alphabet after another): each task fixes `ways` classes drawn once from its
    /// source, with `pool` training images and `support + query` test images per class.
    public static func classification(
        _ sources: [(name: String, tasks: TaskDistribution)], pool: Int, support: Int, query: Int,
        using rng: inout RandomGenerator
    ) throws -> TaskStream {
        var tasks: [StreamTask] = []
        for (t, source) in sources.enumerated() {
            // One draw fixes the classes: its support half is the training pool, its query
            // half the test episode.
            let drawn = try source.tasks.sample(tasks: 1, support: pool, query: support + query, using: &rng)
            let ways = source.tasks.outputCount
            let testPool = ExamplePool(drawn.query, classes: ways)
            var testSupport: [Int] = [], testQuery: [Int] = []
            for c in 0..<ways {
                let base = c * (support + query)
                testSupport += (base..<base + support)
                testQuery += (base + support..<base + support + query)
            }
            tasks.append(StreamTask(index: t, name: source.name, recurrenceOf: nil,
                                    pool: ExamplePool(drawn.support, classes: ways),
                                    test: TaskBatch(support: testPool.rows(testSupport), query: testPool.rows(testQuery))))
        }
        return TaskStream(tasks: tasks, loss: .crossEntropy, support: support)
    }

    /// A stream of `count` tasks drawn independently from any distribution (CSV tasks, for
    /// example): each task's pool and test episode come from one draw.
    public static func sampled(
        from distribution: TaskDistribution, count: Int, pool: Int, support: Int, query: Int,
        using rng: inout RandomGenerator
    ) throws -> TaskStream {
        if distribution.loss == .crossEntropy {
            return try classification((0..<count).map { ("task \($0)", distribution) }, pool: pool, support: support, query: query, using: &rng)
        }
        var tasks: [StreamTask] = []
        for t in 0..<count {
            let drawn = try distribution.sample(tasks: 1, support: pool + support, query: query, using: &rng)
            let all = ExamplePool(drawn.support, classes: nil)
            let test = TaskBatch(support: all.rows(Array(pool..<pool + support)), query: drawn.query)
            tasks.append(StreamTask(index: t, name: "task \(t)", recurrenceOf: nil, pool: ExamplePool(all.rows(Array(0..<pool)), classes: nil), test: test))
        }
        return TaskStream(tasks: tasks, loss: distribution.loss, support: support)
    }
}
