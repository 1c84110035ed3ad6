import Foundation
import Testing
@testable import MetaQEngine

@Suite("Continual learners")
struct ContinualTests {
    /// Remembered tasks keep fewer examples than a new task's pool; episodes drawn from both
    /// in one meta-step must still stack (a crash on Omniglot streams before this was fixed).
    @Test func decayedMAMLMixesPoolsOfDifferentSizes() throws {
        var rng = RandomGenerator(seed: 1)
        let stream = try TaskStream.regression(.sinusoid(), count: 3, pool: 20, support: 5, query: 10, using: &rng)
        let net = Sequential.mlp(sizes: [1, 8, 1], using: &rng)
        let learner = DecayedMAML(model: net, loss: .meanSquaredError, inner: InnerLoop(steps: 1, learningRate: 0.01),
                                  optimizer: Adam(), lambda: 0.8, memoryTasks: 2, memoryExamples: 5,
                                  steps: 2, batch: 3, support: 5, query: 10)
        let report = learnStream(learner, stream: stream, method: "decayed_maml",
                                 adaptation: InnerLoop(steps: 1, learningRate: 0.01), using: &rng)
        #expect(report.matrix.count == 3)
        #expect(learner.memory.map(\.pool.count) == [5, 5])
    }

    @Test func metricsFollowTheirDefinitions() {
        // Accuracies: task 0 learned to 0.9, then forgotten to 0.6; task 1 at 0.8.
        let r = ContinualReport(method: "m", taskNames: ["a", "b"], metric: "accuracy", higherIsBetter: true,
                                matrix: [[0.9, 0.5], [0.6, 0.8]], initial: [0.5, 0.4], seconds: 0)
        #expect(abs(r.averageScore - 0.7) < 1e-12)
        #expect(abs(r.backwardTransfer - (-0.3)) < 1e-12)
        #expect(abs(r.forwardTransfer - 0.1) < 1e-12)
        #expect(abs(r.forgetting[0] - 0.3) < 1e-12 && r.forgetting[1] == 0)
    }
}
