import MetaQEngine

/// A block's entries checked against its schema, with defaults filled in and the source range
/// of every given key (so later errors can point at the key that caused them).
public struct ValidatedBlock {
    public var record: Record
    public var keyRanges: [String: SourceRange]
    public var range: SourceRange
    public let schema: BlockSchema

    /// The range of `key` when it was written, else the whole block.
    public func range(of key: String) -> SourceRange { keyRanges[key] ?? range }

    public func int(_ key: String) -> Int { if case let .int(i)? = record[key] { return i }; return 0 }
    public func optionalInt(_ key: String) -> Int? { if case let .int(i)? = record[key] { return i }; return nil }
    public func number(_ key: String) -> Double { record[key]?.number ?? 0 }
    public func bool(_ key: String) -> Bool { if case let .bool(b)? = record[key] { return b }; return false }
    public func string(_ key: String) -> String? {
        switch record[key] {
        case let .string(s)?, let .symbol(s)?: s
        default: nil
        }
    }
    public func range(_ key: String) -> ClosedRange<Float> {
        if case let .range(a, b)? = record[key] { return Float(min(a, b))...Float(max(a, b)) }
        return 0...0
    }
    public func ints(_ key: String) -> [Int] {
        if case let .list(items)? = record[key] { return items.compactMap { if case let .int(i) = $0 { i } else { nil } } }
        return []
    }
    public func strings(_ key: String) -> [String]? {
        if case let .list(items)? = record[key] { return items.compactMap { if case let .string(s) = $0 { s } else { nil } } }
        return nil
    }
    public func numbers(_ key: String) -> [Double]? {
        if case let .list(items)? = record[key] { return items.compactMap(\.number) }
        return nil
    }
    public func sub(_ key: String) -> ValidatedBlock {
        guard case let .record(schema) = schema.key(key)!.type, case let .record(r)? = record[key] else {
            preconditionFailure("\(key) is not a record key")
        }
        return ValidatedBlock(record: r, keyRanges: [:], range: range(of: key), schema: schema)
    }

    public func error(_ message: String, key: String? = nil) -> RuntimeError {
        RuntimeError(message, at: key.map(range(of:)) ?? range)
    }
}

extension Interpreter {
    /// Checks entries against a schema: unknown keys (with the nearest valid one suggested),
    /// missing required keys, and each value's type and range; fills in defaults.
    func validate(_ entries: [Entry], against schema: BlockSchema, head: Identifier, in env: Environment) throws -> ValidatedBlock {
        var record = Record()
        var ranges: [String: SourceRange] = [:]
        let blockRange = entries.reduce(head.range) { $0.union($1.range) }
        for entry in entries {
            let name = entry.key.name
            guard let spec = schema.key(name) else {
                if schema.extraKeys != nil {
                    record[name] = try evaluate(entry.value, in: env)
                    ranges[name] = entry.range
                    continue
                }
                let hint = schema.suggestion(for: name).map { "; did you mean '\($0)'?" }
                    ?? " (valid keys: \(schema.keys.map(\.name).joined(separator: ", ")))"
                throw RuntimeError("unknown key '\(name)' in '\(schema.name)'\(hint)", at: entry.key.range)
            }
            let value = try evaluateEntry(entry, type: spec.type, in: env)
            record[name] = try check(value, against: spec, in: schema, at: entry.value.range)
            ranges[name] = entry.range
        }
        for spec in schema.keys where record[spec.name] == nil {
            guard let text = spec.defaultText else {
                throw RuntimeError("'\(schema.name)' needs key '\(spec.name)' (\(spec.type.description)): \(spec.summary)", at: blockRange)
            }
            if text == "none" { continue }
            record[spec.name] = try defaultValue(spec, in: env)
        }
        return ValidatedBlock(record: record, keyRanges: ranges, range: blockRange, schema: schema)
    }

    private func defaultValue(_ spec: KeySpec, in env: Environment) throws -> Value {
        if case let .record(inner) = spec.type {
            return .record(try validate([], against: inner, head: Identifier(name: inner.name, range: SourceRange(fileName: "", start: 0, end: 0)), in: env).record)
        }
        let source = SourceFile(name: "<default of \(spec.name)>", text: spec.defaultText!)
        let (program, _) = Parser.parse(source)
        guard case let .expression(e)? = program.statements.first?.kind else { return .none }
        if case .choice = spec.type, case let .name(n) = e.kind { return .symbol(n) }
        return try evaluate(e, in: globals)
    }

