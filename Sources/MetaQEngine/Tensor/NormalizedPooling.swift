import CKernels

extension Tensor {
    /// Batch normalisation, a per-channel scale and shift, ReLU and max-pooling as one
    /// operation: the tail of a conv4 block. For `x [N, H, W, C]` it equals
    ///
    /// ```swift
    /// x.normalized(overAxes: [0, 1, 2]).scaledShiftedReLU(scale: s, shift: b).maxPooled(size: 2)
    /// ```
    ///
    /// with the statistics taken separately over each of `groups` equal runs of images (the
    /// tasks of a batch; then it is the per-task normalisation over axes 1, 2, 3 of
    /// `[groups, N / groups, H, W, C]`). `scale` and `shift` hold one value per channel.
    ///
    /// Why fused: the unfused chain writes and reads back three full-size activations forward
    /// and four backward; this one reads the input twice for its statistics and writes only
    /// the pooled output, and its first-order backward is one quarter-size pass and one
    /// full-size one. When a graph is being built (second order) its derivative rule is the
    /// unfused chain, rebuilt and differentiated with `createGraph`, so it differentiates to
    /// any order.
    public func normalizedReLUMaxPooled(
        scale: Tensor, shift: Tensor, poolSize size: Int, groups: Int = 1, epsilon: Float = 1e-5
    ) -> Tensor {
        precondition(rank == 4 && size > 0, "normalizedReLUMaxPooled expects [N, H, W, C], got \(shape)")
        let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3])
        precondition(groups > 0 && n % groups == 0, "normalizedReLUMaxPooled: \(n) images in \(groups) groups")
        precondition(scale.count == c && shift.count == c,
                     "normalizedReLUMaxPooled: scale \(scale.shape) and shift \(shift.shape) need one value per channel of \(shape)")
        let perGroup = n / groups, ho = h / size, wo = w / size
        let reduced = perGroup * h * w
        let (mean, invStd) = Tensor.batchStatistics(buffer.pointer, lead: groups, reduced: reduced, trail: c, epsilon: epsilon)
        let out = TensorBuffer(count: n * ho * wo * c)
        let x = buffer.pointer, m = mean.pointer, inv = invStd.pointer
        let s = scale.buffer.pointer, b = shift.buffer.pointer, o = out.pointer
        let indices = IndexList(count: n * ho * wo * c, segments: n) { idx in
            Parallel.forEachChunk(n, cost: h * w * c) { images in
                forEachGroupRun(images, perGroup: perGroup) { group, run in
                    metaq_norm_relu_pool(run.lowerBound, run.upperBound, h, w, c, size, ho, wo, x,
                                         m + group * c, inv + group * c, s, b, o, idx)
                }
            }
        }
        let inputShape = shape
        return Tensor.result("normalize_relu_pool", shape: [n, ho, wo, c], buffer: out, inputs: [self, scale, shift]) { ctx in
            let (g, x, s, y) = (ctx.grad, ctx.inputs[0], ctx.inputs[1], ctx.output)
            if ctx.recordsNothing(from: g, x, s, ctx.inputs[2]) {
                // No graph to build: the fused backward. Holding `mean`, `invStd` and
                // `indices` keeps them alive.
                let grads = normalizedReLUMaxPooledBackward(
                    g: g.buffer.pointer, out: y.buffer.pointer, indices: indices, x: x.buffer.pointer,
                    mean: mean.pointer, invStd: invStd.pointer, scale: s.buffer.pointer,
                    images: n, perGroup: perGroup, height: h, width: w, channels: c, poolSize: size)
                return [Tensor(shape: inputShape, buffer: grads.dx), Tensor(shape: s.shape, buffer: grads.ds),
                        Tensor(shape: ctx.inputs[2].shape, buffer: grads.db)]
            }
            // Building a graph: the unfused chain on the live inputs, differentiated with
            // createGraph (its rules are differentiable operations).
            let grouped = groups > 1 ? x.reshaped(to: [groups, perGroup, h, w, c]) : x
            let axes = groups > 1 ? [1, 2, 3] : [0, 1, 2]
            let activated = grouped.normalized(overAxes: axes, epsilon: epsilon)
                .scaledShiftedReLU(scale: s, shift: ctx.inputs[2])
            let pooled = activated.reshaped(to: inputShape).maxPooled(size: size)
            let wanted = [x, s, ctx.inputs[2]]
            let grads = gradients(of: pooled, with: wanted, seed: g, createGraph: true)
            return (0..<3).map { ctx.needs($0) ? grads[$0] : nil }
        }
    }
}

