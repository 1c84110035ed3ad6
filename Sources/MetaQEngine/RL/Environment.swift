/// Reinforcement-learning environments for meta-RL, vectorised over a batch of tasks and the
/// episodes of each task: one call steps every episode of every task of a meta-batch.
///
/// An environment family is a file of its own (a type conforming to ``MetaEnvironment``)
/// plus one row of ``EnvironmentRegistry/kinds``: its name, settings (with defaults, bounds
/// and docs) and constructor. The language's environment blocks, their validation, `:help`
/// and the reference are derived from that row.

/// What a policy acts with.
public enum ActionSpace: Sendable, Equatable {
    /// Real-valued actions of `dimensions` components; the environment clips them to `low...high`.
    case continuous(dimensions: Int, low: Float, high: Float)
    /// One of `actions` choices, given as its index (a whole number in a width-1 action).
    case discrete(actions: Int)

    /// The width of an action tensor's last axis.
    public var width: Int {
        switch self {
        case let .continuous(d, _, _): d
        case .discrete: 1
        }
    }

    /// What a policy network must output: the action dimensions (a Gaussian's mean) or one
    /// logit per action (a categorical distribution).
    public var policyOutputs: Int {
        switch self {
        case let .continuous(d, _, _): d
        case let .discrete(n): n
        }
    }
}

/// The result of one vectorised step.
public struct EnvironmentStep: Sendable {
    /// The next internal states [T, E, stateSize].
    public var states: Tensor
    /// Rewards [T, E].
    public var rewards: Tensor
    /// 1 where the episode ended at this step, else 0 [T, E].
    public var done: Tensor

    public init(states: Tensor, rewards: Tensor, done: Tensor) {
        self.states = states
        self.rewards = rewards
        self.done = done
    }
}

/// A family of tasks (an MDP per task), stepped for [tasks x episodes] at once. Tensors carry
/// no gradient. Implementations are deterministic given the generator. The engine's families
/// do not throw; one written in a script (the language's `custom_env`) throws its script's
/// errors, and every caller passes them on.
public protocol MetaEnvironment: Sendable {
    /// The family's registry name.
    var name: String { get }
    var observationSize: Int { get }
    var stateSize: Int { get }
    var actionSpace: ActionSpace { get }
    /// Steps per episode (episodes may end earlier, see `done`).
    var horizon: Int { get }
    /// The per-task parameters [T, taskParameterCount] of `count` new tasks (a goal, a mass).
    func sampleTasks(_ count: Int, using rng: inout RandomGenerator) throws -> Tensor
    /// Initial states [T, episodes, stateSize].
    func reset(tasks: Tensor, episodes: Int, using rng: inout RandomGenerator) throws -> Tensor
    /// What the policy sees of states [T, E, stateSize]: [T, E, observationSize].
    func observe(_ states: Tensor, tasks: Tensor) throws -> Tensor
    /// The number of parameters of one task (P: a goal has 2). By default the width of one
    /// task drawn with a throwaway generator; a family that knows it says so.
    func taskParameterCount() throws -> Int
    /// One step of every episode with actions [T, E, actionSpace.width]; noisy dynamics draw
    /// from `rng` (the rollout's generator).
    func step(_ states: Tensor, actions: Tensor, tasks: Tensor, using rng: inout RandomGenerator) throws -> EnvironmentStep
}

extension MetaEnvironment {
    public func observe(_ states: Tensor, tasks: Tensor) -> Tensor { states }

    public func taskParameterCount() throws -> Int {
        var probe = RandomGenerator(seed: 0)
        return try sampleTasks(1, using: &probe).shape.last ?? 0
    }
}

/// The stand-in for a family that is not in the registry (written in a script) in a
/// learner restored from a checkpoint: it has the family's sizes, so the learner can be
/// checked and given the real environment (`eval m on env`), and it refuses to run.
public struct DetachedEnvironment: MetaEnvironment {
    public let name: String
    public let observationSize: Int
    public var stateSize: Int { observationSize }
    public let actionSpace: ActionSpace
    public let horizon: Int

    public init(name: String, observationSize: Int, actionSpace: ActionSpace, horizon: Int) {
        self.name = name
        self.observationSize = observationSize
        self.actionSpace = actionSpace
        self.horizon = horizon
    }

    private var missing: EnvironmentError {
        EnvironmentError("this learner was trained on '\(name)', an environment written in a script; train or evaluate it on that environment (declare it, then `eval m on ENV`)")
    }
    public func sampleTasks(_ count: Int, using rng: inout RandomGenerator) throws -> Tensor { throw missing }
    public func reset(tasks: Tensor, episodes: Int, using rng: inout RandomGenerator) throws -> Tensor { throw missing }
    public func step(_ states: Tensor, actions: Tensor, tasks: Tensor, using rng: inout RandomGenerator) throws -> EnvironmentStep { throw missing }
}

