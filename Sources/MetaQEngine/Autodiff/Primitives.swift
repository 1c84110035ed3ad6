import Foundation

// The table of differentiable tensor operations that the language (and anything else that
// wants operations by name) can call. Each row is declared once: its name, parameters, what
// its derivative rule is and reads, whether the rule is itself differentiable (so the
// operation sits on second-order paths such as MAML's meta-gradient), docs, and a sample of
// valid arguments. The language's tensor functions, `:help`, completion and the reference in
// docs/LANGUAGE.md are derived from this table, and a test walks it: every differentiable row
// gets a finite-difference check of its gradient, and every second-order row a
// Hessian-vector check. Adding an operation is one row here.
//
// `apply` validates shapes and throws a ShapeError instead of trapping, so a script with a
// wrong shape gets a diagnostic.

/// An argument of a primitive.
public enum PrimitiveValue: Sendable {
    case tensor(Tensor)
    case tensors([Tensor])
    case int(Int)
    case ints([Int])
    case number(Double)

    public var tensor: Tensor? { if case let .tensor(t) = self { t } else { nil } }
}

/// What a primitive's parameter accepts.
public enum PrimitiveParameterKind: String, Sendable {
    /// A tensor (numbers and lists of numbers convert).
    case tensor
    /// A list of tensors.
    case tensors
    case int
    /// A list of ints (a shape, axes).
    case ints
    case number
    /// Integer labels or indices, as a tensor of whole numbers or a list of ints.
    case labels
    /// A tensor read only as a condition (nonzero or not); no gradient flows to it.
    case mask
}

public struct PrimitiveParameter: Sendable {
    public let name: String
    public let kind: PrimitiveParameterKind
    /// The default when the argument is left out; nil: required.
    public let defaultValue: PrimitiveValue?
    /// The default as the language writes it.
    public let defaultText: String?

    public init(_ name: String, _ kind: PrimitiveParameterKind, default value: PrimitiveValue? = nil, _ text: String? = nil) {
        self.name = name
        self.kind = kind
        self.defaultValue = value
        self.defaultText = text
    }
}

/// One row of the table.
public struct Primitive: Sendable {
    /// How the operation's gradient comes about.
    public enum Differentiation: Sendable, Equatable {
        /// Not differentiable (masks, one-hot, argmax): the result is a constant.
        case none
        /// A first-order rule only.
        case firstOrder
        /// The rule is written with differentiable operations: derivatives of any order
        /// (the operation may sit on a second-order path).
        case anyOrder
    }

    public let name: String
    public let parameters: [PrimitiveParameter]
    public let summary: String
    /// The derivative rule, as the documentation states it (`g` is the output's gradient).
    public let rule: String
    /// What the rule reads beyond shapes (the graph keeps only those values alive).
    public let reads: String
    public let differentiation: Differentiation
    /// Whether the operation is composed of other rows (its rule is theirs).
    public let composite: Bool
    public let example: String
    /// The same function on one number, for elementwise operations (numbers give numbers).
    public let scalar: (@Sendable (Double) -> Double)?
    public let apply: @Sendable ([PrimitiveValue]) throws(ShapeError) -> Tensor
    /// Valid arguments for the table's own checks (tensors of moderate values).
    public let sample: @Sendable (inout RandomGenerator) -> [PrimitiveValue]

    public var signature: String {
        "\(name)(" + parameters.map { p in p.defaultText.map { "\(p.name) = \($0)" } ?? p.name }.joined(separator: ", ") + ")"
    }

    /// Indices of the tensor parameters a gradient is checked for.
    public var differentiableArguments: [Int] {
        differentiation == .none ? [] : parameters.indices.filter { parameters[$0].kind == .tensor || parameters[$0].kind == .tensors }
    }
}

// MARK: Helpers for the rows

private func shapeOf(_ v: PrimitiveValue) -> [Int] { v.tensor?.shape ?? [] }

private func checkAxes(_ axes: [Int], rank: Int, _ op: String) throws(ShapeError) -> [Int] {
    var out: [Int] = []
    for a in axes {
        let n = try ShapeRules.axis(a, rank: rank)
        guard !out.contains(n) else { throw ShapeError("\(op): axis \(a) given twice") }
        out.append(n)
    }
    return out.sorted()
}

private func labelsOf(_ t: Tensor, _ op: String) throws(ShapeError) -> [Int] {
    var labels: [Int] = []
    labels.reserveCapacity(t.count)
    for x in t.scalars {
        guard x.isFinite, x == x.rounded(), x >= 0, x < 1e9 else {
            throw ShapeError("\(op): labels must be whole numbers >= 0, got \(x)")
        }
        labels.append(Int(x))
    }
    return labels
}

