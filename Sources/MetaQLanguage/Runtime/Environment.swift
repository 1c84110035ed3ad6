/// An error raised while a script runs: a message at a source range, with notes and the chain
/// of script function calls that led to it (innermost first).
public struct RuntimeError: Error, Sendable {
    public var message: String
    public var range: SourceRange
    public var notes: [Diagnostic.Note]
    /// (function name, call site) pairs, innermost call first.
    public var callStack: [(String, SourceRange)] = []

    public init(_ message: String, at range: SourceRange, notes: [Diagnostic.Note] = []) {
        self.message = message
        self.range = range
        self.notes = notes
    }

    /// The error as a diagnostic; each script call on the way adds a note at its call site.
    /// A run of the same calls repeated (recursion, or functions calling each other in turn)
    /// is shown once, followed by a note counting the repetitions left out.
    public var diagnostic: Diagnostic {
        var calls: [Diagnostic.Note] = []
        var i = 0
        while i < callStack.count {
            // The shortest cycle of calls (up to 4) starting here that repeats at least 3 times.
            let cycle = (1...4).lazy.map { length in (length, RuntimeError.repetitions(of: length, at: i, in: callStack)) }
                .first { $0.1 >= 3 }
            let (length, times) = cycle ?? (1, 1)
            calls += callStack[i..<i + length].map { Diagnostic.Note("in call to '\($0.0)'", at: $0.1) }
            if times > 1 {
                let names = callStack[i..<i + length].map { "'\($0.0)'" }
                let what = length == 1 ? "\(times - 1) more calls to \(names[0])"
                                       : "the \(length) calls above repeated \(times - 1) more times (\(names.joined(separator: ", ")))"
                calls.append(Diagnostic.Note("... \(what) from the same place\(length == 1 ? "" : "s")"))
            }
            i += length * times
        }
        return .error(message, at: range, stage: .run, notes: notes + calls)
    }

    /// How many times the `length` calls from `start` occur in a row in `stack`.
    private static func repetitions(of length: Int, at start: Int, in stack: [(String, SourceRange)]) -> Int {
        guard start + length <= stack.count else { return 0 }
        var times = 1
        while start + (times + 1) * length <= stack.count,
              (0..<length).allSatisfy({ stack[start + times * length + $0] == stack[start + $0] }) {
            times += 1
        }
        return times
    }
}

/// A scope of variable bindings, chained to the scope it is nested in.
public final class Environment: @unchecked Sendable {
    struct Binding {
        var value: Value
        var isMutable: Bool
        var range: SourceRange?
    }

    let parent: Environment?
    private(set) var bindings: [String: Binding] = [:]
    /// The order scopes were made in (the interpreter runs on one thread): a trace treats
    /// mutable bindings of scopes made before it as values that may change between calls.
    let serial: UInt64
    nonisolated(unsafe) static var nextSerial: UInt64 = 0

    public init(parent: Environment? = nil) {
        self.parent = parent
        serial = Environment.nextSerial
        Environment.nextSerial &+= 1
    }

    /// The binding of `name` and the scope that holds it.
    func lookupBinding(_ name: String) -> (Binding, Environment)? {
        var scope: Environment? = self
        while let s = scope {
            if let b = s.bindings[name] { return (b, s) }
            scope = s.parent
        }
        return nil
    }

    /// Binds a name in this scope (shadowing outer ones).
    func define(_ name: String, _ value: Value, mutable: Bool = false, at range: SourceRange? = nil) {
        bindings[name] = Binding(value: value, isMutable: mutable, range: range)
    }

    /// Binds every name of `other`'s own scope here, as `other` binds it.
    func defineAll(_ other: Environment) {
        for (name, binding) in other.bindings { bindings[name] = binding }
    }

    func lookup(_ name: String) -> Value? {
        var scope: Environment? = self
        while let s = scope {
            if let b = s.bindings[name] { return b.value }
            scope = s.parent
        }
        return nil
    }

    /// Assigns to an existing binding; returns false when the name is unbound, and throws
    /// when it is bound with `let`.
    func assign(_ name: String, _ value: Value, at range: SourceRange) throws -> Bool {
        var scope: Environment? = self
        while let s = scope {
            if let b = s.bindings[name] {
                guard b.isMutable else {
                    throw RuntimeError("cannot assign to '\(name)': it is a constant (declare it with 'var' to change it)",
                                       at: range, notes: b.range.map { [Diagnostic.Note("'\(name)' declared here", at: $0)] } ?? [])
                }
                s.bindings[name]?.value = value
                return true
            }
            scope = s.parent
        }
        return false
    }

    /// Every name visible from this scope, innermost first.
    public var visibleNames: [String] {
        var names: [String] = []
        var seen = Set<String>()
        var scope: Environment? = self
        while let s = scope {
            for name in s.bindings.keys.sorted() where seen.insert(name).inserted { names.append(name) }
            scope = s.parent
        }
        return names
    }

    /// The bindings of this scope alone, sorted by name.
    public var localBindings: [(String, Value)] {
        bindings.keys.sorted().map { ($0, bindings[$0]!.value) }
    }
}
