import Foundation
import MetaQEngine

// The language's tensor functions: one per row of the engine's primitive table (derived, not
// listed here), then autodiff (`grad`, `value_and_grad`, `stop_gradient`), parameter
// structures (`tree_map`, `per_task`), meta-batches as values (`sample`), constructors and
// seeded random tensors.

/// A seeded random generator held by a script (`generator(42)`).
final class GeneratorBox: @unchecked Sendable {
    var rng: RandomGenerator
    init(_ rng: RandomGenerator) { self.rng = rng }
    convenience init(seed: UInt64) { self.init(RandomGenerator(seed: seed)) }
}

extension Interpreter {
    /// A generator as scripts hold it: a function value that is never called, registered
    /// with the box that 'rand', 'randn' and the meta-RL functions draw from.
    func generatorFunction(_ box: GeneratorBox, name: String) -> Function {
        let f = Function(name: name, body: .builtin(BuiltinFunction(doc: FunctionDoc(name: "generator", signature: "", summary: "", example: "")) { _, range, _ in
            throw RuntimeError("a generator is not called: pass it to 'randn' or 'rand'", at: range)
        }))
        generators[ObjectIdentifier(f)] = box
        return f
    }
}

extension Builtins {
    /// The generator a builtin draws from (made by `generator(seed)`).
    static func generatorArgument(_ name: String, _ a: BuiltinArgument, _ interp: Interpreter) throws -> GeneratorBox {
        guard case let .function(f) = a.value, let box = interp.generators[ObjectIdentifier(f)] else {
            throw RuntimeError("'\(name)' needs a generator made by 'generator(seed)' first, got a \(a.value.typeName)", at: a.range)
        }
        return box
    }
}

extension Builtins {
    /// The language function of a primitive: numbers give numbers for elementwise rows, a
    /// list of numbers gives a number for `sum` and `mean`; otherwise a tensor.
    static func primitiveFunction(_ p: Primitive) -> BuiltinFunction {
        let order = switch p.differentiation {
        case .none: "Not differentiable (a constant)."
        case .firstOrder: "Derivative: \(p.rule) (first order only)."
        case .anyOrder: "Derivative: \(p.rule); differentiable again."
        }
        let doc = FunctionDoc(name: p.name, signature: p.signature,
                              summary: "\(p.summary) \(order) Its rule reads: \(p.reads).", example: p.example)
        let required = p.parameters.filter { $0.defaultValue == nil }.count
        return BuiltinFunction(doc: doc, arity: required...p.parameters.count) { args, range, interp in
            if let scalar = p.scalar, args.count == 1, args[0].label == nil, let x = args[0].value.number {
                return .float(scalar(x))
            }
            if p.name == "sum" || p.name == "mean", args.count == 1, case let .list(items) = args[0].value,
               items.allSatisfy({ $0.number != nil }) {
                let xs = items.map { $0.number! }
                if p.name == "mean" && xs.isEmpty { throw RuntimeError("'mean' of an empty list", at: range) }
                let total = xs.reduce(0, +)
                return .float(p.name == "sum" ? total : total / Double(xs.count))
            }
            return .tensor(try interp.callPrimitive(p, args.map(\.value), labels: args.map(\.label), at: range))
        }
    }

    static func function(_ name: String, _ signature: String, _ summary: String, _ example: String, arity: ClosedRange<Int>? = nil,
                         _ body: @escaping ([BuiltinArgument], SourceRange, Interpreter) throws -> Value) -> BuiltinFunction {
        BuiltinFunction(doc: FunctionDoc(name: name, signature: signature, summary: summary, example: example), arity: arity, call: body)
    }