/// Distinct values 0.1 apart in a shuffled order, none within 0.05 of zero: no kinks (relu,
/// abs) and no near-ties (max, max-pool) within a finite-difference step.
private func spreadTensor(_ shape: [Int], _ rng: inout RandomGenerator) -> PrimitiveValue {
    let n = Tensor.elementCount(shape)
    let order = rng.sample(n, from: n)
    return .tensor(Tensor(shape: shape, values: order.map { Float($0) * 0.1 - Float(n / 2) * 0.1 + 0.05 }))
}

private func randomTensor(_ shape: [Int], _ rng: inout RandomGenerator, low: Float = -1, high: Float = 1) -> PrimitiveValue {
    .tensor(Tensor.uniform(shape, low: low, high: high, using: &rng))
}

private func unary(
    _ name: String, _ summary: String, rule: String, reads: String, order: Primitive.Differentiation = .anyOrder,
    low: Float = -1, high: Float = 1, kinked: Bool = false, scalar: (@Sendable (Double) -> Double)? = nil,
    _ f: @escaping @Sendable (Tensor) -> Tensor
) -> Primitive {
    Primitive(name: name, parameters: [PrimitiveParameter("x", .tensor)], summary: summary, rule: rule, reads: reads,
              differentiation: order, composite: false, example: "\(name)(x)", scalar: scalar,
              apply: { args throws(ShapeError) in f(args[0].tensor!) },
              sample: { rng in [kinked ? spreadTensor([3, 4], &rng) : randomTensor([3, 4], &rng, low: low, high: high)] })
}

private func binaryShapes(_ a: Tensor, _ b: Tensor, _ op: String) throws(ShapeError) {
    do { _ = try ShapeRules.broadcast(a.shape, b.shape) } catch { throw ShapeError("\(op): \(error.message)") }
}

/// The table.
public enum Primitives {
    public static let table: [Primitive] = elementwise + arithmetic + reductions + layout + neural + reinforcement + constants

    public static let byName: [String: Primitive] = Dictionary(uniqueKeysWithValues: table.map { ($0.name, $0) })

