import Foundation
import Testing
@testable import MetaQEngine

@Suite struct MetaRLTests {
    @Test func navigationClipsMovesAndRewardsMinusDistance() {
        let nav = Navigation2D()
        let goals = Tensor([[0.3, -0.2], [0.005, 0]])
        var rng = RandomGenerator(seed: 1)
        let s0 = nav.reset(tasks: goals, episodes: 1, using: &rng)
        #expect(s0.shape == [2, 1, 2] && s0.scalars == [0, 0, 0, 0])
        let step = nav.step(s0, actions: Tensor(shape: [2, 1, 2], values: [0.5, -0.05, 0.005, 0]), tasks: goals, using: &rng)
        #expect(step.states.scalars == [0.1, -0.05, 0.005, 0])
        #expect(abs(step.rewards.scalars[0] + 0.25) < 1e-6)       // sqrt(0.2^2 + 0.15^2)
        #expect(abs(step.rewards.scalars[1]) < 1e-6)
        #expect(step.done.scalars == [0, 1])                       // within 0.01 of its goal
        let g = nav.sampleTasks(500, using: &rng).scalars
        let inside = g.allSatisfy { $0 >= -0.5 && $0 <= 0.5 }
        let (lowest, highest) = (g.min() ?? 0, g.max() ?? 0)
        #expect(inside)
        #expect(lowest < -0.45 && highest > 0.45)
    }

    @Test func cartPoleFollowsGymDynamicsPerTask() {
        let pole = CartPole()
        // Gym's defaults: pole mass 0.1, half-length 0.5, cart mass 1.
        let task = Tensor([[0.1, 0.5, 1.0], [0.1, 1.0, 1.0]])
        let state = Tensor(shape: [2, 1, 4], values: [0, 0, 0.05, 0, 0, 0, 0.05, 0])
        var rng = RandomGenerator(seed: 1)
        let step = pole.step(state, actions: Tensor(shape: [2, 1, 1], values: [1, 1]), tasks: task, using: &rng)
        // By hand: temp = (10 + 0) / 1.1; thetaAcc = (9.8 sin .05 - cos .05 temp) / (0.5 (4/3 - 0.1 cos^2 / 1.1)).
        let temp: Double = 10 / 1.1
        let c: Double = cos(0.05), s: Double = sin(0.05)
        let denominator: Double = 0.5 * (4.0 / 3.0 - 0.1 * c * c / 1.1)
        let thetaAcc: Double = (9.8 * s - c * temp) / denominator
        let xAcc: Double = temp - 0.05 * thetaAcc * c / 1.1
        let v = step.states.scalars.map(Double.init)
        #expect(abs(v[1] - 0.02 * xAcc) < 1e-5)
        #expect(abs(v[3] - 0.02 * thetaAcc) < 1e-5)
        #expect(abs(v[2] - 0.05) < 1e-7)
        #expect(v[7] != v[3])                                      // a longer pole swings differently
        #expect(step.rewards.scalars == [1, 1] && step.done.scalars == [0, 0])
        let fallen = pole.step(Tensor(shape: [1, 1, 4], values: [0, 0, 0.3, 0]), actions: Tensor(shape: [1, 1, 1], values: [0]), tasks: Tensor([[0.1, 0.5, 1.0]]), using: &rng)
        #expect(fallen.done.scalars == [1])
    }

    @Test func malformedEnvironmentSettingsAreRejected() {
        let nav = EnvironmentRegistry.byName["navigation2d"]!
        func message(_ given: [String: EnvironmentSettingValue]) -> EnvironmentError? {
            do { _ = try nav.make(given); return nil } catch { return error }
        }
        #expect(message(["goal": .range(0.5, -0.5)])?.message.contains("empty range") == true)
        #expect(message(["goal": .range(-500, 1)])?.setting == "goal")
        #expect(message(["horizon": .number(2.5)])?.message.contains("whole number") == true)
        #expect(message(["horizon": .number(0)])?.setting == "horizon")
        #expect(message(["action_limit": .range(0, 1)])?.message.contains("needs a number") == true)
        #expect(message(["goals": .range(0, 1)])?.message.contains("no setting 'goals'") == true)
        let made = try? nav.make(["goal": .range(-1, 1), "horizon": .number(50)])
        #expect(made?.horizon == 50)
    }

