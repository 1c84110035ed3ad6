import Dispatch
import Foundation
import CMalloc   // links mimalloc, which serves every malloc in the process
import COpenBLAS

/// Where the engine's threads go. OpenBLAS runs single-threaded (its worker pool spin-waits,
/// which wastes a small machine's cores between the many small products of meta-learning);
/// the engine itself splits large products and elementwise loops over `threads` workers.
/// Work is split at fixed, size-determined boundaries, so results are bit-identical from run
/// to run for a given thread count.
public enum Parallel {
    /// Worker threads for large operations: `METAQ_THREADS`, or the number of cores.
    nonisolated(unsafe) public private(set) static var threads: Int = configure()

    /// Sets the worker count (1 disables the engine's own parallelism).
    public static func setThreads(_ count: Int) { threads = max(1, count) }

    private static func configure() -> Int {
        openblas_set_num_threads(1)
        let requested = ProcessInfo.processInfo.environment["METAQ_THREADS"].flatMap(Int.init)
        return max(1, requested ?? ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Runs `body(range)` over `0..<count` split into at most `threads` contiguous chunks, in
    /// parallel when the work (`count * cost`) is large enough to pay for it.
    @inline(__always)
    static func forEachChunk(_ count: Int, cost: Int = 1, minimumWork: Int = 1 << 16, _ body: (Range<Int>) -> Void) {
        let workers = threads
        if workers <= 1 || count < 2 || count &* cost < minimumWork {
            body(0..<count)
            return
        }
        let chunks = min(workers, count)
        let size = (count + chunks - 1) / chunks
        run(chunks) { c in
            let start = c * size
            if start < count { body(start..<min(start + size, count)) }
        }
    }

    /// The helper threads, made at the first parallel section.
    private static let pool = SpinPool(helpers: max(1, threads - 1))

    /// `body(i)` for every i in `0..<iterations`, in parallel on the caller and the helpers;
    /// in order on the caller when a section is already running (a section inside a
    /// section, or sections from several threads at once), since the cores are busy then.
    static func run(_ iterations: Int, _ body: (Int) -> Void) {
        if pool.run(iterations, body) { return }
        for i in 0..<iterations { body(i) }
    }
}

extension Parallel {
    /// `body` on `shares` contiguous shares of `0..<count` (share w is
    /// `count * w / shares ..< count * (w + 1) / shares`), run in parallel; the results in
    /// share order. One share or fewer runs `body(0..<count)` on the calling thread.
    public static func mapShares<R>(_ count: Int, shares: Int, _ body: (Range<Int>) -> R) -> [R] {
        if shares <= 1 { return [body(0..<count)] }
        var results = [R?](repeating: nil, count: shares)
        results.withUnsafeMutableBufferPointer { slots in
            let slots = UncheckedSendable(slots)
            run(shares) { w in slots.value[w] = body(count * w / shares..<count * (w + 1) / shares) }
        }
        return results.map { $0! }
    }
}

/// Hands a non-Sendable value to worker threads that only read disjoint data through it.
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
