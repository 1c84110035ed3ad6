import Foundation

/// The results of learning a stream: the matrix `R[i][j]`, the score on task j after learning
/// task i (every score after adapting on task j's test support set), and the summary metrics
/// of Lopez-Paz and Ranzato (GEM, 2017).
///
/// Scores are accuracies (higher is better) for classification and MSEs (lower is better) for
/// regression. ACC, BWT and FWT are computed on the scores as they are, so for MSE a positive
/// BWT means forgetting; `forgetting[j]` is always non-negative when the task got worse.
public struct ContinualReport: Codable, Sendable {
    public var method: String
    public var taskNames: [String]
    public var metric: String
    public var higherIsBetter: Bool
    /// `matrix[i][j]`: score on task j after learning tasks 0...i.
    public var matrix: [[Double]]
    /// Scores of the learner's starting point (before any task), the FWT baseline.
    public var initial: [Double]
    public var seconds: Double

    public init(method: String, taskNames: [String], metric: String, higherIsBetter: Bool, matrix: [[Double]], initial: [Double], seconds: Double) {
        self.method = method
        self.taskNames = taskNames
        self.metric = metric
        self.higherIsBetter = higherIsBetter
        self.matrix = matrix
        self.initial = initial
        self.seconds = seconds
    }

    var count: Int { matrix.count }

    /// Mean final score over all tasks.
    public var averageScore: Double { matrix.last.map { $0.reduce(0, +) / Double($0.count) } ?? .nan }

    /// Backward transfer: mean over j < T-1 of R[T-1][j] - R[j][j].
    public var backwardTransfer: Double {
        guard count > 1 else { return 0 }
        let last = matrix[count - 1]
        var total = 0.0
        for j in 0..<(count - 1) { total += last[j] - matrix[j][j] }
        return total / Double(count - 1)
    }

    /// Forward transfer: mean over j > 0 of R[j-1][j] - initial[j].
    public var forwardTransfer: Double {
        guard count > 1 else { return 0 }
        var total = 0.0
        for j in 1..<count { total += matrix[j - 1][j] - initial[j] }
        return total / Double(count - 1)
    }

    /// Per task: how much worse the final score is than the best score it had after being
    /// learned (zero for the last task).
    public var forgetting: [Double] {
        (0..<count).map { j in
            guard j < count - 1 else { return 0 }
            let earlier = (j..<(count - 1)).map { matrix[$0][j] }
            let final = matrix[count - 1][j]
            return higherIsBetter ? max(0, earlier.max()! - final) : max(0, final - earlier.min()!)
        }
    }

    /// A text table of R with the summary metrics.
    public var table: String {
        let percent = higherIsBetter
        func cell(_ v: Double) -> String { percent ? String(format: " %6.1f", 100 * v) : String(format: " %7.3f", v) }
        var lines = ["\(method): R[i][j] = \(metric)\(percent ? " (%)" : "") on task j after learning task i"]
        lines.append("  i\\j" + (0..<(matrix.first?.count ?? 0)).map { String(format: percent ? " %6d" : " %7d", $0) }.joined())
        for (i, row) in matrix.enumerated() { lines.append(String(format: "%5d", i) + row.map(cell).joined()) }
        let scale = percent ? 100.0 : 1.0
        let fmt = percent ? "%.2f" : "%.4f"
        lines.append("  ACC \(String(format: fmt, averageScore * scale))  BWT \(String(format: fmt, backwardTransfer * scale))  FWT \(String(format: fmt, forwardTransfer * scale))  mean forgetting \(String(format: fmt, forgetting.reduce(0, +) / Double(max(count, 1)) * scale))  (\(String(format: "%.1f", seconds)) s)")
        return lines.joined(separator: "\n")
    }
}

/// Runs a continual learner over a stream and records the score matrix.
///
/// ```swift
/// let report = learnStream(learner, stream: stream, method: "ewc",
///                          adaptation: InnerLoop(steps: 5, learningRate: 0.01), using: &rng)
/// print(report.table)
/// ```
public func learnStream(
    _ learner: ContinualLearner, stream: TaskStream, method: String, adaptation: InnerLoop,
    using rng: inout RandomGenerator, shouldStop: () -> Bool = { false }, progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }
) -> ContinualReport {
    let start = Date()
    let initial = learner.score(stream.tasks, adaptation: adaptation).map(Double.init)
    var matrix: [[Double]] = []
    for task in stream.tasks {
        if shouldStop() { break }
        // A training pass (dropout active), keyed by the generator without drawing from it.
        var keys = rng
        ForwardContext.with(.training(key: keys.next())) { learner.learn(task, using: &rng) }
        matrix.append(learner.score(stream.tasks, adaptation: adaptation).map(Double.init))
        progress(matrix.count, stream.tasks.count)
    }
    return ContinualReport(
        method: method, taskNames: stream.tasks.map(\.name), metric: stream.loss.reportsAccuracy ? "accuracy" : "mse",
        higherIsBetter: stream.loss.reportsAccuracy, matrix: matrix, initial: initial, seconds: Date().timeIntervalSince(start))
}

