import CKernels
/// Storage for a tensor's elements: one contiguous, 64-byte aligned block of `Float`s.
///
/// Buffers are written once, while the operation that creates them runs, and are read-only
/// afterwards; tensors that share a buffer (a reshape, a detached copy) never see it change.
public final class TensorBuffer: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// Allocates uninitialised storage for `count` elements.
    public init(count: Int) {
        precondition(count >= 0, "negative element count \(count)")
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        let raw = metaq_block_cache_take(metaq_block_cache_shared(), bytes)
            ?? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        metaq_memory_allocated(bytes)
    }

    /// The storage of shape-only graph links: no elements.
    static let empty = TensorBuffer(count: 0)

    /// Allocates storage filled with `value`.
    public convenience init(repeating value: Float, count: Int) {
        self.init(count: count)
        pointer.update(repeating: value, count: count)
    }

    deinit {
        let raw = UnsafeMutableRawPointer(pointer)
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        metaq_memory_freed(bytes)
        if metaq_block_cache_keep(metaq_block_cache_shared(), raw, bytes) == 0 { raw.deallocate() }
    }
}

/// Bytes held by tensor buffers now and at most since the last reset: what the graph and
/// the values in flight cost, apart from the allocator's own overhead and fragmentation
/// (which peak RSS adds). The counters live in C (block_cache.c), next to the block cache.
///
/// ```swift
/// TensorMemory.resetPeak()
/// maml.metaStep(batch)
/// print(TensorMemory.peakBytes)
/// ```
public enum TensorMemory {
    public static var liveBytes: Int { metaq_memory_live() }
    public static var peakBytes: Int { metaq_memory_peak() }
    /// Starts a new peak from the bytes live now.
    public static func resetPeak() { metaq_memory_reset_peak() }
}

/// Keeps freed blocks of 16 KiB and more for reuse by a tensor of exactly the same size
/// (the cache itself is C, block_cache.c; this wraps a separate instance for tests).
/// Training repeats the same sizes every step, so almost every allocation is a hit.
/// Both reasons below were measured with glibc's malloc, before mimalloc replaced it (see
/// CMalloc), and have not been measured again without the cache since:
/// - Large blocks: glibc served blocks over 32 MiB with mmap and unmapped them on free, so
///   without this every step paid a page fault per 4 KiB of each such tensor (im2col
///   matrices; about 15% of a conv step).
/// - Medium blocks: through malloc, the graph's long-lived tensors and the short-lived ones
///   interleaved and fragmented the heap; second-order MAML's peak RSS grew 1.08 MiB per
///   inner step with malloc and 0.48 MiB with the cache (sinusoid, meta-batch 25), where the
///   tensors themselves grew 0.40 MiB.
///
/// Free blocks sit on a short list of sizes searched linearly (at most `maximumSizes`; a size
/// with no waiting block gives up its shelf to a new one); past `capacityBytes` the cache
/// frees blocks of other sizes to make room, or declines.
final class BlockCache: @unchecked Sendable {
    /// Blocks smaller than this come from malloc's heap.
    static let minimumBytes = Int(METAQ_CACHE_MINIMUM_BYTES)
    /// The most memory the cache holds on to.
    static let capacityBytes = Int(METAQ_CACHE_CAPACITY_BYTES)
    /// At most this many distinct sizes are kept (training repeats a few dozen).
    static let maximumSizes = Int(METAQ_CACHE_SIZES)

    private let cache: OpaquePointer

    init() { cache = metaq_block_cache_create() }
    deinit { metaq_block_cache_destroy(cache) }

    func take(_ bytes: Int) -> UnsafeMutableRawPointer? { metaq_block_cache_take(cache, bytes) }

    func keep(_ block: UnsafeMutableRawPointer, bytes: Int) -> Bool { metaq_block_cache_keep(cache, block, bytes) != 0 }
}

/// A dense, row-major `Float` tensor that records how it was computed.
///
/// Tensors are immutable values: every operation returns a new tensor. When an input
/// requires a gradient, the result remembers the operation (its ``GradientNode``) so that
/// ``gradients(of:with:seed:createGraph:)`` can run reverse-mode differentiation, including
/// differentiating gradients again.
///
/// ```swift
/// let w = Tensor([[1, 2], [3, 4]]).requiringGradient()
/// let loss = (w * w).sum()
/// let g = gradients(of: loss, with: [w])[0]   // 2 * w
/// ```
public final class Tensor: @unchecked Sendable {
    /// The extent of each axis; empty for a scalar.
    public let shape: [Int]
    /// The number of elements (the product of `shape`).
    public let count: Int
    public private(set) var buffer: TensorBuffer
    /// Whether gradients flow into this tensor: a parameter, or a value computed from one.
    public let requiresGradient: Bool
    /// The operation that produced this tensor, when it depends on a tensor that requires
    /// a gradient; nil for leaves and constants.
    public let node: GradientNode?

