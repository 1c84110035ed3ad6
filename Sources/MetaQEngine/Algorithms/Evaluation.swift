import Foundation

/// Mean and 95% confidence interval of one score over test tasks.
public struct ScoreSummary: Codable, Sendable, Equatable {
    public var steps: Int
    public var mean: Double
    /// Half-width of the 95% confidence interval of the mean (1.96 standard errors).
    public var confidence95: Double
    public var tasks: Int
    /// Each task's score, in task order, when kept (for listed episodes; nil otherwise).
    public var scores: [Double]?

    public init(steps: Int, scores: [Float], keepingScores: Bool = false) {
        self.steps = steps
        tasks = scores.count
        self.scores = keepingScores ? scores.map(Double.init) : nil
        let values = scores.map(Double.init)
        mean = values.reduce(0, +) / Double(max(values.count, 1))
        let m = mean
        let variance = values.count > 1 ? values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count - 1) : 0
        confidence95 = 1.96 * variance.squareRoot() / Double(max(values.count, 1)).squareRoot()
    }
}

/// The result of evaluating a learner on fresh tasks: one row per adaptation step count.
public struct EvaluationReport: Codable, Sendable, CustomStringConvertible {
    /// "mse" for regression, "accuracy" for classification.
    public var metric: String
    public var rows: [ScoreSummary]
    /// The names of the listed episodes scored, in the order of each row's `scores`
    /// (nil for fresh tasks).
    public var episodes: [String]?

    public init(metric: String, rows: [ScoreSummary], episodes: [String]? = nil) {
        self.metric = metric
        self.rows = rows
        self.episodes = episodes
    }

    public var description: String {
        let percent = metric == "accuracy"
        var lines = ["steps  \(metric.padding(toLength: percent ? 10 : 9, withPad: " ", startingAt: 0))  95% CI"]
        for row in rows {
            lines.append(percent
                ? String(format: "%5d  %8.2f%%  ± %.2f%%", row.steps, 100 * row.mean, 100 * row.confidence95)
                : String(format: "%5d  %9.4f  ± %.4f", row.steps, row.mean, row.confidence95))
        }
        return lines.joined(separator: "\n")
    }
}

extension MetaLearner {
    /// Evaluates on `tasks` fresh tasks from `distribution`, adapting on `support` examples
    /// (per class for classification) and scoring on `query`, for each of `steps`.
    /// Tasks are drawn and run `batchSize` at a time; `shouldStop` is asked before each batch,
    /// and when it answers true the report covers the tasks evaluated so far (its rows'
    /// `tasks` say how many).
    ///
    /// ```swift
    /// let report = try maml.evaluate(on: sine, tasks: 600, support: 5, query: 100, steps: [1, 5, 10], using: &rng)
    /// print(report)
    /// ```
    public func evaluate(
        on distribution: TaskDistribution, tasks: Int, support: Int, query: Int, steps: [Int],
        batchSize: Int = 25, using rng: inout RandomGenerator, shouldStop: () -> Bool = { false },
        progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }
    ) throws -> EvaluationReport {
        var perStep = [[Float]](repeating: [], count: steps.count)
        var done = 0
        while done < tasks, !shouldStop() {
            let n = min(batchSize, tasks - done)
            let batch = try distribution.sample(tasks: n, support: support, query: query, using: &rng)
            for (i, scores) in distributedScores(batch, steps: steps).enumerated() { perStep[i] += scores }
            done += n
            progress(done, tasks)
        }
        return EvaluationReport(
            metric: loss.reportsAccuracy ? "accuracy" : "mse",
            rows: zip(steps, perStep).map { ScoreSummary(steps: $0, scores: $1) })
    }
}

extension MetaLearner {
    /// The scores of `groupedScores`; across processes (``DataParallel``) every process has
    /// sampled the same batch, scores its share of the tasks, and one sum (each process's
    /// scores in its own slots, zeros elsewhere) gives every process all of them, in order.
    func distributedScores(_ batch: TaskBatch, steps: [Int]) -> [[Float]] {
        guard let group = DataParallel.group, group.size > 1 else { return groupedScores(batch, steps: steps) }
        let n = batch.taskCount
        let share = DataParallel.share(of: n, rank: group.rank, size: group.size)
        var flat = [Float](repeating: 0, count: steps.count * n)
        if !share.isEmpty {
            let local = groupedScores(batch.tasks(share), steps: steps)
            for (i, scores) in local.enumerated() where i < steps.count {
                for (j, v) in scores.prefix(share.count).enumerated() { flat[i * n + share.lowerBound + j] = v }
            }
        }
        group.sum(&flat)
        return steps.indices.map { Array(flat[$0 * n..<($0 + 1) * n]) }
    }

    /// `evaluate(batch, steps:)` run a few tasks at a time: as many as fit `groupElements`
    /// input floats (support and query), with the tasks split across `threads` workers.
    /// Tasks are independent (batch norm takes per-task statistics), so the scores are those
    /// of one call on the whole batch; the tensors stay cache-sized instead of, for 10
    /// 20-way tasks with 100 query images, a 200 MB first-layer activation that pays a page
    /// fault per 4 KiB every time.
    func groupedScores(_ batch: TaskBatch, steps: [Int], threads: Int = Parallel.threads,
                       groupElements: Int = 1 << 16) -> [[Float]] {
        let t = batch.taskCount
        let groupSize = batch.tasksPerGroup(elements: groupElements)
        if groupSize >= t { return evaluate(batch, steps: steps) }
        let shares = Parallel.mapShares(t, shares: evaluatesConcurrently ? min(threads, t) : 1) { range -> [[Float]] in
            var scores = [[Float]](repeating: [], count: steps.count)
            batch.forEachGroup(of: range, tasksPerGroup: groupSize) { _, group in
                for (i, part) in evaluate(group, steps: steps).enumerated() { scores[i] += part }
            }
            return scores
        }
        return (0..<steps.count).map { i in shares.flatMap { $0[i] } }
    }
}
