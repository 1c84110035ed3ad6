import Testing
@testable import MetaQEngine

/// N-way classification tasks over random Gaussian clusters in `dimensions` dimensions: each
/// task draws fresh class centres, so only a learner that adapts (or compares with
/// prototypes) can classify its queries.
struct ClusterTasks: TaskDistribution {
    var ways = 3
    var dimensions = 4
    var spread: Float = 0.3
    var loss: LossKind { .crossEntropy }
    var inputShape: [Int] { [dimensions] }
    var outputCount: Int { ways }

    func sample(tasks: Int, support: Int, query: Int, using rng: inout RandomGenerator) throws -> TaskBatch {
        var sx = [Float](), qx = [Float](), sy = [Int](), qy = [Int]()
        for _ in 0..<tasks {
            let centres = (0..<ways).map { _ in (0..<dimensions).map { _ in rng.nextFloat(in: -1..<1) } }
            for (count, isSupport) in [(support, true), (query, false)] {
                for c in 0..<ways {
                    for _ in 0..<count {
                        let point = centres[c].map { $0 + spread * rng.nextNormal() }
                        if isSupport { sx += point; sy.append(c) } else { qx += point; qy.append(c) }
                    }
                }
            }
        }
        return TaskBatch(
            support: Split(inputs: Tensor(shape: [tasks, ways * support, dimensions], values: sx), targets: .labels(sy)),
            query: Split(inputs: Tensor(shape: [tasks, ways * query, dimensions], values: qx), targets: .labels(qy)))
    }
}

private func meanScores(_ learner: MetaLearner, _ batch: TaskBatch, steps: [Int]) -> [Float] {
    learner.evaluate(batch, steps: steps).map { $0.reduce(0, +) / Float($0.count) }
}

@Suite("Meta-learners learn")
struct LearnerTests {
    @Test func metaSGDLearnsItsRatesAndAdapts() throws {
        var rng = RandomGenerator(seed: 5)
        let net = Sequential.mlp(sizes: [1, 40, 40, 1], using: &rng)
        let learner = MetaSGD(model: net, loss: .meanSquaredError, innerSteps: 1, initialRate: 0.01, optimizer: Adam(learningRate: 3e-3))
        let sine = RegressionTasks.sinusoid()
        for _ in 0..<300 { learner.metaStep(try sine.sample(tasks: 10, support: 10, query: 10, using: &rng)) }
        let rates = learner.learningRates.flatMap(\.scalars)
        #expect(rates.contains { abs($0 - 0.01) > 1e-3 }, "the inner rates must have been meta-learned")
        let scores = meanScores(learner, try sine.sample(tasks: 100, support: 10, query: 20, using: &rng), steps: [0, 1])
        #expect(scores[1] < 0.7 * scores[0], "one Meta-SGD step: \(scores)")
    }

    @Test(arguments: [true, false])
    func reptileImprovesAdaptation(batched: Bool) throws {
        var rng = RandomGenerator(seed: 6)
        let net = Sequential.mlp(sizes: [1, 40, 40, 1], using: &rng)
        let reptile = Reptile(model: net, loss: .meanSquaredError, inner: InnerLoop(steps: 5, learningRate: 0.02),
                              batched: batched, optimizer: SGD(learningRate: batched ? 1 : 0.1))
        let sine = RegressionTasks.sinusoid()
        let test = try sine.sample(tasks: 100, support: 10, query: 20, using: &rng)
        let before = meanScores(reptile, test, steps: [10])[0]
        for _ in 0..<200 { reptile.metaStep(try sine.sample(tasks: 5, support: 10, query: 10, using: &rng)) }
        let after = meanScores(reptile, test, steps: [10])[0]
        #expect(after < 0.7 * before, "post-adaptation MSE before meta-training \(before), after \(after)")
    }

    @Test func anilAdaptsOnlyTheHead() throws {
        var rng = RandomGenerator(seed: 7)
        let net = Sequential.mlp(sizes: [4, 32, 3], activation: .relu, using: &rng)
        let anil = MAML.anil(model: net, loss: .crossEntropy, inner: InnerLoop(steps: 5, learningRate: 0.5), optimizer: Adam(learningRate: 3e-3))
        let tasks = ClusterTasks()
        let batch = try tasks.sample(tasks: 4, support: 5, query: 5, using: &rng)
        let fast = anil.adapt(batch.support, from: net.parameters, steps: 2, createGraph: false)
        let head = net.headParameterRange
        for i in net.parameters.indices {
            if head.contains(i) {
                #expect(fast[i].shape == [4] + net.parameters[i].shape)
            } else {
                #expect(fast[i].scalars == net.parameters[i].scalars, "body parameter \(i) must not adapt")
            }
        }
        for _ in 0..<150 { anil.metaStep(try tasks.sample(tasks: 8, support: 5, query: 5, using: &rng)) }
        let scores = meanScores(anil, try tasks.sample(tasks: 100, support: 5, query: 10, using: &rng), steps: [0, 5])
        #expect(scores[1] > scores[0] + 0.2, "accuracy before and after adapting the head: \(scores)")
    }

