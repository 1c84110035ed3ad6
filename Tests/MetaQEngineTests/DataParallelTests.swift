import Testing
@testable import MetaQEngine

/// Data-parallel meta-steps without MPI: the shares of a meta-batch, and the gradient sum seen
/// from each rank through stand-in groups (scripts/test-mpi.sh runs the real thing).
@Suite(.serialized) struct DataParallelTests {
    /// Records what a rank contributes to each sum and answers with `answer` of the call
    /// (the other ranks' values added), or the values unchanged.
    final class StandIn: ReductionGroup {
        let rank: Int, size: Int
        var floats: [[Float]] = [], doubles: [[Double]] = []
        var addFloats: [[Float]] = [], addDoubles: [[Double]] = []
        init(rank: Int, size: Int) { self.rank = rank; self.size = size }
        func sum(_ values: inout [Float]) {
            floats.append(values)
            if floats.count <= addFloats.count { values = zip(values, addFloats[floats.count - 1]).map { $0 + $1 } }
        }
        func sum(_ values: inout [Double]) {
            doubles.append(values)
            if doubles.count <= addDoubles.count { values = zip(values, addDoubles[doubles.count - 1]).map { $0 + $1 } }
        }
    }

    @Test func sharesPartitionTheBatchEvenly() {
        for n in 1...40 {
            for size in 1...min(n, 9) {
                let shares = (0..<size).map { DataParallel.share(of: n, rank: $0, size: size) }
                #expect(shares.first?.lowerBound == 0 && shares.last?.upperBound == n)
                #expect(zip(shares, shares.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
                let counts = shares.map(\.count)
                #expect(counts.max()! - counts.min()! <= 1 && counts.min()! >= 1)
            }
        }
    }

    private func maml(dropout: Bool = false) -> MAML {
        var rng = RandomGenerator(seed: 3)
        let layers: [Layer] = [.linear(inputs: 1, outputs: 16), .activation(.relu)]
            + (dropout ? [.module(AnyLayer(Dropout(rate: 0.25)))] : []) + [.linear(inputs: 16, outputs: 1)]
        return MAML(model: Sequential(layers: layers, using: &rng), loss: .meanSquaredError,
                    inner: InnerLoop(steps: 1, learningRate: 0.01), optimizer: Adam(learningRate: 1e-2))
    }

    private func batch(_ range: Range<Int>, seed: UInt64) throws -> TaskBatch {
        let sine = RegressionTasks.sinusoid()
        return TaskBatch.concatenate(try range.map { i in
            var g = DataParallel.taskGenerator(stepSeed: seed, index: i)
            return try sine.sample(tasks: 1, support: 5, query: 5, using: &g)
        })
    }

    /// With dropout, each rank's tasks keep their place in the batch (the training context's
    /// task offset, as `train` sets it under mpirun), so the ranks draw the masks one process draws.
    @Test(arguments: [false, true])
    func twoRanksSummedEqualOneProcess(dropout: Bool) throws {
        let tasks = 7
        let single = maml(dropout: dropout), rank0 = maml(dropout: dropout), rank1 = maml(dropout: dropout)
        for step in 0..<5 {
            let seed = UInt64(100 + step)
            func training<R>(offset: Int, _ body: () throws -> R) rethrows -> R {
                try ForwardContext.with(.training(key: ~seed, taskOffset: offset)) { try body() }
            }
            // One process: the whole batch.
            let expected = try training(offset: 0) { single.metaStep(try batch(0..<tasks, seed: seed)) }
            // Rank 1's contributions (its own update is not looked at: its parameters would
            // be rank 0's on a real run, so it starts each step from a copy of them).
            rank1.model.parameters = rank0.model.parameters
            try rank1.optimizer.restore(rank0.optimizer.state)
            let one = StandIn(rank: 1, size: 2)
            _ = try training(offset: 3) { try DataParallel.metaStep(rank1, group: one, tasks: tasks, stepSeed: seed) { try batch($0, seed: $1) } }
            // Rank 0 gets rank 1's contributions added: the sums of a real run.
            let zero = StandIn(rank: 0, size: 2)
            zero.addFloats = one.floats
            zero.addDoubles = one.doubles
            let loss = try training(offset: 0) {
                try DataParallel.metaStep(rank0, group: zero, tasks: tasks, stepSeed: seed) { range, s in
                    #expect(range == 0..<3)
                    return try batch(range, seed: s)
                }
            }
            #expect(one.floats.count == 1 && one.doubles.count == 1, "one gradient sum and one loss sum per step")
            #expect(abs(loss - expected) <= 1e-5 * abs(expected))
            for (a, b) in zip(single.model.parameters, rank0.model.parameters) {
                let scale = a.scalars.map(abs).max()!
                #expect(zip(a.scalars, b.scalars).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
            }
        }
    }

    @Test func aLearnerThatCannotBeSplitSaysWhy() {
        var rng = RandomGenerator(seed: 1)
        let reptile = Reptile(model: Sequential.mlp(sizes: [1, 4, 1], using: &rng), loss: .meanSquaredError,
                              inner: InnerLoop(steps: 1, learningRate: 0.01), batched: false, optimizer: SGD(learningRate: 1))
        #expect(DataParallel.unsupported(reptile)?.contains("batched false") == true)
        reptile.batched = true
        #expect(DataParallel.unsupported(reptile) == nil)
        #expect(DataParallel.unsupported(maml()) == nil)
    }
}
