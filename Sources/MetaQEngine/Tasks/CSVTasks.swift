/// Regression tasks from a CSV file: each task id's rows are one task; each sampled task
/// draws `support + query` distinct rows. With `classification`, targets are integer class
/// labels (0..<classes) and tasks are scored by accuracy.
///
/// ```swift
/// let table = try CSVTaskTable(path: "tasks.csv", taskColumn: "task", targetColumn: "y")
/// let tasks = try CSVTasks(table: table)
/// ```
public struct CSVTasks: TaskDistribution {
    public let table: CSVTaskTable
    /// The tasks to draw from (indices into `table.tasks`).
    public let taskIndices: [Int]
    public let classes: Int?

    public var loss: LossKind { classes == nil ? .meanSquaredError : .crossEntropy }
    public var inputShape: [Int] { [table.featureCount] }
    public var outputCount: Int { classes ?? 1 }

    public init(table: CSVTaskTable, taskIndices: [Int]? = nil, classification: Bool = false) throws {
        self.table = table
        self.taskIndices = taskIndices ?? Array(table.tasks.indices)
        guard !self.taskIndices.isEmpty else {
            throw DataError.malformedCSV(path: table.path, line: nil, reason: "no tasks")
        }
        if classification {
            var maxLabel = 0
            for task in table.tasks {
                for (row, y) in task.targets.enumerated() {
                    guard y >= 0, y == y.rounded(), y < 1_000_000 else {
                        throw DataError.malformedCSV(path: table.path, line: nil,
                            reason: "task '\(task.id)' row \(row + 1): class label \(y) is not a non-negative integer")
                    }
                    maxLabel = max(maxLabel, Int(y))
                }
            }
            classes = maxLabel + 1
        } else {
            classes = nil
        }
    }

    public func sample(tasks: Int, support: Int, query: Int, using rng: inout RandomGenerator) throws -> TaskBatch {
        let d = table.featureCount
        let perTask = support + query
        var xs = [Float](), ys = [Float]()
        xs.reserveCapacity(tasks * perTask * d)
        for _ in 0..<tasks {
            let task = table.tasks[taskIndices[rng.nextInt(below: taskIndices.count)]]
            guard task.rowCount >= perTask else {
                throw DataError.malformedCSV(path: table.path, line: nil,
                    reason: "task '\(task.id)' has \(task.rowCount) rows; \(support) support + \(query) query rows are needed")
            }
            for row in rng.sample(perTask, from: task.rowCount) {
                xs += task.features[row * d..<(row + 1) * d]
                ys.append(task.targets[row])
            }
        }
        let x = Tensor(shape: [tasks, perTask, d], values: xs)
        func split(_ range: Range<Int>) -> Split {
            let inputs = x.slice(axis: 1, range)
            if classes != nil {
                var labels: [Int] = []
                for t in 0..<tasks { for i in range { labels.append(Int(ys[t * perTask + i])) } }
                return Split(inputs: inputs, targets: .labels(labels))
            }
            let y = Tensor(shape: [tasks, perTask, 1], values: ys)
            return Split(inputs: inputs, targets: .values(y.slice(axis: 1, range)))
        }
        return TaskBatch(support: split(0..<support), query: split(support..<perTask))
    }
}