    static let elementwise: [Primitive] = [
        unary("exp", "e to the power x, elementwise.", rule: "g * y", reads: "output", scalar: Foundation.exp) { $0.exp() },
        unary("log", "Natural logarithm, elementwise.", rule: "g / x", reads: "input", low: 0.5, high: 2, scalar: Foundation.log) { $0.log() },
        unary("sqrt", "Square root, elementwise.", rule: "g / (2 y)", reads: "output", low: 0.5, high: 2, scalar: { $0.squareRoot() }) { $0.sqrt() },
        unary("sin", "Sine, elementwise.", rule: "g * cos(x)", reads: "input", scalar: Foundation.sin) { $0.sin() },
        unary("cos", "Cosine, elementwise.", rule: "-g * sin(x)", reads: "input", scalar: Foundation.cos) { $0.cos() },
        unary("tanh", "Hyperbolic tangent, elementwise.", rule: "g * (1 - y^2)", reads: "output", scalar: Foundation.tanh) { $0.tanh() },
        unary("sigmoid", "Logistic sigmoid 1 / (1 + e^-x), elementwise.", rule: "g * y * (1 - y)", reads: "output",
              scalar: { 1 / (1 + Foundation.exp(-$0)) }) { $0.sigmoid() },
        unary("relu", "max(x, 0), elementwise.", rule: "g * (x > 0)", reads: "input", kinked: true, scalar: { Swift.max($0, 0) }) { $0.relu() },
        unary("abs", "Absolute value, elementwise.", rule: "g * sign(x)", reads: "input", kinked: true, scalar: { Swift.abs($0) }) { $0.abs() },
        Primitive(name: "leaky_relu", parameters: [PrimitiveParameter("x", .tensor), PrimitiveParameter("slope", .number, default: .number(0.01), "0.01")],
                  summary: "x where x > 0, slope * x elsewhere.", rule: "g * (x > 0 ? 1 : slope)", reads: "input",
                  differentiation: .anyOrder, composite: false, example: "leaky_relu(x, 0.1)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      guard case let .number(s) = a[1] else { throw ShapeError("leaky_relu: slope must be a number") }
                      return a[0].tensor!.leakyRelu(slope: Float(s))
                  },
                  sample: { rng in [spreadTensor([3, 4], &rng), .number(0.1)] }),
        Primitive(name: "elu", parameters: [PrimitiveParameter("x", .tensor)],
                  summary: "x where x > 0, e^x - 1 elsewhere.", rule: "composed: relu(x) + (exp(min(x, 0)) - 1)", reads: "its parts'",
                  differentiation: .anyOrder, composite: true, example: "elu(x)", scalar: { $0 > 0 ? $0 : Foundation.exp($0) - 1 },
                  apply: { a throws(ShapeError) in
                      let x = a[0].tensor!
                      return x.relu() + ((x - x.relu()).exp() - 1)
                  },
                  sample: { rng in [spreadTensor([3, 4], &rng)] }),
        Primitive(name: "swish", parameters: [PrimitiveParameter("x", .tensor)],
                  summary: "x * sigmoid(x) (SiLU).", rule: "composed: x * sigmoid(x)", reads: "its parts'",
                  differentiation: .anyOrder, composite: true, example: "swish(x)", scalar: { $0 / (1 + Foundation.exp(-$0)) },
                  apply: { a throws(ShapeError) in a[0].tensor! * a[0].tensor!.sigmoid() },
                  sample: { rng in [randomTensor([3, 4], &rng)] }),
        Primitive(name: "gelu", parameters: [PrimitiveParameter("x", .tensor)],
                  summary: "x * sigmoid(1.702 x), the sigmoid approximation of GELU.", rule: "composed: x * sigmoid(1.702 x)", reads: "its parts'",
                  differentiation: .anyOrder, composite: true, example: "gelu(x)", scalar: { $0 / (1 + Foundation.exp(-1.702 * $0)) },
                  apply: { a throws(ShapeError) in a[0].tensor! * (a[0].tensor! * 1.702).sigmoid() },
                  sample: { rng in [randomTensor([3, 4], &rng)] }),
        Primitive(name: "pow", parameters: [PrimitiveParameter("x", .tensor), PrimitiveParameter("p", .number)],
                  summary: "x to a constant power p, elementwise.", rule: "g * p * x^(p-1)", reads: "input",
                  differentiation: .anyOrder, composite: false, example: "pow(x, 3)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      guard case let .number(p) = a[1] else { throw ShapeError("pow: the exponent must be a number") }
                      return a[0].tensor!.pow(Float(p))
                  },
                  sample: { rng in [randomTensor([3, 4], &rng, low: 0.5, high: 2), .number(3)] }),
    ]

    static let arithmetic: [Primitive] = [
        Primitive(name: "matmul", parameters: [PrimitiveParameter("a", .tensor), PrimitiveParameter("b", .tensor)],
                  summary: "The matrix product [..., m, k] x [..., k, n] -> [..., m, n], batched over leading axes; a rank-2 operand is shared across the other's batch. Written `a @ b`.",
                  rule: "ga = g @ b^T, gb = a^T @ g (products of the same kind)", reads: "inputs a, b",
                  differentiation: .anyOrder, composite: false, example: "x @ w", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let (x, y) = (a[0].tensor!, a[1].tensor!)
                      _ = try ShapeRules.matmul(x.shape, y.shape)
                      return x.matmul(y)
                  },
                  sample: { rng in [randomTensor([2, 3, 4], &rng), randomTensor([4, 5], &rng)] }),
        Primitive(name: "maximum", parameters: [PrimitiveParameter("a", .tensor), PrimitiveParameter("b", .tensor)],
                  summary: "The larger of a and b, elementwise (broadcasting).", rule: "g to the larger operand", reads: "inputs a, b",
                  differentiation: .anyOrder, composite: false, example: "maximum(x, 0)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let (x, y) = (a[0].tensor!, a[1].tensor!)
                      try binaryShapes(x, y, "maximum")
                      return x.maximum(y)
                  },
                  sample: { rng in [spreadTensor([3, 4], &rng), .tensor(spreadTensor([3, 4], &rng).tensor! + 0.03)] }),
        Primitive(name: "where", parameters: [PrimitiveParameter("mask", .mask), PrimitiveParameter("a", .tensor), PrimitiveParameter("b", .tensor)],
                  summary: "a where mask is nonzero, b elsewhere (broadcasting); masks come from comparisons such as `x > 0`.",
                  rule: "composed: mask * a + (1 - mask) * b", reads: "its parts'",
                  differentiation: .anyOrder, composite: true, example: "where(x > 0, x, 0.1 * x)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let (m, x, y) = (a[0].tensor!, a[1].tensor!, a[2].tensor!)
                      try binaryShapes(x, y, "where")
                      try binaryShapes(m, x + y, "where")
                      let mask = m.mask { $0 != 0 }
                      return mask * x + (1 - mask) * y
                  },
                  sample: { rng in [.tensor(Tensor.uniform([3, 4], low: -1, high: 1, using: &rng).mask { $0 > 0 }), randomTensor([3, 4], &rng), randomTensor([3, 4], &rng)] }),
    ]

    static let reductions: [Primitive] = [
        Primitive(name: "sum", parameters: [PrimitiveParameter("x", .tensor), PrimitiveParameter("axes", .ints, default: .ints([]), "all")],
                  summary: "The sum over the given axes (all by default; negative axes count from the end). A list of numbers gives a number.",
                  rule: "g broadcast back to x's shape", reads: "shapes", differentiation: .anyOrder, composite: false,
                  example: "sum(x, [1])", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let x = a[0].tensor!
                      guard case let .ints(axes) = a[1] else { throw ShapeError("sum: axes must be ints") }
                      return axes.isEmpty ? x.sum() : x.sum(axes: try checkAxes(axes, rank: x.rank, "sum"))
                  },
                  sample: { rng in [randomTensor([3, 4], &rng), .ints([1])] }),
        Primitive(name: "mean", parameters: [PrimitiveParameter("x", .tensor), PrimitiveParameter("axes", .ints, default: .ints([]), "all")],
                  summary: "The mean over the given axes (all by default). A list of numbers gives a number.",
                  rule: "g / n broadcast back", reads: "shapes", differentiation: .anyOrder, composite: false,
                  example: "mean(x, [0])", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let x = a[0].tensor!
                      guard case let .ints(axes) = a[1] else { throw ShapeError("mean: axes must be ints") }
                      return axes.isEmpty ? x.mean() : x.mean(axes: try checkAxes(axes, rank: x.rank, "mean"))
                  },
                  sample: { rng in [randomTensor([3, 4], &rng), .ints([0])] }),
        Primitive(name: "max_along", parameters: [PrimitiveParameter("x", .tensor), PrimitiveParameter("axis", .int, default: .int(-1), "-1")],
                  summary: "The maximum along one axis; the gradient flows to the (first) largest element.",
                  rule: "g scattered to the argmax", reads: "shapes (the argmax positions)", differentiation: .anyOrder, composite: false,
                  example: "max_along(logits, -1)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let x = a[0].tensor!
                      guard case let .int(axis) = a[1] else { throw ShapeError("max_along: axis must be an int") }
                      let n = try ShapeRules.axis(axis, rank: x.rank)
                      guard x.rank > 0, x.shape[n] > 0 else { throw ShapeError("max_along: empty axis \(axis) of \(x.shape)") }
                      return x.max(axis: n)
                  },
                  sample: { rng in [spreadTensor([3, 4], &rng), .int(1)] }),
        Primitive(name: "norm", parameters: [PrimitiveParameter("x", .tensor), PrimitiveParameter("axes", .ints, default: .ints([]), "all")],
                  summary: "The Euclidean (L2) norm over the given axes (all by default).",
                  rule: "composed: sqrt(sum(x^2))", reads: "its parts'", differentiation: .anyOrder, composite: true,
                  example: "norm(g)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let x = a[0].tensor!
                      guard case let .ints(axes) = a[1] else { throw ShapeError("norm: axes must be ints") }
                      let s = axes.isEmpty ? (x * x).sum() : (x * x).sum(axes: try checkAxes(axes, rank: x.rank, "norm"))
                      return s.sqrt()
                  },
                  sample: { rng in [randomTensor([3, 4], &rng, low: 0.5, high: 1), .ints([])] }),
    ]

    static let layout: [Primitive] = [
        Primitive(name: "reshape", parameters: [PrimitiveParameter("x", .tensor), PrimitiveParameter("shape", .ints)],
                  summary: "The same values in another shape; one entry may be -1.", rule: "g reshaped back", reads: "shapes",
                  differentiation: .anyOrder, composite: false, example: "reshape(x, [-1, 4])", scalar: nil,
                  apply: { a throws(ShapeError) in
                      guard case let .ints(s) = a[1] else { throw ShapeError("reshape: the shape must be a list of ints") }
                      let x = a[0].tensor!
                      return x.reshaped(to: try ShapeRules.reshape(x.shape, to: s))
                  },
                  sample: { rng in [randomTensor([3, 4], &rng), .ints([2, -1])] }),
        Primitive(name: "transpose", parameters: [PrimitiveParameter("x", .tensor), PrimitiveParameter("axes", .ints, default: .ints([]), "swap the last two")],
                  summary: "The axes permuted (the last two swapped by default).", rule: "g permuted back", reads: "shapes",
                  differentiation: .anyOrder, composite: false, example: "transpose(x)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let x = a[0].tensor!
                      guard case let .ints(p) = a[1] else { throw ShapeError("transpose: axes must be ints") }
                      if p.isEmpty {
                          guard x.rank >= 2 else { throw ShapeError("transpose: needs rank 2 or more, got \(x.shape)") }
                          var perm = Array(0..<x.rank)
                          perm.swapAt(x.rank - 1, x.rank - 2)
                          return x.permuted(perm)
                      }
                      let norm = try p.map { a throws(ShapeError) in try ShapeRules.axis(a, rank: x.rank) }
                      guard norm.sorted() == Array(0..<x.rank) else { throw ShapeError("transpose: \(p) is not a permutation of the \(x.rank) axes") }
                      return x.permuted(norm)
                  },
                  sample: { rng in [randomTensor([2, 3, 4], &rng), .ints([2, 0, 1])] }),
        Primitive(name: "concat", parameters: [PrimitiveParameter("xs", .tensors), PrimitiveParameter("axis", .int, default: .int(0), "0")],
                  summary: "Tensors joined along an existing axis.", rule: "g sliced back into the parts", reads: "shapes",
                  differentiation: .anyOrder, composite: false, example: "concat([a, b], 1)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      guard case let .tensors(xs) = a[0], let first = xs.first else { throw ShapeError("concat: needs a non-empty list of tensors") }
                      guard case let .int(axis) = a[1] else { throw ShapeError("concat: axis must be an int") }
                      let n = try ShapeRules.axis(axis, rank: first.rank)
                      for x in xs where x.rank != first.rank || (0..<x.rank).contains(where: { $0 != n && x.shape[$0] != first.shape[$0] }) {
                          throw ShapeError("concat: shapes \(first.shape) and \(x.shape) differ off axis \(axis)")
                      }
                      return Tensor.concatenate(xs, axis: n)
                  },
                  sample: { rng in [.tensors([randomTensor([2, 3], &rng).tensor!, randomTensor([2, 2], &rng).tensor!]), .int(1)] }),
        Primitive(name: "stack", parameters: [PrimitiveParameter("xs", .tensors)],
                  summary: "Tensors of one shape stacked along a new leading axis.", rule: "g sliced back into the parts", reads: "shapes",
                  differentiation: .anyOrder, composite: false, example: "stack([a, b])", scalar: nil,
                  apply: { a throws(ShapeError) in
                      guard case let .tensors(xs) = a[0], let first = xs.first else { throw ShapeError("stack: needs a non-empty list of tensors") }
                      for x in xs where x.shape != first.shape { throw ShapeError("stack: shapes \(first.shape) and \(x.shape) differ") }
                      return Tensor.stack(xs)
                  },
                  sample: { rng in [.tensors([randomTensor([2, 3], &rng).tensor!, randomTensor([2, 3], &rng).tensor!])] }),
        Primitive(name: "slice", parameters: [PrimitiveParameter("x", .tensor), PrimitiveParameter("axis", .int), PrimitiveParameter("start", .int), PrimitiveParameter("end", .int)],
                  summary: "The elements start..<end along an axis.", rule: "g padded back with zeros", reads: "shapes",
                  differentiation: .anyOrder, composite: false, example: "slice(x, 1, 0, 2)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let x = a[0].tensor!
                      guard case let .int(axis) = a[1], case let .int(s) = a[2], case let .int(e) = a[3] else { throw ShapeError("slice: axis, start and end must be ints") }
                      let n = try ShapeRules.axis(axis, rank: x.rank)
                      guard x.rank > 0, s >= 0, s <= e, e <= x.shape[n] else { throw ShapeError("slice: \(s)..<\(e) is outside 0..<\(x.rank > 0 ? x.shape[n] : 0) on axis \(axis) of \(x.shape)") }
                      return x.slice(axis: n, s..<e)
                  },
                  sample: { rng in [randomTensor([3, 4], &rng), .int(1), .int(1), .int(3)] }),
        Primitive(name: "take", parameters: [PrimitiveParameter("x", .tensor), PrimitiveParameter("indices", .labels)],
                  summary: "The rows of x (its first axis) at the given indices, in order; indices may repeat.",
                  rule: "g scatter-added back to the rows", reads: "shapes (the indices)", differentiation: .anyOrder, composite: false,
                  example: "take(x, [2, 0])", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let x = a[0].tensor!
                      let rows = try labelsOf(a[1].tensor!, "take")
                      guard x.rank > 0 else { throw ShapeError("take: needs a tensor with rows, got a scalar") }
                      for r in rows where r >= x.shape[0] { throw ShapeError("take: index \(r) out of range for \(x.shape[0]) rows") }
                      return x.gatheringRows(rows)
                  },
                  sample: { rng in [randomTensor([4, 3], &rng), .tensor(Tensor([2, 0, 2]))] }),
    ]

    static let neural: [Primitive] = [
        Primitive(name: "softmax", parameters: [PrimitiveParameter("x", .tensor)],
                  summary: "softmax along the last axis.", rule: "composed: exp(log_softmax(x))", reads: "its parts'",
                  differentiation: .anyOrder, composite: true, example: "softmax(logits)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      guard a[0].tensor!.rank > 0 else { throw ShapeError("softmax: needs rank 1 or more") }
                      return a[0].tensor!.softmax()
                  },
                  sample: { rng in [randomTensor([3, 4], &rng)] }),
        Primitive(name: "log_softmax", parameters: [PrimitiveParameter("x", .tensor)],
                  summary: "log(softmax(x)) along the last axis, computed stably.", rule: "composed: x - log(sum(exp(x)))", reads: "its parts'",
                  differentiation: .anyOrder, composite: true, example: "log_softmax(logits)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      guard a[0].tensor!.rank > 0 else { throw ShapeError("log_softmax: needs rank 1 or more") }
                      return a[0].tensor!.logSoftmax()
                  },
                  sample: { rng in [randomTensor([3, 4], &rng)] }),
        Primitive(name: "cross_entropy", parameters: [PrimitiveParameter("logits", .tensor), PrimitiveParameter("labels", .labels)],
                  summary: "Cross-entropy of logits [..., classes] against integer labels [...]: one value per row of the label tensor's leading axis when it has two or more axes (per task: logits [T, N, C], labels [T, N] give [T]), else the mean.",
                  rule: "composed: -mean(picked log_softmax)", reads: "its parts'", differentiation: .anyOrder, composite: true,
                  example: "cross_entropy(net(x), y)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let logits = a[0].tensor!, labelTensor = a[1].tensor!
                      let labels = try labelsOf(labelTensor, "cross_entropy")
                      guard logits.rank >= 1, let classes = logits.shape.last, classes > 0 else { throw ShapeError("cross_entropy: logits need a class axis, got \(logits.shape)") }
                      guard Array(logits.shape.dropLast()) == labelTensor.shape else {
                          throw ShapeError("cross_entropy: logits \(logits.shape) need labels of shape \(Array(logits.shape.dropLast())), got \(labelTensor.shape)")
                      }
                      for l in labels where l >= classes { throw ShapeError("cross_entropy: label \(l) out of range for \(classes) classes") }
                      if labelTensor.rank >= 2 {
                          let tasks = labelTensor.shape[0]
                          let flat = logits.reshaped(to: [tasks, labels.count / max(tasks, 1), classes])
                          return LossKind.crossEntropy.perTask(flat, .labels(labels))
                      }
                      return logits.crossEntropy(labels: labels)
                  },
                  sample: { rng in [randomTensor([2, 3, 4], &rng), .tensor(Tensor(shape: [2, 3], values: [0, 3, 1, 2, 2, 0]))] }),
        Primitive(name: "mse", parameters: [PrimitiveParameter("prediction", .tensor), PrimitiveParameter("target", .tensor)],
                  summary: "Mean squared error over every element (prediction and target of one shape).",
                  rule: "composed: mean((p - t)^2)", reads: "its parts'", differentiation: .anyOrder, composite: true,
                  example: "mse(net(x), y)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let (p, t) = (a[0].tensor!, a[1].tensor!)
                      guard p.shape == t.shape else { throw ShapeError("mse: prediction \(p.shape) and target \(t.shape) differ") }
                      return p.meanSquaredError(t)
                  },
                  sample: { rng in [randomTensor([3, 4], &rng), randomTensor([3, 4], &rng)] }),
        Primitive(name: "task_mse", parameters: [PrimitiveParameter("prediction", .tensor), PrimitiveParameter("target", .tensor)],
                  summary: "Mean squared error of each task: prediction and target [T, N, ...] give [T]. One fused primitive.",
                  rule: "g * 2 (p - t) / n per task (itself one primitive)", reads: "inputs", differentiation: .anyOrder, composite: false,
                  example: "task_mse(net(x, fast), y)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let (p, t) = (a[0].tensor!, a[1].tensor!)
                      guard p.rank >= 2 else { throw ShapeError("task_mse: needs a task axis and examples, got \(p.shape)") }
                      guard p.count == t.count, p.shape[0] == t.shape.first else {
                          throw ShapeError("task_mse: prediction \(p.shape) and target \(t.shape) differ")
                      }
                      return Tensor.meanSquaredErrorPerTask(p, t.shape == p.shape ? t : t.reshaped(to: p.shape))
                  },
                  sample: { rng in [randomTensor([2, 3, 1], &rng), randomTensor([2, 3, 1], &rng)] }),
        Primitive(name: "conv2d", parameters: [PrimitiveParameter("x", .tensor), PrimitiveParameter("w", .tensor),
                                               PrimitiveParameter("stride", .int, default: .int(1), "1"), PrimitiveParameter("padding", .int, default: .int(0), "0")],
                  summary: "2D convolution of NHWC images x [N, H, W, C] with square filters w [k, k, C, O]; gives [N, Ho, Wo, O].",
                  rule: "the input and weight adjoints (themselves convolutions)", reads: "inputs x, w", differentiation: .anyOrder, composite: false,
                  example: "conv2d(x, w, 1, 1)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let (x, w) = (a[0].tensor!, a[1].tensor!)
                      guard case let .int(stride) = a[2], case let .int(padding) = a[3], stride > 0, padding >= 0, stride < 1 << 20, padding < 1 << 20 else {
                          throw ShapeError("conv2d: stride must be positive and padding non-negative")
                      }
                      guard x.rank == 4, w.rank == 4, w.shape[0] == w.shape[1], w.shape[2] == x.shape[3] else {
                          throw ShapeError("conv2d: needs x [N, H, W, C] and w [k, k, C, O] with matching C, got \(x.shape) and \(w.shape)")
                      }
                      let g = WindowGeometry(kernel: w.shape[0], stride: stride, padding: padding)
                      guard g.outputExtent(x.shape[1]) != nil, g.outputExtent(x.shape[2]) != nil else {
                          throw ShapeError("conv2d: a \(w.shape[0])x\(w.shape[0]) window does not fit \(x.shape[1])x\(x.shape[2]) images")
                      }
                      return Tensor.convolution(x, w.reshaped(to: [w.shape[0] * w.shape[1] * w.shape[2], w.shape[3]]), bias: nil, geometry: g)
                  },
                  sample: { rng in [randomTensor([2, 5, 5, 2], &rng), randomTensor([3, 3, 2, 3], &rng), .int(1), .int(1)] }),
        Primitive(name: "max_pool", parameters: [PrimitiveParameter("x", .tensor), PrimitiveParameter("size", .int, default: .int(2), "2")],
                  summary: "Max-pooling of NHWC images over size x size windows with stride size.",
                  rule: "g scattered to each window's maximum", reads: "shapes (the argmax positions)", differentiation: .anyOrder, composite: false,
                  example: "max_pool(x, 2)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let x = a[0].tensor!
                      guard case let .int(s) = a[1], s > 0, x.rank == 4, x.shape[1] >= s, x.shape[2] >= s else {
                          throw ShapeError("max_pool: needs [N, H, W, C] images at least size x size and a positive size, got \(x.shape)")
                      }
                      return x.maxPooled(size: s)
                  },
                  sample: { rng in [spreadTensor([2, 4, 4, 2], &rng), .int(2)] }),
        Primitive(name: "avg_pool", parameters: [PrimitiveParameter("x", .tensor), PrimitiveParameter("size", .int, default: .int(2), "2")],
                  summary: "Average-pooling of NHWC images over size x size windows with stride size (H and W must be multiples of size).",
                  rule: "composed: mean over reshaped windows", reads: "its parts'", differentiation: .anyOrder, composite: true,
                  example: "avg_pool(x, 2)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let x = a[0].tensor!
                      guard case let .int(s) = a[1], s > 0, x.rank == 4, x.shape[1] % s == 0, x.shape[2] % s == 0 else {
                          throw ShapeError("avg_pool: needs [N, H, W, C] images with H and W multiples of a positive size, got \(x.shape)")
                      }
                      let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
                      return x.reshaped(to: [n, h / s, s, w / s, s, c]).mean(axes: [2, 4])
                  },
                  sample: { rng in [randomTensor([2, 4, 4, 2], &rng), .int(2)] }),
        Primitive(name: "batch_norm", parameters: [PrimitiveParameter("x", .tensor), PrimitiveParameter("axes", .ints, default: .ints([]), "all but the last")],
                  summary: "Normalised with the batch's statistics over consecutive axes (all but the channel axis by default): (x - mean) / sqrt(var + 1e-5).",
                  rule: "fused kernel; differentiable operations when a graph is built", reads: "input", differentiation: .anyOrder, composite: false,
                  example: "batch_norm(h)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let x = a[0].tensor!
                      guard case let .ints(axes) = a[1], x.rank >= 2 else { throw ShapeError("batch_norm: needs rank 2 or more, got \(x.shape)") }
                      let norm = axes.isEmpty ? Array(0..<(x.rank - 1)) : try checkAxes(axes, rank: x.rank, "batch_norm")
                      guard norm == Array(norm[0]...norm[norm.count - 1]) else { throw ShapeError("batch_norm: axes must be consecutive, got \(axes)") }
                      return x.normalized(overAxes: norm)
                  },
                  sample: { rng in [randomTensor([4, 3], &rng), .ints([0])] }),
        Primitive(name: "layer_norm", parameters: [PrimitiveParameter("x", .tensor)],
                  summary: "Normalised over the last axis: (x - mean) / sqrt(var + 1e-5).",
                  rule: "as batch_norm over the last axis", reads: "input", differentiation: .anyOrder, composite: false,
                  example: "layer_norm(h)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let x = a[0].tensor!
                      guard x.rank >= 1 else { throw ShapeError("layer_norm: needs rank 1 or more") }
                      return x.normalized(overAxes: [x.rank - 1])
                  },
                  sample: { rng in [randomTensor([3, 4], &rng)] }),
        Primitive(name: "lstm_gates", parameters: [PrimitiveParameter("z", .tensor), PrimitiveParameter("c", .tensor)],
                  summary: "An LSTM step's gates, fused: from pre-activations z [..., 4H] (input, forget, cell, output) and the cell state c [..., H], the new hidden and cell states side by side [..., 2H]: c' = sigmoid(f) c + sigmoid(i) tanh(g), h' = sigmoid(o) tanh(c').",
                  rule: "fused kernel; differentiable operations when a graph is built", reads: "inputs", differentiation: .anyOrder, composite: false,
                  example: "lstm_gates(x @ wx + h @ wh + b, c)", scalar: nil,
                  apply: { a throws(ShapeError) in try a[0].tensor!.lstmGates(cell: a[1].tensor!) },
                  sample: { rng in [randomTensor([3, 8], &rng, low: -2, high: 2), randomTensor([3, 2], &rng)] }),
    ]

    static let constants: [Primitive] = [
        Primitive(name: "one_hot", parameters: [PrimitiveParameter("labels", .labels), PrimitiveParameter("classes", .int)],
                  summary: "Integer labels [...] as one-hot rows [..., classes] (a constant).", rule: "none (constant)", reads: "nothing",
                  differentiation: .none, composite: false, example: "one_hot(y, 5)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let t = a[0].tensor!
                      let labels = try labelsOf(t, "one_hot")
                      guard case let .int(c) = a[1], c > 0, c <= 1 << 20 else { throw ShapeError("one_hot: classes must be in 1...\(1 << 20)") }
                      for l in labels where l >= c { throw ShapeError("one_hot: label \(l) out of range for \(c) classes") }
                      guard labels.count <= (1 << 28) / c else { throw ShapeError("one_hot: \(labels.count) x \(c) is too large") }
                      var values = [Float](repeating: 0, count: labels.count * c)
                      for (i, l) in labels.enumerated() { values[i * c + l] = 1 }
                      return Tensor(shape: t.shape + [c], values: values)
                  },
                  sample: { _ in [.tensor(Tensor([1, 0, 2])), .int(3)] }),
        Primitive(name: "argmax", parameters: [PrimitiveParameter("x", .tensor)],
                  summary: "The index of the largest element along the last axis (a constant of whole numbers).",
                  rule: "none (constant)", reads: "nothing", differentiation: .none, composite: false, example: "argmax(logits)", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let x = a[0].tensor!
                      guard x.rank >= 1, let last = x.shape.last, last > 0 else { throw ShapeError("argmax: needs a non-empty last axis, got \(x.shape)") }
                      return Tensor(shape: Array(x.shape.dropLast()), values: x.argmax().map(Float.init))
                  },
                  sample: { rng in [randomTensor([3, 4], &rng)] }),
        Primitive(name: "normal", parameters: [PrimitiveParameter("key", .labels), PrimitiveParameter("shape", .ints)],
                  summary: "Standard normal numbers of a shape, a pure function of the key (whole numbers, such as a learner's batch.iteration): the same key gives the same numbers, so a function drawing them still compiles, and a new key per meta-step gives new noise (a constant).",
                  rule: "none (constant)", reads: "nothing", differentiation: .none, composite: false,
                  example: "normal(batch.iteration, [tasks, 5, 32])", scalar: nil,
                  apply: { a throws(ShapeError) in
                      let keys = try labelsOf(a[0].tensor!, "normal")
                      guard case let .ints(shape) = a[1], shape.allSatisfy({ $0 >= 0 }) else { throw ShapeError("normal: the shape must be a list of sizes >= 0") }
                      let (n, overflow) = shape.reduce((1, false)) { acc, d in
                          let (m, o) = acc.0.multipliedReportingOverflow(by: d)
                          return (m, acc.1 || o)
                      }
                      guard !overflow, n <= 1 << 28 else { throw ShapeError("normal: shape \(shape) is too large") }
                      return Tensor(shape: shape, values: CounterNormal.values(count: n, key: keys))
                  },
                  sample: { _ in [.tensor(Tensor([3])), .ints([2, 3])] }),
    ]
}

/// Normal numbers as a pure function of a key and an index (SplitMix64 hashing, then
/// Box-Muller): nothing is carried from one draw to the next.
enum CounterNormal {
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    static func values(count: Int, key: [Int]) -> [Float] {
        var seed: UInt64 = 0x6D65_7461_71
        for k in key { seed = mix(seed ^ UInt64(truncatingIfNeeded: k)) }
        var out = [Float](repeating: 0, count: count)
        var i = 0
        while i < count {
            let bits = mix(seed &+ UInt64(i / 2))
            let u1 = (Double(bits >> 40) + 0.5) / Double(1 << 24)
            let u2 = Double(bits & 0xFF_FFFF) / Double(1 << 24)
            let r = (-2 * Foundation.log(u1)).squareRoot()
            out[i] = Float(r * Foundation.cos(2 * Double.pi * u2))
            if i + 1 < count { out[i + 1] = Float(r * Foundation.sin(2 * Double.pi * u2)) }
            i += 2
        }
        return out
    }
}
