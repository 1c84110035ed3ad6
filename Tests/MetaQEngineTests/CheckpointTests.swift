import Foundation
import Testing
@testable import MetaQEngine

/// A scratch directory removed when the test ends.
final class ScratchDirectory {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "metaq-checkpoint-tests-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

private func bits(_ tensors: [Tensor]) -> [[UInt32]] { tensors.map { $0.scalars.map(\.bitPattern) } }

/// A MAML learner on sinusoids after a few meta-steps, so its optimiser has state.
private func trainedMAML(steps: Int = 3, rng: inout RandomGenerator) throws -> MAML {
    let net = Sequential.mlp(sizes: [1, 16, 16, 1], using: &rng)
    let maml = MAML(model: net, loss: .meanSquaredError, inner: InnerLoop(steps: 1, learningRate: 0.01), optimizer: Adam(learningRate: 1e-3))
    let sine = RegressionTasks.sinusoid()
    for _ in 0..<steps { maml.metaStep(try sine.sample(tasks: 4, support: 5, query: 5, using: &rng)) }
    return maml
}

/// The bytes of a small valid checkpoint.
private func sampleBytes() throws -> [UInt8] {
    var rng = RandomGenerator(seed: 1)
    let maml = try trainedMAML(rng: &rng)
    return try Checkpoint(learner: maml, inputShape: [1], generators: ["train": rng], step: 3).encoded()
}

private func expectFailure(_ bytes: [UInt8], _ problem: CheckpointError.Problem, mentioning text: String? = nil,
                           sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try Checkpoint.decode(bytes)
        Issue.record("decoding succeeded; expected \(problem)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.problem == problem, "\(error)", sourceLocation: sourceLocation)
        if let text { #expect(error.description.contains(text), "\(error)", sourceLocation: sourceLocation) }
    }
}

/// The header length of a safetensors file.
private func headerLength(_ bytes: [UInt8]) -> Int {
    (0..<8).reversed().reduce(0) { $0 << 8 | Int(bytes[$1]) }
}

@Suite("Checkpoints")
struct CheckpointTests {
    @Test func safetensorsRoundTrip() throws {
        let a = Tensor([[1, -2.5], [3, 4]]), b = Tensor(shape: [], values: [7]), empty = Tensor.zeros([0, 3])
        let bytes = try SafeTensors.encode(["a": a, "b": b, "empty": empty], metadata: ["k": "v"])
        #expect((8 + headerLength(bytes)) % 8 == 0, "the header is padded so the data is aligned")
        let file = try SafeTensors.decode(bytes)
        #expect(file.metadata == ["k": "v"])
        #expect(file.tensors["a"]?.shape == [2, 2] && file.tensors["a"]?.scalars == [1, -2.5, 3, 4])
        #expect(file.tensors["b"]?.shape == [] && file.tensors["b"]?.scalars == [7])
        #expect(file.tensors["empty"]?.shape == [0, 3])
        #expect(try SafeTensors.encode(["a": a, "b": b], metadata: nil) == SafeTensors.encode(["b": b, "a": a], metadata: nil),
                "equal contents give identical bytes")
    }

    @Test func learnerRoundTripContinuesBitIdentically() throws {
        var rng = RandomGenerator(seed: 2)
        let maml = try trainedMAML(rng: &rng)
        let dir = ScratchDirectory()
        let path = dir.file("maml.mqm")
        try Checkpoint(learner: maml, inputShape: [1], generators: ["train": rng], step: 3, attributes: ["note": "x"]).write(to: path)
        let saved = try Checkpoint.read(from: path)
        #expect(saved.step == 3 && saved.attributes == ["note": "x"] && saved.inputShape == [1])
        #expect(saved.generators["train"] == rng)
        #expect(saved.layers == maml.model.layers)
        #expect(bits(saved.parameters) == bits(maml.model.parameters))
        guard case let .meta(restored as MAML)? = try saved.makeLearner() else { Issue.record("not a MAML learner"); return }
        #expect(restored.inner == maml.inner && restored.optimizer.state == maml.optimizer.state)
        // The same next steps from the original and the restored learner give the same bits.
        var copy = saved.generators["train"]!
        let sine = RegressionTasks.sinusoid()
        for _ in 0..<3 {
            maml.metaStep(try sine.sample(tasks: 4, support: 5, query: 5, using: &rng))
            restored.metaStep(try sine.sample(tasks: 4, support: 5, query: 5, using: &copy))
        }
        #expect(bits(restored.model.parameters) == bits(maml.model.parameters))
    }

    @Test func metaSGDRatesAndSGDMomentumAreSaved() throws {
        var rng = RandomGenerator(seed: 3)
        let net = Sequential.mlp(sizes: [1, 8, 1], using: &rng)
        let learner = MetaSGD(model: net, loss: .meanSquaredError, innerSteps: 1, initialRate: 0.01, optimizer: SGD(learningRate: 0.01, momentum: 0.9))
        for _ in 0..<3 { learner.metaStep(try RegressionTasks.sinusoid().sample(tasks: 3, support: 5, query: 5, using: &rng)) }
        let bytes = try Checkpoint(learner: learner).encoded()
        let names = Set(try SafeTensors.decode(bytes).tensors.keys)
        #expect(names.contains("learner.rates.0.weight") && names.contains("optimizer.velocity.learner.rates.0.weight") == false)
        #expect(names.contains("optimizer.velocity.rates.0.weight") && names.contains("optimizer.velocity.0.weight"))
        guard case let .meta(restored as MetaSGD)? = try Checkpoint.decode(bytes).makeLearner() else { Issue.record("not Meta-SGD"); return }
        #expect(bits(restored.learningRates) == bits(learner.learningRates))
        #expect(restored.optimizer.state == learner.optimizer.state)
    }

    @Test func prototypeMemoryBankIsSaved() throws {
        var rng = RandomGenerator(seed: 4)
        let clusters = ClusterTasks(ways: 3, dimensions: 4)
        let net = Sequential.mlp(sizes: [4, 16, 8], using: &rng)
        let learner = PrototypeMemoryLearner(protonet: PrototypicalNetwork(model: net, optimizer: Adam(learningRate: 1e-3)),
                                             budget: 2, transferWeight: 1, steps: 3, support: 1, query: 2)
        let stream = try TaskStream.sampled(from: clusters, count: 2, pool: 6, support: 2, query: 2, using: &rng)
        for task in stream.tasks { learner.learn(task, using: &rng) }
        #expect(learner.bank.count == 2)
        let saved = try Checkpoint.decode(try Checkpoint(learner: learner).encoded())
        guard case let .continual(restored as PrototypeMemoryLearner)? = try saved.makeLearner() else { Issue.record("not protomem"); return }
        #expect(restored.bank.count == 2)
        for (a, b) in zip(restored.bank, learner.bank) {
            #expect(bits([a.inputs]) == bits([b.inputs]) && a.classes == b.classes && a.perClass == b.perClass)
            guard case let .labels(la) = a.targets, case let .labels(lb) = b.targets else { Issue.record("labels"); continue }
            #expect(la == lb)
        }
    }

    @Test func modelOnlyCheckpoint() throws {
        var rng = RandomGenerator(seed: 5)
        let net = Sequential.conv4(imageSize: 16, filters: 4, classes: 3, using: &rng)
        let saved = try Checkpoint.decode(try Checkpoint(model: net, inputShape: [16, 16, 1]).encoded())
        #expect(saved.learner == nil && saved.layers == net.layers && bits(saved.parameters) == bits(net.parameters))
        #expect(try saved.makeLearner() == nil)
    }

    @Test func truncatedFilesFailCleanly() throws {
        let bytes = try sampleBytes()
        for length in [0, 3, 8, 9, 8 + headerLength(bytes) / 2, 8 + headerLength(bytes), bytes.count - 4, bytes.count - 1] {
            expectFailure(Array(bytes.prefix(length)), .truncated)
        }
    }

    @Test func everyFlippedHeaderByteIsDetected() throws {
        let bytes = try sampleBytes()
        for i in 0..<(8 + headerLength(bytes)) {
            var damaged = bytes
            damaged[i] ^= 0x01
            do {
                _ = try Checkpoint.decode(damaged)
                Issue.record("flipping header byte \(i) went unnoticed")
            } catch {
                #expect(error.problem != .unreadable)
            }
        }
    }

    @Test func flippedDataBytesFailTheChecksum() throws {
        let bytes = try sampleBytes()
        for i in stride(from: 8 + headerLength(bytes), to: bytes.count, by: 97) {
            var damaged = bytes
            damaged[i] ^= 0x10
            expectFailure(damaged, .corruptHeader, mentioning: "checksum")
        }
    }

    @Test func foreignFilesAreNamed() throws {
        let png = try Data(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/omniglot/Greek/character01/0001_01.png"))
        expectFailure(Array(png), .foreignFile, mentioning: "PNG")
        expectFailure(Array("hello, world: not a checkpoint".utf8), .foreignFile)
        let plain = try SafeTensors.encode(["w": Tensor([1, 2])], metadata: nil)
        expectFailure(plain, .foreignFile, mentioning: "without metaq metadata")
        let other = try SafeTensors.encode(["w": Tensor([1, 2])], metadata: ["format": "pt"])
        expectFailure(other, .foreignFile, mentioning: "'pt'")
        let half = Array("{\"w\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}".utf8)
        var f16: [UInt8] = []
        withUnsafeBytes(of: UInt64(half.count).littleEndian) { f16 += $0 }
        expectFailure(f16 + half + [0, 0, 0, 0], .unsupported, mentioning: "F16")
    }

    @Test func newerVersionsAreRefused() throws {
        var file = try SafeTensors.decode(try sampleBytes())
        file.metadata?["format_version"] = String(Checkpoint.formatVersion + 1)
        expectFailure(try SafeTensors.encode(file.tensors, metadata: file.metadata), .newerVersion, mentioning: "version \(Checkpoint.formatVersion + 1)")
    }

    @Test func headersThatDoNotFitTheDataAreRefused() throws {
        func file(_ entries: String, data: Int) -> [UInt8] {
            let json = Array("{\(entries)}".utf8)
            var bytes: [UInt8] = []
            withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes += $0 }
            return bytes + json + [UInt8](repeating: 0, count: data)
        }
        expectFailure(file(#""a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}"#, data: 12),
                      .corruptHeader, mentioning: "overlap")
        expectFailure(file(#""a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}"#, data: 8), .corruptHeader, mentioning: "shape")
        expectFailure(file(#""a":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}"#, data: 8), .corruptHeader)
        expectFailure(file(#""a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}"#, data: 8), .corruptHeader)
        expectFailure(file(#""a":[1,2]"#, data: 0), .corruptHeader)
        expectFailure(file(#""__metadata__":{"format":1}"#, data: 0), .corruptHeader)
    }

    @Test func inconsistentCheckpointsAreRefused() throws {
        var file = try SafeTensors.decode(try sampleBytes())
        file.tensors["model.0.weight"] = Tensor.zeros([2, 16])
        // Re-encoding keeps the old checksum, so fix it to reach the shape check.
        let json = file.metadata!["metaq"]!
        file.metadata?["checksum"] = Checkpoint.checksum(json: json, tensors: file.tensors)
        expectFailure(try SafeTensors.encode(file.tensors, metadata: file.metadata), .inconsistent, mentioning: "model.0.weight")
    }

    @Test func layerSizesOutOfRangeAreNamed() throws {
        let cases = [(0, "layer 0 (linear(inputs: 0, outputs: 16)) has a size that is not positive"),
                     (16_777_217, "has a size that is too large (16777217; at most 16777216)"),
                     (Int.max, "has a size that is too large (9223372036854775807; at most 16777216)")]
        for (size, text) in cases {
            var file = try SafeTensors.decode(try sampleBytes())
            let json = file.metadata!["metaq"]!
            guard let r = json.range(of: #""inputs":1,"#) ?? json.range(of: #""inputs":1}"#) else {
                Issue.record("no input size of 1 in \(json)"); return
            }
            let edited = json.replacingCharacters(in: r, with: "\"inputs\":\(size)\(json[json.index(before: r.upperBound)])")
            file.metadata?["metaq"] = edited
            file.metadata?["checksum"] = Checkpoint.checksum(json: edited, tensors: file.tensors)
            expectFailure(try SafeTensors.encode(file.tensors, metadata: file.metadata), .inconsistent, mentioning: text)
        }
    }

    /// Counts and rates no training run produces are refused when the file is read (so
    /// 'metaq inspect' refuses them too), instead of trapping in training (a step of
    /// Int.max overflows at the next one) or adapting for ever (1e9 inner steps).
    @Test func implausibleStepsAndRatesAreRefused() throws {
        /// The sample checkpoint with `value` at `path` in its metadata JSON, checksum fixed.
        func edited(_ path: [String], _ value: Any) throws -> [UInt8] {
            func replacing(_ object: Any, at path: ArraySlice<String>) -> Any {
                guard let key = path.first, var dictionary = object as? [String: Any] else { return value }
                dictionary[key] = replacing(dictionary[key] as Any, at: path.dropFirst())
                return dictionary
            }
            var file = try SafeTensors.decode(try sampleBytes())
            let manifest = try JSONSerialization.jsonObject(with: Data(file.metadata!["metaq"]!.utf8))
            let json = String(decoding: try JSONSerialization.data(withJSONObject: replacing(manifest, at: path[...])), as: UTF8.self)
            file.metadata?["metaq"] = json
            file.metadata?["checksum"] = Checkpoint.checksum(json: json, tensors: file.tensors)
            return try SafeTensors.encode(file.tensors, metadata: file.metadata)
        }
        let inner = ["learner", "configuration", "maml", "inner"]
        // The edit itself keeps a valid file.
        #expect(try Checkpoint.decode(try edited(["step"], 1 << 48)).step == 1 << 48)
        #expect(try Checkpoint.decode(try edited(inner + ["steps"], 10_000)).learner != nil)
        expectFailure(try edited(["step"], Int.max), .inconsistent,
                      mentioning: "step count 9223372036854775807 is larger than 281474976710656")
        expectFailure(try edited(["learner", "optimizer", "step"], Int.max), .inconsistent,
                      mentioning: "optimizer step 9223372036854775807 is larger than 281474976710656")
        expectFailure(try edited(inner + ["steps"], 1_000_000_000), .inconsistent,
                      mentioning: "inner loop of 1000000000 steps (at most 10000)")
        expectFailure(try edited(inner + ["learningRate"], -0.5), .inconsistent,
                      mentioning: "inner learning rate -0.5 is not a non-negative number")
    }

    /// The learner registry: one row a kind, unique names and keys; every configuration
    /// encodes as `{"KEY": settings}` (the format files written before the registry use) and
    /// decodes to an equal one; an unknown kind is named with the known ones.
    @Test func learnerKindsRoundTripThroughTheirKeys() throws {
        #expect(Set(LearnerKind.all.map(\.key)).count == LearnerKind.all.count)
        let names = LearnerKind.all.flatMap { [$0.name] + $0.aliases }
        #expect(Set(names).count == names.count)
        let inner = InnerLoop(steps: 2, learningRate: 0.1)
        let settings: [any LearnerSettings] = [
            MAMLSettings(inner: inner, firstOrder: true), MetaSGDSettings(innerSteps: 3, firstOrder: false),
            ReptileSettings(inner: inner, batched: false), PretrainedSettings(inner: inner), PrototypicalSettings(distance: .cosine),
            PrototypeMemorySettings(distance: .euclidean, budget: 5, transferWeight: 0.5, steps: 2, support: 1, query: 3),
            FineTuningSettings(steps: 2, batch: 4), ScriptSettings(extras: 2),
            MAMLRLSettings(innerSteps: 1, innerRate: 0.1, firstOrder: false, estimator: .dice, episodes: 20, gamma: 0.99, lambda: 1,
                           normalize: true, clip: 0.2, epochs: 5, distribution: "gaussian", actions: 2, environment: "navigation2d"),
        ]
        #expect(Set(settings.map { type(of: $0).kind.key }) == Set(LearnerKind.all.map(\.key)), "a test value for every kind")
        for value in settings {
            let configuration = LearnerConfiguration(value)
            let json = try JSONEncoder().encode(configuration)
            let object = try JSONSerialization.jsonObject(with: json) as? [String: Any]
            #expect(object?.keys.sorted() == [configuration.kind.key])
            #expect(try JSONDecoder().decode(LearnerConfiguration.self, from: json) == configuration)
        }
        let maml = try JSONDecoder().decode(LearnerConfiguration.self, from: Data(#"{"maml":{"inner":{"steps":1,"learningRate":0.5},"firstOrder":false}}"#.utf8))
        #expect(maml.settings(as: MAMLSettings.self)?.inner.learningRate == 0.5 && maml.name == "maml")
        #expect(LearnerKind.named("protonet")?.outputsEmbeddings == true && LearnerKind.named("anil")?.key == "maml")
        #expect(LearnerKind.named("finetune")?.isDeployable == false && LearnerKind.named("metasgd")?.isDeployable == true)
        do {
            _ = try JSONDecoder().decode(LearnerConfiguration.self, from: Data(#"{"mamll":{}}"#.utf8))
            Issue.record("an unknown kind decoded")
        } catch {
            #expect("\(error)".contains("unknown learner kind 'mamll' (known: maml, metaSGD"), "\(error)")
        }
    }

    @Test func atomicWriteReplacesAndLeavesNoTemporaryFile() throws {
        let dir = ScratchDirectory()
        let path = dir.file("a.mqm")
        try AtomicFile.write([1, 2, 3], to: path)
        try AtomicFile.write([4, 5], to: path)
        #expect(try AtomicFile.read(path) == [4, 5])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["a.mqm"])
        #expect(throws: CheckpointError.self) { try AtomicFile.write([1], to: dir.file("missing/dir/a.mqm")) }
        #expect(throws: CheckpointError.self) { try Checkpoint.read(from: dir.file("absent.mqm")) }
    }

    /// A rename would replace a symbolic link or a special file instead of writing to it:
    /// refused, with the link and its target left as they were.
    @Test func atomicWriteRefusesLinksAndSpecialFiles() throws {
        let dir = ScratchDirectory()
        try AtomicFile.write([1, 2, 3], to: dir.file("target.mqm"))
        try FileManager.default.createSymbolicLink(atPath: dir.file("link.mqm"), withDestinationPath: dir.file("target.mqm"))
        #expect(throws: CheckpointError(.unreadable, "it is a symbolic link to \(dir.file("target.mqm")); saving would replace the link, not the file it points to: save to that file, or remove the link first", path: dir.file("link.mqm"))) {
            try AtomicFile.write([4], to: dir.file("link.mqm"))
        }
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir.file("link.mqm")) == dir.file("target.mqm"))
        #expect(try AtomicFile.read(dir.file("target.mqm")) == [1, 2, 3])
        #expect(mkfifo(dir.file("pipe"), 0o644) == 0)
        #expect(throws: CheckpointError(.unreadable, "it is not a regular file (a device, pipe or socket), which saving would replace", path: dir.file("pipe"))) {
            try AtomicFile.write([4], to: dir.file("pipe"))
        }
        var info = stat()
        #expect(lstat(dir.file("pipe"), &info) == 0 && info.st_mode & S_IFMT == S_IFIFO)
        #expect(throws: CheckpointError.self) { try AtomicFile.write([4], to: dir.path) }
    }

    /// A write killed before its rename leaves `NAME.tmp-PID`; the next write to NAME removes
    /// it once that process has ended, and keeps those of running processes.
    @Test func atomicWriteRemovesTemporaryFilesOfEndedProcesses() throws {
        let dir = ScratchDirectory()
        let ended = Process()
        ended.executableURL = URL(fileURLWithPath: "/bin/true")
        try ended.run()
        ended.waitUntilExit()
        for pid in [ended.processIdentifier, 1] { try AtomicFile.write([9], to: dir.file("a.mqm.tmp-\(pid)")) }
        try AtomicFile.write([7], to: dir.file("other.mqm.tmp-\(ended.processIdentifier)"))
        try AtomicFile.write([1], to: dir.file("a.mqm"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
                == ["a.mqm", "a.mqm.tmp-1", "other.mqm.tmp-\(ended.processIdentifier)"])
    }
}

@Suite("Deployment")
struct FewShotPredictorTests {
    @Test func regressionAdaptsWithoutChangingTheModel() throws {
        var rng = RandomGenerator(seed: 6)
        let maml = try trainedMAML(steps: 30, rng: &rng)
        let predictor = try FewShotPredictor(checkpoint: Checkpoint(learner: maml, inputShape: [1]))
        let before = bits(maml.model.parameters)
        let xs: [[Float]] = (0..<10).map { [Float($0) - 5] }
        let ys: [[Float]] = xs.map { [2 * sin($0[0])] }
        let unadapted = try predictor.predict(support: xs, targets: .values(ys), query: xs, steps: 0)
        let adapted = try predictor.predict(support: xs, targets: .values(ys), query: xs, steps: 5)
        guard case let .values(u) = unadapted, case let .values(a) = adapted else { Issue.record("not values"); return }
        func mse(_ rows: [[Float]]) -> Float { zip(rows, ys).map { ($0[0] - $1[0]) * ($0[0] - $1[0]) }.reduce(0, +) / 10 }
        #expect(mse(a) < mse(u))
        // Steps 0 is the plain forward pass of the meta-parameters.
        let forward = maml.model(Tensor(shape: [10, 1], values: xs.flatMap { $0 })).scalars
        #expect(zip(u.map { $0[0] }, forward).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })
        #expect(try predictor.predict(support: xs, targets: .values(ys), query: xs, steps: 5) == adapted, "deterministic")
        #expect(bits(maml.model.parameters) == before)
    }

    @Test func mismatchedRequestsAreExplained() throws {
        var rng = RandomGenerator(seed: 7)
        let predictor = try FewShotPredictor(checkpoint: Checkpoint(learner: try trainedMAML(rng: &rng), inputShape: [1]))
        #expect(throws: PredictionError("query example 0 has 2 features; the model takes 1")) {
            try predictor.predict(support: [[1]], targets: .values([[1]]), query: [[1, 2]])
        }
        #expect(throws: PredictionError.self) { try predictor.predict(support: [[1]], targets: .labels([0]), query: [[1]]) }
        #expect(throws: PredictionError.self) { try predictor.predict(support: [[1], [2]], targets: .values([[1]]), query: [[1]]) }
        #expect(throws: PredictionError.self) { try predictor.predict(support: [], targets: .values([]), query: [[1]]) }
        #expect(throws: PredictionError.self) { try predictor.predict(support: [[.nan]], targets: .values([[1]]), query: [[1]]) }
    }

    @Test func prototypicalClassification() throws {
        var rng = RandomGenerator(seed: 8)
        let clusters = ClusterTasks(ways: 3, dimensions: 4, spread: 0.1)
        let protonet = PrototypicalNetwork(model: Sequential.mlp(sizes: [4, 32, 16], using: &rng), optimizer: Adam(learningRate: 3e-3))
        for _ in 0..<50 { protonet.metaStep(try clusters.sample(tasks: 4, support: 3, query: 3, using: &rng)) }
        let predictor = try FewShotPredictor(checkpoint: Checkpoint(learner: protonet, inputShape: [4]))
        let task = try clusters.sample(tasks: 1, support: 3, query: 5, using: &rng)
        func rows(_ split: Split) -> [[Float]] { let v = split.inputs.scalars; return (0..<split.examplesPerTask).map { Array(v[$0 * 4..<($0 + 1) * 4]) } }
        guard case let .labels(supportLabels) = task.support.targets, case let .labels(queryLabels) = task.query.targets else { return }
        let result = try predictor.predict(support: rows(task.support), targets: .labels(supportLabels), query: rows(task.query))
        guard case let .classes(labels, probabilities) = result else { Issue.record("not classes"); return }
        #expect(probabilities.allSatisfy { abs($0.reduce(0, +) - 1) < 1e-4 && $0.count == 3 })
        #expect(zip(labels, queryLabels).filter { $0 == $1 }.count >= 12, "\(labels) vs \(queryLabels)")
        #expect(throws: PredictionError.self) { try predictor.predict(support: [[0, 0, 0, 0]], targets: .labels([1]), query: [[0, 0, 0, 0]]) }
    }

    @Test func modelOnlyCheckpointsCannotBeDeployed() throws {
        var rng = RandomGenerator(seed: 9)
        #expect(throws: CheckpointError.self) { try FewShotPredictor(checkpoint: Checkpoint(model: Sequential.mlp(sizes: [1, 4, 1], using: &rng))) }
    }
}
