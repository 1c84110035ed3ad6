import Foundation

/// A group of processes that sum buffers together: MPI's world (``MPI``), or a stand-in in
/// tests. Every member must call `sum` the same number of times with buffers of the same size.
public protocol ReductionGroup: AnyObject {
    /// This process's rank, 0 ..< size.
    var rank: Int { get }
    var size: Int { get }
    /// Replaces `values` by their element-wise sum over the group (the same bits on every rank).
    func sum(_ values: inout [Float])
    func sum(_ values: inout [Double])
}

/// Task-parallel data parallelism for meta-training: each rank adapts on its share of the
/// meta-batch and the meta-gradients are summed across ranks once per step, so every rank
/// applies the same optimiser update and keeps the same parameters.
///
/// A meta-step of `n` tasks draws one step seed from the learner's generator (the same on
/// every rank); task `i` is sampled from its own generator `taskGenerator(stepSeed, i)`, and
/// rank `r` of `N` takes tasks `share(of: n)`, so the union of the tasks of a step does not
/// depend on N. The learner's outer optimiser, armed for the step, sums `n_r * g_r` over the
/// ranks and divides by `n` (`g_r` is the rank's mean over its tasks): the meta-gradient of the
/// whole batch. The result depends on N only through floating-point summation order.
///
/// ```swift
/// DataParallel.group = try MPI.start()          // under mpirun
/// let loss = try DataParallel.metaStep(learner, tasks: 32) { range, seed in ... sample ... }
/// ```
public enum DataParallel {
    /// The group training runs across; nil: one process, training as without it.
    nonisolated(unsafe) public static var group: ReductionGroup?

    /// Whether this process writes files and prints: rank 0, or no group.
    public static var isLeader: Bool { (group?.rank ?? 0) == 0 }

    /// Tasks `r*n/N ..< (r+1)*n/N` of a meta-batch of `n` for rank `r` of `N`.
    public static func share(of n: Int, rank: Int, size: Int) -> Range<Int> {
        (rank * n / size)..<((rank + 1) * n / size)
    }

    /// The generator of task `index` of the step whose seed is `stepSeed`.
    public static func taskGenerator(stepSeed: UInt64, index: Int) -> RandomGenerator {
        var z = stepSeed ^ (UInt64(truncatingIfNeeded: index) &+ 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return RandomGenerator(seed: z ^ (z >> 31))
    }

    /// Why `learner` cannot be trained across ranks, or nil when it can.
    public static func unsupported(_ learner: MetaLearner) -> String? {
        if learner.outerOptimizer == nil { return "it has no outer optimiser whose updates could be summed across ranks" }
        if let reptile = learner as? Reptile, !reptile.batched {
            return "Reptile with 'batched false' updates once per task, so its ranks would not update together; use 'batched true'"
        }
        return nil
    }

    /// The step in progress: the optimiser whose next update sums gradients across ranks.
    nonisolated(unsafe) private static var armed: (optimizer: ObjectIdentifier, local: Int, total: Int, group: ReductionGroup)?
    /// Bytes summed across ranks by the last step, and the seconds the sums took.
    nonisolated(unsafe) public private(set) static var lastStepBytes = 0
    nonisolated(unsafe) public private(set) static var reductionSeconds = 0.0
    /// Data-parallel meta-steps taken by this process.
    nonisolated(unsafe) public private(set) static var steps = 0

    /// One data-parallel meta-step of `tasks` tasks: `sample(range, stepSeed)` gives this
    /// rank's share (tasks `range` of the batch, sampled with `taskGenerator`); returns the
    /// mean query loss over all `tasks`, the same on every rank.
    public static func metaStep(
        _ learner: MetaLearner, group: ReductionGroup, tasks: Int, stepSeed: UInt64,
        sample: (Range<Int>, UInt64) throws -> TaskBatch
    ) throws -> Float {
        let range = share(of: tasks, rank: group.rank, size: group.size)
        steps += 1
        let batch = try sample(range, stepSeed)
        guard let optimizer = learner.outerOptimizer else { preconditionFailure("checked by unsupported(_:)") }
        armed = (ObjectIdentifier(optimizer), range.count, tasks, group)
        lastStepBytes = 0
        defer { armed = nil }
        let localLoss = learner.metaStep(batch)
        if armed != nil {
            // The learner did not update (a script learner's error): the other ranks wait in
            // the sum, which this one cannot join; the caller reports the error and the run
            // is aborted (MPI_Abort ends every rank).
            return .nan
        }
        var loss = [Double(localLoss) * Double(range.count)]
        let start = Date()
        group.sum(&loss)
        reductionSeconds += Date().timeIntervalSince(start)
        lastStepBytes += 8
        return Float(loss[0] / Double(tasks))
    }

    /// Called by every optimiser's `update`: when `optimizer` is armed for a data-parallel
    /// step, its gradients summed across ranks (weighted by each rank's task count) and
    /// divided by the batch's task count; otherwise the gradients as they are.
    public static func reduce(_ gradients: [Tensor], for optimizer: Optimizer) -> [Tensor] {
        guard let step = armed, step.optimizer == ObjectIdentifier(optimizer) else { return gradients }
        let group = step.group
        armed = nil
        let count = gradients.reduce(0) { $0 + $1.count }
        var flat = [Float](repeating: 0, count: count)
        let weight = Float(step.local)
        var offset = 0
        for g in gradients {
            let p = g.buffer.pointer
            for j in 0..<g.count { flat[offset + j] = p[j] * weight }
            offset += g.count
        }
        let start = Date()
        group.sum(&flat)
        reductionSeconds += Date().timeIntervalSince(start)
        lastStepBytes += count * MemoryLayout<Float>.size
        let scale = 1 / Float(step.total)
        offset = 0
        return gradients.map { g in
            let values = (0..<g.count).map { flat[offset + $0] * scale }
            offset += g.count
            return Tensor(shape: g.shape, values: values)
        }
    }
}