    /// Checks one value against its key's type, converting where the language allows
    /// (an int where a number is expected, a string for a choice).
    func check(_ value: Value, against spec: KeySpec, in schema: BlockSchema, at range: SourceRange) throws -> Value {
        func mismatch(_ detail: String? = nil) -> RuntimeError {
            RuntimeError("key '\(spec.name)' of '\(schema.name)' expects \(spec.type.description), got \(detail ?? describe(value))", at: range)
        }
        switch spec.type {
        case let .int(lo, hi):
            guard case let .int(i) = value else { throw mismatch() }
            guard i >= lo && i <= hi else { throw mismatch("\(i)") }
            return value
        case let .number(lo, hi):
            guard let x = value.number else { throw mismatch() }
            guard x >= lo && x <= hi, x.isFinite else { throw mismatch(Value.format(x)) }
            return .float(x)
        case .bool:
            guard case .bool = value else { throw mismatch() }
            return value
        case .string:
            guard case .string = value else { throw mismatch() }
            return value
        case .range:
            if case .range = value { return value }
            if let x = value.number { return .range(x, x) }
            throw mismatch()
        case .intList:
            if case .int = value { return .list([value]) }
            guard case let .list(items) = value, items.allSatisfy({ if case .int = $0 { true } else { false } }) else { throw mismatch() }
            return value
        case .numberList:
            if let x = value.number { return .list([.float(x)]) }
            guard case let .list(items) = value, items.allSatisfy({ $0.number != nil }) else { throw mismatch() }
            return .list(items.map { .float($0.number!) })
        case .stringList:
            if case .string = value { return .list([value]) }
            guard case let .list(items) = value, items.allSatisfy({ if case .string = $0 { true } else { false } }) else { throw mismatch() }
            return value
        case let .choice(names):
            let name: String
            switch value {
            case let .symbol(s), let .string(s): name = s
            default: throw mismatch()
            }
            guard names.contains(name) else {
                let hint = nearest(name, in: names).map { "; did you mean '\($0)'?" } ?? ""
                throw RuntimeError("key '\(spec.name)' of '\(schema.name)' expects \(spec.type.description), got '\(name)'\(hint)", at: range)
            }
            return .symbol(name)
        case .model:
            guard case .model = value else { throw mismatch() }
            return value
        case .tasks:
            guard case .tasks = value else { throw mismatch() }
            return value
        case .function:
            guard case .function = value else { throw mismatch() }
            return value
        case let .record(inner):
            guard case let .record(given) = value else { throw mismatch() }
            // A record value (not a block written in place): its fields are checked as the
            // block's keys would be, and the defaults filled in.
            var record = Record()
            for (name, field) in given.fields {
                guard let innerSpec = inner.key(name) else {
                    if inner.extraKeys != nil { record[name] = field; continue }
                    let hint = inner.suggestion(for: name).map { "; did you mean '\($0)'?" }
                        ?? " (valid keys: \(inner.keys.map(\.name).joined(separator: ", ")))"
                    throw RuntimeError("unknown key '\(name)' in '\(inner.name)'\(hint)", at: range)
                }
                record[name] = try check(field, against: innerSpec, in: inner, at: range)
            }
            for innerSpec in inner.keys where record[innerSpec.name] == nil {
                guard let text = innerSpec.defaultText else {
                    throw RuntimeError("'\(inner.name)' needs key '\(innerSpec.name)' (\(innerSpec.type.description)): \(innerSpec.summary)", at: range)
                }
                if text == "none" { continue }
                record[innerSpec.name] = try defaultValue(innerSpec, in: globals)
            }
            return .record(record)
        case .layers:
            guard case .list = value else { throw mismatch() }
            return value
        case .tensors:
            var leaves: [Tensor] = []
            guard case .constant = TensorTree.flatten(value, into: &leaves) else {
                if case .tensor = value { return value }
                if case let .record(r) = value, r.fields.isEmpty { return value }
                guard !leaves.isEmpty else { throw mismatch() }
                return value
            }
            throw mismatch()
        }
    }

    private func describe(_ v: Value) -> String {
        switch v {
        case .int, .float, .bool, .string, .range: "\(v.typeName) \(v.nestedText)"
        default: "a \(v.typeName)"
        }
    }
}
