import Foundation
import MetaQEngine

/// Arithmetic, comparison and range operators on runtime values. Numbers promote from int to
/// float; tensors broadcast against numbers and tensors, so a lambda written for scalars runs
/// vectorised over a tensor of points.
enum Operators {
    static func apply(_ op: BinaryOperator, _ a: Value, _ b: Value, at range: SourceRange) throws -> Value {
        switch op {
        case .range:
            guard let x = a.number, let y = b.number else {
                throw RuntimeError("a range needs numbers on both sides, got \(a.typeName)..\(b.typeName)", at: range)
            }
            return .range(x, y)
        case .equal: return .bool(equal(a, b))
        case .notEqual: return .bool(!equal(a, b))
        case .less, .greater, .lessEqual, .greaterEqual:
            return .bool(try compare(op, a, b, at: range))
        case .add, .subtract, .multiply, .divide, .remainder, .power:
            return try arithmetic(op, a, b, at: range)
        case .matrixProduct:
            throw RuntimeError("'@' needs tensors (matrices), got a \(a.typeName) and a \(b.typeName)", at: range)
        case .and, .or:
            preconditionFailure("short-circuit operators are evaluated by the interpreter")
        }
    }

    /// Structural equality of lists and records, compared with a stack of pending pairs
    /// instead of recursion, so any nesting depth compares.
    static func equal(_ a: Value, _ b: Value) -> Bool {
        var pending = [(a, b)]
        while let (x, y) = pending.popLast() {
            switch (x, y) {
            case let (.list(p), .list(q)):
                guard p.count == q.count else { return false }
                pending.append(contentsOf: zip(p, q))
            case let (.record(p), .record(q)):
                guard p.keys == q.keys else { return false }
                pending.append(contentsOf: zip(p.fields.lazy.map(\.value), q.fields.lazy.map(\.value)))
            default:
                guard equalLeaves(x, y) else { return false }
            }
        }
        return true
    }

    /// Equality of values other than two lists or two records.
    private static func equalLeaves(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case (.none, .none): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.string(x), .string(y)), let (.symbol(x), .symbol(y)), let (.string(x), .symbol(y)), let (.symbol(x), .string(y)):
            return x == y
        case let (.range(a1, b1), .range(a2, b2)): return a1 == a2 && b1 == b2
        // Engine objects are equal when they are the same object.
        case let (.model(x), .model(y)): return x === y
        case let (.tasks(x), .tasks(y)): return x === y
        case let (.learner(x), .learner(y)): return x === y
        case let (.stream(x), .stream(y)): return x === y
        case let (.environment(x), .environment(y)): return x === y
        case let (.function(x), .function(y)): return x === y
        case let (.tensor(x), .tensor(y)): return x === y || (x.shape == y.shape && x.scalars == y.scalars)
        default:
            if let x = a.number, let y = b.number { return x == y }
            return false
        }
    }

    private static func compare(_ op: BinaryOperator, _ a: Value, _ b: Value, at range: SourceRange) throws -> Bool {
        let ordering: Int
        if let x = a.number, let y = b.number {
            ordering = x < y ? -1 : (x > y ? 1 : 0)
        } else if case let .string(x) = a, case let .string(y) = b {
            ordering = x < y ? -1 : (x > y ? 1 : 0)
        } else {
            throw RuntimeError("cannot compare a \(a.typeName) with a \(b.typeName)", at: range)
        }
        switch op {
        case .less: return ordering < 0
        case .greater: return ordering > 0
        case .lessEqual: return ordering <= 0
        default: return ordering >= 0
        }
    }

    private static func arithmetic(_ op: BinaryOperator, _ a: Value, _ b: Value, at range: SourceRange) throws -> Value {
        switch (a, b) {
        case let (.int(x), .int(y)):
            let result: (Int, Bool)
            switch op {
            case .add: result = x.addingReportingOverflow(y)
            case .subtract: result = x.subtractingReportingOverflow(y)
            case .multiply: result = x.multipliedReportingOverflow(by: y)
            case .divide:
                guard y != 0 else { throw RuntimeError("division by zero", at: range) }
                return .float(Double(x) / Double(y))
            case .remainder:
                guard y != 0 else { throw RuntimeError("remainder by zero", at: range) }
                result = x.remainderReportingOverflow(dividingBy: y)
            default:
                if y >= 0 {
                    var r = 1, overflow = false
                    for _ in 0..<min(y, 64) where !overflow {
                        let (m, o) = r.multipliedReportingOverflow(by: x)
                        r = m
                        overflow = o
                    }
                    if !overflow && (y <= 64 || x == 0 || x == 1) { return .int(r) }
                    if x == -1 { return .int(y % 2 == 0 ? 1 : -1) }
                }
                return .float(Foundation.pow(Double(x), Double(y)))
            }
            guard !result.1 else { throw RuntimeError("integer overflow in '\(op.rawValue)'", at: range) }
            return .int(result.0)
        case (.string(let x), .string(let y)) where op == .add:
            return .string(x + y)
        case (.string(let x), _) where op == .add:
            return .string(x + b.displayText)
        case (_, .string(let y)) where op == .add:
            return .string(a.displayText + y)
        case (.list(let x), .list(let y)) where op == .add:
            return .list(x.items + y.items)
        case (.tensor, _), (_, .tensor):
            return .tensor(try tensorArithmetic(op, tensor(a, at: range), tensor(b, at: range), at: range))
        default:
            guard let x = a.number, let y = b.number else {
                throw RuntimeError("cannot apply '\(op.rawValue)' to a \(a.typeName) and a \(b.typeName)", at: range)
            }
            switch op {
            case .add: return .float(x + y)
            case .subtract: return .float(x - y)
            case .multiply: return .float(x * y)
            case .divide: return .float(x / y)
            case .remainder: return .float(x.truncatingRemainder(dividingBy: y))
            default: return .float(Foundation.pow(x, y))
            }
        }
    }

    /// A value as a tensor: numbers become scalars, lists of numbers vectors (or matrices).
    static func tensor(_ v: Value, at range: SourceRange) throws -> Tensor {
        switch v {
        case let .tensor(t): return t
        case let .int(i): return Tensor(Float(i))
        case let .float(f): return Tensor(Float(f))
        case let .list(items):
            if items.allSatisfy({ $0.number != nil }) { return Tensor(items.map { Float($0.number!) }) }
            let rows = try items.map { try tensor($0, at: range) }
            guard let first = rows.first, rows.allSatisfy({ $0.shape == first.shape }) else {
                throw RuntimeError("a tensor needs a rectangular list of numbers", at: range)
            }
            return Tensor.stack(rows)
        default:
            throw RuntimeError("expected a number, list of numbers or tensor, got a \(v.typeName)", at: range)
        }
    }

    private static func tensorArithmetic(_ op: BinaryOperator, _ a: Tensor, _ b: Tensor, at range: SourceRange) throws -> Tensor {
        do { _ = try ShapeRules.broadcast(a.shape, b.shape) } catch {
            throw RuntimeError("tensor shapes do not match: \(error.message)", at: range)
        }
        switch op {
        case .add: return a + b
        case .subtract: return a - b
        case .multiply: return a * b
        case .divide: return a / b
        case .power:
            guard b.count == 1 else { throw RuntimeError("a tensor power needs a scalar exponent", at: range) }
            return a.pow(b.scalar)
        default: throw RuntimeError("'\(op.rawValue)' is not defined on tensors", at: range)
        }
    }
}
