import Foundation

/// A saved model, and optionally the learner training it, in one safetensors file (`.mqm`).
///
/// The tensors are stored under readable names so that other tools can load the weights:
/// `model.0.weight` for the model's parameters, `optimizer.m.0.weight` for the optimiser's
/// slots, `learner.rates.0.weight` and `learner.memory.0.inputs` for what a learner learned
/// besides the parameters. Everything else (the layers, the learner's configuration, the
/// optimiser's hyperparameters and step, the random generators, the step count) is JSON in
/// the header's `__metadata__` under the key `metaq`, next to `format` (`metaq-checkpoint`),
/// `format_version` and a CRC-32 `checksum` of that JSON and the tensor data.
///
/// Writes are atomic (``AtomicFile``) and reads validate everything, throwing a
/// ``CheckpointError`` that names the problem instead of crashing on a damaged file.
///
/// ```swift
/// try Checkpoint(learner: maml, generators: ["train": rng], step: 1000).write(to: "run.mqm")
/// let saved = try Checkpoint.read(from: "run.mqm")
/// guard case let .meta(restored)? = try saved.makeLearner() else { ... }
/// ```
public struct Checkpoint: @unchecked Sendable {
    public static let formatName = "metaq-checkpoint"
    /// The format version this metaq writes, and the newest it reads.
    public static let formatVersion = 2

    public var layers: [Layer]
    /// The model's parameters, in the order of its parameter specs.
    public var parameters: [Tensor]
    /// The shape of one input example, when known (`[1]` for a 1-input MLP, `[28, 28, 1]`
    /// for Omniglot images).
    public var inputShape: [Int]?
    /// The learner's state, or nil for a checkpoint of a model alone.
    public var learner: LearnerSnapshot?
    /// Random generators by role (`"train"`: the one training draws tasks from).
    public var generators: [String: RandomGenerator]
    /// Meta-iterations (or tasks, for a continual learner) trained so far.
    public var step: Int
    /// The largest step count (of the checkpoint, or of its optimiser) a checkpoint may hold:
    /// 2^48, beyond any training run, and far enough from the largest int that counting on
    /// from it never overflows.
    public static let maximumStep = 1 << 48
    /// Notes of the front end that wrote the checkpoint (the language's names for the model
    /// and learner, its meta-batch size); not interpreted by the engine.
    public var attributes: [String: String]

    public init(layers: [Layer], parameters: [Tensor], inputShape: [Int]? = nil, learner: LearnerSnapshot? = nil,
                generators: [String: RandomGenerator] = [:], step: Int = 0, attributes: [String: String] = [:]) {
        self.layers = layers
        self.parameters = parameters.map { $0.detached() }
        self.inputShape = inputShape
        self.learner = learner
        self.generators = generators
        self.step = step
        self.attributes = attributes
    }

    /// A checkpoint of a model alone.
    public init(model: Sequential, inputShape: [Int]? = nil, attributes: [String: String] = [:]) {
        self.init(layers: model.layers, parameters: model.parameters, inputShape: inputShape, attributes: attributes)
    }

    /// A checkpoint of a learner and its model now.
    public init(learner: CheckpointableLearner, inputShape: [Int]? = nil, generators: [String: RandomGenerator] = [:],
                step: Int = 0, attributes: [String: String] = [:]) {
        self.init(layers: learner.model.layers, parameters: learner.model.parameters, inputShape: inputShape,
                  learner: learner.snapshot, generators: generators, step: step, attributes: attributes)
    }

    /// A new network with the saved layers and parameters.
    public func makeModel() -> Sequential {
        Sequential(layers: layers, parameters: parameters.map { $0.requiringGradient() })
    }

    /// The saved learner rebuilt around a new model (nil for a model-only checkpoint).
    public func makeLearner() throws(CheckpointError) -> RestoredLearner? {
        try learner?.makeLearner(model: makeModel())
    }