    static func shapeArgument(_ name: String, _ v: BuiltinArgument) throws -> [Int] {
        let dims: [Value]
        if case let .list(items) = v.value { dims = items.items } else { dims = [v.value] }
        var shape: [Int] = []
        var total = 1
        for d in dims {
            guard case let .int(n) = d, n >= 0 else { throw RuntimeError("'\(name)' needs a shape of non-negative ints, got \(v.value.nestedText)", at: v.range) }
            let (product, overflow) = total.multipliedReportingOverflow(by: n)
            guard !overflow, product <= 1 << 28 else { throw RuntimeError("'\(name)': shape \(v.value.nestedText) is too large (at most 2^28 elements)", at: v.range) }
            total = product
            shape.append(n)
        }
        return shape
    }

    /// `grad` and `value_and_grad`.
    static func gradient(_ name: String, withValue: Bool) -> BuiltinFunction {
        let summary = withValue
            ? "The value of f(x) (a scalar tensor) and its gradient with respect to x, as a record < value grad >; x may be a tensor or a list or record of tensors, and the gradient has its structure."
            : "The gradient of f(x), a scalar, with respect to x: a tensor, or a list or record of tensors (the gradient has the same structure). Inside another grad, or a learner's loss, the gradient is itself differentiable: the gradient of a gradient works (second-order MAML)."
        return function(name, "\(name)(f, x, seed = 1)", summary + " With a seed s the result is s times the gradient, computed by seeding the backward pass (an inner SGD step `fast + grad(f, fast, -lr)` saves a scaling per parameter).", "\(name)(fn(w) -> sum(w * w), w)", arity: 2...3) { args, range, interp in
            try arity(name, args, 2...3, range)
            var seed: Float = 1
            if args.count == 3 {
                guard let s = args[2].value.number, s.isFinite else {
                    throw RuntimeError("'\(name)' needs a finite number as its seed, got \(args[2].value.nestedText)", at: args[2].range)
                }
                seed = Float(s)
            }
            guard case let .function(f) = args[0].value else {
                throw RuntimeError("'\(name)' needs a function first, got a \(args[0].value.typeName)", at: args[0].range)
            }
            var leaves: [Tensor] = []
            let tree = TensorTree.flatten(args[1].value, into: &leaves)
            guard !leaves.isEmpty else {
                throw RuntimeError("'\(name)' needs a tensor, or a list or record of tensors, to differentiate with respect to; got \(args[1].value.nestedText), a value of type \(args[1].value.typeName)", at: args[1].range)
            }
            var tracked: [Tensor] = []
            for t in leaves {
                tracked.append(t.requiresGradient ? t : try interp.tensorOperation("track", [t], at: range) { $0[0].requiringGradient() })
            }
            let createGraph = interp.differentiationDepth > 0
            interp.differentiationDepth += 1
            let out: Value
            do {
                defer { interp.differentiationDepth -= 1 }
                out = try interp.call(f, arguments: [(nil, tree.rebuild(tracked), args[1].range)], at: range)
            }
            guard case let .tensor(y) = out else {
                throw RuntimeError("'\(name)' needs f to return a scalar tensor, got a \(out.typeName)" + (out.number != nil ? " (a number does not depend on the tensors)" : ""), at: range)
            }
            guard y.count == 1 else {
                throw RuntimeError("'\(name)' needs f to return a scalar, got a tensor of shape \(y.shape); reduce it with sum or mean", at: range)
            }
            let shape = y.shape
            let grads = interp.tensorOperations(name, [y] + tracked, at: range) { ts in
                gradients(of: ts[0], with: Array(ts.dropFirst()), seed: seed == 1 ? nil : Tensor.full(seed, shape: shape), createGraph: createGraph)
            }
            let g = tree.rebuild(grads)
            return withValue ? .record(Record([("value", .tensor(y)), ("grad", g)])) : g
        }
    }

