import CKernels
// Softmax, losses and normalisation, composed from differentiable primitives so that their
// derivatives of every order come for free.

extension Tensor {
    /// log(softmax(x)) along the last axis, computed stably (the row maximum is subtracted
    /// as a constant, which changes neither the value nor any derivative).
    public func logSoftmax() -> Tensor {
        let shift = max(axis: -1, keepingDimensions: true).detached()
        let z = self - shift
        return z - z.exp().sum(axis: -1, keepingDimensions: true).log()
    }

    /// softmax along the last axis.
    public func softmax() -> Tensor { logSoftmax().exp() }

    /// Mean cross-entropy of logits `[..., classes]` against integer labels, one per row.
    ///
    /// ```swift
    /// let loss = logits.crossEntropy(labels: [0, 2, 1])
    /// ```
    public func crossEntropy(labels: [Int]) -> Tensor {
        let classes = shape.last ?? 1
        precondition(labels.count * classes == count, "crossEntropy: \(labels.count) labels for logits of shape \(shape)")
        var picks = [Int32](repeating: 0, count: labels.count)
        for (row, label) in labels.enumerated() {
            precondition(label >= 0 && label < classes, "label \(label) out of range 0..<\(classes)")
            picks[row] = Int32(row * classes + label)
        }
        let picked = logSoftmax().gathering(flatIndices: IndexList(picks), shape: [labels.count])
        return -picked.mean()
    }

    /// Mean squared error against a target of the same shape.
    public func meanSquaredError(_ target: Tensor) -> Tensor {
        (self - target).squared().mean()
    }

    /// Normalises with statistics over `axes` (the batch statistics of batch normalisation):
    /// `(x - mean) / sqrt(var + epsilon)` with the biased variance, as in training mode of
    /// the reference implementations. `axes` must be consecutive.
    ///
    /// One fused kernel computes it. Its derivative rule runs a fused kernel too when no
    /// graph is being built; when one is (second order), the rule is written with
    /// differentiable operations so that it can be differentiated again.
    public func normalized(overAxes axes: [Int], epsilon: Float = 1e-5) -> Tensor {
        let sorted = axes.map { $0 < 0 ? $0 + rank : $0 }.sorted()
        precondition(!sorted.isEmpty && sorted == Array(sorted[0]...sorted[sorted.count - 1]) && sorted.last! < rank,
                     "normalized(overAxes:) needs consecutive axes of \(shape), got \(axes)")
        let lead = shape[..<sorted[0]].reduce(1, *)
        let reduced = shape[sorted[0]...sorted.last!].reduce(1, *)
        let trail = shape[(sorted.last! + 1)...].reduce(1, *)
        let out = TensorBuffer(count: count)
        let (meanBuffer, invStd) = Tensor.batchStatistics(buffer.pointer, lead: lead, reduced: reduced, trail: trail,
                                                          epsilon: epsilon)
        let src = buffer.pointer, dst = out.pointer, inv = invStd.pointer, means = meanBuffer.pointer
        RowBlocks(lead: lead, rows: reduced, width: trail).forEach { l, rows in
            let at = (l * reduced + rows.lowerBound) * trail
            metaq_normalize_rows(rows.count, trail, src + at, means + l * trail, inv + l * trail, dst + at)
        }
        let n = Float(Swift.max(reduced, 1))
        return Tensor.result("normalize", shape: shape, buffer: out, inputs: [self]) { c in
            let g = c.grad, xhat = c.output
            if c.recordsNothing(from: g, xhat) {
                // dx = invStd * (g - mean(g) - xhat * mean(g * xhat)) over the reduced axes.
                let gx = TensorBuffer(count: g.count)
                // Holding `invStd` (not just its pointer) keeps the saved statistics alive.
                let gp = g.buffer.pointer, hp = xhat.buffer.pointer, op = gx.pointer, inv = invStd.pointer
                var sums = [Float](repeating: 0, count: 2 * lead * trail)
                sums.withUnsafeMutableBufferPointer { sumBuffer in
                    let sg = sumBuffer.baseAddress!, sgh = sg + lead * trail
                    RowBlocks(lead: lead, rows: reduced, width: trail).sum(into: sg, second: sgh) { l, rows, a, b in
                        let at = (l * reduced + rows.lowerBound) * trail
                        metaq_column_sums2(rows.count, trail, gp + at, hp + at, a, b)
                    }
                    for i in 0..<(2 * lead * trail) { sg[i] /= n }
                    RowBlocks(lead: lead, rows: reduced, width: trail).forEach { l, rows in
                        let at = (l * reduced + rows.lowerBound) * trail
                        metaq_normalize_backward_rows(rows.count, trail, gp + at, hp + at, inv + l * trail,
                                                      sg + l * trail, sgh + l * trail, op + at)
                    }
                }
                return [Tensor(shape: g.shape, buffer: gx)]
            }
            let x = c.inputs[0]
            let centered = x - x.mean(axes: sorted, keepingDimensions: true)
            let inverse = 1 / centered.squared().mean(axes: sorted, keepingDimensions: true).adding(epsilon).sqrt()
            let gMean = g.mean(axes: sorted, keepingDimensions: true)
            let ghMean = (g * xhat).mean(axes: sorted, keepingDimensions: true)
            return [inverse * (g - gMean - xhat * ghMean)]
        }
    }

