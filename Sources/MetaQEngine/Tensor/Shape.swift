/// A shape problem found before an operation runs: the message names the operation and
/// the shapes, so a script author can see what went wrong.
public struct ShapeError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Shape rules shared by the operations and by callers that must validate before calling
/// (the language checks with these so a bad shape in a script is an error, not a trap).
public enum ShapeRules {
    /// The NumPy broadcast of two shapes.
    public static func broadcast(_ a: [Int], _ b: [Int]) throws(ShapeError) -> [Int] {
        if a == b { return a }
        let rank = max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else {
                throw ShapeError("shapes \(a) and \(b) do not broadcast (axis \(i): \(da) vs \(db))")
            }
        }
        return out
    }

    /// The result shape of `matmul(a, b)`: `[..., m, k] x [..., k, n] -> [..., m, n]`,
    /// with a rank-2 operand shared across the other's leading (batch) axes.
    public static func matmul(_ a: [Int], _ b: [Int]) throws(ShapeError) -> [Int] {
        guard a.count >= 2, b.count >= 2 else {
            throw ShapeError("matmul needs operands of rank 2 or more, got \(a) and \(b)")
        }
        guard a[a.count - 1] == b[b.count - 2] else {
            throw ShapeError("matmul: inner dimensions differ: \(a) x \(b)")
        }
        let batchA = Array(a.dropLast(2)), batchB = Array(b.dropLast(2))
        guard batchA.isEmpty || batchB.isEmpty || batchA == batchB else {
            throw ShapeError("matmul: batch dimensions differ: \(a) x \(b)")
        }
        return (batchA.isEmpty ? batchB : batchA) + [a[a.count - 2], b[b.count - 1]]
    }

    /// The shape after reshaping `shape` to `target`, where one entry of `target` may be -1.
    public static func reshape(_ shape: [Int], to target: [Int]) throws(ShapeError) -> [Int] {
        let count = Tensor.elementCount(shape)
        var result = target
        let unknown = target.indices.filter { target[$0] == -1 }
        guard unknown.count <= 1, target.allSatisfy({ $0 >= -1 }) else {
            throw ShapeError("reshape: invalid target shape \(target)")
        }
        var known = 1
        for d in target where d != -1 {
            let (product, overflow) = known.multipliedReportingOverflow(by: d)
            guard !overflow, product <= count || count == 0 else {
                throw ShapeError("cannot reshape \(shape) (\(count) values) to \(target)")
            }
            known = product
        }
        if let i = unknown.first {
            guard known > 0, count % known == 0 else {
                throw ShapeError("cannot reshape \(shape) (\(count) values) to \(target)")
            }
            result[i] = count / known
        }
        guard Tensor.elementCount(result) == count else {
            throw ShapeError("cannot reshape \(shape) (\(count) values) to \(target)")
        }
        return result
    }

    /// Normalises a possibly negative axis for a tensor of rank `rank`.
    public static func axis(_ axis: Int, rank: Int) throws(ShapeError) -> Int {
        let a = axis < 0 ? axis + rank : axis
        guard a >= 0, a < max(rank, 1) else {
            throw ShapeError("axis \(axis) is out of range for a tensor of rank \(rank)")
        }
        return a
    }

    /// Row-major element strides of a shape.
    static func strides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var s = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = s
            s *= shape[i]
        }
        return strides
    }

    /// Strides for reading a tensor of shape `shape` as if it had the broadcast shape `out`
    /// (zero along broadcast axes).
    static func broadcastStrides(_ shape: [Int], to out: [Int]) -> [Int] {
        let own = strides(shape)
        let offset = out.count - shape.count
        var result = [Int](repeating: 0, count: out.count)
        for i in 0..<shape.count where shape[i] != 1 || out[i + offset] == 1 {
            result[i + offset] = shape[i] == 1 ? 0 : own[i]
        }
        return result
    }
}

/// Calls `body(offsetIn..., offsetOut, n, strideIn...)` once per innermost row of a strided
/// walk over `shape`: the shared loop behind broadcasting, reductions and permutations.
@inline(__always)
func forEachRow(
    shape: [Int], strides: [[Int]],
    _ body: (_ offsets: UnsafeBufferPointer<Int>, _ n: Int) -> Void
) {
    let rank = shape.count
    let operands = strides.count
    if rank == 0 {
        let zero = [Int](repeating: 0, count: operands)
        zero.withUnsafeBufferPointer { body($0, 1) }
        return
    }
    let inner = shape[rank - 1]
    if inner == 0 || shape.contains(0) { return }
    var index = [Int](repeating: 0, count: rank)
    var offsets = [Int](repeating: 0, count: operands)
    outer: while true {
        offsets.withUnsafeBufferPointer { body($0, inner) }
        var axis = rank - 2
        while axis >= 0 {
            index[axis] += 1
            for k in 0..<operands { offsets[k] += strides[k][axis] }
            if index[axis] < shape[axis] { continue outer }
            for k in 0..<operands { offsets[k] -= strides[k][axis] * shape[axis] }
            index[axis] = 0
            axis -= 1
        }
        break
    }
}
