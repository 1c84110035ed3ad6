import CKernels
import COpenBLAS

/// Single-precision GEMM on row-major matrices: `C = op(A) op(B)` with `op` an optional
/// transpose, for `batch` matrix pairs laid out one after another. Every path reads
/// `Parallel.threads` before calling BLAS, and its first read sets OpenBLAS to one thread.
func sgemmBatched(
    batch: Int, m: Int, n: Int, k: Int,
    a: UnsafePointer<Float>, transposeA: Bool, strideA: Int,
    b: UnsafePointer<Float>, transposeB: Bool, strideB: Int,
    c: UnsafeMutablePointer<Float>
) {
    let lda = transposeA ? m : k
    let ldb = transposeB ? k : n
    let ta = transposeA ? CblasTrans : CblasNoTrans, tb = transposeB ? CblasTrans : CblasNoTrans
    func gemm(_ i: Int, rows: Range<Int>) {
        // Rows of op(A) start at row r (no transpose) or column r (transpose) of A.
        let aStart = a + i * strideA + (transposeA ? rows.lowerBound : rows.lowerBound * lda)
        cblas_sgemm(CblasRowMajor, ta, tb, Int32(rows.count), Int32(n), Int32(k), 1, aStart, Int32(lda),
                    b + i * strideB, Int32(ldb), 0, c + i * m * n + rows.lowerBound * n, Int32(n))
    }
    let flops = batch * m * n * k
    if m * n * k <= 48 * 48 * 48 {
        // Tiny products (the meta-learning regime): a direct kernel beats BLAS's packing and
        // call overhead.
        Parallel.forEachChunk(batch, cost: m * n * k, minimumWork: 1 << 21) { range in
            metaq_small_gemm(range.lowerBound, range.upperBound, m, n, k, a, transposeA ? 1 : 0, strideA,
                             b, transposeB ? 1 : 0, strideB, c)
        }
    } else if k <= 16 && !transposeA {
        // A short inner dimension (a first conv layer over one channel: 62720x9 by 9x64):
        // BLAS would spend its time packing; the direct kernel streams A and C once.
        for i in 0..<batch {
            Parallel.forEachChunk(m, cost: n * k, minimumWork: 1 << 18) { rows in
                metaq_small_gemm(0, 1, rows.count, n, k, a + i * strideA + rows.lowerBound * k, 0, 0,
                                 b + i * strideB, transposeB ? 1 : 0, 0, c + i * m * n + rows.lowerBound * n)
            }
        }
    } else if batch >= Parallel.threads {
        Parallel.forEachChunk(batch, cost: m * n * k, minimumWork: 1 << 21) { range in
            for i in range { gemm(i, rows: 0..<m) }
        }
    } else if flops >= 1 << 18 {
        for i in 0..<batch {
            Parallel.forEachChunk(m, cost: n * k, minimumWork: 1 << 18) { rows in gemm(i, rows: rows) }
        }
    } else {
        for i in 0..<batch { gemm(i, rows: 0..<m) }
    }
}


extension Tensor {
    /// The matrix product over the last two axes, batched over leading axes:
    /// `[..., m, k] x [..., k, n] -> [..., m, n]`. A rank-2 operand is shared across the
    /// other's batch (for `x [T, N, in] x W [in, out]` that is one large GEMM).
    ///
    /// ```swift
    /// let y = x.matmul(w) + b    // a linear layer
    /// ```
    public func matmul(_ other: Tensor) -> Tensor {
        let outShape: [Int]
        do { outShape = try ShapeRules.matmul(shape, other.shape) } catch { preconditionFailure("\(error)") }
        if rank == 2 && other.rank == 2 {
            return Tensor.product(self, other, transposeA: false, transposeB: false)
        }
        if other.rank == 2 {
            // Fold the batch into the rows: one GEMM instead of one per batch element.
            let rows = reshaped(to: [count / shape[rank - 1], shape[rank - 1]])
            return Tensor.product(rows, other, transposeA: false, transposeB: false).reshaped(to: outShape)
        }
        let batchShape = Array(outShape.dropLast(2))
        let a = rank == 2 ? broadcast(to: batchShape + shape) : self
        return Tensor.product(a, other, transposeA: false, transposeB: false)
    }