    static func treeMap(_ f: Function, _ values: [Value], _ range: SourceRange, _ interp: Interpreter) throws -> Value {
        switch values[0] {
        case let .record(r):
            var fields: [(key: String, value: Value)] = []
            for (i, field) in r.fields.enumerated() {
                let parts = try values.map { v -> Value in
                    guard case let .record(o) = v, o.keys == r.keys else {
                        throw RuntimeError("'tree_map' needs structures of one shape: records with fields \(r.keys.joined(separator: ", "))", at: range)
                    }
                    return o.fields[i].value
                }
                fields.append((field.key, try treeMap(f, parts, range, interp)))
            }
            return .record(Record(fields))
        case let .list(items):
            var out: [Value] = []
            for i in items.indices {
                out.append(try treeMap(f, try values.map { v -> Value in
                    guard case let .list(o) = v, o.count == items.count else {
                        throw RuntimeError("'tree_map' needs structures of one shape: lists of \(items.count)", at: range)
                    }
                    return o[i]
                }, range, interp))
            }
            return .list(out)
        default:
            return try interp.call(f, arguments: values.map { (nil, $0, range) }, at: range)
        }
    }

    static func random(_ name: String, normal: Bool) -> BuiltinFunction {
        let summary = normal ? "A tensor of normal samples (mean 0, sd 1, or as given) drawn from a generator made by 'generator(seed)'."
                             : "A tensor of uniform samples in [low, high) (0 to 1 by default) drawn from a generator made by 'generator(seed)'."
        return function(name, normal ? "randn(g, shape, mean = 0, sd = 1)" : "rand(g, shape, low = 0, high = 1)", summary,
                        normal ? "let w = randn(g, [40, 40]) * 0.1" : "let u = rand(g, [5], -1, 1)", arity: 2...4) { args, range, interp in
            try arity(name, args, 2...4, range)
            let box = try generatorArgument(name, args[0], interp)
            let shape = try shapeArgument(name, args[1])
            let a = args.count > 2 ? try number(args[2], name) : (normal ? 0 : 0)
            let b = args.count > 3 ? try number(args[3], name) : 1
            interp.tracer?.fail("it draws random numbers ('\(name)')")
            return .tensor(normal ? Tensor.normal(shape, mean: Float(a), standardDeviation: Float(b), using: &box.rng)
                                  : Tensor.uniform(shape, low: Float(a), high: Float(b), using: &box.rng))
        }
    }

    static func number(_ a: BuiltinArgument, _ name: String) throws -> Double {
        guard let x = a.value.number, x.isFinite else { throw RuntimeError("'\(name)' needs a finite number, got \(a.value.nestedText)", at: a.range) }
        return x
    }

