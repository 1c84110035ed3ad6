import Foundation
import MetaQEngine

/// Limits on the sizes a script chooses, checked before anything is allocated: a size near
/// the largest int gives an error naming the limit, never an overflow trap, and a plan that
/// cannot fit in memory is refused instead of exhausting the machine.
enum Limits {
    /// The largest size one key can give (features, units, filters, examples per task or
    /// class, tasks per batch): 2^24, the limit checkpoints apply to layer sizes too.
    static let maximumSize = 1 << 24

    /// The floats (4 bytes each) one model or one batch of tasks may take: half the
    /// machine's memory.
    static var maximumFloats: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory / 8) }

    /// The product of `factors`, or nil when it overflows an int.
    static func product(_ factors: [Int]) -> Int? {
        var result = 1
        for factor in factors {
            let (p, overflow) = result.multipliedReportingOverflow(by: factor)
            if overflow { return nil }
            result = p
        }
        return result
    }

    /// The sum of `terms`, or nil when it overflows an int (or a term is nil).
    static func sum(_ terms: [Int?]) -> Int? {
        var result = 0
        for term in terms {
            guard let term else { return nil }
            let (s, overflow) = result.addingReportingOverflow(term)
            if overflow { return nil }
            result = s
        }
        return result
    }

    /// Throws unless `count` floats (nil: more than an int counts) fit in `maximumFloats`;
    /// `what` names what needs them ("this model", "a batch of 25 tasks").
    static func requireFloats(_ count: Int?, for what: String, at range: SourceRange) throws {
        if let count, count <= maximumFloats { return }
        let needs = count.map { "\($0) floats (\(gigabytes(floats: $0)))" } ?? "more floats than an int can count"
        let memory = Double(ProcessInfo.processInfo.physicalMemory) / 1e9
        throw RuntimeError("\(what) is too large: it needs \(needs), and at most \(maximumFloats) fit in half of this machine's \(String(format: "%.1f", memory)) GB of memory", at: range)
    }

    /// The parameters of a network of `layers`, checked to fit in memory before it is made.
    static func requireParameters(_ layers: [Layer], for what: String, at range: SourceRange) throws {
        let specs = layers.flatMap { $0.parameterSpecs(weightInit: .fanInUniform) }
        try requireFloats(sum(specs.map { product($0.shape) }), for: what, at: range)
    }

    /// The floats of one batch of `tasks` tasks from `distribution` with `support` and
    /// `query` examples (per class, for classification), checked to fit in memory.
    static func requireBatch(tasks: Int, support: Int, query: Int, of distribution: TaskDistribution, at range: SourceRange) throws {
        let perClass = support.addingReportingOverflow(query)
        let classes = distribution.loss == .crossEntropy ? distribution.outputCount : 1
        let features = sum([product(distribution.inputShape), 1])
        let floats = perClass.overflow ? nil : features.flatMap { product([tasks, perClass.partialValue, classes, $0]) }
        try requireFloats(floats, for: "a batch of \(tasks) tasks with \(support) support and \(query) query examples", at: range)
    }

    private static func gigabytes(floats: Int) -> String {
        String(format: "%.1f GB", Double(floats) * 4 / 1e9)
    }
}
