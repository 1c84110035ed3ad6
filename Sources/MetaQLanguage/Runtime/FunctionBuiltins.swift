import Foundation
import MetaQEngine

extension Builtins {
    /// Checks a builtin's argument count.
    static func arity(_ name: String, _ args: [BuiltinArgument], _ n: ClosedRange<Int>, _ range: SourceRange) throws {
        guard n.contains(args.count) else {
            let expected = n.lowerBound == n.upperBound ? "\(n.lowerBound)" : "\(n.lowerBound) to \(n.upperBound)"
            throw RuntimeError("'\(name)' takes \(expected) argument\(n.upperBound == 1 ? "" : "s"), got \(args.count)", at: range)
        }
    }

    static func numbers(_ name: String, _ args: [BuiltinArgument], _ range: SourceRange, _ interp: Interpreter) throws -> [Double] {
        let values: [Value]
        if args.count == 1, case let .list(items) = args[0].value { values = items.items }
        else if args.count == 1, case let .tensor(t) = args[0].value {
            interp.readsTensorValues("'\(name)' of a tensor as a number")
            return t.scalars.map(Double.init)
        }
        else { values = args.map(\.value) }
        return try values.map {
            guard let x = $0.number else { throw RuntimeError("'\(name)' needs numbers, got a \($0.typeName)", at: range) }
            return x
        }
    }

