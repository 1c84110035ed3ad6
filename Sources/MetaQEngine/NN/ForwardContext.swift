import Foundation

/// What a forward pass runs for, beyond its input and parameters: whether it is a
/// meta-training pass (dropout active, with the random key of the meta-step), which tasks of
/// the meta-batch it runs (so a task's dropout mask does not depend on how the batch was split
/// across threads or processes), and which inner-loop step it is (MAML++'s per-step batch
/// norm). Each thread has its own; it starts as an evaluation pass (no dropout, no step).
///
/// The training driver sets it around a meta-step; the engine's learners pass it on to their
/// worker threads and narrow it per group of tasks and per inner step:
///
/// ```swift
/// ForwardContext.with(.training(key: stepKey)) { learner.metaStep(batch) }
/// ```
public struct ForwardContext: Sendable, Equatable {
    /// The meta-step's key for dropout masks; nil: not a training pass (dropout is the identity).
    public var dropoutKey: UInt64?
    /// The index in the whole meta-batch of the first task of the input's task axis.
    public var taskOffset: Int
    /// The inner-loop step this pass belongs to (0-based); nil outside an inner loop.
    public var innerStep: Int?

    public init(dropoutKey: UInt64? = nil, taskOffset: Int = 0, innerStep: Int? = nil) {
        self.dropoutKey = dropoutKey
        self.taskOffset = taskOffset
        self.innerStep = innerStep
    }

    /// A meta-training pass with the given key.
    public static func training(key: UInt64, taskOffset: Int = 0) -> ForwardContext {
        ForwardContext(dropoutKey: key, taskOffset: taskOffset)
    }

    /// An evaluation pass: what a thread starts with.
    public static let evaluation = ForwardContext()

    /// The calling thread's context.
    public static var current: ForwardContext { State.current.context }

    /// Runs `body` with `context` as the calling thread's context, then restores the previous
    /// one. Dropout calls inside are numbered from 0, so the same body with the same context
    /// draws the same masks (a recomputed inner step sees the masks of its first run).
    public static func with<R, E: Error>(_ context: ForwardContext, _ body: () throws(E) -> R) throws(E) -> R {
        let state = State.current
        let saved = (state.context, state.calls)
        state.context = context
        state.calls = 0
        defer { (state.context, state.calls) = saved }
        return try body()
    }

    /// The current context with `taskOffset` moved on by `tasks` (a group of tasks that starts
    /// `tasks` into the input of the current context).
    public func offset(by tasks: Int) -> ForwardContext {
        var c = self
        c.taskOffset += tasks
        return c
    }

    /// The current context at inner step `step`.
    public func atStep(_ step: Int?) -> ForwardContext {
        var c = self
        c.innerStep = step
        return c
    }

    /// For a dropout layer: the key of its mask stream in this pass (a function of the
    /// meta-step's key, the inner step and the call's number in the pass), or nil when this is
    /// not a training pass.
    static func nextDropoutStream() -> UInt64? {
        let state = State.current
        guard let key = state.context.dropoutKey else { return nil }
        let call = state.calls
        state.calls += 1
        let step = UInt64(truncatingIfNeeded: (state.context.innerStep ?? -1) + 1)
        return mix(mix(key ^ 0xD1B5_4A32_D192_ED03) &+ step &* 0x9E37_79B9_7F4A_7C15 &+ call)
    }

    /// SplitMix64's finaliser: a well-mixed 64-bit function of `z`.
    static func mix(_ z: UInt64) -> UInt64 {
        var z = z &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The per-thread state: the context and the dropout calls made under it.
    final class State {
        var context = ForwardContext.evaluation
        var calls: UInt64 = 0

        private static let key: pthread_key_t = {
            var key = pthread_key_t()
            pthread_key_create(&key) { pointer in
                if let pointer { Unmanaged<State>.fromOpaque(pointer).release() }
            }
            return key
        }()

        static var current: State {
            if let pointer = pthread_getspecific(key) { return Unmanaged<State>.fromOpaque(pointer).takeUnretainedValue() }
            let state = State()
            pthread_setspecific(key, Unmanaged.passRetained(state).toOpaque())
            return state
        }
    }
}
