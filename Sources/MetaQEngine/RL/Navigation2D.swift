/// 2D navigation of the MAML paper (Finn et al. 2017, section 5.3; rllab's point
/// environment with a random goal): a point starts at the origin and moves by its action,
/// a velocity clipped to [-limit, limit] per axis; each task has a goal drawn uniformly from
/// `goal` x `goal`; the reward of a step is minus the distance from the new position to the
/// goal, and an episode ends within 0.01 of the goal or at the horizon (100).
///
/// ```swift
/// let nav = Navigation2D()
/// var rng = RandomGenerator(seed: 0)
/// let goals = nav.sampleTasks(20, using: &rng)          // [20, 2]
/// var s = nav.reset(tasks: goals, episodes: 10, using: &rng)   // [20, 10, 2], all zero
/// ```
public struct Navigation2D: MetaEnvironment {
    public var goalRange: ClosedRange<Float>
    public var actionLimit: Float
    public var horizon: Int
    /// Distance to the goal at which an episode ends.
    public var successRadius: Float = 0.01

    public init(goalRange: ClosedRange<Float> = -0.5...0.5, actionLimit: Float = 0.1, horizon: Int = 100) {
        self.goalRange = goalRange
        self.actionLimit = actionLimit
        self.horizon = horizon
    }

    public var name: String { "navigation2d" }
    public var observationSize: Int { 2 }
    public var stateSize: Int { 2 }
    public var actionSpace: ActionSpace { .continuous(dimensions: 2, low: -actionLimit, high: actionLimit) }

    public static let kind = EnvironmentKind(
        name: "navigation2d",
        summary: "2D navigation of the MAML paper: a point starts at the origin, each task has a goal drawn uniformly from goal x goal, actions are velocities clipped to [-action_limit, action_limit], the reward is minus the distance to the goal after the move, and an episode ends within 0.01 of the goal or after horizon steps. Observations: the position (2); actions: 2 continuous.",
        settings: [
            EnvironmentSetting("goal", .range(low: -0.5, high: 0.5), bounds: -100...100, "range of each goal coordinate"),
            EnvironmentSetting("action_limit", .number(0.1), bounds: 1e-6...100, "actions are clipped to [-action_limit, action_limit] per axis"),
            EnvironmentSetting("horizon", .int(100), bounds: 1...100_000, "steps per episode"),
        ],
        example: "env nav = navigation2d < goal -0.5..0.5 horizon 100 >") { s in
            Navigation2D(goalRange: s.range("goal"), actionLimit: Float(s.number("action_limit")), horizon: s.int("horizon"))
        }

    public func sampleTasks(_ count: Int, using rng: inout RandomGenerator) -> Tensor {
        var values = [Float](repeating: 0, count: count * 2)
        for i in values.indices { values[i] = goalRange.lowerBound + (goalRange.upperBound - goalRange.lowerBound) * rng.nextFloat() }
        return Tensor(shape: [count, 2], values: values)
    }

    public func reset(tasks: Tensor, episodes: Int, using rng: inout RandomGenerator) -> Tensor {
        Tensor.zeros([tasks.shape[0], episodes, 2])
    }

    public func step(_ states: Tensor, actions: Tensor, tasks: Tensor, using rng: inout RandomGenerator) -> EnvironmentStep {
        let (t, e) = (states.shape[0], states.shape[1])
        let s = states.scalars, a = actions.scalars, g = tasks.scalars
        var next = [Float](repeating: 0, count: t * e * 2)
        var rewards = [Float](repeating: 0, count: t * e)
        var done = [Float](repeating: 0, count: t * e)
        for task in 0..<t {
            for episode in 0..<e {
                let i = task * e + episode
                var dist: Float = 0
                for axis in 0..<2 {
                    let move = Swift.min(Swift.max(a[i * 2 + axis], -actionLimit), actionLimit)
                    let p = s[i * 2 + axis] + (move.isNaN ? 0 : move)
                    next[i * 2 + axis] = p
                    dist += (p - g[task * 2 + axis]) * (p - g[task * 2 + axis])
                }
                dist = dist.squareRoot()
                rewards[i] = -dist
                done[i] = dist < successRadius ? 1 : 0
            }
        }
        return EnvironmentStep(states: Tensor(shape: [t, e, 2], values: next), rewards: Tensor(shape: [t, e], values: rewards),
                               done: Tensor(shape: [t, e], values: done))
    }
}
