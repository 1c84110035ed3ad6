import Foundation

/// How the inner loop's policy-gradient loss is formed.
public enum PolicyGradientEstimator: String, Codable, Sendable, CaseIterable {
    /// Loaded DiCE (Foerster et al. 2018; Farquhar et al. 2019): sum_t (box(L_t) - box(L_{t-1})) A_t
    /// with L_t = sum_{t' <= t} log pi(a_t' | s_t') and box(x) = exp(x - stop(x)). Its value is 0
    /// and its gradient the policy gradient sum_t grad log pi_t A_t; unlike the surrogate below,
    /// its Hessian also holds the terms from the inner episodes' own dependence on the
    /// parameters, so the second-order meta-gradient through it is unbiased.
    case dice
    /// The REINFORCE surrogate sum_t log pi_t A_t: the same gradient, but differentiating it
    /// again drops the sampling terms (the meta-gradient of the original MAML-RL code).
    case reinforce
}

/// The policy-gradient losses, as differentiable functions of per-task policy parameters.
public enum PolicyGradient {
    /// The upper-triangular ones [H, H]: x @ U is the running sum of x along its last axis.
    static func runningSumMatrix(_ h: Int) -> Tensor {
        Tensor.filled([h, h]) { p in
            for s in 0..<h { for t in 0..<h { p[s * h + t] = s <= t ? 1 : 0 } }
        }
    }

    /// The inner loss of each task [T]: minus the estimator's objective, averaged over the
    /// task's valid steps. `logProbabilities` [T, E * H] come from the policy being adapted;
    /// `advantages` and the mask are constants.
    public static func innerLoss(
        logProbabilities logp: Tensor, advantages: Tensor, mask: Tensor, episodes: Int, horizon: Int,
        estimator: PolicyGradientEstimator
    ) -> Tensor {
        let t = logp.shape[0]
        let counts = mask.sum(axis: 1).scalars.map { Swift.max($0, 1) }
        let inverse = Tensor(shape: [t], values: counts.map { 1 / $0 })
        let objective: Tensor
        switch estimator {
        case .reinforce:
            objective = (logp * advantages * mask).sum(axis: 1)
        case .dice:
            let masked = (logp * mask).reshaped(to: [t * episodes, horizon])
            let cumulative = masked.matmul(runningSumMatrix(horizon))
            let before = cumulative - masked
            let box = (cumulative - cumulative.detached()).exp() - (before - before.detached()).exp()
            objective = (box.reshaped(to: [t, episodes * horizon]) * advantages * mask).sum(axis: 1)
        }
        return -(objective * inverse)
    }

    /// PPO's clipped surrogate of each task [T] (Schulman et al. 2017), negated: ratios
    /// pi / pi_old of `logProbabilities` against the constant `oldLogProbabilities`.
    public static func clippedLoss(
        logProbabilities logp: Tensor, oldLogProbabilities old: Tensor, advantages: Tensor, mask: Tensor, clip: Float
    ) -> Tensor {
        let t = logp.shape[0]
        let counts = mask.sum(axis: 1).scalars.map { Swift.max($0, 1) }
        let inverse = Tensor(shape: [t], values: counts.map { 1 / $0 })
        let ratio = (logp - old).exp()
        let clipped = -(-ratio.maximum(Tensor(1 - clip))).maximum(Tensor(-(1 + clip)))
        // min(a, b) = -max(-a, -b)
        let surrogate = -(-(ratio * advantages)).maximum(-(clipped * advantages))
        return -((surrogate * mask).sum(axis: 1) * inverse)
    }
}

/// The result of one meta-iteration.
public struct MetaRLStep: Sendable {
    /// Mean return of the tasks' episodes before adaptation and after the inner steps.
    public var returnBefore: Float
    public var returnAfter: Float
    /// The outer loss after the last outer epoch's update was computed (before it).
    public var loss: Float
}