    static let functionList: [BuiltinFunction] = [
        BuiltinFunction(doc: FunctionDoc(name: "round", signature: "round(x, digits)", summary: "x rounded to a number of decimal digits (0 by default).", example: "round(3.14159, 2)")) { args, range, _ in
            try arity("round", args, 1...2, range)
            guard let x = args[0].value.number else { throw RuntimeError("'round' needs a number, got a \(args[0].value.typeName)", at: args[0].range) }
            var digits = 0
            if args.count == 2 {
                guard case let .int(d) = args[1].value, d >= 0, d <= 15 else { throw RuntimeError("'round' needs 0 to 15 digits", at: args[1].range) }
                digits = d
            }
            let scale = Foundation.pow(10.0, Double(digits))
            return .float((x * scale).rounded() / scale)
        },
        BuiltinFunction(doc: FunctionDoc(name: "len", signature: "len(x)", summary: "The number of items of a list, characters of a string, fields of a record, or rows of a tensor.", example: "len([1, 2, 3])")) { args, range, _ in
            try arity("len", args, 1...1, range)
            switch args[0].value {
            case let .list(l): return .int(l.count)
            case let .string(s): return .int(s.count)
            case let .record(r): return .int(r.fields.count)
            case let .tensor(t): return .int(t.shape.first ?? 1)
            case let v: throw RuntimeError("'len' needs a list, string, record or tensor, got a \(v.typeName)", at: args[0].range)
            }
        },
        BuiltinFunction(doc: FunctionDoc(name: "range", signature: "range(n) | range(a, b)", summary: "The integers 0..<n, or a..<b, as a list.", example: "for i in range(3) { print i }")) { args, range, _ in
            try arity("range", args, 1...2, range)
            let bounds = try args.map { a -> Int in
                guard case let .int(i) = a.value else { throw RuntimeError("'range' needs ints, got a \(a.value.typeName)", at: a.range) }
                return i
            }
            let (lo, hi) = bounds.count == 1 ? (0, bounds[0]) : (bounds[0], bounds[1])
            let (count, overflow) = hi.subtractingReportingOverflow(lo)
            guard hi <= lo || (!overflow && count <= 10_000_000) else {
                throw RuntimeError("range(\(lo), \(hi)) is too large: a range holds at most 10000000 items", at: range)
            }
            return .list(lo < hi ? (lo..<hi).map { .int($0) } : [])
        },
        BuiltinFunction(doc: FunctionDoc(name: "str", signature: "str(x)", summary: "The value as printed.", example: "print \"loss \" + str(0.5)")) { args, range, _ in
            try arity("str", args, 1...1, range)
            return .string(args[0].value.displayText)
        },
        BuiltinFunction(doc: FunctionDoc(name: "int", signature: "int(x)", summary: "A number truncated toward zero, or a string parsed as an integer.", example: "int(3.7)")) { args, range, _ in
            try arity("int", args, 1...1, range)
            switch args[0].value {
            case let .int(i): return .int(i)
            case let .float(f) where f.isFinite && Swift.abs(f) < 9e18: return .int(Int(f))
            case let .string(s) where Int(s) != nil: return .int(Int(s)!)
            case let v: throw RuntimeError("cannot convert \(v.nestedText) to an int", at: args[0].range)
            }
        },
        BuiltinFunction(doc: FunctionDoc(name: "float", signature: "float(x)", summary: "A number as a float, a one-element tensor as a number, or a string parsed as one.", example: "float(\"1e-3\")")) { args, range, interp in
            try arity("float", args, 1...1, range)
            if let x = args[0].value.number { return .float(x) }
            if case let .tensor(t) = args[0].value, t.count == 1 {
                interp.readsTensorValues("'float' of a tensor")
                return .float(Double(t.scalar))
            }
            if case let .string(s) = args[0].value, let x = Double(s) { return .float(x) }
            throw RuntimeError("cannot convert \(args[0].value.nestedText) to a float", at: args[0].range)
        },
        BuiltinFunction(doc: FunctionDoc(name: "min", signature: "min(a, b, ...) | min(list)", summary: "The smallest number.", example: "min([3, 1, 2])")) { args, range, interp in
            guard let m = try numbers("min", args, range, interp).min() else { throw RuntimeError("'min' of nothing", at: range) }
            return .float(m)
        },
        BuiltinFunction(doc: FunctionDoc(name: "max", signature: "max(a, b, ...) | max(list)", summary: "The largest number.", example: "max(r.means)")) { args, range, interp in
            guard let m = try numbers("max", args, range, interp).max() else { throw RuntimeError("'max' of nothing", at: range) }
            return .float(m)
        },
        BuiltinFunction(doc: FunctionDoc(name: "tensor", signature: "tensor(list)", summary: "A tensor from a (nested, rectangular) list of numbers.", example: "let t = tensor([[1, 2], [3, 4]])")) { args, range, _ in
            try arity("tensor", args, 1...1, range)
            return .tensor(try Operators.tensor(args[0].value, at: args[0].range))
        },
        BuiltinFunction(doc: FunctionDoc(name: "linspace", signature: "linspace(a, b, n)", summary: "n evenly spaced points from a to b, as a tensor.", example: "let xs = linspace(-5, 5, 100)")) { args, range, _ in
            try arity("linspace", args, 3...3, range)
            guard let a = args[0].value.number, let b = args[1].value.number, case let .int(n) = args[2].value, n >= 1, n <= 10_000_000 else {
                throw RuntimeError("'linspace' needs two numbers and a positive int count", at: range)
            }
            return .tensor(Tensor((0..<n).map { Float(a + (b - a) * Double($0) / Double(Swift.max(n - 1, 1))) }))
        },
        BuiltinFunction(doc: FunctionDoc(name: "meta_step", signature: "meta_step(learner, tasks)",
                                         summary: "One meta-update of a learner on a freshly sampled meta-batch; returns its loss. The building block of a training loop written in the language.",
                                         example: "for i in range(100) { meta_step(m, sine) }")) { args, range, interp in
            try arity("meta_step", args, 2...2, range)
            if interp.deploying { throw RuntimeError("'meta_step' does not run when deploying", at: range) }
            let invocation = CommandInvocation(
                name: Identifier(name: "meta_step", range: range),
                arguments: [CommandArgumentValue(connector: nil, value: args[0].value, range: args[0].range),
                            CommandArgumentValue(connector: .on, value: args[1].value, range: args[1].range)],
                options: ValidatedBlock(record: Record(), keyRanges: [:], range: range, schema: noOptions("meta_step")), range: range)
            let (learner, tasks, engine) = try interp.learnerAndTasks(invocation)
            try Limits.requireBatch(tasks: learner.metaBatch, support: tasks.support, query: tasks.query, of: tasks.distribution, at: range)
            learner.iterations += 1
            let loss = try interp.metaStep(engine, learner: learner, tasks: tasks, batch: learner.metaBatch, at: range)
            if let error = ScriptLearner.takeError(engine) { throw error }
            guard loss.isFinite else {
                throw RuntimeError("training diverged at iteration \(learner.iterations) (loss \(loss.isNaN ? "NaN" : "\(loss)")); lower the learning rates", at: range)
            }
            return .float(Double(loss))
        },
        BuiltinFunction(doc: FunctionDoc(name: "load", signature: "load(\"file.mqm\")",
                                         summary: "A learner (ready to train, evaluate or deploy) or a model, read from a checkpoint written by 'save' or 'train ... < checkpoint ... >'. Damaged, foreign or newer-version files give an error naming the problem.",
                                         example: "let m = load(\"sine.mqm\")")) { args, range, interp in
            try arity("load", args, 1...1, range)
            guard case let .string(path) = args[0].value else {
                throw RuntimeError("'load' needs a file name string, got a \(args[0].value.typeName)", at: args[0].range)
            }
            do throws(CheckpointError) {
                let checkpoint = try Checkpoint.read(from: path)
                if checkpoint.learner?.configuration.settings is ScriptSettings {
                    // A learner written in metaq: rebuilt from the script saved with it.
                    return .learner(try Deployment.scriptLearner(from: checkpoint).0)
                }
                guard let restored = try checkpoint.makeLearner() else {
                    return .model(ModelValue(network: checkpoint.makeModel(), kind: checkpoint.attributes[CheckpointAttribute.model] ?? "model",
                                             inputShape: checkpoint.inputShape))
                }
                if case let .reinforcement(rl) = restored {
                    return .learner(LearnerValue(restoring: checkpoint, reinforcement: rl, rng: interp.rng.split()))
                }
                guard let engine = LearnerEngine(restored) else { throw CheckpointError(.unsupported, "it holds a learner of an unknown kind") }
                return .learner(LearnerValue(restoring: checkpoint, engine: engine, rng: interp.rng.split()))
            } catch {
                throw RuntimeError("cannot load: \(error.message(about: path))", at: args[0].range)
            }
        },
        BuiltinFunction(doc: FunctionDoc(name: "fail", signature: "fail(message)",
                                         summary: "Stops the script with an error: the message, at the call of the function that called 'fail' (how a module rejects a bad key).",
                                         example: "if o.ways < 2 { fail(\"ways must be 2 or more\") }")) { args, range, interp in
            try arity("fail", args, 1...1, range)
            guard case let .string(message) = args[0].value else {
                throw RuntimeError("'fail' needs a message string, got a \(args[0].value.typeName)", at: args[0].range)
            }
            throw RuntimeError(message, at: interp.callStack.last?.1 ?? range)
        },
        BuiltinFunction(doc: FunctionDoc(name: "options", signature: "options(given, defaults, required)",
                                         summary: "The options a function called with a block receives (fn f(o) ...; f < a 1 >), checked: the record 'given' completed with the fields of 'defaults' it lacks; a key in neither 'defaults' nor the list 'required' is an error naming it, as is a missing required key. How a module written in metaq declares its keys.",
                                         example: "let o = options(opts, < ways 5 fce false >, [\"model\"])")) { args, range, interp in
            try arity("options", args, 2...3, range)
            guard case let .record(given) = args[0].value else {
                throw RuntimeError("'options' needs the given options as a record (a block), got a \(args[0].value.typeName)", at: args[0].range)
            }
            guard case let .record(defaults) = args[1].value else {
                throw RuntimeError("'options' needs the defaults as a record, got a \(args[1].value.typeName)", at: args[1].range)
            }
            var required: [String] = []
            if args.count == 3 {
                guard case let .list(names) = args[2].value, let strings = Optional(names.items.compactMap({ v -> String? in if case let .string(s) = v { s } else { nil } })),
                      strings.count == names.count else {
                    throw RuntimeError("'options' needs the required keys as a list of strings", at: args[2].range)
                }
                required = strings
            }
            // The error points at the block the caller wrote, when there is one.
            let site = interp.callStack.last?.1 ?? range
            let known = required + defaults.keys
            for key in given.keys where !known.contains(key) {
                let hint = nearest(key, in: known).map { "; did you mean '\($0)'?" } ?? ""
                throw RuntimeError("unknown key '\(key)'\(hint) (keys: \(known.joined(separator: ", ")))", at: site)
            }
            if let missing = required.first(where: { given[$0] == nil }) {
                throw RuntimeError("missing key '\(missing)' (required: \(required.joined(separator: ", ")))", at: site)
            }
            var result = given
            for (key, value) in defaults.fields where given[key] == nil { result[key] = value }
            return .record(result)
        },
    ]
}
