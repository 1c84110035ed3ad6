import Foundation

/// Episodes of a batch of tasks: `episodes` per task, each `horizon` steps long, with a mask
/// that is 1 while the episode runs (it may end early) and 0 after.
public struct Trajectories: Sendable {
    public let tasks: Int
    public let episodes: Int
    public let horizon: Int
    /// Observations [T, E * H, O], the episode-major order of (episode, step).
    public let observations: Tensor
    /// Actions [T, E * H, width].
    public let actions: Tensor
    /// Rewards [T * E * H] (0 after an episode ends).
    public let rewards: [Float]
    /// 1 while the episode runs [T * E * H].
    public let mask: [Float]
    /// The task parameters [T, P] (goals, masses).
    public let taskParameters: Tensor

    public init(tasks: Int, episodes: Int, horizon: Int, observations: Tensor, actions: Tensor, rewards: [Float], mask: [Float],
                taskParameters: Tensor) {
        self.tasks = tasks
        self.episodes = episodes
        self.horizon = horizon
        self.observations = observations
        self.actions = actions
        self.rewards = rewards
        self.mask = mask
        self.taskParameters = taskParameters
    }

    public var maskTensor: Tensor { Tensor(shape: [tasks, episodes * horizon], values: mask) }

    /// The undiscounted return of each episode, [T][E].
    public var episodeReturns: [[Float]] {
        (0..<tasks).map { t in
            (0..<episodes).map { e in
                let base = (t * episodes + e) * horizon
                return rewards[base..<(base + horizon)].reduce(0, +)
            }
        }
    }

    /// The mean return of each task's episodes.
    public var averageReturns: [Float] { episodeReturns.map { $0.reduce(0, +) / Float(Swift.max($0.count, 1)) } }
}

/// Runs `episodes` episodes of each task of `taskParameters` with `policy` (per-task or
/// shared parameters), all tasks and episodes stepped together.
public func rollout(
    _ environment: any MetaEnvironment, policy: Policy, parameters: [Tensor], taskParameters: Tensor,
    episodes: Int, using rng: inout RandomGenerator
) throws -> Trajectories {
    let params = policy.perTask(parameters.map { $0.detached() }, tasks: taskParameters.shape[0])
    return try rollout(environment, taskParameters: taskParameters, episodes: episodes, using: &rng) { obs, rng in
        policy.sample(observations: obs, parameters: params, using: &rng)
    }
}

/// Runs `episodes` episodes of each task of `taskParameters`, all tasks and episodes stepped
/// together, with actions [T, E, width] chosen by `act` from observations [T, E, O].
public func rollout(
    _ environment: any MetaEnvironment, taskParameters: Tensor, episodes: Int, using rng: inout RandomGenerator,
    act: (Tensor, inout RandomGenerator) throws -> Tensor
) throws -> Trajectories {
    let t = taskParameters.shape[0], h = environment.horizon
    let o = environment.observationSize, w = environment.actionSpace.width
    var state = try environment.reset(tasks: taskParameters, episodes: episodes, using: &rng)
    var observations = [Float](repeating: 0, count: t * episodes * h * o)
    var actions = [Float](repeating: 0, count: t * episodes * h * w)
    var rewards = [Float](repeating: 0, count: t * episodes * h)
    var mask = [Float](repeating: 0, count: t * episodes * h)
    var alive = [Bool](repeating: true, count: t * episodes)
    for step in 0..<h {
        guard alive.contains(true) else { break }
        let obs = try environment.observe(state, tasks: taskParameters)
        let act = try act(obs, &rng)
        let result = try environment.step(state, actions: act, tasks: taskParameters, using: &rng)
        let (os, acts, rs, ds) = (obs.scalars, act.scalars, result.rewards.scalars, result.done.scalars)
        for i in 0..<(t * episodes) where alive[i] {
            let at = i * h + step
            for k in 0..<o { observations[at * o + k] = os[i * o + k] }
            for k in 0..<w { actions[at * w + k] = acts[i * w + k] }
            rewards[at] = rs[i]
            mask[at] = 1
            if ds[i] != 0 { alive[i] = false }
        }
        state = result.states
    }
    return Trajectories(tasks: t, episodes: episodes, horizon: h,
                        observations: Tensor(shape: [t, episodes * h, o], values: observations),
                        actions: Tensor(shape: [t, episodes * h, w], values: actions),
                        rewards: rewards, mask: mask, taskParameters: taskParameters)
}

/// How advantages are estimated.
public struct AdvantageEstimation: Sendable, Equatable {
    /// Discount.
    public var gamma: Float
    /// GAE's lambda (1: discounted returns minus the baseline).
    public var lambda: Float
    /// Standardise each task's advantages to mean 0 and deviation 1.
    public var normalize: Bool

    public init(gamma: Float = 0.99, lambda: Float = 1, normalize: Bool = true) {
        self.gamma = gamma
        self.lambda = lambda
        self.normalize = normalize
    }

    /// Discounted returns-to-go [T * E * H] (0 after an episode ends).
    public static func discountedReturns(_ tr: Trajectories, gamma: Float) -> [Float] {
        var out = [Float](repeating: 0, count: tr.rewards.count)
        for episode in 0..<(tr.tasks * tr.episodes) {
            var running: Float = 0
            for step in stride(from: tr.horizon - 1, through: 0, by: -1) {
                let i = episode * tr.horizon + step
                running = tr.mask[i] * (tr.rewards[i] + gamma * running)
                out[i] = running
            }
        }
        return out
    }