    @Test(arguments: [PrototypeDistance.euclidean, .cosine])
    func prototypicalNetworkClassifiesClusters(distance: PrototypeDistance) throws {
        var rng = RandomGenerator(seed: 8)
        let net = Sequential.mlp(sizes: [4, 32, 16], using: &rng)
        let protonet = PrototypicalNetwork(model: net, distance: distance, optimizer: Adam(learningRate: 3e-3))
        let tasks = ClusterTasks()
        for _ in 0..<100 { protonet.metaStep(try tasks.sample(tasks: 8, support: 5, query: 5, using: &rng)) }
        let report = try protonet.evaluate(on: tasks, tasks: 100, support: 5, query: 10, steps: [0], using: &rng)
        #expect(report.metric == "accuracy")
        #expect(report.rows[0].mean > 0.9, "3-way accuracy \(report.rows[0].mean)")
    }

    @Test func prototypesAreClassMeans() {
        var rng = RandomGenerator(seed: 9)
        let net = Sequential(layers: [.flatten], using: &rng)
        let protonet = PrototypicalNetwork(model: net, optimizer: SGD(learningRate: 0))
        let support = Split(inputs: Tensor(shape: [1, 4, 2], values: [0, 0, 2, 2, 10, 0, 20, 0]), targets: .labels([0, 0, 1, 1]))
        #expect(protonet.prototypes(support, parameters: []).scalars == [1, 1, 15, 0])
    }

    @Test func mamlClassifiesClustersAfterAdaptation() throws {
        var rng = RandomGenerator(seed: 10)
        let net = Sequential.mlp(sizes: [4, 32, 3], using: &rng)
        let maml = MAML(model: net, loss: .crossEntropy, inner: InnerLoop(steps: 3, learningRate: 0.5), optimizer: Adam(learningRate: 3e-3))
        let tasks = ClusterTasks()
        for _ in 0..<150 { maml.metaStep(try tasks.sample(tasks: 8, support: 5, query: 5, using: &rng)) }
        let scores = meanScores(maml, try tasks.sample(tasks: 100, support: 5, query: 10, using: &rng), steps: [0, 3])
        #expect(scores[1] > 0.8 && scores[1] > scores[0] + 0.3, "accuracy before and after: \(scores)")
    }

    @Test func pretrainedBaselineFineTunes() throws {
        var rng = RandomGenerator(seed: 11)
        let net = Sequential.mlp(sizes: [1, 40, 40, 1], using: &rng)
        let baseline = PretrainedBaseline(model: net, loss: .meanSquaredError, inner: InnerLoop(steps: 10, learningRate: 0.01), optimizer: Adam(learningRate: 1e-3))
        let sine = RegressionTasks.sinusoid()
        for _ in 0..<100 { baseline.metaStep(try sine.sample(tasks: 10, support: 10, query: 10, using: &rng)) }
        // Fine-tuning fits the support set; on query points the pooled-data start generalises
        // poorly (the MAML paper's finding), so only the support fit is asserted.
        let test = try sine.sample(tasks: 50, support: 10, query: 20, using: &rng)
        let onSupport = TaskBatch(support: test.support, query: test.support)
        let scores = meanScores(baseline, onSupport, steps: [0, 10])
        #expect(scores[1] < 0.8 * scores[0], "fine-tuning lowers the support MSE: \(scores)")
    }

    @Test func evaluationReportHasConfidenceIntervals() throws {
        var rng = RandomGenerator(seed: 12)
        let net = Sequential.mlp(sizes: [1, 16, 1], using: &rng)
        let maml = MAML(model: net, loss: .meanSquaredError, inner: InnerLoop(steps: 1, learningRate: 0.01), optimizer: Adam())
        let report = try maml.evaluate(on: RegressionTasks.sinusoid(), tasks: 60, support: 5, query: 10, steps: [1, 5], batchSize: 25, using: &rng)
        #expect(report.rows.map(\.steps) == [1, 5])
        #expect(report.rows.allSatisfy { $0.tasks == 60 && $0.confidence95 > 0 })
        #expect(report.description.contains("95% CI"))
    }
}
