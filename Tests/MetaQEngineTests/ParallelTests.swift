import Dispatch
import Foundation
import Synchronization
import Testing
@testable import MetaQEngine

/// Counts how often each index ran; indices are disjoint across threads within a section.
private final class Tally: @unchecked Sendable {
    let counts: UnsafeMutablePointer<Int>
    let size: Int
    init(_ size: Int) {
        self.size = size
        counts = .allocate(capacity: size)
        counts.initialize(repeating: 0, count: size)
    }
    deinit { counts.deallocate() }
    var eachOnce: Bool { (0..<size).allSatisfy { counts[$0] == 1 } }
}

@Suite("Parallel sections on the spinning helpers")
struct ParallelTests {
    @Test func everyIterationRunsExactlyOnce() {
        let pool = SpinPool(helpers: 2)
        for n in [1, 2, 3, 17, 1000] {
            for _ in 0..<50 {
                let tally = Tally(n)
                #expect(pool.run(n) { tally.counts[$0] += 1 })
                #expect(tally.eachOnce, "\(n) iterations")
            }
        }
    }

    @Test func nestedSectionsAndSectionsFromSeveralThreadsStillRunEverything() {
        let nested = Tally(40)
        Parallel.run(4) { i in Parallel.run(10) { j in nested.counts[i * 10 + j] += 1 } }
        #expect(nested.eachOnce)
        let concurrent = Tally(400)
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            Parallel.run(100) { j in concurrent.counts[t * 100 + j] += 1 }
        }
        #expect(concurrent.eachOnce)
    }

    /// Two iterations that each wait for the other can only finish when a helper runs one of
    /// them, so this fails (by timing out) if a helper that went to sleep is never woken.
    @Test func aSleepingHelperWakesForTheNextSection() {
        let pool = SpinPool(helpers: 1)
        for _ in 0..<3 {
            Thread.sleep(forTimeInterval: 0.01)    // well past the spin window: the helper sleeps
            let arrived = Atomic<Int>(0)
            let met = Atomic<Int>(0)
            #expect(pool.run(2) { _ in
                arrived.add(1, ordering: .sequentiallyConsistent)
                let deadline = DispatchTime.now().uptimeNanoseconds + 2_000_000_000
                while arrived.load(ordering: .sequentiallyConsistent) < 2 {
                    if DispatchTime.now().uptimeNanoseconds > deadline { return }
                }
                met.add(1, ordering: .sequentiallyConsistent)
            })
            #expect(met.load(ordering: .sequentiallyConsistent) == 2)
        }
    }
}

@Suite("The process allocator")
struct AllocatorTests {
    /// The engine links mimalloc ahead of libc (CMalloc's link directive); if the link were
    /// dropped or reordered, malloc would quietly be glibc's again and only speed would tell.
    @Test func mallocIsMimalloc() throws {
        // Already loaded (RTLD_NOLOAD), and the malloc every library resolves is its malloc.
        let mimalloc = try #require(dlopen("libmimalloc.so.2", RTLD_NOW | RTLD_NOLOAD), "libmimalloc is not loaded")
        defer { dlclose(mimalloc) }
        let own = try #require(dlsym(mimalloc, "malloc"))
        let global = try #require(dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc"))
        #expect(own == global, "malloc resolves to another library than mimalloc")
    }
}
