import Foundation
import Testing
@testable import MetaQEngine

private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

@Suite("Task distributions")
struct TaskDistributionTests {
    @Test func sinusoidTasksFollowTheirParameters() throws {
        var rng = RandomGenerator(seed: 1)
        let sine = RegressionTasks.sinusoid()
        let batch = try sine.sample(parameters: [[2, 0.5], [0.3, 3]], support: 4, query: 6, using: &rng)
        #expect(batch.support.inputs.shape == [2, 4, 1])
        #expect(batch.query.inputs.shape == [2, 6, 1])
        guard case let .values(y) = batch.query.targets else { Issue.record("regression targets expected"); return }
        let x = batch.query.inputs.scalars, v = y.scalars
        for i in 0..<6 { #expect(abs(v[i] - 2 * sin(x[i] - 0.5)) < 1e-5) }
        for i in 6..<12 { #expect(abs(v[i] - 0.3 * sin(x[i] - 3)) < 1e-5) }
        #expect(x.allSatisfy { $0 >= -5 && $0 <= 5 })
    }

    /// The built-in families sample point by point; the targets must be exactly what their
    /// formulas give as tensor operations (the way they were sampled before), and the noise
    /// must come from the same draws.
    @Test(arguments: ["sinusoid", "linear"], [Float(0), 0.3])
    func pointwiseSamplingMatchesTheFormulaAsTensorOperations(family: String, noise: Float) throws {
        var tasks = family == "sinusoid" ? RegressionTasks.sinusoid() : RegressionTasks.line()
        tasks.noise = noise
        let formula: (Tensor, [Float]) -> Tensor = family == "sinusoid"
            ? { x, p in (x - p[1]).sin() * p[0] } : { x, p in x * p[0] + p[1] }
        let parameters: [[Float]] = [[2, 0.5], [0.3, 3], [-1.5, 1]]
        var rng = RandomGenerator(seed: 11), replay = RandomGenerator(seed: 11)
        let batch = try tasks.sample(parameters: parameters, support: 5, query: 9, using: &rng)
        guard case let .values(ys) = batch.support.targets, case let .values(yq) = batch.query.targets else {
            Issue.record("regression targets expected"); return
        }
        for (t, p) in parameters.enumerated() {
            // Replay the draws: the task's 14 points, then one noise draw per point.
            let x = Tensor((0..<14).map { _ in tasks.inputRange.lowerBound
                + (tasks.inputRange.upperBound - tasks.inputRange.lowerBound) * replay.nextFloat() })
            let expected = formula(x, p).scalars.map { noise > 0 ? $0 + noise * replay.nextNormal() : $0 }
            let sampledX = batch.support.inputs.scalars[t * 5..<(t + 1) * 5] + batch.query.inputs.scalars[t * 9..<(t + 1) * 9]
            #expect(Array(sampledX) == x.scalars)
            #expect(Array(ys.scalars[t * 5..<(t + 1) * 5] + yq.scalars[t * 9..<(t + 1) * 9]) == expected)
        }
        #expect(rng.nextFloat() == replay.nextFloat())
        // The tensor form of a pointwise family is the same function.
        let x = Tensor([-4, -1, 0, 2.5])
        #expect(try tasks.function(x, [2, 0.5]).scalars == x.scalars.map { tasks.pointwise!($0, [2, 0.5]) })
    }

    @Test func imageTasksAreNWayKShotWithConsistentLabels() throws {
        let data = try ImageFolderDataset(root: fixtures + "/omniglot", imageSize: 12)
        let tasks = try ImageClassificationTasks(dataset: data, ways: 3)
        var rng = RandomGenerator(seed: 2)
        let batch = try tasks.sample(tasks: 4, support: 1, query: 2, using: &rng)
        #expect(batch.support.inputs.shape == [4, 3, 12, 12, 1])
        #expect(batch.query.inputs.shape == [4, 6, 12, 12, 1])
        guard case let .labels(s) = batch.support.targets, case let .labels(q) = batch.query.targets else {
            Issue.record("labels expected"); return
        }
        #expect(s == Array(repeating: [0, 1, 2], count: 4).flatMap { $0 })
        #expect(q == Array(repeating: [0, 0, 1, 1, 2, 2], count: 4).flatMap { $0 })
        // Every sampled image is a real image of the dataset (not blank).
        let pixels = batch.query.inputs.scalars
        for image in 0..<24 { #expect(pixels[image * 144..<(image + 1) * 144].contains { $0 > 0.2 }) }
    }

    @Test func augmentationWarpsImagesGeometrically() {
        let side = 9
        var image = [Float](repeating: 0, count: side * side)
        image[2 * side + 3] = 1  // one lit pixel at row 2, column 3 (the centre is 4, 4)
        var scratch: [Float] = []
        func warped(theta: Float = 0, scale: Float = 1, dx: Float = 0, dy: Float = 0) -> [Float] {
            var copy = image
            copy.withUnsafeMutableBufferPointer {
                ImageAugmentation().warp($0, side: side, theta: theta, scale: scale, dx: dx, dy: dy, scratch: &scratch)
            }
            return copy
        }
        #expect(warped() == image)
        // Whole-pixel shifts move the pixel exactly; half a pixel splits it in two.
        var moved = [Float](repeating: 0, count: side * side)
        moved[3 * side + 5] = 1
        #expect(warped(dx: 2, dy: 1) == moved)
        let half = warped(dx: 0.5)
        #expect(abs(half[2 * side + 3] - 0.5) < 1e-6 && abs(half[2 * side + 4] - 0.5) < 1e-6)
        // A quarter turn about the centre takes (row 2, column 3), i.e. (-1, -2) from the
        // centre in (x, y), to (2, -1): row 3, column 6.
        let turned = warped(theta: .pi / 2)
        #expect(abs(turned[3 * side + 6] - 1) < 1e-5)
        #expect(abs(turned.reduce(0, +) - 1) < 1e-5)
        // Doubling the scale moves the pixel twice as far from the centre: row 0, column 2.
        #expect(abs(warped(scale: 2)[0 * side + 2] - 1) < 1e-5)
        // Content shifted out of the image is gone, and nothing comes in but background.
        #expect(warped(dx: 9).allSatisfy { $0 == 0 })
    }

    @Test func augmentedTasksDrawFreshDistortionsOfTheSameImages() throws {
        let data = try ImageFolderDataset(root: fixtures + "/omniglot", imageSize: 12)
        let plain = try ImageClassificationTasks(dataset: data, ways: 3)
        var augmented = plain
        augmented.augmentation = ImageAugmentation(shift: 1.5, angle: 15, zoom: 0.1)
        var rngA = RandomGenerator(seed: 5), rngB = RandomGenerator(seed: 5)
        let a = try plain.sample(tasks: 2, support: 1, query: 2, using: &rngA)
        let b = try augmented.sample(tasks: 2, support: 1, query: 2, using: &rngB)
        guard case let .labels(la) = a.query.targets, case let .labels(lb) = b.query.targets else {
            Issue.record("labels expected"); return
        }
        #expect(la == lb)
        let pa = a.query.inputs.scalars, pb = b.query.inputs.scalars
        // The same images (the distortions use a generator of their own), each distorted:
        // different pixels, a similar amount of ink.
        for image in 0..<12 {
            let x = pa[image * 144..<(image + 1) * 144], y = pb[image * 144..<(image + 1) * 144]
            #expect(Array(x) != Array(y))
            let inkX = x.reduce(0, +), inkY = y.reduce(0, +)
            #expect(abs(inkX - inkY) < 0.5 * inkX)
            #expect(y.allSatisfy { $0 >= -1e-6 && $0 <= 1 + 1e-6 })
        }
    }

    @Test func rotationsAndAlphabetSplitsAndErrors() throws {
        let data = try ImageFolderDataset(root: fixtures + "/omniglot", imageSize: 12)
        let greek = try ImageClassificationTasks(dataset: data, alphabets: ["Greek"], ways: 5, rotations: true)
        #expect(greek.classCount == 12)
        #expect(throws: ShapeError.self) { try ImageClassificationTasks(dataset: data, alphabets: ["Greek"], ways: 5) }
        #expect(throws: DataError.self) { try ImageClassificationTasks(dataset: data, alphabets: ["Klingon"], ways: 2) }
        var rng = RandomGenerator(seed: 3)
        let within = try ImageClassificationTasks(dataset: data, ways: 3, withinAlphabet: true)
        _ = try within.sample(tasks: 2, support: 1, query: 1, using: &rng)
        #expect(throws: DataError.self) { try within.sample(tasks: 1, support: 3, query: 2, using: &rng) }
        // More ways than any alphabet holds: an error, not classes drawn across alphabets.
        #expect(throws: ShapeError("a 4-way task drawn within one alphabet needs an alphabet of at least 4 classes; the largest has 3")) {
            try ImageClassificationTasks(dataset: data, ways: 4, withinAlphabet: true)
        }
        #expect(try ImageClassificationTasks(dataset: data, ways: 4, rotations: true, withinAlphabet: true).classCount == 24)
    }

    @Test func protoNetLearnsTheFixtureCharacters() throws {
        let data = try ImageFolderDataset(root: fixtures + "/omniglot", imageSize: 12)
        let tasks = try ImageClassificationTasks(dataset: data, ways: 3)
        var rng = RandomGenerator(seed: 4)
        let embed = Sequential(layers: [.conv2d(inChannels: 1, outChannels: 8, kernel: 3, stride: 1, padding: 1),
                                        .batchNorm(channels: 8), .activation(.relu), .maxPool2d(size: 2), .flatten],
                               weightInit: .kaimingNormal, using: &rng)
        let protonet = PrototypicalNetwork(model: embed, optimizer: Adam(learningRate: 3e-3))
        let before = try protonet.evaluate(on: tasks, tasks: 40, support: 1, query: 3, steps: [0], using: &rng).rows[0].mean
        for _ in 0..<30 { protonet.metaStep(try tasks.sample(tasks: 4, support: 1, query: 3, using: &rng)) }
        let after = try protonet.evaluate(on: tasks, tasks: 40, support: 1, query: 3, steps: [0], using: &rng).rows[0].mean
        #expect(after > 0.75, "3-way 1-shot accuracy before \(before), after \(after)")
    }

    @Test func mamlAdaptsConvNetOnFixture() throws {
        let data = try ImageFolderDataset(root: fixtures + "/omniglot", imageSize: 12)
        let tasks = try ImageClassificationTasks(dataset: data, ways: 3)
        var rng = RandomGenerator(seed: 5)
        let net = Sequential(layers: [.conv2d(inChannels: 1, outChannels: 8, kernel: 3, stride: 1, padding: 1),
                                      .batchNorm(channels: 8), .activation(.relu), .maxPool2d(size: 2), .flatten,
                                      .linear(inputs: 288, outputs: 3)],
                             weightInit: .kaimingNormal, using: &rng)
        let maml = MAML(model: net, loss: .crossEntropy, inner: InnerLoop(steps: 3, learningRate: 0.4), optimizer: Adam(learningRate: 3e-3))
        for _ in 0..<30 { maml.metaStep(try tasks.sample(tasks: 4, support: 1, query: 3, using: &rng)) }
        let report = try maml.evaluate(on: tasks, tasks: 40, support: 1, query: 3, steps: [0, 3], using: &rng)
        #expect(report.rows[1].mean > 0.7 && report.rows[1].mean > report.rows[0].mean + 0.2,
                "accuracy before/after adaptation: \(report.rows.map(\.mean))")
    }

    @Test func csvTasksSampleRowsOfOneTask() throws {
        let table = try CSVTaskTable(path: fixtures + "/csv/tasks.csv", taskColumn: "task", targetColumn: "y")
        let sineA = try #require(table.tasks.firstIndex { $0.id == "sine, A" })
        let tasks = try CSVTasks(table: table, taskIndices: [sineA])
        var rng = RandomGenerator(seed: 6)
        let batch = try tasks.sample(tasks: 3, support: 2, query: 1, using: &rng)
        #expect(batch.support.inputs.shape == [3, 2, table.featureCount])
        // Every sampled row is one of task "sine, A"'s rows.
        let rows = Set(stride(from: 0, to: table.tasks[sineA].features.count, by: 2).map { table.tasks[sineA].features[$0] })
        #expect(batch.support.inputs.scalars.enumerated().allSatisfy { $0.offset % 2 == 1 || rows.contains($0.element) })
        let all = try CSVTasks(table: table)
        #expect(throws: DataError.self) { try all.sample(tasks: 5, support: 2, query: 2, using: &rng) }
    }
}