/// MAML for reinforcement learning (Finn et al. 2017, section 5.3): the inner loop adapts a
/// policy to each task with `inner.steps` policy-gradient steps, each on `episodes` fresh
/// episodes of the policy being adapted; the outer loop improves the post-adaptation return.
///
/// The outer optimiser here is PPO's clipped objective (Schulman et al. 2017), as in ProMP
/// (Rothfuss et al. 2019), with `epochs` Adam steps per meta-iteration on the same episodes;
/// the paper's TRPO is not implemented. With `firstOrder` off the meta-gradient
/// differentiates through the inner policy-gradient steps (second order), and with the
/// DiCE estimator (the default) that includes the inner episodes' dependence on the
/// parameters. With `inner.steps` 0 it trains one policy on all tasks: the paper's
/// "pretrained" baseline.
public final class MAMLRL: @unchecked Sendable {
    /// The environment episodes are drawn from (replaceable by one with the same
    /// observations and actions: training and test task ranges may differ).
    public var environment: any MetaEnvironment
    public let policy: Policy
    public var innerSteps: Int
    public var innerRate: Float
    public var firstOrder: Bool
    public var estimator: PolicyGradientEstimator
    public var episodes: Int
    public var advantage: AdvantageEstimation
    public var clip: Float
    public var epochs: Int
    public var optimizer: Optimizer

    public init(environment: any MetaEnvironment, policy: Policy, innerSteps: Int = 1, innerRate: Float = 0.1,
                firstOrder: Bool = false, estimator: PolicyGradientEstimator = .dice, episodes: Int = 20,
                advantage: AdvantageEstimation = AdvantageEstimation(), clip: Float = 0.2, epochs: Int = 5,
                optimizer: Optimizer) {
        self.environment = environment
        self.policy = policy
        self.innerSteps = innerSteps
        self.innerRate = innerRate
        self.firstOrder = firstOrder
        self.estimator = estimator
        self.episodes = episodes
        self.advantage = advantage
        self.clip = clip
        self.epochs = epochs
        self.optimizer = optimizer
    }

    /// One inner policy-gradient step on episodes `episodes` (drawn with `parameters`):
    /// `parameters - rate * grad(inner loss)`, per task. With `createGraph` the result is a
    /// differentiable function of `parameters`.
    public func adaptStep(_ parameters: [Tensor], on episodes: Trajectories, advantages: Tensor, createGraph: Bool) -> [Tensor] {
        let fast = policy.perTask(parameters, tasks: episodes.tasks).map { $0.requiresGradient ? $0 : $0.requiringGradient() }
        let logp = policy.logProbability(observations: episodes.observations, actions: episodes.actions, parameters: fast)
        let loss = PolicyGradient.innerLoss(logProbabilities: logp, advantages: advantages, mask: episodes.maskTensor,
                                            episodes: episodes.episodes, horizon: episodes.horizon, estimator: estimator).sum()
        let steps = gradients(of: loss, with: fast, seed: Tensor(-innerRate), createGraph: createGraph)
        return zip(fast, steps).map { $0 + $1 }
    }

    /// Episodes of every inner step and the ones after adaptation, with their advantages:
    /// drawn with the current parameters, adapting without a graph.
    func sampleEpisodes(tasks: Tensor, using rng: inout RandomGenerator) throws -> [(Trajectories, Tensor)] {
        var params = policy.parameters.map { $0.detached() }
        var drawn: [(Trajectories, Tensor)] = []
        for step in 0...innerSteps {
            let episodes = try rollout(environment, policy: policy, parameters: params, taskParameters: tasks, episodes: self.episodes, using: &rng)
            let adv = advantage.advantages(episodes)
            drawn.append((episodes, adv))
            if step < innerSteps { params = adaptStep(params, on: episodes, advantages: adv, createGraph: false).map { $0.detached() } }
        }
        return drawn
    }