    /// The fraction of rows whose largest logit is at the label.
    public func accuracy(labels: [Int]) -> Float {
        let predicted = argmax()
        guard !labels.isEmpty else { return 0 }
        return Float(zip(predicted, labels).filter { $0 == $1 }.count) / Float(labels.count)
    }
}

extension Tensor {
    /// Per-channel batch statistics of `lead` blocks of `reduced` rows of `trail` channels:
    /// the mean and `1 / sqrt(variance + epsilon)` (biased variance), `[lead, trail]` each.
    static func batchStatistics(
        _ src: UnsafePointer<Float>, lead: Int, reduced: Int, trail: Int, epsilon: Float
    ) -> (mean: TensorBuffer, invStd: TensorBuffer) {
        let mean = TensorBuffer(count: lead * trail), invStd = TensorBuffer(count: lead * trail)
        let means = mean.pointer, inv = invStd.pointer
        let n = Float(Swift.max(reduced, 1))
        RowBlocks(lead: lead, rows: reduced, width: trail).sum(into: means) { l, rows, acc in
            metaq_column_sums(rows.count, trail, src + (l * reduced + rows.lowerBound) * trail, acc)
        }
        for i in 0..<(lead * trail) { means[i] /= n }
        RowBlocks(lead: lead, rows: reduced, width: trail).sum(into: inv) { l, rows, acc in
            metaq_column_squared_deviations(rows.count, trail, src + (l * reduced + rows.lowerBound) * trail,
                                            means + l * trail, acc)
        }
        for i in 0..<(lead * trail) { inv[i] = 1 / (inv[i] / n + epsilon).squareRoot() }
        return (mean, invStd)
    }