/// A setting of an environment family, with its default and allowed bounds.
public struct EnvironmentSetting: Sendable {
    public enum Kind: Sendable, Equatable {
        /// A range low..high of per-task values, each end within `bounds`.
        case range(low: Double, high: Double)
        case number(Double)
        case int(Int)
    }

    public let name: String
    public let kind: Kind
    public let bounds: ClosedRange<Double>
    public let summary: String

    public init(_ name: String, _ kind: Kind, bounds: ClosedRange<Double>, _ summary: String) {
        self.name = name
        self.kind = kind
        self.bounds = bounds
        self.summary = summary
    }
}

/// A value given for a setting.
public enum EnvironmentSettingValue: Sendable, Equatable {
    case range(Double, Double)
    case number(Double)
}

/// Why an environment cannot be made from its settings; `setting` names the culprit.
public struct EnvironmentError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public let setting: String?
    public init(_ message: String, setting: String? = nil) {
        self.message = message
        self.setting = setting
    }
    public var description: String { message }
}

/// Settings after validation, read by name.
public struct EnvironmentSettings: Sendable {
    let values: [String: EnvironmentSettingValue]
    public func range(_ name: String) -> ClosedRange<Float> {
        guard case let .range(a, b)? = values[name] else { preconditionFailure("validated range \(name)") }
        return Float(a)...Float(b)
    }
    public func number(_ name: String) -> Double {
        guard case let .number(x)? = values[name] else { preconditionFailure("validated number \(name)") }
        return x
    }
    public func int(_ name: String) -> Int { Int(number(name)) }
}

/// One row of the registry.
public struct EnvironmentKind: Sendable {
    public let name: String
    public let summary: String
    public let settings: [EnvironmentSetting]
    public let example: String
    let build: @Sendable (EnvironmentSettings) -> any MetaEnvironment

    public init(name: String, summary: String, settings: [EnvironmentSetting], example: String,
                build: @escaping @Sendable (EnvironmentSettings) -> any MetaEnvironment) {
        self.name = name
        self.summary = summary
        self.settings = settings
        self.example = example
        self.build = build
    }

    /// Validates `given` (missing settings take their defaults) and makes the environment.
    public func make(_ given: [String: EnvironmentSettingValue]) throws(EnvironmentError) -> any MetaEnvironment {
        for key in given.keys.sorted() where !settings.contains(where: { $0.name == key }) {
            throw EnvironmentError("\(name) has no setting '\(key)' (settings: \(settings.map(\.name).joined(separator: ", ")))", setting: key)
        }
        var values: [String: EnvironmentSettingValue] = [:]
        for s in settings {
            let bounds = "\(s.bounds.lowerBound)...\(s.bounds.upperBound)"
            switch (s.kind, given[s.name]) {
            case let (.range(lo, hi), nil): values[s.name] = .range(lo, hi)
            case let (.number(x), nil): values[s.name] = .number(x)
            case let (.int(n), nil): values[s.name] = .number(Double(n))
            case let (.range, .range(a, b)?):
                guard a.isFinite, b.isFinite, s.bounds.contains(a), s.bounds.contains(b) else {
                    throw EnvironmentError("\(name): '\(s.name)' must lie within \(bounds), got \(a)..\(b)", setting: s.name)
                }
                guard a <= b else { throw EnvironmentError("\(name): '\(s.name)' is an empty range \(a)..\(b) (low above high)", setting: s.name) }
                values[s.name] = .range(a, b)
            case let (.number, .number(x)?):
                guard x.isFinite, s.bounds.contains(x) else {
                    throw EnvironmentError("\(name): '\(s.name)' must be in \(bounds), got \(x)", setting: s.name)
                }
                values[s.name] = .number(x)
            case let (.int, .number(x)?):
                guard x == x.rounded(), s.bounds.contains(x) else {
                    throw EnvironmentError("\(name): '\(s.name)' must be a whole number in \(Int(s.bounds.lowerBound))...\(Int(s.bounds.upperBound)), got \(x)", setting: s.name)
                }
                values[s.name] = .number(x)
            case (.range, .number?):
                throw EnvironmentError("\(name): '\(s.name)' needs a range low..high", setting: s.name)
            case (.number, .range?), (.int, .range?):
                throw EnvironmentError("\(name): '\(s.name)' needs a number, not a range", setting: s.name)
            }
        }
        return build(EnvironmentSettings(values: values))
    }
}

/// The environment families: one row each.
public enum EnvironmentRegistry {
    public static let kinds: [EnvironmentKind] = [Navigation2D.kind, CartPole.kind]
    public static let byName: [String: EnvironmentKind] = Dictionary(uniqueKeysWithValues: kinds.map { ($0.name, $0) })
}

extension Tensor {
    /// A tensor of `shape` filled by `body` from index 0 on (no gradient).
    static func filled(_ shape: [Int], _ body: (UnsafeMutablePointer<Float>) -> Void) -> Tensor {
        let buffer = TensorBuffer(count: elementCount(shape))
        body(buffer.pointer)
        return Tensor(shape: shape, buffer: buffer)
    }
}
