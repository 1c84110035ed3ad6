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
        let invStd = TensorBuffer(count: lead * trail)
        let src = buffer.pointer, dst = out.pointer, inv = invStd.pointer
        let n = Float(Swift.max(reduced, 1))
        Parallel.forEachChunk(lead, cost: reduced * trail) { leads in
            var mean = [Float](repeating: 0, count: trail), variance = [Float](repeating: 0, count: trail)
            for l in leads {
                let base = l * reduced * trail
                for j in 0..<trail { mean[j] = 0; variance[j] = 0 }
                for r in 0..<reduced { let row = src + base + r * trail; for j in 0..<trail { mean[j] += row[j] } }
                for j in 0..<trail { mean[j] /= n }
                for r in 0..<reduced {
                    let row = src + base + r * trail
                    for j in 0..<trail { let d = row[j] - mean[j]; variance[j] += d * d }
                }
                for j in 0..<trail { inv[l * trail + j] = 1 / (variance[j] / n + epsilon).squareRoot() }
                for r in 0..<reduced {
                    let row = src + base + r * trail, w = dst + base + r * trail
                    for j in 0..<trail { w[j] = (row[j] - mean[j]) * inv[l * trail + j] }
                }
            }
        }
        return Tensor.result("normalize", shape: shape, buffer: out, inputs: [self]) { c in
            let g = c.grad, xhat = c.output
            if !g.requiresGradient && !xhat.requiresGradient {
                // dx = invStd * (g - mean(g) - xhat * mean(g * xhat)) over the reduced axes.
                let gx = TensorBuffer(count: g.count)
                // Holding `invStd` (not just its pointer) keeps the saved statistics alive.
                let gp = g.buffer.pointer, hp = xhat.buffer.pointer, op = gx.pointer, inv = invStd.pointer
                Parallel.forEachChunk(lead, cost: reduced * trail) { leads in
                    var sg = [Float](repeating: 0, count: trail), sgh = [Float](repeating: 0, count: trail)
                    for l in leads {
                        let base = l * reduced * trail
                        for j in 0..<trail { sg[j] = 0; sgh[j] = 0 }
                        for r in 0..<reduced {
                            let gr = gp + base + r * trail, hr = hp + base + r * trail
                            for j in 0..<trail { sg[j] += gr[j]; sgh[j] += gr[j] * hr[j] }
                        }
                        for r in 0..<reduced {
                            let gr = gp + base + r * trail, hr = hp + base + r * trail, w = op + base + r * trail
                            for j in 0..<trail { w[j] = inv[l * trail + j] * (gr[j] - sg[j] / n - hr[j] * sgh[j] / n) }
                        }
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
