import Foundation

/// What a block key accepts.
public indirect enum KeyType: Sendable {
    case int(min: Int, max: Int)
    case number(min: Double, max: Double)
    case bool
    case string
    case range
    case intList
    case stringList
    case numberList
    /// One of these names, written bare (`act relu`) or as a string.
    case choice([String])
    case model
    case tasks
    case function
    case record(BlockSchema)
    /// A tensor, or a record or list of tensors (a learner's extra learnable tensors).
    case tensors
    /// A list of layer blocks (`conv < out 64 >`, activations by name, nested lists).
    case layers

    /// How the type reads in messages and documentation.
    public var description: String {
        switch self {
        case let .int(lo, hi): hi == .max ? (lo == .min ? "int" : "int >= \(lo)") : "int in \(lo)...\(hi)"
        case let .number(lo, hi):
            hi == .infinity ? (lo == -.infinity ? "number" : (lo == 0 ? "number >= 0" : "number >= \(Value.format(lo))")) : "number in \(Value.format(lo))...\(Value.format(hi))"
        case .bool: "bool"
        case .string: "string"
        case .range: "range a..b"
        case .intList: "list of ints"
        case .stringList: "list of strings"
        case .numberList: "list of numbers"
        case let .choice(names): "one of " + names.joined(separator: ", ")
        case .model: "model"
        case .tasks: "tasks"
        case .function: "function"
        case .tensors: "record of tensors"
        case .layers: "list of layers"
        case let .record(schema): "block < \(schema.keys.map(\.name).joined(separator: " ")) >"
        }
    }

    static let positiveInt = KeyType.int(min: 1, max: .max)
    /// A size: features, units, filters, examples, tasks per batch (at most 2^24).
    static let size = KeyType.int(min: 1, max: Limits.maximumSize)
    static let count = KeyType.int(min: 0, max: .max)
    static let positive = KeyType.number(min: 0, max: .infinity)
}

/// One key of a block: its name, type, default (nil: required) and what it means.
public struct KeySpec: Sendable {
    public let name: String
    public let type: KeyType
    /// The default as the language writes it; nil when the key is required.
    public let defaultText: String?
    public let summary: String

    public init(_ name: String, _ type: KeyType, default defaultText: String?, _ summary: String) {
        self.name = name
        self.type = type
        self.defaultText = defaultText
        self.summary = summary
    }

    /// An optional key with no default.
    public static func optional(_ name: String, _ type: KeyType, _ summary: String) -> KeySpec {
        KeySpec(name, type, default: "none", summary)
    }

    public var isRequired: Bool { defaultText == nil }
}

/// The keys a block (or a command's options) accepts: the single source for validation,
/// REPL completion, `:help` and the language reference.
public struct BlockSchema: Sendable {
    public enum Category: String, Sendable, CaseIterable {
        case model, tasks, learner, stream, command, option, layer, environment
    }

    public let name: String
    public let category: Category
    public let summary: String
    public let keys: [KeySpec]
    /// Extra keys beyond `keys` are allowed and described by this text (e.g. the parameter
    /// ranges of a `regression` family); nil when only `keys` are valid.
    public let extraKeys: String?
    public let example: String

    public init(_ name: String, _ category: Category, summary: String, keys: [KeySpec], extraKeys: String? = nil, example: String) {
        self.name = name
        self.category = category
        self.summary = summary
        self.keys = keys
        self.extraKeys = extraKeys
        self.example = example
    }

    public func key(_ name: String) -> KeySpec? { keys.first { $0.name == name } }

    /// The valid key nearest to a misspelt one, if any is close.
    public func suggestion(for name: String) -> String? {
        nearest(name, in: keys.map(\.name))
    }
}

/// The candidate with the smallest edit distance to `word`, when it is close enough to be a
/// plausible misspelling.
func nearest(_ word: String, in candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
    let limit = max(1, min(3, max(word.count, best.0.count) / 3))
    return best.1 <= limit ? best.0 : nil
}

/// Edit distance counting insertions, deletions, substitutions and transpositions of
/// neighbours (optimal string alignment), so "valeu" is one edit from "value".
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { d[i][0] = i }
    for j in 0...b.count { d[0][j] = j }
    for i in 1...a.count {
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
        }
    }
    return d[a.count][b.count]
}

/// Documentation of a builtin function or command.
public struct FunctionDoc: Sendable {
    public let name: String
    public let signature: String
    public let summary: String
    public let example: String
}
