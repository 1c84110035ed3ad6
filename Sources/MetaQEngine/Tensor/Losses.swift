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
    /// the reference implementations.
    public func normalized(overAxes axes: [Int], epsilon: Float = 1e-5) -> Tensor {
        let centered = self - mean(axes: axes, keepingDimensions: true)
        let variance = centered.squared().mean(axes: axes, keepingDimensions: true)
        return centered / variance.adding(epsilon).sqrt()
    }

    /// The fraction of rows whose largest logit is at the label.
    public func accuracy(labels: [Int]) -> Float {
        let predicted = argmax()
        guard !labels.isEmpty else { return 0 }
        return Float(zip(predicted, labels).filter { $0 == $1 }.count) / Float(labels.count)
    }
}
