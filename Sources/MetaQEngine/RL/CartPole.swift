import Foundation

/// Cart-pole balancing (Barto, Sutton and Anderson 1983; the dynamics of Gym's CartPole-v1)
/// with per-task physics: each task draws its pole mass, pole length and cart mass from the
/// given ranges, so the same push moves the pole differently from task to task. Two discrete
/// actions push the cart left or right with force 10; the reward is 1 per step while the
/// pole stays within 12 degrees of upright and the cart within 2.4 of the centre, and the
/// episode ends when either leaves (or at the horizon). States start uniform in +-0.05.
public struct CartPole: MetaEnvironment {
    public var poleMass: ClosedRange<Float>
    /// Half the pole's length, as in Gym.
    public var poleLength: ClosedRange<Float>
    public var cartMass: ClosedRange<Float>
    public var horizon: Int
    let gravity: Float = 9.8, force: Float = 10, tau: Float = 0.02
    let angleLimit: Float = 12 * 2 * Float.pi / 360, positionLimit: Float = 2.4

    public init(poleMass: ClosedRange<Float> = 0.05...0.5, poleLength: ClosedRange<Float> = 0.25...1.0,
                cartMass: ClosedRange<Float> = 0.5...2.0, horizon: Int = 200) {
        self.poleMass = poleMass
        self.poleLength = poleLength
        self.cartMass = cartMass
        self.horizon = horizon
    }

    public var name: String { "cartpole" }
    public var observationSize: Int { 4 }
    public var stateSize: Int { 4 }
    public var actionSpace: ActionSpace { .discrete(actions: 2) }

    public static let kind = EnvironmentKind(
        name: "cartpole",
        summary: "Cart-pole balancing with Gym's CartPole-v1 dynamics and per-task physics: each task draws its pole mass, pole half-length and cart mass from the ranges. Actions: 2 discrete (push left, push right, force 10); reward 1 per step until the pole leaves 12 degrees or the cart leaves +-2.4, or the horizon. Observations: cart position and velocity, pole angle and angular velocity (4).",
        settings: [
            EnvironmentSetting("pole_mass", .range(low: 0.05, high: 0.5), bounds: 0.001...100, "range of the pole's mass"),
            EnvironmentSetting("pole_length", .range(low: 0.25, high: 1.0), bounds: 0.01...100, "range of the pole's half-length"),
            EnvironmentSetting("cart_mass", .range(low: 0.5, high: 2.0), bounds: 0.01...1000, "range of the cart's mass"),
            EnvironmentSetting("horizon", .int(200), bounds: 1...100_000, "steps per episode"),
        ],
        example: "env poles = cartpole < pole_length 0.25..1.0 horizon 200 >") { s in
            CartPole(poleMass: s.range("pole_mass"), poleLength: s.range("pole_length"), cartMass: s.range("cart_mass"), horizon: s.int("horizon"))
        }

    public func sampleTasks(_ count: Int, using rng: inout RandomGenerator) -> Tensor {
        var values: [Float] = []
        values.reserveCapacity(count * 3)
        for _ in 0..<count {
            for r in [poleMass, poleLength, cartMass] { values.append(r.lowerBound + (r.upperBound - r.lowerBound) * rng.nextFloat()) }
        }
        return Tensor(shape: [count, 3], values: values)
    }

    public func reset(tasks: Tensor, episodes: Int, using rng: inout RandomGenerator) -> Tensor {
        Tensor.uniform([tasks.shape[0], episodes, 4], low: -0.05, high: 0.05, using: &rng)
    }

    public func step(_ states: Tensor, actions: Tensor, tasks: Tensor, using rng: inout RandomGenerator) -> EnvironmentStep {
        let (t, e) = (states.shape[0], states.shape[1])
        let s = states.scalars, a = actions.scalars, p = tasks.scalars
        var next = [Float](repeating: 0, count: t * e * 4)
        var rewards = [Float](repeating: 0, count: t * e)
        var done = [Float](repeating: 0, count: t * e)
        for task in 0..<t {
            let (mp, l, mc) = (p[task * 3], p[task * 3 + 1], p[task * 3 + 2])
            let total = mp + mc, poleMoment = mp * l
            for episode in 0..<e {
                let i = task * e + episode
                var (x, xDot, theta, thetaDot) = (s[i * 4], s[i * 4 + 1], s[i * 4 + 2], s[i * 4 + 3])
                let f = a[i] >= 0.5 ? force : -force
                let (cosT, sinT) = (Foundation.cos(theta), Foundation.sin(theta))
                let temp = (f + poleMoment * thetaDot * thetaDot * sinT) / total
                let thetaAcc = (gravity * sinT - cosT * temp) / (l * (4.0 / 3.0 - mp * cosT * cosT / total))
                let xAcc = temp - poleMoment * thetaAcc * cosT / total
                x += tau * xDot
                xDot += tau * xAcc
                theta += tau * thetaDot
                thetaDot += tau * thetaAcc
                next[i * 4] = x; next[i * 4 + 1] = xDot; next[i * 4 + 2] = theta; next[i * 4 + 3] = thetaDot
                let fell = Swift.abs(x) > positionLimit || Swift.abs(theta) > angleLimit || !x.isFinite || !theta.isFinite
                rewards[i] = 1
                done[i] = fell ? 1 : 0
            }
        }
        return EnvironmentStep(states: Tensor(shape: [t, e, 4], values: next), rewards: Tensor(shape: [t, e], values: rewards),
                               done: Tensor(shape: [t, e], values: done))
    }
}