/// Per-task results of online meta-learning against a learner that starts from scratch.
public struct OnlineReport: Codable, Sendable {
    public var metric: String
    public var higherIsBetter: Bool
    /// The proficiency to reach (an MSE at most, or an accuracy at least).
    public var proficiency: Double
    public var maximumSteps: Int
    /// Score on each task's query set before adapting, and after `adaptationSteps` steps.
    public var before: [Double]
    public var after: [Double]
    public var adaptationSteps: Int
    /// SGD steps on the task's support set until the query score reaches proficiency
    /// (`maximumSteps + 1` when it never does), from the meta-learned start and from scratch.
    public var stepsToProficiency: [Int]
    public var scratchStepsToProficiency: [Int]
    public var scratchAfter: [Double]
    public var seconds: Double

    public var table: String {
        let pct = higherIsBetter
        func s(_ v: Double) -> String { pct ? String(format: "%7.1f%%", 100 * v) : String(format: "%8.3f", v) }
        func k(_ v: Int) -> String { v > maximumSteps ? String(format: "%8@", ">\(maximumSteps)") : String(format: "%8d", v) }
        var lines = ["online meta-learning: \(metric) before/after \(adaptationSteps) adaptation steps, and SGD steps to reach \(metric) \(pct ? ">=" : "<=") \(pct ? String(format: "%.0f%%", 100 * proficiency) : String(format: "%.3g", proficiency))",
                     " task    before     after    steps  scratch:after  steps"]
        for t in before.indices {
            lines.append(String(format: "%5d ", t) + s(before[t]) + "  " + s(after[t]) + " " + k(stepsToProficiency[t]) + "       " + s(scratchAfter[t]) + " " + k(scratchStepsToProficiency[t]))
        }
        let half = before.count / 2
        func mean(_ xs: ArraySlice<Int>) -> Double { xs.isEmpty ? .nan : Double(xs.reduce(0, +)) / Double(xs.count) }
        lines.append(String(format: "  mean steps to proficiency, first half %.1f, second half %.1f (from scratch: %.1f, %.1f)",
                            mean(stepsToProficiency.prefix(half)), mean(stepsToProficiency.suffix(before.count - half)),
                            mean(scratchStepsToProficiency.prefix(half)), mean(scratchStepsToProficiency.suffix(before.count - half))))
        return lines.joined(separator: "\n")
    }
}

/// Online meta-learning in the follow-the-meta-leader style (Finn et al. 2019): tasks arrive
/// one at a time; each is scored before and after adapting from the current meta-learned
/// start, and its steps to proficiency are counted (also from a fresh random start, the
/// baseline); then the start is meta-trained on a bounded buffer of the tasks seen so far.
public func onlineMetaLearning(
    _ learner: MetaLearner, stream: TaskStream, buffer: Int, metaSteps: Int, metaBatch: Int,
    support: Int, query: Int, adaptation: InnerLoop, proficiency: Double, maximumSteps: Int,
    using rng: inout RandomGenerator, shouldStop: () -> Bool = { false }, progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }
) -> OnlineReport {
    let start = Date()
    let model = learner.model
    let higher = stream.loss.reportsAccuracy
    func score(_ task: StreamTask, _ params: [Tensor], steps: Int) -> Double {
        var one = adaptation
        one.steps = steps
        let scores = adaptedScores(model: model, loss: learner.loss, parameters: params, tasks: [task], adaptation: one)
        return Double(scores[0])
    }
    func reached(_ v: Double) -> Bool { higher ? v >= proficiency : v <= proficiency }
    func stepsToProficiency(_ task: StreamTask, from params: [Tensor]) -> Int {
        var fast = model.perTask(params.map { $0.detached() }, tasks: 1)
        var one = adaptation
        one.steps = 1
        for k in 0...maximumSteps {
            let predictions = model.forward(task.test.query.inputs, parameters: fast, tasks: 1)
            if reached(Double(learner.loss.scores(predictions, task.test.query.targets)[0])) { return k }
            fast = one.adapt(model: model, loss: learner.loss, support: task.test.support, from: fast, steps: 1, createGraph: false).map { $0.detached() }
        }
        return maximumSteps + 1
    }
    var report = OnlineReport(metric: higher ? "accuracy" : "mse", higherIsBetter: higher, proficiency: proficiency, maximumSteps: maximumSteps,
                              before: [], after: [], adaptationSteps: adaptation.steps, stepsToProficiency: [],
                              scratchStepsToProficiency: [], scratchAfter: [], seconds: 0)
    var seen: [StreamTask] = []
    for task in stream.tasks {
        if shouldStop() { break }
        report.before.append(score(task, model.parameters, steps: 0))
        report.after.append(score(task, model.parameters, steps: adaptation.steps))
        report.stepsToProficiency.append(stepsToProficiency(task, from: model.parameters))
        let scratch = Sequential(layers: model.layers, weightInit: .fanInUniform, using: &rng).parameters
        report.scratchAfter.append(score(task, scratch, steps: adaptation.steps))
        report.scratchStepsToProficiency.append(stepsToProficiency(task, from: scratch))
        seen.append(task)
        if seen.count > buffer { seen.removeFirst() }
        for _ in 0..<metaSteps {
            let episodes = (0..<metaBatch).map { _ in seen[rng.nextInt(below: seen.count)].pool.episode(support: support, query: query, using: &rng) }
            var keys = rng
            ForwardContext.with(.training(key: keys.next())) { _ = learner.metaStep(TaskBatch.concatenate(episodes)) }
        }
        progress(report.before.count, stream.tasks.count)
    }
    report.seconds = Date().timeIntervalSince(start)
    return report
}