    /// Advantages [T, E * H] (0 where the mask is 0), with each task's linear feature
    /// baseline fitted to its own returns.
    public func advantages(_ tr: Trajectories) -> Tensor {
        let returns = Self.discountedReturns(tr, gamma: gamma)
        let baseline = LinearFeatureBaseline.fitAndPredict(tr, returns: returns)
        var adv = [Float](repeating: 0, count: tr.rewards.count)
        for episode in 0..<(tr.tasks * tr.episodes) {
            var running: Float = 0
            for step in stride(from: tr.horizon - 1, through: 0, by: -1) {
                let i = episode * tr.horizon + step
                guard tr.mask[i] != 0 else { running = 0; continue }
                let nextValue = step + 1 < tr.horizon && tr.mask[i + 1] != 0 ? baseline[i + 1] : 0
                let delta = tr.rewards[i] + gamma * nextValue - baseline[i]
                running = delta + gamma * lambda * running
                adv[i] = running
            }
        }
        if normalize {
            let n = tr.episodes * tr.horizon
            for task in 0..<tr.tasks {
                let range = (task * n)..<((task + 1) * n)
                let count = tr.mask[range].reduce(0, +)
                guard count > 1 else { continue }
                let mean = zip(adv[range], tr.mask[range]).map { $0 * $1 }.reduce(0, +) / count
                let variance = zip(adv[range], tr.mask[range]).map { ($0 - mean) * ($0 - mean) * $1 }.reduce(0, +) / count
                let std = variance.squareRoot() + 1e-8
                for i in range { adv[i] = tr.mask[i] * (adv[i] - mean) / std }
            }
        }
        return Tensor(shape: [tr.tasks, tr.episodes * tr.horizon], values: adv)
    }
}

/// The linear feature baseline of rllab (used by the MAML paper): per task, a ridge
/// regression of the returns on the features [o, o^2, t/100, (t/100)^2, (t/100)^3, 1] of each
/// step (observations clipped to +-10), fitted by least squares on the task's own episodes.
public enum LinearFeatureBaseline {
    static func features(_ o: ArraySlice<Float>, step: Int) -> [Double] {
        let clipped = o.map { Double(Swift.min(Swift.max($0, -10), 10)) }
        let a = Double(step) / 100
        return clipped + clipped.map { $0 * $0 } + [a, a * a, a * a * a, 1]
    }

    /// Per-step baseline values [T * E * H], each task's fitted on that task's steps.
    public static func fitAndPredict(_ tr: Trajectories, returns: [Float]) -> [Float] {
        let o = tr.observations.shape[2]
        let obs = tr.observations.scalars
        let f = 2 * o + 4
        let n = tr.episodes * tr.horizon
        var out = [Float](repeating: 0, count: returns.count)
        for task in 0..<tr.tasks {
            var xtx = [Double](repeating: 0, count: f * f), xty = [Double](repeating: 0, count: f)
            var rows: [[Double]] = []
            rows.reserveCapacity(n)
            for j in 0..<n {
                let i = task * n + j
                let x = features(obs[(i * o)..<((i + 1) * o)], step: j % tr.horizon)
                rows.append(x)
                guard tr.mask[i] != 0 else { continue }
                for a in 0..<f {
                    xty[a] += x[a] * Double(returns[i])
                    for b in 0..<f { xtx[a * f + b] += x[a] * x[b] }
                }
            }
            // rllab: a regulariser of 1e-5, raised tenfold until the solution is finite.
            var weights = [Double](repeating: 0, count: f)
            var reg = 1e-5
            for _ in 0..<6 {
                var m = xtx
                for a in 0..<f { m[a * f + a] += reg }
                if let w = solve(m, xty, size: f), w.allSatisfy(\.isFinite) { weights = w; break }
                reg *= 10
            }
            for j in 0..<n {
                let i = task * n + j
                guard tr.mask[i] != 0 else { continue }
                out[i] = Float(zip(rows[j], weights).map { $0 * $1 }.reduce(0, +))
            }
        }
        return out
    }

    /// Solves m x = b by Gaussian elimination with partial pivoting; nil when singular.
    static func solve(_ m: [Double], _ b: [Double], size n: Int) -> [Double]? {
        var a = m, y = b
        for col in 0..<n {
            var pivot = col
            for r in (col + 1)..<n where Swift.abs(a[r * n + col]) > Swift.abs(a[pivot * n + col]) { pivot = r }
            guard Swift.abs(a[pivot * n + col]) > 1e-300 else { return nil }
            if pivot != col {
                for k in 0..<n { a.swapAt(col * n + k, pivot * n + k) }
                y.swapAt(col, pivot)
            }
            for r in (col + 1)..<n {
                let factor = a[r * n + col] / a[col * n + col]
                guard factor != 0 else { continue }
                for k in col..<n { a[r * n + k] -= factor * a[col * n + k] }
                y[r] -= factor * y[col]
            }
        }
        var x = [Double](repeating: 0, count: n)
        for r in stride(from: n - 1, through: 0, by: -1) {
            var s = y[r]
            for k in (r + 1)..<n { s -= a[r * n + k] * x[k] }
            x[r] = s / a[r * n + r]
        }
        return x
    }
}