    /// One meta-iteration on `tasks` new tasks.
    @discardableResult
    public func metaStep(tasks count: Int, using rng: inout RandomGenerator) throws -> MetaRLStep {
        let tasks = try environment.sampleTasks(count, using: &rng)
        let drawn = try sampleEpisodes(tasks: tasks, using: &rng)
        let (final, finalAdvantages) = drawn[innerSteps]
        let mask = final.maskTensor
        var oldLogp: Tensor?
        var lastLoss: Float = .nan
        for _ in 0..<Swift.max(epochs, 1) {
            var params = policy.parameters
            for step in 0..<innerSteps {
                params = adaptStep(params, on: drawn[step].0, advantages: drawn[step].1, createGraph: !firstOrder)
            }
            let logp = policy.logProbability(observations: final.observations, actions: final.actions,
                                             parameters: policy.perTask(params, tasks: count))
            let old = oldLogp ?? logp.detached()
            oldLogp = old
            let loss = PolicyGradient.clippedLoss(logProbabilities: logp, oldLogProbabilities: old, advantages: finalAdvantages,
                                                  mask: mask, clip: clip).mean()
            lastLoss = loss.scalar
            let grads = gradients(of: loss, with: policy.parameters)
            policy.parameters = optimizer.update(policy.parameters, gradients: grads)
        }
        func mean(_ xs: [Float]) -> Float { xs.reduce(0, +) / Float(Swift.max(xs.count, 1)) }
        return MetaRLStep(returnBefore: mean(drawn[0].0.averageReturns), returnAfter: mean(final.averageReturns), loss: lastLoss)
    }

    /// The average return of each task's episodes after each of `steps` adaptation steps
    /// (`result[i][t]`), on `tasks` new tasks run `batch` at a time. Every step adapts on
    /// fresh episodes of the policy adapted so far; the learner does not change.
    public func evaluate(tasks: Int, steps: [Int], batch: Int = 20, using rng: inout RandomGenerator,
                         shouldStop: () -> Bool = { false }, progress: (Int, Int) -> Void = { _, _ in }) throws -> [[Float]] {
        let last = steps.max() ?? 0
        var scores = [[Float]](repeating: [], count: steps.count)
        var done = 0
        while done < tasks, !shouldStop() {
            let n = Swift.min(batch, tasks - done)
            let taskParameters = try environment.sampleTasks(n, using: &rng)
            var params = policy.parameters.map { $0.detached() }
            for step in 0...last {
                let episodes = try rollout(environment, policy: policy, parameters: params, taskParameters: taskParameters,
                                       episodes: self.episodes, using: &rng)
                for (i, s) in steps.enumerated() where s == step { scores[i] += episodes.averageReturns }
                if step < last {
                    params = adaptStep(params, on: episodes, advantages: advantage.advantages(episodes), createGraph: false).map { $0.detached() }
                }
            }
            done += n
            progress(done, tasks)
        }
        return scores
    }
}

// MARK: Registry row and checkpoints

/// The settings of a `maml_rl` learner in a checkpoint. The environment is not part of the
/// learner: a restored learner takes the one it is trained or evaluated on (same observations
/// and actions), and until then a default one of the family it was trained on.
public struct MAMLRLSettings: LearnerSettings, Equatable {
    public var innerSteps: Int
    public var innerRate: Float
    public var firstOrder: Bool
    public var estimator: PolicyGradientEstimator
    public var episodes: Int
    public var gamma: Float
    public var lambda: Float
    public var normalize: Bool
    public var clip: Float
    public var epochs: Int
    /// gaussian or categorical, and the action dimensions or number of actions.
    public var distribution: String
    public var actions: Int
    /// The environment family it was made for (a registry name, or the name of one written
    /// in a script).
    public var environment: String
    /// The environment's observation size, continuous action bounds and horizon: what a
    /// family that is not in the registry (written in a script) is restored with, until the
    /// learner is given the environment itself. Absent in checkpoints written before them.
    public var observations: Int? = nil
    public var actionLow: Float? = nil
    public var actionHigh: Float? = nil
    public var horizon: Int? = nil

    public static let kind = LearnerKind(
        "maml_rl", key: "maml_rl", settings: MAMLRLSettings.self, training: .environments,
        summary: "MAML for reinforcement learning: policy-gradient inner steps, PPO outer loop, on an environment family.",
        adaptation: nil)