    /// Writes the checkpoint to `path` atomically: a crash or kill during the write leaves the
    /// previous file intact.
    public func write(to path: String) throws(CheckpointError) {
        try AtomicFile.write(try encoded(), to: path)
    }

    /// Reads and validates the checkpoint at `path`.
    public static func read(from path: String) throws(CheckpointError) -> Checkpoint {
        do {
            return try decode(try AtomicFile.read(path))
        } catch {
            throw error.path == nil ? error.about(path) : error
        }
    }

    // MARK: Encoding

    /// The checkpoint as the bytes of a safetensors file.
    public func encoded() throws(CheckpointError) -> [UInt8] {
        var tensors: [String: Tensor] = [:]
        let specs = Checkpoint.parameterSpecs(layers)
        for (spec, p) in zip(specs, parameters) { tensors["model.\(spec.name)"] = p }
        var manifest = Manifest(layers: layers, inputShape: inputShape, step: step,
                                generators: generators.mapValues { $0.state.map(Manifest.hex) }, attributes: attributes, learner: nil)
        if let learner {
            let shapes = Dictionary(uniqueKeysWithValues: specs.map { ($0.name, $0.shape) })
                .merging(learner.tensors.mapValues(\.shape)) { a, _ in a }
            let slots = learner.optimizer.slots.filter { !$0.value.isEmpty }
            for (slot, arrays) in slots {
                for (name, values) in zip(learner.optimized, arrays) {
                    let shape = shapes[name] ?? [values.count]
                    guard values.count == shape.reduce(1, *) else {
                        throw CheckpointError(.inconsistent, "optimizer slot '\(slot)' of '\(name)' has \(values.count) values for shape \(shape)")
                    }
                    tensors["optimizer.\(slot).\(name)"] = Tensor(shape: shape, values: values)
                }
            }
            for (name, t) in learner.tensors { tensors["learner.\(name)"] = t.detached() }
            manifest.learner = .init(
                configuration: learner.configuration, loss: learner.loss,
                optimizer: .init(kind: learner.optimizer.kind, step: learner.optimizer.step,
                                 hyperparameters: learner.optimizer.hyperparameters, slots: slots.keys.sorted(), tensors: learner.optimized),
                tensors: learner.tensors.keys.sorted())
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json: String
        do {
            json = String(decoding: try encoder.encode(manifest), as: UTF8.self)
        } catch {
            throw CheckpointError(.unsupported, "cannot encode the checkpoint's metadata: \(error)")
        }
        let checksum = Checkpoint.checksum(json: json, tensors: tensors)
        do {
            return try SafeTensors.encode(tensors, metadata: [
                "format": Checkpoint.formatName, "format_version": String(Checkpoint.formatVersion),
                "checksum": checksum, "metaq": json,
            ])
        } catch {
            throw CheckpointError(.unsupported, "cannot encode the checkpoint's header: \(error)")
        }
    }

    // MARK: Decoding

    /// Decodes and validates the bytes of a checkpoint file.
    public static func decode(_ bytes: [UInt8]) throws(CheckpointError) -> Checkpoint {
        let file = try SafeTensors.decode(bytes)
        guard let metadata = file.metadata, let format = metadata["format"] else {
            let names = file.tensors.keys.sorted().prefix(3).joined(separator: ", ")
            throw CheckpointError(.foreignFile, "a safetensors file without metaq metadata (tensors: \(names.isEmpty ? "none" : names))")
        }
        guard format == formatName else {
            throw CheckpointError(.foreignFile, "the file's format is '\(format)', not '\(formatName)'")
        }
        guard let versionText = metadata["format_version"], let version = Int(versionText), version >= 1 else {
            throw CheckpointError(.corruptHeader, "the format version '\(metadata["format_version"] ?? "")' is not a positive integer")
        }
        guard version <= formatVersion else {
            throw CheckpointError(.newerVersion, "the file has format version \(version); this metaq reads versions up to \(formatVersion), so it was written by a newer metaq")
        }
        guard let json = metadata["metaq"] else { throw CheckpointError(.corruptHeader, "the metadata has no 'metaq' entry") }
        guard metadata["checksum"] == checksum(json: json, tensors: file.tensors) else {
            throw CheckpointError(.corruptHeader, "checksum mismatch: the metadata or tensor data were damaged or changed after metaq wrote them")
        }
        let manifest: Manifest
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: Data(json.utf8))
        } catch {
            throw CheckpointError(.corruptHeader, "the metaq metadata cannot be read: \(error)")
        }
        return try assemble(manifest, tensors: file.tensors)
    }

    /// Builds the checkpoint from its validated parts, checking that they fit together.
    private static func assemble(_ manifest: Manifest, tensors: [String: Tensor]) throws(CheckpointError) -> Checkpoint {
        func inconsistent(_ message: String) -> CheckpointError { CheckpointError(.inconsistent, message) }
        for (i, layer) in manifest.layers.enumerated() {
            if let problem = layer.sizeProblem { throw inconsistent("layer \(i) (\(layer)) has \(problem)") }
        }
        if let shape = manifest.inputShape, shape.isEmpty || !shape.allSatisfy({ $0 > 0 }) {
            throw inconsistent("input shape \(shape) is not a list of positive sizes")
        }
        guard manifest.step >= 0 else { throw inconsistent("negative step count \(manifest.step)") }
        guard manifest.step <= Checkpoint.maximumStep else {
            throw inconsistent("step count \(manifest.step) is larger than \(Checkpoint.maximumStep), the most a checkpoint may hold")
        }
        var used = Set<String>()
        func take(_ name: String, shape: [Int]?) throws(CheckpointError) -> Tensor {
            guard let t = tensors[name] else { throw inconsistent("the tensor '\(name)' is missing") }
            if let shape, t.shape != shape { throw inconsistent("the tensor '\(name)' has shape \(t.shape), expected \(shape)") }
            used.insert(name)
            return t
        }
        let specs = parameterSpecs(manifest.layers)
        var parameters: [Tensor] = []
        for spec in specs { parameters.append(try take("model.\(spec.name)", shape: spec.shape)) }
        var generators: [String: RandomGenerator] = [:]
        for (role, words) in manifest.generators {
            let state = words.compactMap { UInt64($0, radix: 16) }
            guard state.count == 4, words.count == 4, state.contains(where: { $0 != 0 }) else {
                throw inconsistent("the state of random generator '\(role)' is not four non-zero 64-bit words")
            }
            generators[role] = RandomGenerator(state: state)
        }
        var snapshot: LearnerSnapshot?
        if let learner = manifest.learner {
            var learned: [String: Tensor] = [:]
            for name in learner.tensors { learned[name] = try take("learner.\(name)", shape: nil) }
            let shapes = Dictionary(uniqueKeysWithValues: specs.map { ($0.name, $0.shape) }).merging(learned.mapValues(\.shape)) { a, _ in a }
            var slots: [String: [[Float]]] = [:]
            for slot in learner.optimizer.slots {
                slots[slot] = try learner.optimizer.tensors.map { name throws(CheckpointError) in
                    guard let shape = shapes[name] else { throw inconsistent("the optimizer updates '\(name)', which is neither a parameter nor a learned tensor") }
                    return try take("optimizer.\(slot).\(name)", shape: shape).scalars
                }
            }
            let state = OptimizerState(kind: learner.optimizer.kind, step: learner.optimizer.step, slots: slots,
                                       hyperparameters: learner.optimizer.hyperparameters)
            snapshot = LearnerSnapshot(configuration: learner.configuration, loss: learner.loss, optimizer: state,
                                       optimized: learner.optimizer.tensors, tensors: learned)
        }
        if let extra = Set(tensors.keys).subtracting(used).sorted().first {
            throw inconsistent("the tensor '\(extra)' is not described by the metadata")
        }
        let checkpoint = Checkpoint(layers: manifest.layers, parameters: parameters, inputShape: manifest.inputShape, learner: snapshot,
                                    generators: generators, step: manifest.step, attributes: manifest.attributes)
        // The layers must chain: checked from the saved input shape, or from the first
        // layer's inputs when it is a linear layer.
        let firstLinear: [Int]? = if case let .linear(inputs, _)? = manifest.layers.first { [inputs] } else { nil }
        if let shape = manifest.inputShape ?? firstLinear {
            do { _ = try checkpoint.makeModel().outputShape(for: shape) } catch {
                throw inconsistent("the layers do not take inputs of shape \(shape): \(error.message)")
            }
        }
        // Rebuilding the learner validates its configuration against the model. A learner
        // written in a script cannot be rebuilt without its script: its extras are checked.
        if let count = snapshot?.configuration.settings(as: ScriptSettings.self)?.extras {
            guard count >= 0, count <= 1 << 20, (0..<count).allSatisfy({ snapshot?.tensors["extras.\($0)"] != nil }) else {
                throw inconsistent("the script learner's \(count) extra tensors are not all present")
            }
        } else {
            _ = try checkpoint.makeLearner()
        }
        return checkpoint
    }

    static func parameterSpecs(_ layers: [Layer]) -> [ParameterSpec] {
        layers.enumerated().flatMap { i, layer in
            layer.parameterSpecs(weightInit: .fanInUniform).map { spec in
                var named = spec
                named.name = "\(i).\(spec.name)"
                return named
            }
        }
    }

    /// CRC-32 of the metadata JSON and every tensor's bytes in name order, as 8 hex digits.
    static func checksum(json: String, tensors: [String: Tensor]) -> String {
        var crc = CRC32()
        crc.update(Array(json.utf8))
        for name in tensors.keys.sorted() {
            crc.update(Array(name.utf8))
            tensors[name]!.withUnsafeBufferPointer { crc.update(UnsafeRawBufferPointer($0)) }
        }
        return String(format: "%08x", crc.value)
    }
}

