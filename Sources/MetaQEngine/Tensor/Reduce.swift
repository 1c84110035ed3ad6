import CKernels

// Reductions and their adjoint, broadcasting. `sum(to:)` and `broadcast(to:)` are each
// other's derivative, which is what makes broadcasting arithmetic differentiable to any order.

extension Tensor {
    /// Sums over the axes along which `shape` broadcasts to this tensor's shape, giving a
    /// tensor of `shape`. The gradient rule of every broadcasting operation.
    public func sum(to target: [Int]) -> Tensor {
        if target == shape { return self }
        let out = TensorBuffer(repeating: 0, count: Tensor.elementCount(target))
        let src = buffer.pointer, dst = out.pointer
        if Tensor.elementCount(target) == 1 {
            var s: Float = 0
            for i in 0..<count { s += src[i] }
            dst[0] = s
        } else if isTrailingBlock(target, of: shape) {
            // Summing leading axes away: accumulate contiguous rows, each worker into its own
            // partial sum (fixed split, so the result is the same on every run).
            let n = out.count, rows = count / n
            let workers = rows * n >= 1 << 16 ? min(Parallel.threads, rows) : 1
            let partials = TensorBuffer(repeating: 0, count: n * workers)
            let part = partials.pointer
            Parallel.forEachChunk(workers, cost: 1 << 16, minimumWork: 2) { range in
                for w in range {
                    let acc = part + w * n
                    let lo = rows * w / workers, hi = rows * (w + 1) / workers
                    metaq_column_sums(hi - lo, n, src + lo * n, acc)
                }
            }
            for w in 0..<workers { for j in 0..<n { dst[j] += part[w * n + j] } }
        } else if let (lead, reduced, trail) = middleRun(target, of: shape) {
            // [lead, reduced, trail] -> [lead, 1, trail] (a per-task bias): column sums of
            // each lead block.
            Parallel.forEachChunk(lead, cost: reduced * trail) { blocks in
                for l in blocks {
                    metaq_column_sums(reduced, trail, src + l * reduced * trail, dst + l * trail)
                }
            }
        } else {
            let so = ShapeRules.broadcastStrides(target, to: shape)
            let si = ShapeRules.strides(shape)
            let step = so.last ?? 0
            forEachRow(shape: shape, strides: [si, so]) { off, n in
                let r = src + off[0], w = dst + off[1]
                if step == 0 {
                    var s: Float = 0
                    for j in 0..<n { s += r[j] }
                    w[0] += s
                } else {
                    for j in 0..<n { w[j * step] += r[j] }
                }
            }
        }
        return Tensor.result("sum_to", shape: target, buffer: out, inputs: [self], saves: .shapes) { c in
            [c.grad.broadcast(to: c.inputs[0].shape)]
        }
    }

    /// Repeats this tensor along new leading axes and axes of extent 1 to reach `target`.
    public func broadcast(to target: [Int]) -> Tensor {
        if target == shape { return self }
        do {
            let b = try ShapeRules.broadcast(shape, target)
            precondition(b == target, "cannot broadcast \(shape) to \(target)")
        } catch { preconditionFailure("broadcast: \(error)") }
        let out = TensorBuffer(count: Tensor.elementCount(target))
        let src = buffer.pointer, dst = out.pointer
        if count == 1 {
            dst.update(repeating: src[0], count: out.count)
        } else if isTrailingBlock(shape, of: target) {
            let rows = out.count / count
            Parallel.forEachChunk(rows, cost: count) { range in
                for r in range { (dst + r * count).update(from: src, count: count) }
            }
        } else if let (lead, repeats, trail) = middleRun(shape, of: target) {
            // [lead, 1, trail] -> [lead, repeats, trail]: copy each trail block.
            Parallel.forEachChunk(lead, cost: repeats * trail) { blocks in
                for l in blocks {
                    for r in 0..<repeats { (dst + (l * repeats + r) * trail).update(from: src + l * trail, count: trail) }
                }
            }
        } else {
            let si = ShapeRules.broadcastStrides(shape, to: target)
            let so = ShapeRules.strides(target)
            let step = si.last ?? 0
            forEachRow(shape: target, strides: [si, so]) { off, n in
                let r = src + off[0], w = dst + off[1]
                for j in 0..<n { w[j] = r[j * step] }
            }
        }
        return Tensor.result("broadcast", shape: target, buffer: out, inputs: [self], saves: .shapes) { c in
            [c.grad.sum(to: c.inputs[0].shape)]
        }
    }