    public func makeLearner(from snapshot: LearnerSnapshot, model: Sequential, optimizer: Optimizer) throws(CheckpointError) -> RestoredLearner {
        func inconsistent(_ m: String) -> CheckpointError { CheckpointError(.inconsistent, m) }
        guard innerSteps >= 0, innerSteps <= 100 else { throw inconsistent("inner loop of \(innerSteps) steps (0...100)") }
        guard innerRate.isFinite, innerRate >= 0 else { throw inconsistent("inner learning rate \(innerRate) is not a non-negative number") }
        guard episodes >= 1, episodes <= 10_000, epochs >= 1, epochs <= 1000 else { throw inconsistent("episodes \(episodes) or epochs \(epochs) out of range") }
        guard gamma >= 0, gamma <= 1, lambda >= 0, lambda <= 1, clip > 0, clip <= 10 else { throw inconsistent("gamma, lambda or clip out of range") }
        let env: any MetaEnvironment
        if let kind = EnvironmentRegistry.byName[environment], let made = try? kind.make([:]) {
            env = made
        } else if let observations, observations >= 1, observations <= 1 << 20, actions >= 1, actions <= 1 << 20 {
            // A family written in a script: a stand-in with its sizes until it is given.
            let space: ActionSpace
            if distribution == Policy.Distribution.categorical.rawValue {
                space = .discrete(actions: actions)
            } else {
                guard let low = actionLow, let high = actionHigh, low.isFinite, high.isFinite, low <= high else {
                    throw inconsistent("the action bounds of the environment '\(environment)' are missing or not finite")
                }
                space = .continuous(dimensions: actions, low: low, high: high)
            }
            env = DetachedEnvironment(name: environment, observationSize: observations, actionSpace: space,
                                      horizon: Swift.max(1, Swift.min(horizon ?? 1, 100_000)))
        } else {
            throw inconsistent("unknown environment family '\(environment)' (known: \(EnvironmentRegistry.kinds.map(\.name).joined(separator: ", ")))")
        }
        let expected: Policy.Distribution = if case .continuous = env.actionSpace { .gaussian } else { .categorical }
        guard let dist = Policy.Distribution(rawValue: distribution), dist == expected, actions == env.actionSpace.policyOutputs else {
            throw inconsistent("a \(distribution) policy with \(actions) actions does not fit \(environment)")
        }
        var out: [Int] = []
        do throws(ShapeError) { out = try model.outputShape(for: [env.observationSize]) } catch {
            throw inconsistent("the policy network does not take \(environment)'s observations: \(error.message)")
        }
        guard out == [actions] else { throw inconsistent("the policy network outputs \(out), not \(actions) values") }
        let policy = Policy(network: model, distribution: dist, actions: actions)
        if dist == .gaussian { policy.logStd = try snapshot.tensor("log_std", shape: [actions]).requiringGradient() }
        let learner = MAMLRL(environment: env, policy: policy, innerSteps: innerSteps, innerRate: innerRate, firstOrder: firstOrder,
                             estimator: estimator, episodes: episodes,
                             advantage: AdvantageEstimation(gamma: gamma, lambda: lambda, normalize: normalize),
                             clip: clip, epochs: epochs, optimizer: optimizer)
        return .reinforcement(learner)
    }
}

extension MAMLRL: CheckpointableLearner {
    public var model: Sequential { policy.network }

    public var settings: MAMLRLSettings {
        MAMLRLSettings(innerSteps: innerSteps, innerRate: innerRate, firstOrder: firstOrder, estimator: estimator, episodes: episodes,
                       gamma: advantage.gamma, lambda: advantage.lambda, normalize: advantage.normalize, clip: clip, epochs: epochs,
                       distribution: policy.distribution.rawValue, actions: policy.actions, environment: environment.name,
                       observations: registered ? nil : environment.observationSize, actionLow: registered ? nil : actionBounds?.low,
                       actionHigh: registered ? nil : actionBounds?.high, horizon: registered ? nil : environment.horizon)
    }

    /// Whether the environment's family is in the registry (restored by name alone).
    private var registered: Bool { EnvironmentRegistry.byName[environment.name] != nil }

    private var actionBounds: (low: Float, high: Float)? {
        if case let .continuous(_, low, high) = environment.actionSpace { (low, high) } else { nil }
    }

    public var snapshot: LearnerSnapshot {
        // The loss field is for task learners; a policy is scored by its returns.
        LearnerSnapshot(configuration: LearnerConfiguration(settings), loss: .meanSquaredError, optimizer: optimizer.state,
                        optimized: model.parameterSpecs.map(\.name) + (policy.logStd == nil ? [] : ["log_std"]),
                        tensors: policy.logStd.map { ["log_std": $0.detached()] } ?? [:])
    }
}
