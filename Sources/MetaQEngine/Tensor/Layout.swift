// Operations that move elements without arithmetic: reshape, permute, slice, concatenate,
// gather and scatter. Gather and scatter-add are each other's adjoint, as are slice and its
// zero-padding inverse, so all of these are differentiable to any order.

/// A shared, immutable list of flat element indices (for gather and scatter).
///
/// The indices live in a tensor buffer's block (4-byte values, like `Float`), so a
/// max-pool's index list of every step reuses the block the last step freed, as its
/// tensors do, instead of a fresh array: zero-filled on one thread and faulted in page by
/// page, that was 4% of a ProtoNet episode.
public final class IndexList: @unchecked Sendable {
    private let storage: TensorBuffer
    /// The number of indices.
    public let count: Int
    /// When not nil, the indices fall into this many equal segments, segment s of the
    /// indices pointing only into segment s of the indexed tensor (each image's pooling
    /// windows point into that image): gathers and scatters then run segments in parallel.
    public let segments: Int?

    public convenience init(_ indices: [Int32], segments: Int? = nil) {
        self.init(count: indices.count, segments: segments) { to in
            indices.withUnsafeBufferPointer { to.update(from: $0.baseAddress!, count: indices.count) }
        }
    }

    /// `count` indices written by `fill`, which must set every one.
    init(count: Int, segments: Int? = nil, fill: (UnsafeMutablePointer<Int32>) -> Void) {
        storage = TensorBuffer(count: count)
        self.count = count
        self.segments = segments
        if count > 0 { storage.pointer.withMemoryRebound(to: Int32.self, capacity: count, fill) }
    }

    /// The indices, copied into an array.
    public var indices: [Int32] { withIndices { Array($0) } }

    /// Calls `body` with the indices in place.
    func withIndices<R>(_ body: (UnsafeBufferPointer<Int32>) -> R) -> R {
        storage.pointer.withMemoryRebound(to: Int32.self, capacity: Swift.max(count, 1)) {
            body(UnsafeBufferPointer(start: $0, count: count))
        }
    }
}

extension IndexList {
    /// Runs `body(indices, targets)` over chunks of the index positions and the part of the
    /// indexed tensor (of `sourceCount` elements) they can point into: whole segments split
    /// across threads when the list is segmented, else everything in one call.
    func forEachSegmentChunk(sourceCount: Int, _ body: (Range<Int>, Range<Int>) -> Void) {
        let n = count
        guard let segments, segments > 1, n % segments == 0, sourceCount % segments == 0 else {
            body(0..<n, 0..<sourceCount)
            return
        }
        let picks = n / segments, targets = sourceCount / segments
        Parallel.forEachChunk(segments, cost: picks + targets) { range in
            body(range.lowerBound * picks..<range.upperBound * picks, range.lowerBound * targets..<range.upperBound * targets)
        }
    }
}

extension Tensor {
    /// The same elements with a new shape (one entry may be -1). Shares storage.
    public func reshaped(to target: [Int]) -> Tensor {
        let newShape: [Int]
        do { newShape = try ShapeRules.reshape(shape, to: target) } catch { preconditionFailure("\(error)") }
        if newShape == shape { return self }
        return Tensor.result("reshape", shape: newShape, buffer: buffer, inputs: [self], saves: .shapes) { c in
            [c.grad.reshaped(to: c.inputs[0].shape)]
        }
    }

