import Foundation
import MetaQEngine

// Tensor programming in the language: operators on tensors and on records of tensors,
// calling models with their own or given parameters, and the calls of the primitive table.
// Every tensor operation goes through `tensorOperation`, so a script function can be
// compiled (Trace.swift).

extension Interpreter {
    /// A binary operator on values: tensors broadcast (and compare into 0/1 masks), records
    /// of tensors combine field by field (`fast - lr * g`), everything else as before.
    func arithmetic(_ op: BinaryOperator, _ a: Value, _ b: Value, at range: SourceRange) throws -> Value {
        let elementwise: Set<BinaryOperator> = [.add, .subtract, .multiply, .divide, .power, .matrixProduct]
        switch (a, b) {
        case let (.record(x), .record(y)) where elementwise.contains(op):
            guard x.keys == y.keys else {
                throw RuntimeError("'\(op.rawValue)' on records needs the same fields in the same order (\(x.keys.joined(separator: ", ")) vs \(y.keys.joined(separator: ", ")))", at: range)
            }
            return .record(Record(try zip(x.fields, y.fields).map { ($0.key, try arithmetic(op, $0.value, $1.value, at: range)) }))
        case let (.record(x), _) where elementwise.contains(op):
            return .record(Record(try x.fields.map { ($0.key, try arithmetic(op, $0.value, b, at: range)) }))
        case let (_, .record(y)) where elementwise.contains(op):
            return .record(Record(try y.fields.map { ($0.key, try arithmetic(op, a, $0.value, at: range)) }))
        default: break
        }
        if op == .matrixProduct {
            return .tensor(try callPrimitive(Primitives.byName["matmul"]!, [a, b], at: range))
        }
        return try tensorOrScalar(op, a, b, at: range)
    }

    private func tensorOrScalar(_ op: BinaryOperator, _ a: Value, _ b: Value, at range: SourceRange) throws -> Value {
        let isTensor: (Value) -> Bool = { if case .tensor = $0 { true } else { false } }
        guard isTensor(a) || isTensor(b) else { return try Operators.apply(op, a, b, at: range) }
        switch op {
        case .add, .subtract, .multiply, .divide, .power, .less, .greater, .lessEqual, .greaterEqual:
            let x = try Operators.tensor(a, at: range), y = try Operators.tensor(b, at: range)
            do { _ = try ShapeRules.broadcast(x.shape, y.shape) } catch {
                throw RuntimeError("tensor shapes do not match for '\(op.rawValue)': \(error.message)", at: range)
            }
            if op == .power && y.count != 1 { throw RuntimeError("a tensor power needs a scalar exponent", at: range) }
            return .tensor(try tensorOperation(op.rawValue, [x, y], at: range) { ts throws(ShapeError) in
                let (p, q) = (ts[0], ts[1])
                switch op {
                case .add: return p + q
                case .subtract: return p - q
                case .multiply: return p * q
                case .divide: return p / q
                case .power: return p.pow(q.scalar)
                case .less: return (q - p).mask { $0 > 0 }
                case .greater: return (p - q).mask { $0 > 0 }
                case .lessEqual: return (q - p).mask { $0 >= 0 }
                default: return (p - q).mask { $0 >= 0 }
                }
            })
        case .equal, .notEqual:
            readsTensorValues("'\(op.rawValue)' on tensors")
            return try Operators.apply(op, a, b, at: range)
        default:
            throw RuntimeError("'\(op.rawValue)' is not defined on tensors", at: range)
        }
    }

    // MARK: Models as functions

    /// `net.params`: the model's parameters as a record named like the checkpoint's tensors
    /// (`0.weight`, `0.bias`, ...). While a function is compiled they are read when the
    /// compiled form runs, so it always sees the current parameters.
    func modelParameters(_ m: ModelValue, at range: SourceRange) -> Value {
        let network = m.network
        let tensors = tensorOperations("params", [], at: range) { _ in network.parameters }
        return .record(Record(zip(network.parameterSpecs, tensors).map { ($0.name, .tensor($1)) }))
    }