    /// `max(self * scale + shift, 0)` with `scale` and `shift` one value per channel (the last
    /// axis): a batch-norm layer's affine step and the ReLU after it, in one pass each way.
    ///
    /// ```swift
    /// let y = x.normalized(overAxes: [0, 1, 2]).scaledShiftedReLU(scale: gamma, shift: beta)
    /// ```
    public func scaledShiftedReLU(scale: Tensor, shift: Tensor) -> Tensor {
        let width = shape.last ?? 1
        precondition(scale.count == width && shift.count == width,
                     "scaledShiftedReLU: scale \(scale.shape) and shift \(shift.shape) need one value per channel of \(shape)")
        let rows = count / Swift.max(width, 1)
        let out = TensorBuffer(count: count)
        let xp = buffer.pointer, sp = scale.buffer.pointer, bp = shift.buffer.pointer, yp = out.pointer
        RowBlocks(lead: 1, rows: rows, width: width).forEach { _, r in
            metaq_affine_relu(r.count, width, xp + r.lowerBound * width, sp, bp, yp + r.lowerBound * width)
        }
        return Tensor.result("scale_shift_relu", shape: shape, buffer: out, inputs: [self, scale, shift]) { c in
            let (g, x, s, y) = (c.grad, c.inputs[0], c.inputs[1], c.output)
            if c.recordsNothing(from: g, x, s) {
                // No graph to build: one fused pass.
                let dx = TensorBuffer(count: g.count)
                let ds = TensorBuffer(count: width), db = TensorBuffer(count: width)
                let gp = g.buffer.pointer, xp = x.buffer.pointer, yp = y.buffer.pointer, sp = s.buffer.pointer
                let dxp = dx.pointer
                RowBlocks(lead: 1, rows: rows, width: width).sum(into: ds.pointer, second: db.pointer) { _, r, a, b in
                    let at = r.lowerBound * width
                    metaq_affine_relu_backward(r.count, width, gp + at, xp + at, yp + at, sp, dxp + at, a, b)
                }
                return [Tensor(shape: x.shape, buffer: dx), Tensor(shape: s.shape, buffer: ds),
                        Tensor(shape: c.inputs[2].shape, buffer: db)]
            }
            // The ReLU's mask is a constant (its derivative is zero almost everywhere).
            let passed = g * y.mask { $0 > 0 }
            let channels = [width]
            return [c.needs(0) ? passed * s.reshaped(to: channels) : nil,
                    c.needs(1) ? (passed * x).sum(to: channels).reshaped(to: s.shape) : nil,
                    c.needs(2) ? passed.sum(to: channels).reshaped(to: c.inputs[2].shape) : nil]
        }
    }
}

/// Work over `lead` independent blocks of `rows` rows of `width` channels, split into pieces
/// for the worker threads: whole blocks when there are enough of them, otherwise each block
/// cut into row ranges. Per-piece partial sums are added in a fixed order, so results do not
/// depend on timing.
struct RowBlocks {
    let lead: Int, rows: Int, width: Int

    private var piecesPerBlock: Int {
        let threads = Parallel.threads
        guard lead < threads, rows * width >= 1 << 15 else { return 1 }
        return Swift.min(threads, rows)
    }

    private func range(_ piece: Int, of pieces: Int) -> Range<Int> {
        rows * piece / pieces..<rows * (piece + 1) / pieces
    }

    func forEach(_ body: (Int, Range<Int>) -> Void) {
        let pieces = piecesPerBlock
        Parallel.forEachChunk(lead * pieces, cost: rows * width / pieces) { items in
            for item in items { body(item / pieces, range(item % pieces, of: pieces)) }
        }
    }

    /// Fills `out[l * width ..< (l + 1) * width]` with the sum over block l's pieces of what
    /// `body` accumulates into its zeroed scratch row.
    func sum(into out: UnsafeMutablePointer<Float>, _ body: (Int, Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
        sum(into: out, second: nil) { l, r, a, _ in body(l, r, a) }
    }

    func sum(into out: UnsafeMutablePointer<Float>, second: UnsafeMutablePointer<Float>?,
             _ body: (Int, Range<Int>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        let pieces = piecesPerBlock
        let stride = 2 * width
        var scratch = [Float](repeating: 0, count: lead * pieces * stride)
        scratch.withUnsafeMutableBufferPointer { s in
            let base = s.baseAddress!
            Parallel.forEachChunk(lead * pieces, cost: rows * width / pieces) { items in
                for item in items {
                    let at = base + item * stride
                    body(item / pieces, range(item % pieces, of: pieces), at, at + width)
                }
            }
            for l in 0..<lead {
                for j in 0..<width {
                    var a: Float = 0, b: Float = 0
                    for p in 0..<pieces { a += base[(l * pieces + p) * stride + j]; b += base[(l * pieces + p) * stride + width + j] }
                    out[l * width + j] = a
                    second?[l * width + j] = b
                }
            }
        }
    }
}