    static let tensorFunctionList: [BuiltinFunction] = Primitives.table.map(primitiveFunction) + [
        gradient("grad", withValue: false),
        gradient("value_and_grad", withValue: true),
        function("stop_gradient", "stop_gradient(x)", "The same values with no gradient flowing through them (a tensor, or a list or record of tensors): first-order MAML is the second-order one with stop_gradient around the inner gradient.", "stop_gradient(g)", arity: 1...1) { args, range, interp in
            try arity("stop_gradient", args, 1...1, range)
            var leaves: [Tensor] = []
            let tree = TensorTree.flatten(args[0].value, into: &leaves)
            return tree.rebuild(try leaves.map { try interp.tensorOperation("stop_gradient", [$0], at: range) { $0[0].detached() } })
        },
        function("tree_map", "tree_map(f, a, b, ...)", "f applied to the matching leaves of structures of one shape (records, lists): `tree_map(fn(p, g) -> p - 0.01 * g, params, grads)`.", "tree_map(fn(p, g, r) -> p - exp(r) * g, fast, g, rates)") { args, range, interp in
            guard args.count >= 2, case let .function(f) = args[0].value else {
                throw RuntimeError("'tree_map' needs a function and one or more structures", at: range)
            }
            return try treeMap(f, args.dropFirst().map(\.value), range, interp)
        },
        function("per_task", "per_task(params, tasks)", "Each tensor of a parameter structure repeated along a new leading task axis: the starting fast weights of a meta-batch, adapted for all tasks at once.", "var fast = per_task(params, batch.tasks)", arity: 2...2) { args, range, interp in
            try arity("per_task", args, 2...2, range)
            guard case let .int(n) = args[1].value, n >= 1, n <= 1 << 20 else {
                throw RuntimeError("'per_task' needs a task count in 1...\(1 << 20), got \(args[1].value.nestedText)", at: args[1].range)
            }
            var leaves: [Tensor] = []
            let tree = TensorTree.flatten(args[0].value, into: &leaves)
            return tree.rebuild(try leaves.map { t in
                let shape = [n] + t.shape
                return try interp.tensorOperation("per_task", [t], at: range) { $0[0].broadcast(to: shape) }
            })
        },
        function("sample", "sample(tasks, n, support = S, query = Q)", "A meta-batch of n tasks drawn from a task family: a record < support < x y tasks > query < x y tasks > tasks > whose inputs x are [n, examples, ...] and targets y [n, examples, outputs] (regression) or integer labels [n, examples] (classification).", "let b = sample(sine, 25)", arity: 2...4) { args, range, interp in
            guard args.count >= 2, args.count <= 4, case let .tasks(t) = args[0].value, case let .int(n) = args[1].value, n >= 1, n <= 100_000 else {
                throw RuntimeError("'sample' needs a task family and a task count in 1...100000: sample(tasks, n, support = S, query = Q)", at: range)
            }
            var support = t.support, query = t.query
            for a in args.dropFirst(2) {
                guard case let .int(k) = a.value, k >= 1, k <= 100_000, let label = a.label, label == "support" || label == "query" else {
                    throw RuntimeError("'sample' takes 'support: K' and 'query: Q' (ints in 1...100000) after the count", at: a.range)
                }
                if label == "support" { support = k } else { query = k }
            }
            interp.tracer?.fail("it samples tasks")
            if interp.deploying { throw RuntimeError("'sample' does not run when deploying", at: range) }
            do {
                var generator = interp.rng
                let batch = try t.distribution.sample(tasks: n, support: support, query: query, using: &generator)
                interp.rng = generator
                return Interpreter.batchValue(batch)
            } catch let e as RuntimeError { throw e } catch {
                throw RuntimeError("\(error)", at: range)
            }
        },
        function("zeros", "zeros(shape)", "A tensor of zeros.", "zeros([3, 4])", arity: 1...1) { args, range, _ in
            try arity("zeros", args, 1...1, range)
            return .tensor(Tensor.zeros(try shapeArgument("zeros", args[0])))
        },
        function("ones", "ones(shape)", "A tensor of ones.", "ones([3, 4])", arity: 1...1) { args, range, _ in
            try arity("ones", args, 1...1, range)
            return .tensor(Tensor.ones(try shapeArgument("ones", args[0])))
        },
        function("full", "full(shape, value)", "A tensor with every element equal to value.", "full([4], 0.01)", arity: 2...2) { args, range, _ in
            try arity("full", args, 2...2, range)
            return .tensor(Tensor.full(Float(try number(args[1], "full")), shape: try shapeArgument("full", args[0])))
        },
        function("full_like", "full_like(x, value)", "A structure like x (a tensor, or a list or record of tensors) with every element equal to value: `full_like(net.params, log(0.01))` makes per-parameter rates.", "full_like(net.params, 0.01)", arity: 2...2) { args, range, interp in
            try arity("full_like", args, 2...2, range)
            let v = Float(try number(args[1], "full_like"))
            var leaves: [Tensor] = []
            let tree = TensorTree.flatten(args[0].value, into: &leaves)
            return tree.rebuild(leaves.map { Tensor.full(v, shape: $0.shape) })
        },
        function("generator", "generator(seed)", "A random generator with its own seed, for 'randn' and 'rand': draws do not depend on anything else in the script.", "let g = generator(42)", arity: 1...1) { args, range, interp in
            try arity("generator", args, 1...1, range)
            guard case let .int(seed) = args[0].value, seed >= 0 else {
                throw RuntimeError("'generator' needs a non-negative int seed, got \(args[0].value.nestedText)", at: args[0].range)
            }
            return .function(interp.generatorFunction(GeneratorBox(seed: UInt64(seed)), name: "generator(\(seed))"))
        },
        random("randn", normal: true),
        random("rand", normal: false),
        function("fast_weights", "fast_weights(learner, support, steps)", "A learner's fast weights after adapting to a support set (< x y tasks >, as 'sample' makes) for a number of steps, as a record named like 'net.params' with a leading task axis: learners that adapt parameters (\(LearnerKind.names { $0.adaptsParameters })).", "let fast = fast_weights(m, b.support, 5)", arity: 3...3) { args, range, interp in
            guard case let .learner(l) = args[0].value else {
                throw RuntimeError("'fast_weights' needs a learner, got a \(args[0].value.typeName)", at: args[0].range)
            }
            guard case let .int(steps) = args[2].value, steps >= 0, steps <= 100_000 else {
                throw RuntimeError("'fast_weights' needs a step count in 0...100000, got \(args[2].value.nestedText)", at: args[2].range)
            }
            guard case let .record(r) = args[1].value, case let .tensor(x)? = r["x"], case let .tensor(y)? = r["y"], x.rank >= 3, y.rank >= 2,
                  x.shape[0] == y.shape[0], x.shape[1] == y.shape[1] else {
                throw RuntimeError("'fast_weights' needs a support set < x y > with x [tasks, examples, ...] and y [tasks, examples, ...] (as 'sample' makes)", at: args[1].range)
            }
            guard let engine = l.learner, case let .meta(meta) = engine else {
                throw RuntimeError("'fast_weights' needs a learner that has been trained or evaluated (its loss comes from its tasks)", at: args[0].range)
            }
            let targets: Targets
            if meta.loss == .crossEntropy {
                var labels: [Int] = []
                for v in y.scalars {
                    guard v >= 0, v == v.rounded(), v < 1e6 else { throw RuntimeError("'fast_weights': class labels must be whole numbers >= 0", at: args[1].range) }
                    labels.append(Int(v))
                }
                targets = .labels(labels)
            } else {
                targets = .values(y)
            }
            let split = Split(inputs: x, targets: targets)
            do throws(ShapeError) { _ = try meta.model.outputShape(for: Array(x.shape.dropFirst(2))) } catch {
                throw RuntimeError("'fast_weights': the model cannot take these inputs: \(error.message)", at: args[1].range)
            }
            let start = meta.model.parameters.map { $0.detached() }
            let fast: [Tensor]
            if let s = meta as? ScriptLearner {
                fast = try s.adapt(split, from: start, steps: steps)
            } else if let saved = meta as? CheckpointableLearner,
                      case let .gradient(inner, rates)? = saved.snapshot.configuration.kind.adaptationRule(of: .meta(meta)) {
                fast = inner.adapt(model: meta.model, loss: meta.loss, support: split, from: start, steps: steps, rates: rates, createGraph: false)
            } else {
                throw RuntimeError("a \(l.kind) learner has no fast weights: it does not adapt parameters (these do: \(LearnerKind.names { $0.adaptsParameters }))", at: args[0].range)
            }
            return .record(Record(zip(meta.model.parameterSpecs, fast).map { ($0.name, .tensor($1.detached())) }))
        },
    ]
}

extension Interpreter {
    /// A meta-batch as the language sees it (see `sample`).
    static func batchValue(_ batch: TaskBatch) -> Value {
        .record(Record([("support", splitValue(batch.support)), ("query", splitValue(batch.query)), ("tasks", .int(batch.taskCount))]))
    }

    /// One side of a meta-batch: < x y tasks >.
    static func splitValue(_ s: Split) -> Value {
        let y: Tensor = switch s.targets {
        case let .values(v): v
        case let .labels(l): Tensor(shape: [s.taskCount, s.examplesPerTask], values: l.map(Float.init))
        }
        return .record(Record([("x", .tensor(s.inputs)), ("y", .tensor(y)), ("tasks", .int(s.taskCount))]))
    }
}