/// Calls `body(group, run)` for each maximal run of `images` within one group of `perGroup`.
@inline(__always)
private func forEachGroupRun(_ images: Range<Int>, perGroup: Int, _ body: (Int, Range<Int>) -> Void) {
    var i = images.lowerBound
    while i < images.upperBound {
        let group = i / perGroup
        let end = Swift.min(images.upperBound, (group + 1) * perGroup)
        body(group, i..<end)
        i = end
    }
}

/// The first-order backward of ``Tensor/normalizedReLUMaxPooled(scale:shift:poolSize:groups:epsilon:)``.
private func normalizedReLUMaxPooledBackward(
    g: UnsafePointer<Float>, out: UnsafePointer<Float>, indices: IndexList, x: UnsafePointer<Float>,
    mean: UnsafePointer<Float>, invStd: UnsafePointer<Float>, scale: UnsafePointer<Float>,
    images n: Int, perGroup: Int, height h: Int, width w: Int, channels c: Int, poolSize size: Int
) -> (dx: TensorBuffer, ds: TensorBuffer, db: TensorBuffer) {
    let groups = n / perGroup, ho = h / size, wo = w / size
    let pooledRows = perGroup * ho * wo
    let dx = TensorBuffer(count: n * h * w * c)
    let ds = TensorBuffer(repeating: 0, count: c), db = TensorBuffer(repeating: 0, count: c)
    // Per group: dsg = sum of gm * h at the maxima, dbg = sum of gm (gm the gradient where
    // the ReLU passed it). The normalisation's backward needs mean(gh) = s * dbg / count and
    // mean(gh * h) = s * dsg / count, with gh = gm * s.
    let perGroupSums = TensorBuffer(count: 2 * groups * c)
    let dsg = perGroupSums.pointer, dbg = dsg + groups * c
    indices.withIndices { idx in
        let idx = idx.baseAddress!
        RowBlocks(lead: groups, rows: pooledRows, width: c).sum(into: dsg, second: dbg) { group, rows, a, b in
            let at = (group * pooledRows + rows.lowerBound) * c
            metaq_norm_relu_pool_sums(rows.count, c, g + at, out + at, idx + at, x,
                                      mean + group * c, invStd + group * c, a, b)
        }
        let count = Float(Swift.max(perGroup * h * w, 1))
        let meanG = TensorBuffer(count: groups * c), meanGH = TensorBuffer(count: groups * c)
        for group in 0..<groups {
            for k in 0..<c {
                meanG.pointer[group * c + k] = scale[k] * dbg[group * c + k] / count
                meanGH.pointer[group * c + k] = scale[k] * dsg[group * c + k] / count
                ds.pointer[k] += dsg[group * c + k]
                db.pointer[k] += dbg[group * c + k]
            }
        }
        let mg = meanG.pointer, mgh = meanGH.pointer, d = dx.pointer
        Parallel.forEachChunk(n, cost: h * w * c) { images in
            forEachGroupRun(images, perGroup: perGroup) { group, run in
                metaq_norm_relu_pool_backward(run.lowerBound, run.upperBound, h, w, c, ho, wo, g, out, idx, x,
                                              mean + group * c, invStd + group * c, scale,
                                              mg + group * c, mgh + group * c, d)
            }
        }
    }
    return (dx, ds, db)
}