    /// Reorders the axes: result axis i is this tensor's axis `permutation[i]`.
    public func permuted(_ permutation: [Int]) -> Tensor {
        precondition(
            permutation.sorted() == Array(0..<rank),
            "permute: \(permutation) is not a permutation of the axes of \(shape)")
        if permutation == Array(0..<rank) { return self }
        let own = ShapeRules.strides(shape)
        let outShape = permutation.map { shape[$0] }
        let readStrides = permutation.map { own[$0] }
        let out = TensorBuffer(count: count)
        let src = buffer.pointer, dst = out.pointer
        let step = readStrides.last!
        forEachRow(shape: outShape, strides: [readStrides, ShapeRules.strides(outShape)]) { off, n in
            let r = src + off[0], w = dst + off[1]
            for j in 0..<n { w[j] = r[j * step] }
        }
        var inverse = permutation
        for (i, p) in permutation.enumerated() { inverse[p] = i }
        return Tensor.result("permute", shape: outShape, buffer: out, inputs: [self], saves: .shapes) { c in
            [c.grad.permuted(inverse)]
        }
    }

    /// Swaps the last two axes.
    public func transposed() -> Tensor {
        precondition(rank >= 2, "transpose needs rank 2 or more, got \(shape)")
        var p = Array(0..<rank)
        p.swapAt(rank - 1, rank - 2)
        return permuted(p)
    }

