import Foundation

/// A stochastic policy on any engine network: a Gaussian whose mean is the network's output
/// and whose log standard deviation is a learned parameter of its own (one per action
/// dimension, state-independent, as in the MAML paper), or a categorical distribution whose
/// logits are the network's output.
///
/// The parameters are the network's, then (Gaussian) the log standard deviation; every
/// function takes them explicitly, shared or with a leading task axis (fast weights), like
/// ``Sequential/forward(_:parameters:tasks:)``.
public final class Policy: @unchecked Sendable {
    public enum Distribution: String, Sendable, CaseIterable {
        case gaussian, categorical
    }

    public let network: Sequential
    public let distribution: Distribution
    /// Action dimensions (Gaussian) or number of actions (categorical).
    public let actions: Int
    /// The Gaussian's log standard deviation [actions]; nil for a categorical policy.
    public var logStd: Tensor?

    /// The network's parameters (kept in the network, so that the model the policy was made
    /// from sees them), then the Gaussian's log standard deviation.
    public var parameters: [Tensor] {
        get { network.parameters + (logStd.map { [$0] } ?? []) }
        set {
            network.parameters = Array(newValue.prefix(network.parameters.count))
            if distribution == .gaussian { logStd = newValue[network.parameters.count] }
        }
    }

    /// - Parameter initialStd: the Gaussian's starting standard deviation (ignored otherwise).
    public init(network: Sequential, distribution: Distribution, actions: Int, initialStd: Float = 1) {
        self.network = network
        self.distribution = distribution
        self.actions = actions
        if distribution == .gaussian {
            logStd = Tensor.full(Foundation.log(initialStd), shape: [actions]).requiringGradient()
        }
    }

    /// The policy that fits `space`: Gaussian for continuous actions, categorical for discrete.
    public convenience init(network: Sequential, for space: ActionSpace, initialStd: Float = 1) {
        switch space {
        case let .continuous(d, _, _): self.init(network: network, distribution: .gaussian, actions: d, initialStd: initialStd)
        case let .discrete(n): self.init(network: network, distribution: .categorical, actions: n, initialStd: initialStd)
        }
    }

    var networkParameterCount: Int { network.parameters.count }

    /// Gives every parameter a leading task axis of extent `tasks` (those that have one are kept).
    public func perTask(_ parameters: [Tensor], tasks: Int) -> [Tensor] {
        let specs = network.parameterSpecs.map(\.shape) + (distribution == .gaussian ? [[actions]] : [])
        return zip(parameters, specs).map { p, shape in p.rank == shape.count ? p.broadcast(to: [tasks] + shape) : p }
    }

    /// The network's output for observations [T, N, O] with per-task parameters: the mean
    /// [T, N, A] or the logits [T, N, K].
    public func head(_ observations: Tensor, parameters: [Tensor]) -> Tensor {
        network.forward(observations, parameters: Array(parameters.prefix(networkParameterCount)), tasks: observations.shape[0])
    }

    /// log pi(a | s) [T, N] of actions [T, N, width] at observations [T, N, O], as a
    /// differentiable function of per-task `parameters`.
    public func logProbability(observations: Tensor, actions: Tensor, parameters: [Tensor]) -> Tensor {
        let out = head(observations, parameters: parameters)
        let (t, n) = (observations.shape[0], observations.shape[1])
        switch distribution {
        case .gaussian:
            let logStd = parameters[networkParameterCount].reshaped(to: [t, 1, self.actions])
            let z = (actions - out) * (-logStd).exp()
            let perDimension = z * z * (-0.5) - logStd
            return perDimension.sum(axis: 2) - 0.5 * Float(self.actions) * Foundation.log(2 * Float.pi)
        case .categorical:
            var oneHot = [Float](repeating: 0, count: t * n * self.actions)
            let chosen = actions.scalars
            for i in 0..<(t * n) { oneHot[i * self.actions + Swift.min(Swift.max(Int(chosen[i]), 0), self.actions - 1)] = 1 }
            return (out.logSoftmax() * Tensor(shape: [t, n, self.actions], values: oneHot)).sum(axis: 2)
        }
    }

    /// Draws actions [T, E, width] for observations [T, E, O] (no graph is recorded).
    public func sample(observations: Tensor, parameters: [Tensor], using rng: inout RandomGenerator) -> Tensor {
        let out = head(observations, parameters: parameters.map { $0.detached() })
        let logStd = distribution == .gaussian ? parameters[networkParameterCount].detached() : nil
        return Policy.sampleActions(output: out, logStd: logStd, using: &rng)
    }

    /// Draws actions from a policy's output [T, E, A]: a Gaussian around it with standard
    /// deviation e^logStd (`logStd` [A] or [T, A]), or, without `logStd`, one action index
    /// per row from the logits (a width-1 action [T, E, 1]). The shapes are the caller's to check.
    public static func sampleActions(output: Tensor, logStd: Tensor?, using rng: inout RandomGenerator) -> Tensor {
        let (t, e, actions) = (output.shape[0], output.shape[1], output.shape[2])
        let out = output.scalars
        if let logStd {
            let std = logStd.scalars
            let perTask = std.count == t * actions
            var values = [Float](repeating: 0, count: t * e * actions)
            for task in 0..<t {
                for i in 0..<(e * actions) {
                    let d = i % actions
                    let s = Foundation.exp(std[perTask ? task * actions + d : d])
                    values[task * e * actions + i] = out[task * e * actions + i] + s * rng.nextNormal()
                }
            }
            return Tensor(shape: [t, e, actions], values: values)
        }
        var values = [Float](repeating: 0, count: t * e)
        for i in 0..<(t * e) {
            let logits = out[(i * actions)..<((i + 1) * actions)]
            let top = logits.max() ?? 0
            let weights = logits.map { Foundation.exp($0 - top) }
            var u = rng.nextFloat() * weights.reduce(0, +)
            var choice = actions - 1
            for (k, w) in weights.enumerated() {
                if u < w { choice = k; break }
                u -= w
            }
            values[i] = Float(choice)
        }
        return Tensor(shape: [t, e, 1], values: values)
    }
}
