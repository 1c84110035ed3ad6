import CKernels
import Dispatch
import Foundation
import Synchronization

/// Helper threads for the engine's short parallel sections, which start in well under a
/// microsecond instead of the ~12 µs it takes Dispatch to wake a worker.
///
/// A sinusoid MAML meta-step takes about 300 µs and has one parallel section (the tasks
/// split across the cores), so waking a sleeping worker and joining it cost 7-14% of the
/// step. Here, a helper that has just finished a section spins for a short while
/// (`spinWindow`) before it sleeps, so back-to-back sections find it awake.
///
/// Work is claimed an iteration at a time from one atomic word holding the section's
/// number and the count of unclaimed iterations, so a helper can only ever take an
/// iteration of the section that is running; the caller takes iterations too, and returns
/// once every iteration has finished. Sections do not nest: a call made while another
/// section runs (from inside it, or from another thread) returns false and the caller runs
/// its work some other way.
final class SpinPool: @unchecked Sendable {
    /// Section number (high 32 bits) and iterations not yet claimed (low 32 bits).
    private let state = Atomic<UInt64>(0)
    /// Iterations claimed but not finished, plus those not yet claimed.
    private let unfinished = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private let wake = DispatchSemaphore(value: 0)
    private let helpers: Int
    /// How long a helper keeps spinning after its last section, in nanoseconds.
    private let spinWindow: UInt64 = 250_000
    /// The running section's body; written only while no iteration can be claimed.
    private nonisolated(unsafe) var body: ((Int) -> Void)?

    init(helpers: Int) {
        self.helpers = helpers
        for _ in 0..<helpers {
            let thread = Thread { [unowned self] in self.helperLoop() }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Runs `body(i)` for every i in `0..<iterations` on the caller and the helpers; false
    /// (and nothing run) when a section is already running.
    func run(_ iterations: Int, _ body: (Int) -> Void) -> Bool {
        precondition(iterations < 1 << 32)
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            return false
        }
        withoutActuallyEscaping(body) { body in
            self.body = body
            unfinished.store(iterations, ordering: .relaxed)
            let section = (state.load(ordering: .relaxed) >> 32) &+ 1
            state.store(section << 32 | UInt64(iterations), ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                for _ in 0..<helpers { wake.signal() }
            }
            work()
            while unfinished.load(ordering: .acquiring) > 0 { metaq_cpu_relax() }
            self.body = nil
        }
        busy.store(false, ordering: .releasing)
        return true
    }

    /// Claims and runs iterations of the current section until none are left unclaimed.
    private func work() {
        var current = state.load(ordering: .acquiring)
        while current & 0xFFFF_FFFF > 0 {
            let (done, seen) = state.compareExchange(
                expected: current, desired: current - 1, ordering: .acquiringAndReleasing)
            if done {
                // The section cannot finish before this iteration does, so `body` stays put.
                body!(Int(current & 0xFFFF_FFFF) - 1)
                unfinished.subtract(1, ordering: .releasing)
                current = state.load(ordering: .acquiring)
            } else {
                current = seen
            }
        }
    }

    private func helperLoop() {
        while true {
            var idleSince: UInt64 = 0
            var spins = 0
            while state.load(ordering: .acquiring) & 0xFFFF_FFFF == 0 {
                metaq_cpu_relax()
                spins += 1
                if spins & 63 != 0 { continue }
                let now = DispatchTime.now().uptimeNanoseconds
                if idleSince == 0 { idleSince = now; continue }
                if now - idleSince < spinWindow { continue }
                // Sleep; the caller signals when it sees a sleeper after publishing a section.
                sleepers.add(1, ordering: .sequentiallyConsistent)
                if state.load(ordering: .sequentiallyConsistent) & 0xFFFF_FFFF == 0 { wake.wait() }
                sleepers.subtract(1, ordering: .sequentiallyConsistent)
                idleSince = 0
            }
            work()
        }
    }
}