/// The JSON metadata of a checkpoint.
private struct Manifest: Codable {
    struct Learner: Codable {
        var configuration: LearnerConfiguration
        var loss: LossKind
        var optimizer: OptimizerEntry
        /// Learned tensors besides the parameters, stored as `learner.NAME`.
        var tensors: [String]
    }

    struct OptimizerEntry: Codable {
        var kind: String
        var step: Int
        var hyperparameters: [String: Double]
        /// Slot names; slot S of tensor N is stored as `optimizer.S.N`.
        var slots: [String]
        /// The names of the tensors the optimiser updates, in its order.
        var tensors: [String]
    }

    var layers: [Layer]
    var inputShape: [Int]?
    var step: Int
    /// Generator states as four 16-digit hex words (JSON numbers cannot hold 64 bits).
    var generators: [String: [String]]
    var attributes: [String: String]
    var learner: Learner?

    static func hex(_ word: UInt64) -> String {
        let digits = String(word, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

/// CRC-32 (IEEE 802.3, the checksum of zip and PNG).
struct CRC32 {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    private var crc: UInt32 = 0xFFFF_FFFF

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var c = crc
        CRC32.table.withUnsafeBufferPointer { table in
            for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        }
        crc = c
    }

    mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    var value: UInt32 { crc ^ 0xFFFF_FFFF }
}

extension Layer {
    /// The largest size a checkpoint's layer may have.
    static let maximumCheckpointSize = 1 << 24

    /// What is wrong with the layer's sizes ("a size that is not positive", "a size that is
    /// too large ..."), or nil when every size is in 1...2^24 (padding may be zero), so that
    /// building and running it cannot trap.
    public var sizeProblem: String? {
        let padding: Int = if case let .conv2d(_, _, _, _, p) = self { p } else { 0 }
        if sizes.contains(where: { $0 < 1 }) || padding < 0 { return "a size that is not positive" }
        if let large = (sizes + [padding]).first(where: { $0 > Layer.maximumCheckpointSize }) {
            return "a size that is too large (\(large); at most \(Layer.maximumCheckpointSize))"
        }
        return nil
    }
}