    /// The tensors of a parameter structure (a record named as `net.params`, or a list in
    /// that order), checked against the model: each either the parameter's shape or that
    /// shape with a leading task axis. Returns them and the task count (nil: none).
    func parameterList(_ v: Value, for network: Sequential, at range: SourceRange) throws -> ([Tensor], Int?) {
        let specs = network.parameterSpecs
        var tensors: [Tensor] = []
        switch v {
        case let .record(r):
            guard r.keys == specs.map(\.name) else {
                throw RuntimeError("the parameters need the fields \(specs.map(\.name).joined(separator: ", ")) in that order (as 'net.params'), got \(r.keys.joined(separator: ", "))", at: range)
            }
            for f in r.fields {
                guard case let .tensor(t) = f.value else { throw RuntimeError("parameter '\(f.key)' is a \(f.value.typeName), not a tensor", at: range) }
                tensors.append(t)
            }
        case let .list(items):
            guard items.count == specs.count else { throw RuntimeError("the model has \(specs.count) parameters, got \(items.count)", at: range) }
            for item in items {
                guard case let .tensor(t) = item else { throw RuntimeError("a parameter is a \(item.typeName), not a tensor", at: range) }
                tensors.append(t)
            }
        default:
            throw RuntimeError("parameters must be a record (as 'net.params') or a list of tensors, got a \(v.typeName)", at: range)
        }
        var tasks: Int?
        for (t, spec) in zip(tensors, specs) {
            if t.shape == spec.shape { continue }
            guard t.rank == spec.shape.count + 1, Array(t.shape.dropFirst()) == spec.shape else {
                throw RuntimeError("parameter '\(spec.name)' needs shape \(spec.shape) (or with a task axis in front), got \(t.shape)", at: range)
            }
            if let n = tasks, n != t.shape[0] {
                throw RuntimeError("parameters disagree on the number of tasks (\(n) and \(t.shape[0]))", at: range)
            }
            tasks = t.shape[0]
        }
        return (tensors, tasks)
    }

    /// `net(x)` and `net(x, params)`: the forward pass with the model's own parameters or
    /// given ones. With per-task parameters (a leading task axis, as `per_task` makes them)
    /// `x` is `[tasks, examples, ...]` and the whole batch runs as one computation.
    func callModel(_ m: ModelValue, _ args: [(String?, Value, SourceRange)], at range: SourceRange) throws -> Value {
        // `step: k`: the pass runs at inner-loop step k (per-step batch norm's row k).
        var args = args
        var step: Int?
        if let i = args.firstIndex(where: { $0.0 == "step" }) {
            guard case let .int(k) = args[i].1, k >= 0 else {
                throw RuntimeError("a model's 'step' is an inner-loop step, a whole number >= 0, got \(args[i].1.nestedText)", at: args[i].2)
            }
            step = k
            args.remove(at: i)
        }
        if let other = args.first(where: { $0.0 != nil }) {
            throw RuntimeError("a model takes no argument named '\(other.0!)' (only 'step')", at: other.2)
        }
        guard (1...2).contains(args.count) else { throw RuntimeError("a model takes its input and optionally parameters, got \(args.count) arguments", at: range) }
        let x = try Operators.tensor(args[0].1, at: args[0].2)
        let network = m.network
        var params: [Tensor]
        var tasks: Int?
        if args.count == 2 {
            (params, tasks) = try parameterList(args[1].1, for: network, at: args[1].2)
        } else {
            params = []
        }
        // Shared parameters over a task axis: the input has the model's example shape after
        // two leading axes.
        if tasks == nil, let expected = m.inputShape, x.rank == expected.count + 2, Array(x.shape.dropFirst(2)) == expected {
            tasks = x.shape[0]
        }
        let lead = tasks == nil ? 1 : 2
        guard x.rank > lead else {
            throw RuntimeError("the input needs \(tasks == nil ? "a batch axis" : "task and example axes") before each example's shape, got \(x.shape)", at: args[0].2)
        }
        if let tasks, x.shape[0] != tasks {
            throw RuntimeError("the input has \(x.shape[0]) tasks but the parameters \(tasks)", at: args[0].2)
        }
        let example = Array(x.shape.dropFirst(lead))
        if let expected = m.inputShape, expected != example {
            throw RuntimeError("the model takes examples of shape \(expected), got \(example) (input \(x.shape))", at: args[0].2)
        }
        do { _ = try network.outputShape(for: example) } catch {
            throw RuntimeError("the model cannot take this input \(x.shape): \(error.message)", at: args[0].2)
        }
        let own = args.count == 1
        let count = params.count
        return .tensor(try tensorOperation("model", [x] + params, at: range) { ts in
            let run = { network.forward(ts[0], parameters: own ? network.parameters : Array(ts[1...count]), tasks: tasks) }
            guard let step else { return run() }
            return ForwardContext.with(ForwardContext.current.atStep(step), run)
        })
    }