    @Test func returnsAndBaselineAdvantages() {
        // One task, one episode of 4 steps that ends after 3.
        let tr = Trajectories(tasks: 1, episodes: 1, horizon: 4, observations: Tensor.zeros([1, 4, 1]),
                              actions: Tensor.zeros([1, 4, 1]), rewards: [1, 2, 3, 0], mask: [1, 1, 1, 0],
                              taskParameters: Tensor.zeros([1, 1]))
        let g = AdvantageEstimation.discountedReturns(tr, gamma: 0.5)
        let expected: [Float] = [2.75, 3.5, 3, 0]
        #expect(g == expected)
        // lambda = 1: the advantages are the returns minus the fitted baseline.
        let baseline = LinearFeatureBaseline.fitAndPredict(tr, returns: g)
        let adv = AdvantageEstimation(gamma: 0.5, lambda: 1, normalize: false).advantages(tr).scalars
        for i in 0..<4 { #expect(abs(adv[i] - tr.mask[i] * (g[i] - baseline[i])) < 1e-5) }
        // The baseline is a least-squares fit: returns that are a quadratic in the
        // observation are predicted (almost) exactly.
        let o = (0..<20).map { Float($0) / 10 - 1 }
        let line = Trajectories(tasks: 1, episodes: 1, horizon: 20, observations: Tensor(shape: [1, 20, 1], values: o),
                                actions: Tensor.zeros([1, 20, 1]), rewards: [Float](repeating: 0, count: 20),
                                mask: [Float](repeating: 1, count: 20), taskParameters: Tensor.zeros([1, 1]))
        let fitted = LinearFeatureBaseline.fitAndPredict(line, returns: o.map { 2 * $0 * $0 - $0 + 1 })
        for (x, b) in zip(o, fitted) { #expect(abs(b - (2 * x * x - x + 1)) < 1e-2, "\(x): \(b)") }
        #expect(tr.averageReturns == [6])
    }

    /// A Gaussian policy whose mean is the bias b of a 1 -> 1 linear layer at zero
    /// observations: log pi_t = -(a_t - b)^2 / (2 s^2) - log s - log(2 pi) / 2.
    func biasPolicy(_ b: Float, logStd: Float) -> (Policy, [Tensor]) {
        let net = Sequential(layers: [.linear(inputs: 1, outputs: 1)], parameters: [Tensor([[0.7]]), Tensor([b])])
        let policy = Policy(network: net, distribution: .gaussian, actions: 1)
        return (policy, [Tensor([[0.7]]), Tensor([b]), Tensor([logStd])])
    }

    @Test func gaussianLogProbabilityAndCategoricalGradient() {
        let (policy, params) = biasPolicy(0.3, logStd: -0.4)
        let actions = Tensor(shape: [1, 3, 1], values: [0.1, -0.5, 0.9])
        let logp = policy.logProbability(observations: Tensor.zeros([1, 3, 1]), actions: actions, parameters: policy.perTask(params, tasks: 1))
        let s = exp(-0.4)
        for (a, l) in zip(actions.scalars, logp.scalars) {
            let expected = -Double((a - 0.3) * (a - 0.3)) / (2 * Double(s * s)) + 0.4 - 0.5 * log(2 * Double.pi)
            #expect(abs(Double(l) - expected) < 1e-5)
        }
        // Finite differences through both distributions, all parameters.
        GradientCheck.firstOrder({ p in
            policy.logProbability(observations: Tensor(shape: [1, 3, 1], values: [0.5, -1, 2]), actions: actions, parameters: policy.perTask(p, tasks: 1))
        }, params)
        var rng = RandomGenerator(seed: 3)
        let net = Sequential.mlp(sizes: [2, 5, 3], activation: .tanh, using: &rng)
        let categorical = Policy(network: net, distribution: .categorical, actions: 3)
        let obs = Tensor.uniform([2, 4, 2], low: -1, high: 1, using: &rng)
        let chosen = Tensor(shape: [2, 4, 1], values: [0, 2, 1, 1, 2, 0, 0, 1])
        GradientCheck.firstOrder({ p in categorical.logProbability(observations: obs, actions: chosen, parameters: categorical.perTask(p, tasks: 2)) },
                                 categorical.parameters.map { $0.detached() })
        // Categorical log-probabilities are normalised.
        let all = (0..<3).map { k in categorical.logProbability(observations: obs, actions: Tensor.full(Float(k), shape: [2, 4, 1]), parameters: categorical.perTask(categorical.parameters, tasks: 2)).scalars }
        for i in 0..<8 {
            let total: Float = all.map { exp($0[i]) }.reduce(0, +)
            #expect(abs(total - 1) < 1e-5)
        }
    }

    /// The DiCE inner loss's gradient is the policy gradient, and its Hessian is the
    /// closed form of the score-function estimator's second derivative:
    /// sum_t m_t A_t (C''_t + C'_t^2 - C''_{t-1} - C'_{t-1}^2), C_t the running sum of log pi.
    /// The REINFORCE surrogate has the same gradient and only sum_t m_t A_t (log pi_t)''.
    @Test func diceGradientAndHessianMatchClosedForm() {
        let (b, logStd): (Float, Float) = (0.2, -0.3)
        let sigma2 = Double(exp(2 * logStd))
        let (episodes, horizon) = (2, 3)
        let actions: [Float] = [0.5, -0.1, 0.4, 0.9, 0.0, -0.6]
        let adv: [Float] = [1.5, -0.7, 0.3, 0.8, -1.2, 2.0]
        let mask: [Float] = [1, 1, 1, 1, 1, 0]
        for estimator in PolicyGradientEstimator.allCases {
            let (policy, params) = biasPolicy(b, logStd: logStd)
            let leaves = params.map { $0.requiringGradient() }
            let logp = policy.logProbability(observations: Tensor.zeros([1, 6, 1]), actions: Tensor(shape: [1, 6, 1], values: actions),
                                             parameters: policy.perTask(leaves, tasks: 1))
            let loss = PolicyGradient.innerLoss(logProbabilities: logp, advantages: Tensor(shape: [1, 6], values: adv),
                                                mask: Tensor(shape: [1, 6], values: mask), episodes: episodes, horizon: horizon,
                                                estimator: estimator).sum()
            let grad = gradients(of: loss, with: [leaves[1]], createGraph: true)[0]
            let hessian = gradients(of: grad.sum(), with: [leaves[1]])[0].scalar
            var expectedGrad = 0.0, expectedHessian = 0.0
            for e in 0..<episodes {
                var c1 = 0.0, c2 = 0.0
                for t in 0..<horizon {
                    let i = e * horizon + t
                    let m = Double(mask[i]), a = Double(adv[i])
                    let g = m * Double(actions[i] - b) / sigma2
                    let (p1, p2) = (c1, c2)
                    c1 += g
                    c2 -= m / sigma2
                    expectedGrad += m * a * g
                    expectedHessian += estimator == .dice ? m * a * ((c2 + c1 * c1) - (p2 + p1 * p1)) : m * a * (-m / sigma2)
                }
            }
            let n = Double(mask.reduce(0, +))
            let gradError: Double = abs(Double(grad.scalar) + expectedGrad / n)
            let hessianError: Double = abs(Double(hessian) + expectedHessian / n)
            #expect(gradError < 1e-4 * max(1, abs(expectedGrad)), "\(estimator) gradient")
            #expect(hessianError < 1e-3 * max(1, abs(expectedHessian)), "\(estimator) hessian \(hessian) vs \(-expectedHessian / n)")
            #expect(estimator == .reinforce || abs(loss.scalar) < 1e-6)    // DiCE's value is 0
        }
    }

    @Test func clippedLossMatchesPPOAndItsGradient() {
        let logp = Tensor([[0.0, 0.5, -0.5, 0.05]]), old = Tensor([[0, 0, 0, 0]] as [[Float]])
        let adv = Tensor([[1, 1, -1, -2]] as [[Float]])
        let loss = PolicyGradient.clippedLoss(logProbabilities: logp, oldLogProbabilities: old, advantages: adv,
                                              mask: Tensor.ones([1, 4]), clip: 0.2).scalars[0]
        let r: [Float] = [1, exp(0.5), exp(-0.5), exp(0.05)]
        let terms: [Float] = [min(r[0], 1), min(r[1], 1.2), min(-r[2], -0.8), -2 * r[3]]
        let expected: Float = -terms.reduce(0, +) / 4
        #expect(abs(loss - expected) < 1e-5)
        GradientCheck.firstOrder({ x in
            PolicyGradient.clippedLoss(logProbabilities: x[0], oldLogProbabilities: old, advantages: adv, mask: Tensor.ones([1, 4]), clip: 0.2)
        }, [Tensor([[0.0, 0.5, -0.5, 0.05]])], step: 1e-3)
    }

    @Test func secondOrderMetaGradientMatchesFiniteDifferences() throws {
        // The meta-objective through one inner step on fixed episodes, differentiated exactly
        // (second order) against central differences of the whole computation. On fixed
        // episodes this is the REINFORCE surrogate's derivative: DiCE's Hessian adds the
        // episodes' own dependence on the parameters, which differencing fixed episodes does
        // not see (its closed form is checked above).
        var rng = RandomGenerator(seed: 11)
        let nav = Navigation2D(horizon: 5)
        let net = Sequential.mlp(sizes: [2, 4, 2], activation: .tanh, using: &rng)
        let policy = Policy(network: net, for: nav.actionSpace, initialStd: 0.5)
        let maml = MAMLRL(environment: nav, policy: policy, estimator: .reinforce, episodes: 3, optimizer: SGD(learningRate: 0))
        let goals = nav.sampleTasks(2, using: &rng)
        let pre = try rollout(nav, policy: policy, parameters: policy.parameters, taskParameters: goals, episodes: 3, using: &rng)
        let post = try rollout(nav, policy: policy, parameters: policy.parameters, taskParameters: goals, episodes: 3, using: &rng)
        let preAdv = maml.advantage.advantages(pre), postAdv = maml.advantage.advantages(post)
        func objective(_ p: [Tensor]) -> Tensor {
            let fast = maml.adaptStep(p, on: pre, advantages: preAdv, createGraph: true)
            let logp = policy.logProbability(observations: post.observations, actions: post.actions, parameters: fast)
            return (logp * postAdv).sum()
        }
        GradientCheck.firstOrder(objective, policy.parameters.map { $0.detached() }, step: 1e-2, tolerance: 3e-2)
    }

    /// Meta-training on 2D navigation for a few iterations makes one adaptation step pay:
    /// after training, the return after one step is clearly above the return before it and
    /// above the untrained policy's. Fixed seed; a small network and few tasks.
    @Test func adaptationImprovesReturnOnNavigation() throws {
        var rng = RandomGenerator(seed: 7)
        let nav = Navigation2D()
        let net = Sequential.mlp(sizes: [2, 32, 32, 2], using: &rng)
        let policy = Policy(network: net, for: nav.actionSpace)
        let maml = MAMLRL(environment: nav, policy: policy, innerSteps: 1, innerRate: 0.1, episodes: 10, epochs: 3,
                          optimizer: Adam(learningRate: 0.01))
        var evalRng = RandomGenerator(seed: 99)
        let before = try maml.evaluate(tasks: 10, steps: [0, 1], batch: 10, using: &evalRng)
        for _ in 0..<30 { try maml.metaStep(tasks: 10, using: &rng) }
        evalRng = RandomGenerator(seed: 99)
        let after = try maml.evaluate(tasks: 10, steps: [0, 1], batch: 10, using: &evalRng)
        func mean(_ x: [Float]) -> Float { x.reduce(0, +) / Float(x.count) }
        print("navigation returns: untrained \(mean(before[0])) -> \(mean(before[1])), trained \(mean(after[0])) -> \(mean(after[1]))")
        #expect(mean(after[1]) > mean(after[0]) + 2)
        #expect(mean(after[1]) > mean(before[0]) + 5)
    }

    /// The policy's network parameters live in its network (so the model value a script made
    /// it from sees training), and a maml_rl checkpoint holds the network, the log std, Adam's
    /// state and the settings: decoded, it rebuilds the same learner.
    @Test func policyParametersAndCheckpointRoundTrip() throws {
        var rng = RandomGenerator(seed: 3)
        let nav = Navigation2D(horizon: 6)
        let net = Sequential.mlp(sizes: [2, 8, 2], using: &rng)
        let policy = Policy(network: net, for: nav.actionSpace, initialStd: 0.5)
        let maml = MAMLRL(environment: nav, policy: policy, innerSteps: 1, innerRate: 0.1, estimator: .reinforce, episodes: 3,
                          clip: 0.3, epochs: 2, optimizer: Adam(learningRate: 0.01))
        for _ in 0..<2 { try maml.metaStep(tasks: 3, using: &rng) }
        #expect(net.parameters.map(\.scalars) == Array(policy.parameters.prefix(net.parameters.count)).map(\.scalars))
        #expect(policy.logStd?.scalars != [log(0.5), log(0.5)])          // trained
        let bytes = try Checkpoint(learner: maml, step: 2).encoded()
        let decoded = try Checkpoint.decode(bytes)
        guard case let .reinforcement(copy)? = try decoded.makeLearner() else {
            Issue.record("not restored as a reinforcement learner")
            return
        }
        #expect(copy.settings == maml.settings)
        #expect(copy.settings.clip == 0.3 && copy.settings.estimator == .reinforce && copy.settings.environment == "navigation2d")
        #expect(copy.policy.parameters.map(\.scalars) == maml.policy.parameters.map(\.scalars))
        #expect(copy.optimizer.state == maml.optimizer.state)
        // The environment is not part of the learner: the restored one has a default
        // navigation2d until it is given one. On the same environment both continue identically.
        #expect(copy.environment.horizon == 100)
        copy.environment = nav
        var a = RandomGenerator(seed: 9), b = RandomGenerator(seed: 9)
        try maml.metaStep(tasks: 3, using: &a)
        try copy.metaStep(tasks: 3, using: &b)
        #expect(copy.policy.parameters.map(\.scalars) == maml.policy.parameters.map(\.scalars))
        // Settings that do not fit are refused with a reason, not a trap.
        var bad = maml.snapshot
        bad.configuration = LearnerConfiguration(MAMLRLSettings(
            innerSteps: 1, innerRate: 0.1, firstOrder: false, estimator: .dice, episodes: 3, gamma: 0.99, lambda: 1, normalize: true,
            clip: 0.2, epochs: 1, distribution: "categorical", actions: 2, environment: "navigation2d"))
        #expect(throws: CheckpointError.self) { _ = try bad.makeLearner(model: Sequential(layers: net.layers, parameters: net.parameters)) }
        bad.configuration = LearnerConfiguration(MAMLRLSettings(
            innerSteps: 1, innerRate: 0.1, firstOrder: false, estimator: .dice, episodes: 3, gamma: 0.99, lambda: 1, normalize: true,
            clip: 0.2, epochs: 1, distribution: "gaussian", actions: 2, environment: "navigation9d"))
        #expect(throws: CheckpointError.self) { _ = try bad.makeLearner(model: Sequential(layers: net.layers, parameters: net.parameters)) }
    }

    /// A family outside the registry (written in a script) is restored from a checkpoint as
    /// a stand-in with its sizes and action bounds: the learner can be checked and given the
    /// family again, and until then it refuses to run with the reason.
    @Test func unregisteredFamilyIsRestoredAsAStandIn() throws {
        struct Walk: MetaEnvironment {
            var name: String { "walk" }
            var observationSize: Int { 3 }
            var stateSize: Int { 3 }
            var actionSpace: ActionSpace { .continuous(dimensions: 2, low: -0.2, high: 0.3) }
            var horizon: Int { 4 }
            func sampleTasks(_ count: Int, using rng: inout RandomGenerator) -> Tensor { Tensor.zeros([count, 1]) }
            func reset(tasks: Tensor, episodes: Int, using rng: inout RandomGenerator) -> Tensor { Tensor.zeros([tasks.shape[0], episodes, 3]) }
            func step(_ states: Tensor, actions: Tensor, tasks: Tensor, using rng: inout RandomGenerator) -> EnvironmentStep {
                EnvironmentStep(states: states, rewards: Tensor.zeros(Array(states.shape.prefix(2))), done: Tensor.zeros(Array(states.shape.prefix(2))))
            }
        }
        var rng = RandomGenerator(seed: 5)
        let net = Sequential.mlp(sizes: [3, 4, 2], using: &rng)
        let maml = MAMLRL(environment: Walk(), policy: Policy(network: net, for: Walk().actionSpace), episodes: 2, optimizer: SGD(learningRate: 0.1))
        #expect(maml.settings.observations == 3 && maml.settings.actionLow == -0.2 && maml.settings.actionHigh == 0.3 && maml.settings.horizon == 4)
        #expect(try maml.environment.taskParameterCount() == 1)
        let decoded = try Checkpoint.decode(try Checkpoint(learner: maml, step: 0).encoded())
        guard case let .reinforcement(copy)? = try decoded.makeLearner() else {
            Issue.record("not restored as a reinforcement learner")
            return
        }
        #expect(copy.environment.name == "walk" && copy.environment.observationSize == 3 && copy.environment.horizon == 4)
        #expect(copy.environment.actionSpace == Walk().actionSpace)
        #expect(copy.settings == maml.settings)
        var r = RandomGenerator(seed: 1)
        #expect { try copy.metaStep(tasks: 2, using: &r) } throws: { error in
            "\(error)".contains("this learner was trained on 'walk', an environment written in a script")
        }
        copy.environment = Walk()
        _ = try copy.metaStep(tasks: 2, using: &r)
    }
}