    /// The sum of all elements, as a scalar tensor.
    public func sum() -> Tensor { sum(to: []) }

    /// Sums over `axes` (negative axes count from the end).
    public func sum(axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let normalized = Set(axes.map { $0 < 0 ? $0 + rank : $0 })
        precondition(normalized.allSatisfy { $0 >= 0 && $0 < rank }, "sum: axes \(axes) out of range for shape \(shape)")
        let kept = shape.enumerated().map { normalized.contains($0.offset) ? 1 : $0.element }
        let summed = sum(to: kept)
        if keepingDimensions { return summed }
        return summed.reshaped(to: shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element))
    }

    public func sum(axis: Int, keepingDimensions: Bool = false) -> Tensor {
        sum(axes: [axis], keepingDimensions: keepingDimensions)
    }

    /// The mean of all elements, as a scalar tensor.
    public func mean() -> Tensor { sum().scaled(by: 1 / Float(Swift.max(count, 1))) }

    public func mean(axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let n = axes.map { shape[$0 < 0 ? $0 + rank : $0] }.reduce(1, *)
        return sum(axes: axes, keepingDimensions: keepingDimensions).scaled(by: 1 / Float(Swift.max(n, 1)))
    }

    public func mean(axis: Int, keepingDimensions: Bool = false) -> Tensor {
        mean(axes: [axis], keepingDimensions: keepingDimensions)
    }

    /// The flat indices of the maxima along `axis` (first one on ties), shaped like the
    /// result with that axis kept at extent 1.
    func argmaxIndices(axis: Int) -> [Int32] {
        let outer = shape[..<axis].reduce(1, *)
        let n = shape[axis]
        let inner = shape[(axis + 1)...].reduce(1, *)
        var indices = [Int32](repeating: 0, count: outer * inner)
        let src = buffer.pointer
        for o in 0..<outer {
            for i in 0..<inner {
                var best = o * n * inner + i
                var bestValue = src[best]
                for k in 1..<Swift.max(n, 1) {
                    let at = (o * n + k) * inner + i
                    if src[at] > bestValue { bestValue = src[at]; best = at }
                }
                indices[o * inner + i] = Int32(best)
            }
        }
        return indices
    }

    /// The maximum along `axis`; the gradient flows to the (first) maximal element.
    public func max(axis: Int, keepingDimensions: Bool = false) -> Tensor {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < rank && shape[a] > 0, "max: axis \(axis) invalid for shape \(shape)")
        var kept = shape
        kept[a] = 1
        let picked = gathering(flatIndices: IndexList(argmaxIndices(axis: a)), shape: kept)
        if keepingDimensions { return picked }
        var dropped = shape
        dropped.remove(at: a)
        return picked.reshaped(to: dropped)
    }

    /// The index of the maximum along the last axis, per row (no gradient).
    public func argmax() -> [Int] {
        let n = shape.last ?? 1
        return argmaxIndices(axis: Swift.max(rank - 1, 0)).map { Int($0) % Swift.max(n, 1) }
    }
}

/// When `part` is `whole` with one run of consecutive axes set to 1 (same rank, nothing else
/// broadcast), the extents (lead, run, trail) of the axes before, in and after the run.
func middleRun(_ part: [Int], of whole: [Int]) -> (Int, Int, Int)? {
    guard part.count == whole.count else { return nil }
    let differing = whole.indices.filter { part[$0] != whole[$0] }
    guard let first = differing.first, let last = differing.last,
          differing.count == last - first + 1, differing.allSatisfy({ part[$0] == 1 }) else { return nil }
    return (whole[..<first].reduce(1, *), whole[first...last].reduce(1, *), whole[(last + 1)...].reduce(1, *))
}