    // MARK: Primitives

    /// Calls a row of the primitive table on language values.
    func callPrimitive(_ p: Primitive, _ values: [Value], labels: [String?]? = nil, at range: SourceRange) throws -> Tensor {
        let args = try bindPrimitiveArguments(p, values, labels: labels ?? values.map { _ in nil }, at: range)
        // Tensor arguments become the operation's inputs; the rest are captured.
        var inputs: [Tensor] = []
        var layout: [(Int, Int)] = []  // for each argument: start in inputs, count (-1: not a tensor)
        for a in args {
            switch a {
            case let .tensor(t): layout.append((inputs.count, 1)); inputs.append(t)
            case let .tensors(ts): layout.append((inputs.count, ts.count)); inputs.append(contentsOf: ts)
            default: layout.append((0, -1))
            }
        }
        let apply = p.apply
        return try tensorOperation(p.name, inputs, at: range) { ts throws(ShapeError) in
            var rebuilt = args
            for (i, (start, n)) in layout.enumerated() where n >= 0 {
                if case .tensors = args[i] { rebuilt[i] = .tensors(Array(ts[start..<start + n])) } else { rebuilt[i] = .tensor(ts[start]) }
            }
            return try apply(rebuilt)
        }
    }

    private func bindPrimitiveArguments(_ p: Primitive, _ values: [Value], labels: [String?], at range: SourceRange) throws -> [PrimitiveValue] {
        var slots = [Value?](repeating: nil, count: p.parameters.count)
        var positional = 0
        for (value, label) in zip(values, labels) {
            let index: Int
            if let label {
                guard let i = p.parameters.firstIndex(where: { $0.name == label }) else {
                    throw RuntimeError("'\(p.name)' has no parameter '\(label)' (\(p.signature))", at: range)
                }
                index = i
            } else {
                while positional < slots.count && slots[positional] != nil { positional += 1 }
                guard positional < slots.count else {
                    throw RuntimeError("'\(p.name)' takes at most \(p.parameters.count) argument\(p.parameters.count == 1 ? "" : "s"), got \(values.count): \(p.signature)", at: range)
                }
                index = positional
            }
            guard slots[index] == nil else { throw RuntimeError("argument '\(p.parameters[index].name)' of '\(p.name)' given twice", at: range) }
            slots[index] = value
        }
        return try zip(p.parameters, slots).map { parameter, value in
            guard let value else {
                guard let d = parameter.defaultValue else {
                    throw RuntimeError("'\(p.name)' needs its argument '\(parameter.name)': \(p.signature)", at: range)
                }
                return d
            }
            return try convert(value, to: parameter, of: p.name, at: range)
        }
    }

    private func convert(_ v: Value, to parameter: PrimitiveParameter, of name: String, at range: SourceRange) throws -> PrimitiveValue {
        let what = "'\(name)' argument '\(parameter.name)'"
        switch parameter.kind {
        case .tensor, .labels, .mask:
            guard v.number != nil || { if case .tensor = v { true } else if case .list = v { true } else { false } }() else {
                throw RuntimeError("\(what) needs a tensor, number or list of numbers, got a \(v.typeName)", at: range)
            }
            return .tensor(try Operators.tensor(v, at: range))
        case .tensors:
            guard case let .list(items) = v else { throw RuntimeError("\(what) needs a list of tensors, got a \(v.typeName)", at: range) }
            return .tensors(try items.map { try Operators.tensor($0, at: range) })
        case .int:
            guard case let .int(i) = v else { throw RuntimeError("\(what) needs an int, got \(v.nestedText)", at: range) }
            return .int(i)
        case .ints:
            if case let .int(i) = v { return .ints([i]) }
            guard case let .list(items) = v else { throw RuntimeError("\(what) needs a list of ints, got a \(v.typeName)", at: range) }
            return .ints(try items.map {
                guard case let .int(i) = $0 else { throw RuntimeError("\(what) needs a list of ints, got \($0.nestedText) in it", at: range) }
                return i
            })
        case .number:
            guard let x = v.number else { throw RuntimeError("\(what) needs a number, got a \(v.typeName)", at: range) }
            return .number(x)
        }
    }
}