    /// `op(a) x op(b)` for operands with identical batch axes; the differentiable primitive
    /// behind ``matmul(_:)``. Its derivative rules are products of the same kind.
    public static func product(_ a: Tensor, _ b: Tensor, transposeA: Bool, transposeB: Bool) -> Tensor {
        let ra = a.rank, rb = b.rank
        precondition(ra >= 2 && ra == rb && a.shape.dropLast(2) == b.shape.dropLast(2),
                     "product: batch axes differ: \(a.shape) x \(b.shape)")
        let m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2]
        let k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1]
        let kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2]
        let n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1]
        precondition(k == kb, "product: inner dimensions differ: \(a.shape) x \(b.shape)")
        var outShape = a.shape   // the batch axes, then [m, n]
        outShape[ra - 2] = m
        outShape[ra - 1] = n
        var batch = 1
        for axis in 0..<ra - 2 { batch *= outShape[axis] }
        let out = TensorBuffer(count: batch * m * n)
        if k == 0 {
            out.pointer.update(repeating: 0, count: out.count)
        } else if out.count > 0 {
            sgemmBatched(
                batch: batch, m: m, n: n, k: k,
                a: a.buffer.pointer, transposeA: transposeA, strideA: m * k,
                b: b.buffer.pointer, transposeB: transposeB, strideB: k * n, c: out.pointer)
        }
        return result("matmul", shape: outShape, buffer: out, inputs: [a, b], saves: .inputs(0, 1)) { c in
            let (x, y, g) = (c.inputs[0], c.inputs[1], c.grad)
            // C = A'B' with A' = op(A), B' = op(B): dA' = dC B'^T and dB' = A'^T dC.
            var gradA: Tensor?
            var gradB: Tensor?
            if c.needs(0) {
                gradA = transposeA
                    ? product(y, g, transposeA: transposeB, transposeB: true)
                    : product(g, y, transposeA: false, transposeB: !transposeB)
            }
            if c.needs(1) {
                gradB = transposeB
                    ? product(g, x, transposeA: true, transposeB: transposeA)
                    : product(x, g, transposeA: !transposeA, transposeB: false)
            }
            return [gradA, gradB]
        }
    }

    /// `x W + b`, the affine map of a linear layer, as one operation: `x [..., in]` with a
    /// shared `W [in, out]` and `b [out]`, or per-task `x [T, N, in]`, `W [T, in, out]`,
    /// `b [T, out]`. Its derivative rules are products and sums, so it differentiates to any
    /// order.
    public static func affine(_ x: Tensor, _ w: Tensor, _ b: Tensor) -> Tensor {
        if w.rank == 2 && x.rank != 2 {
            let rows = x.reshaped(to: [x.count / w.shape[0], w.shape[0]])
            return affine(rows, w, b).reshaped(to: Array(x.shape.dropLast()) + [w.shape[1]])
        }
        let batched = w.rank == 3
        precondition(batched ? (x.rank == 3 && x.shape[0] == w.shape[0] && b.shape == [w.shape[0], w.shape[2]])
                             : (x.rank == 2 && b.shape == [w.shape[1]]),
                     "affine: shapes \(x.shape), \(w.shape), \(b.shape) do not fit")
        let tasks = batched ? w.shape[0] : 1
        let m = x.shape[x.rank - 2], k = x.shape[x.rank - 1], n = w.shape[w.rank - 1]
        precondition(w.shape[w.rank - 2] == k, "affine: inner dimensions differ: \(x.shape) x \(w.shape)")
        let out = TensorBuffer(count: tasks * m * n)
        if k > 0 && out.count > 0 {
            sgemmBatched(batch: tasks, m: m, n: n, k: k, a: x.buffer.pointer, transposeA: false, strideA: m * k,
                         b: w.buffer.pointer, transposeB: false, strideB: k * n, c: out.pointer)
        } else {
            out.pointer.update(repeating: 0, count: out.count)
        }
        let o = out.pointer, bias = b.buffer.pointer
        for t in 0..<tasks { metaq_add_row(m, n, o + t * m * n, bias + t * n) }
        let shape = batched ? [tasks, m, n] : [m, n]
        return result("affine", shape: shape, buffer: out, inputs: [x, w, b], saves: .inputs(0, 1)) { c in
            let (x, w, g) = (c.inputs[0], c.inputs[1], c.grad)
            return [
                c.needs(0) ? product(g, w, transposeA: false, transposeB: true) : nil,
                c.needs(1) ? product(x, g, transposeA: true, transposeB: false) : nil,
                c.needs(2) ? (batched ? g.sum(to: [tasks, 1, n]).reshaped(to: [tasks, n]) : g.sum(to: [n])) : nil,
            ]
        }
    }
}