    init(shape: [Int], buffer: TensorBuffer, requiresGradient: Bool = false, node: GradientNode? = nil) {
        self.shape = shape
        self.count = buffer.count
        self.buffer = buffer
        self.requiresGradient = requiresGradient || node != nil
        self.node = node
    }

    /// Whether this tensor's buffer is referenced by nothing but this tensor, so that its
    /// elements may be updated in place without another tensor seeing the change.
    func ownsBufferUniquely() -> Bool { isKnownUniquelyReferenced(&buffer) }

    /// A graph link with `shape` but no elements (see ``SavedValues``).
    init(shapeOnly shape: [Int], count: Int, node: GradientNode?) {
        self.shape = shape
        self.count = count
        self.buffer = TensorBuffer.empty
        self.requiresGradient = node != nil
        self.node = node
    }

    /// Detached copy keeping a shape-only link's element count.
    private init(detaching t: Tensor) {
        self.shape = t.shape
        self.count = t.count
        self.buffer = t.buffer
        self.requiresGradient = false
        self.node = nil
    }

    /// Creates a tensor with the given shape and elements in row-major order.
    public convenience init(shape: [Int], values: [Float]) {
        let n = Tensor.elementCount(shape)
        precondition(values.count == n, "shape \(shape) needs \(n) values, got \(values.count)")
        let buffer = TensorBuffer(count: n)
        values.withUnsafeBufferPointer { buffer.pointer.update(from: $0.baseAddress!, count: n) }
        self.init(shape: shape, buffer: buffer)
    }

    /// A scalar (rank-0) tensor.
    public convenience init(_ scalar: Float) {
        self.init(shape: [], buffer: TensorBuffer(repeating: scalar, count: 1))
    }

    /// A vector.
    public convenience init(_ values: [Float]) {
        self.init(shape: [values.count], values: values)
    }

    /// A matrix from its rows; all rows must have the same length.
    public convenience init(_ rows: [[Float]]) {
        let columns = rows.first?.count ?? 0
        precondition(rows.allSatisfy { $0.count == columns }, "ragged rows")
        self.init(shape: [rows.count, columns], values: rows.flatMap { $0 })
    }

    /// A tensor of the given shape with every element equal to `value`.
    public static func full(_ value: Float, shape: [Int]) -> Tensor {
        Tensor(shape: shape, buffer: TensorBuffer(repeating: value, count: elementCount(shape)))
    }

    public static func zeros(_ shape: [Int]) -> Tensor { full(0, shape: shape) }
    public static func ones(_ shape: [Int]) -> Tensor { full(1, shape: shape) }

    /// Uniform samples in `low..<high`.
    public static func uniform(
        _ shape: [Int], low: Float = 0, high: Float = 1, using rng: inout RandomGenerator
    ) -> Tensor {
        let buffer = TensorBuffer(count: elementCount(shape))
        for i in 0..<buffer.count { buffer.pointer[i] = rng.nextFloat(in: low..<high) }
        return Tensor(shape: shape, buffer: buffer)
    }

    /// Normal samples with the given mean and standard deviation.
    public static func normal(
        _ shape: [Int], mean: Float = 0, standardDeviation: Float = 1,
        using rng: inout RandomGenerator
    ) -> Tensor {
        let buffer = TensorBuffer(count: elementCount(shape))
        for i in 0..<buffer.count {
            buffer.pointer[i] = mean + standardDeviation * rng.nextNormal()
        }
        return Tensor(shape: shape, buffer: buffer)
    }

    /// The number of elements of a tensor with this shape.
    public static func elementCount(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape {
            precondition(d >= 0, "negative dimension in shape \(shape)")
            n *= d
        }
        return n
    }

    public var rank: Int { shape.count }

    /// The elements in row-major order.
    public var scalars: [Float] { Array(UnsafeBufferPointer(start: buffer.pointer, count: count)) }

    /// The single element of a one-element tensor.
    public var scalar: Float {
        precondition(count == 1, "scalar of a tensor with shape \(shape)")
        return buffer.pointer[0]
    }

    /// The same values, cut off from the graph: no gradient flows through the result.
    public func detached() -> Tensor {
        node == nil && !requiresGradient ? self : Tensor(detaching: self)
    }

    /// The same values as a new leaf that gradients are taken with respect to.
    public func requiringGradient() -> Tensor {
        Tensor(shape: shape, buffer: buffer, requiresGradient: true)
    }

    /// Calls `body` with the elements; read-only.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: buffer.pointer, count: count))
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = scalars.prefix(8).map { String(format: "%.4g", Double($0)) }.joined(separator: ", ")
        let more = count > 8 ? ", ... (\(count) values)" : ""
        return "Tensor(shape: \(shape), [\(shown)\(more)])"
    }
}

import Foundation