    /// The elements `range` along `axis`.
    public func slice(axis: Int, _ range: Range<Int>) -> Tensor {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < rank, "slice: axis \(axis) out of range for \(shape)")
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[a], "slice: \(range) out of bounds for axis of extent \(shape[a])")
        if range.count == shape[a] { return self }
        var outShape = shape
        outShape[a] = range.count
        let out = TensorBuffer(count: Tensor.elementCount(outShape))
        copyBlocks(axis: a, from: buffer.pointer, extent: shape[a], offset: range.lowerBound,
                   to: out.pointer, extent: range.count, offset: 0, length: range.count)
        let full = shape[a]
        return Tensor.result("slice", shape: outShape, buffer: out, inputs: [self], saves: .shapes) { c in
            [c.grad.padded(axis: a, range: range, extent: full)]
        }
    }

    /// Places this tensor at `range` along `axis` of a zero tensor with extent `extent`
    /// there: the adjoint of ``slice(axis:_:)``.
    public func padded(axis: Int, range: Range<Int>, extent: Int) -> Tensor {
        precondition(range.count == shape[axis] && range.upperBound <= extent, "padded: bad range")
        var outShape = shape
        outShape[axis] = extent
        let out = TensorBuffer(repeating: 0, count: Tensor.elementCount(outShape))
        copyBlocks(axis: axis, from: buffer.pointer, extent: shape[axis], offset: 0,
                   to: out.pointer, extent: extent, offset: range.lowerBound, length: range.count)
        return Tensor.result("pad", shape: outShape, buffer: out, inputs: [self], saves: .shapes) { c in
            [c.grad.slice(axis: axis, range)]
        }
    }

    /// Copies `length` positions along `axis` between two tensors that agree on every other axis.
    private func copyBlocks(
        axis: Int, from src: UnsafeMutablePointer<Float>, extent srcExtent: Int, offset srcOffset: Int,
        to dst: UnsafeMutablePointer<Float>, extent dstExtent: Int, offset dstOffset: Int, length: Int
    ) {
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *)
        for o in 0..<outer {
            (dst + (o * dstExtent + dstOffset) * inner).update(
                from: src + (o * srcExtent + srcOffset) * inner, count: length * inner)
        }
    }

    /// Joins tensors along `axis`; they must agree on every other axis.
    public static func concatenate(_ parts: [Tensor], axis: Int) -> Tensor {
        precondition(!parts.isEmpty, "concatenate needs at least one tensor")
        if parts.count == 1 { return parts[0] }
        let first = parts[0]
        let a = axis < 0 ? axis + first.rank : axis
        for p in parts {
            precondition(
                p.rank == first.rank && p.shape.enumerated().allSatisfy { $0.offset == a || $0.element == first.shape[$0.offset] },
                "concatenate: shapes \(parts.map(\.shape)) differ off axis \(axis)")
        }
        let extent = parts.reduce(0) { $0 + $1.shape[a] }
        var outShape = first.shape
        outShape[a] = extent
        let out = TensorBuffer(count: Tensor.elementCount(outShape))
        var offset = 0
        var ranges: [Range<Int>] = []
        for p in parts {
            p.copyBlocks(axis: a, from: p.buffer.pointer, extent: p.shape[a], offset: 0,
                         to: out.pointer, extent: extent, offset: offset, length: p.shape[a])
            ranges.append(offset..<offset + p.shape[a])
            offset += p.shape[a]
        }
        return result("concat", shape: outShape, buffer: out, inputs: parts, saves: .shapes) { c in
            ranges.enumerated().map { i, r in c.needs(i) ? c.grad.slice(axis: a, r) : nil }
        }
    }

    /// Stacks equally shaped tensors along a new leading axis.
    public static func stack(_ parts: [Tensor]) -> Tensor {
        concatenate(parts.map { $0.reshaped(to: [1] + $0.shape) }, axis: 0)
    }

    /// `result.flat[i] = self.flat[indices[i]]` (an index of -1 reads zero), shaped `shape`.
    public func gathering(flatIndices index: IndexList, shape outShape: [Int]) -> Tensor {
        precondition(index.count == Tensor.elementCount(outShape), "gather: \(index.count) indices for shape \(outShape)")
        let out = TensorBuffer(count: index.count)
        let src = buffer.pointer, dst = out.pointer
        index.withIndices { idx in
            let idx = UncheckedSendable(idx)
            index.forEachSegmentChunk(sourceCount: count) { picks, _ in
                for i in picks {
                    let k = Int(idx.value[i])
                    dst[i] = k >= 0 ? src[k] : 0
                }
            }
        }
        return gathering(flatIndices: index, shape: outShape, values: out)
    }

    /// ``gathering(flatIndices:shape:)`` when the caller has already gathered the values.
    func gathering(flatIndices index: IndexList, shape outShape: [Int], values: TensorBuffer) -> Tensor {
        let inShape = shape
        return Tensor.result("gather", shape: outShape, buffer: values, inputs: [self], saves: .shapes) { c in
            [c.grad.scatteringAdd(flatIndices: index, shape: inShape)]
        }
    }

    /// A tensor of `shape`, zero except `result.flat[indices[i]] += self.flat[i]`: the
    /// adjoint of ``gathering(flatIndices:shape:)``.
    public func scatteringAdd(flatIndices index: IndexList, shape outShape: [Int]) -> Tensor {
        precondition(index.count == count, "scatter: \(index.count) indices for \(count) values")
        let total = Tensor.elementCount(outShape)
        let out = TensorBuffer(count: total)
        let src = buffer.pointer, dst = out.pointer
        index.withIndices { idx in
            let idx = UncheckedSendable(idx)
            index.forEachSegmentChunk(sourceCount: total) { picks, targets in
                // Each chunk clears and fills its own part of the result.
                (dst + targets.lowerBound).update(repeating: 0, count: targets.count)
                for i in picks {
                    let k = Int(idx.value[i])
                    if k >= 0 { dst[k] += src[i] }
                }
            }
        }
        let inShape = shape
        return Tensor.result("scatter_add", shape: outShape, buffer: out, inputs: [self], saves: .shapes) { c in
            [c.grad.gathering(flatIndices: index, shape: inShape)]
        }
    }

    /// Rows of a tensor selected along its first axis (repeats allowed).
    public func gatheringRows(_ rows: [Int]) -> Tensor {
        let inner = count / Swift.max(shape.first ?? 1, 1)
        var indices = [Int32]()
        indices.reserveCapacity(rows.count * inner)
        for r in rows {
            precondition(r >= 0 && r < shape[0], "row \(r) out of range 0..<\(shape[0])")
            for j in 0..<inner { indices.append(Int32(r * inner + j)) }
        }
        return gathering(flatIndices: IndexList(indices), shape: [rows.count] + shape.dropFirst())
    }
}
