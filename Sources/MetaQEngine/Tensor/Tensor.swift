import Synchronization
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
        let raw = BlockCache.shared.take(bytes)
            ?? UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        TensorMemory.allocated(bytes)
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
        TensorMemory.freed(bytes)
        if !BlockCache.shared.keep(raw, bytes: bytes) { raw.deallocate() }
    }
}

/// Bytes held by tensor buffers now and at most since the last reset: what the graph and
/// the values in flight cost, apart from the allocator's own overhead and fragmentation
/// (which peak RSS adds).
///
/// ```swift
/// TensorMemory.resetPeak()
/// maml.metaStep(batch)
/// print(TensorMemory.peakBytes)
/// ```
public enum TensorMemory {
    private static let live = Atomic<Int>(0)
    private static let peak = Atomic<Int>(0)

    public static var liveBytes: Int { live.load(ordering: .relaxed) }
    public static var peakBytes: Int { peak.load(ordering: .relaxed) }
    /// Starts a new peak from the bytes live now.
    public static func resetPeak() { peak.store(live.load(ordering: .relaxed), ordering: .relaxed) }

    @inline(__always) static func allocated(_ bytes: Int) {
        let now = live.add(bytes, ordering: .relaxed).newValue
        var seen = peak.load(ordering: .relaxed)
        while now > seen {
            let (exchanged, original) = peak.compareExchange(expected: seen, desired: now, ordering: .relaxed)
            if exchanged { break }
            seen = original
        }
    }

    @inline(__always) static func freed(_ bytes: Int) { live.subtract(bytes, ordering: .relaxed) }
}

/// Keeps freed blocks of 16 KiB and more for reuse by a tensor of exactly the same size.
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
final class BlockCache: @unchecked Sendable {
    static let shared = BlockCache()
    /// Blocks smaller than this come from malloc's heap.
    static let minimumBytes = 16 << 10
    /// The most memory the cache holds on to.
    static let capacityBytes = 512 << 20

    /// At most this many distinct sizes are kept (training repeats a few dozen).
    static let maximumSizes = 128

    /// Free blocks by size: `stacks[i]` holds blocks of `sizes[i]` bytes. A linear search
    /// over a few dozen sizes costs less than hashing into a dictionary, and every tensor of
    /// 16 KiB or more passes through here twice.
    private struct Shelves {
        var sizes: [Int] = []
        var stacks: [[UnsafeMutableRawPointer]] = []
        var held = 0
    }

    private let lock = NSLock()
    private var shelves = Shelves()

    func take(_ bytes: Int) -> UnsafeMutableRawPointer? {
        guard bytes >= Self.minimumBytes else { return nil }
        lock.lock(); defer { lock.unlock() }
        guard let i = shelves.sizes.firstIndex(of: bytes), let block = shelves.stacks[i].popLast() else { return nil }
        shelves.held -= bytes
        return block
    }

    func keep(_ block: UnsafeMutableRawPointer, bytes: Int) -> Bool {
        guard bytes >= Self.minimumBytes else { return false }
        lock.lock(); defer { lock.unlock() }
        if shelves.held + bytes > Self.capacityBytes {
            // Make room by dropping blocks of other sizes (any will do: sizes repeat every
            // step in training).
            for i in shelves.sizes.indices where shelves.sizes[i] != bytes && !shelves.stacks[i].isEmpty {
                for b in shelves.stacks[i] { b.deallocate() }
                shelves.held -= shelves.sizes[i] * shelves.stacks[i].count
                shelves.stacks[i].removeAll()
                if shelves.held + bytes <= Self.capacityBytes { break }
            }
            if shelves.held + bytes > Self.capacityBytes { return false }
        }
        if let i = shelves.sizes.firstIndex(of: bytes) {
            shelves.stacks[i].append(block)
        } else if shelves.sizes.count < Self.maximumSizes {
            shelves.sizes.append(bytes)
            shelves.stacks.append([block])
        } else if let i = shelves.stacks.firstIndex(where: \.isEmpty) {
            shelves.sizes[i] = bytes   // a size no block is waiting in gives up its shelf
            shelves.stacks[i].append(block)
        } else {
            return false
        }
        shelves.held += bytes
        return true
    }
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
