/// The settings of one kind of learner: what its checkpoint records besides tensors, and how
/// it is rebuilt from them. Each learner declares its settings next to its algorithm (for
/// MAML, `MAMLSettings` in MAML.swift) with its registry row (`kind`), and adds that row to
/// ``LearnerKind/all``; checkpoints, rebuilding, deployment (`metaq adapt`, `metaq serve`)
/// and the language's checks all go through the row.
public protocol LearnerSettings: Codable, Sendable {
    /// The kind's registry row.
    static var kind: LearnerKind { get }
    /// The learner's name as metaq writes it; the kind's name unless a setting changes it
    /// (MAML adapting only its head is `anil`).
    var name: String { get }
    /// Rebuilds the learner around `model` with `optimizer` (restored from the snapshot), its
    /// learned tensors and its settings, checking that they fit the model.
    func makeLearner(from snapshot: LearnerSnapshot, model: Sequential, optimizer: Optimizer) throws(CheckpointError) -> RestoredLearner
}

extension LearnerSettings {
    public var name: String { Self.kind.name }
}

/// How a deployed learner adapts to a support set before it predicts.
public enum AdaptationRule {
    /// SGD steps on the support loss, at the inner loop's rate or at learned per-parameter
    /// rates (Meta-SGD).
    case gradient(InnerLoop, rates: [Tensor]?)
    /// Class prototypes from the support embeddings; the model outputs embeddings.
    case prototypes(PrototypicalNetwork)
}

/// One kind of learner, declared once: its name, the key of its settings in a checkpoint,
/// how it trains, whether its model outputs embeddings, how it is decoded and how it adapts
/// when deployed. Adding a learner is its engine file (the algorithm, its settings, its row)
/// plus one entry in ``all``.
///
/// ```swift
/// LearnerKind.named("protonet")?.outputsEmbeddings   // true
/// LearnerKind.all.filter(\.isDeployable).map(\.name)  // ["maml", "metasgd", ...]
/// ```
public struct LearnerKind: Sendable {
    /// What a learner of the kind learns from.
    public enum Training: Sendable {
        /// Batches of tasks (`train`, `eval`, `online`).
        case taskBatches
        /// A stream of tasks, one after another (`lifelong`).
        case stream
        /// Episodes of an environment family (`train m on nav`).
        case environments
    }

    /// The name metaq writes and the language declares (`maml`).
    public let name: String
    /// Other names of the same kind (`anil` for MAML adapting only its head).
    public let aliases: [String]
    /// The key of its settings in a checkpoint's JSON (`{"maml": {...}}`); kept stable so
    /// older checkpoints load.
    public let key: String
    public let summary: String
    public let training: Training
    /// Whether the model outputs embeddings compared with class prototypes, rather than one
    /// prediction per output (its output size is then free).
    public let outputsEmbeddings: Bool
    /// Whether it adapts to a task by changing the model's parameters (fast weights), rather
    /// than by conditioning on the support set.
    public let adaptsParameters: Bool
    let decode: @Sendable (any Decoder) throws -> any LearnerSettings
    /// How a restored learner of the kind adapts in deployment; nil when it cannot be
    /// deployed on its own (a learner written in a script is deployed through its script).
    let adaptation: (@Sendable (RestoredLearner) -> AdaptationRule?)?

    public init<S: LearnerSettings>(_ name: String, aliases: [String] = [], key: String, settings: S.Type, training: Training,
                                    outputsEmbeddings: Bool = false, adaptsParameters: Bool = false, summary: String,
                                    adaptation: (@Sendable (RestoredLearner) -> AdaptationRule?)?) {
        self.name = name
        self.aliases = aliases
        self.key = key
        self.summary = summary
        self.training = training
        self.outputsEmbeddings = outputsEmbeddings
        self.adaptsParameters = adaptsParameters
        decode = { try S(from: $0) }
        self.adaptation = adaptation
    }

    /// How `learner`, of this kind, adapts when deployed (nil: not by itself).
    public func adaptationRule(of learner: RestoredLearner) -> AdaptationRule? { adaptation?(learner) }

    /// Whether `metaq adapt` and `metaq serve` can deploy a learner of the kind by itself.
    public var isDeployable: Bool { adaptation != nil }

    /// The learner kinds of the engine: one row each.
    public static let all: [LearnerKind] = [
        MAMLSettings.kind,
        MetaSGDSettings.kind,
        ReptileSettings.kind,
        PretrainedSettings.kind,
        PrototypicalSettings.kind,
        PrototypeMemorySettings.kind,
        FineTuningSettings.kind,
        ScriptSettings.kind,
        MAMLRLSettings.kind,
    ]

    /// The kind a name or alias names.
    public static func named(_ name: String) -> LearnerKind? {
        all.first { $0.name == name || $0.aliases.contains(name) }
    }

    /// The names of the kinds that `filter` keeps, for messages: "maml, anil, metasgd".
    public static func names(where filter: (LearnerKind) -> Bool) -> String {
        all.filter(filter).flatMap { [$0.name] + $0.aliases }.joined(separator: ", ")
    }

    struct Key: CodingKey {
        let stringValue: String
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }
}

/// A learner written in a script (`custom` in the language), with this many extra learned
/// tensors (`extras.0`...): its code is the script's, so only the script that declares it can
/// rebuild it, and deployment runs that script (see the language's script learners).
public struct ScriptSettings: LearnerSettings, Equatable {
    public var extras: Int

    public init(extras: Int) { self.extras = extras }

    public static let kind = LearnerKind(
        "custom", key: "script", settings: ScriptSettings.self, training: .taskBatches, adaptsParameters: true,
        summary: "A learner written in metaq: its loss, adaptation and prediction are the script's functions.",
        adaptation: nil)

    public func makeLearner(from snapshot: LearnerSnapshot, model: Sequential, optimizer: Optimizer) throws(CheckpointError) -> RestoredLearner {
        throw CheckpointError(.unsupported, "it holds a learner written in a script (custom): run the script that declares it and resume with 'train ... < checkpoint FILE resume true >'")
    }
}
