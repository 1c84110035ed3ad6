import CKernels
import Foundation

/// An optimiser's state in a form that can be inspected and saved: named per-parameter
/// slots (momentum, Adam's moments) and the step count.
public struct OptimizerState: Codable, Equatable, Sendable {
    public var kind: String
    public var step: Int
    /// Slot name -> one flat array per parameter.
    public var slots: [String: [[Float]]]
    public var hyperparameters: [String: Double]
}

/// A step decay of the learning rate: after every `every` updates it is multiplied by
/// `factor` (the Prototypical Networks schedule halves it every 2,000 episodes).
///
/// ```swift
/// let adam = Adam(learningRate: 1e-3)
/// adam.decay = StepDecay(factor: 0.5, every: 2000)   // 1e-3, then 5e-4 from update 2,001, ...
/// ```
public struct StepDecay: Codable, Equatable, Sendable {
    public var factor: Float
    public var every: Int

    public init(factor: Float, every: Int) {
        precondition(factor > 0 && factor <= 1 && every > 0, "a step decay needs 0 < factor <= 1 and every > 0")
        self.factor = factor
        self.every = every
    }

    /// The learning rate for update number `step` (counting from 1) when it starts at `base`.
    public func rate(base: Float, step: Int) -> Float {
        base * Float(Foundation.pow(Double(factor), Double(max(step - 1, 0) / every)))
    }

    var hyperparameters: [String: Double] { ["decay_factor": Double(factor), "decay_every": Double(every)] }

    /// The decay saved in `hyperparameters`, nil when there is none; throws on a malformed one.
    static func restoring(_ hyperparameters: [String: Double]) throws -> StepDecay? {
        guard let factor = hyperparameters["decay_factor"], let every = hyperparameters["decay_every"] else { return nil }
        guard factor > 0, factor <= 1, every >= 1, every == every.rounded() else {
            throw OptimizerStateError(description: "invalid learning-rate decay (factor \(factor), every \(every))")
        }
        return StepDecay(factor: Float(factor), every: Int(every))
    }
}

/// A first-order optimiser. `update` returns new parameter tensors (fresh leaves) and never
/// writes into the old ones, so a graph that still holds them stays valid.
public protocol Optimizer: AnyObject {
    func update(_ parameters: [Tensor], gradients: [Tensor]) -> [Tensor]
    /// An optional schedule for the learning rate (nil: constant); saved in `state`.
    var decay: StepDecay? { get set }
    /// The learning rate the next update uses (after the decay schedule).
    var currentLearningRate: Float { get }
    var state: OptimizerState { get }
    /// Restores saved state; throws when it does not fit these parameters.
    func restore(_ state: OptimizerState) throws
}

/// An optimiser state that does not fit the optimiser or parameters it is restored into.
public struct OptimizerStateError: Error, CustomStringConvertible {
    public let description: String
}

/// An optimiser of the kind `state` names ("sgd" or "adam"), with its hyperparameters and
/// slots: the inverse of `Optimizer.state`, for restoring a checkpoint.
///
/// ```swift
/// let copy = try makeOptimizer(restoring: adam.state)   // continues exactly where adam is
/// ```
public func makeOptimizer(restoring state: OptimizerState) throws -> Optimizer {
    func hyperparameter(_ name: String) throws -> Float {
        guard let value = state.hyperparameters[name], value.isFinite, value >= 0 else {
            throw OptimizerStateError(description: "\(state.kind) optimizer state lacks a valid '\(name)'")
        }
        return Float(value)
    }
    guard state.step >= 0 else { throw OptimizerStateError(description: "negative optimizer step \(state.step)") }
    guard state.step <= Checkpoint.maximumStep else {
        throw OptimizerStateError(description: "optimizer step \(state.step) is larger than \(Checkpoint.maximumStep), the most a checkpoint may hold")
    }
    let optimizer: Optimizer
    switch state.kind {
    case "sgd":
        optimizer = SGD(learningRate: try hyperparameter("lr"), momentum: try hyperparameter("momentum"),
                        weightDecay: try hyperparameter("weight_decay"))
    case "adam":
        optimizer = Adam(learningRate: try hyperparameter("lr"), beta1: try hyperparameter("beta1"),
                         beta2: try hyperparameter("beta2"), epsilon: try hyperparameter("epsilon"))
    default:
        throw OptimizerStateError(description: "unknown optimizer '\(state.kind)' (expected sgd or adam)")
    }
    try optimizer.restore(state)
    optimizer.decay = try StepDecay.restoring(state.hyperparameters)
    return optimizer
}

/// Stochastic gradient descent with optional (heavy-ball) momentum and weight decay.
///
/// ```swift
/// let sgd = SGD(learningRate: 0.01, momentum: 0.9)
/// model.parameters = sgd.update(model.parameters, gradients: grads)
/// ```
public final class SGD: Optimizer {
    public var learningRate: Float
    public let momentum: Float
    public let weightDecay: Float
    /// An optional schedule for `learningRate` (nil: constant).
    public var decay: StepDecay?
    private var velocity: [[Float]] = []
    private var step = 0
    public var currentLearningRate: Float { decay?.rate(base: learningRate, step: step + 1) ?? learningRate }

    public init(learningRate: Float, momentum: Float = 0, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
    }

    public func update(_ parameters: [Tensor], gradients: [Tensor]) -> [Tensor] {
        let gradients = DataParallel.reduce(gradients, for: self)
        if momentum != 0 && velocity.isEmpty { velocity = parameters.map { [Float](repeating: 0, count: $0.count) } }
        step += 1
        let learningRate = decay?.rate(base: self.learningRate, step: step) ?? self.learningRate
        return parameters.indices.map { i in
            let p = parameters[i], g = gradients[i]
            let out = TensorBuffer(count: p.count)
            let pp = p.buffer.pointer, gp = g.buffer.pointer, op = out.pointer
            if momentum != 0 {
                velocity[i].withUnsafeMutableBufferPointer { v in
                    for j in 0..<p.count {
                        let d = gp[j] + weightDecay * pp[j]
                        v[j] = momentum * v[j] + d
                        op[j] = pp[j] - learningRate * v[j]
                    }
                }
            } else {
                for j in 0..<p.count { op[j] = pp[j] - learningRate * (gp[j] + weightDecay * pp[j]) }
            }
            return Tensor(shape: p.shape, buffer: out, requiresGradient: true)
        }
    }

    public var state: OptimizerState {
        OptimizerState(kind: "sgd", step: step, slots: momentum != 0 ? ["velocity": velocity] : [:],
                       hyperparameters: ["lr": Double(learningRate), "momentum": Double(momentum), "weight_decay": Double(weightDecay)]
                           .merging(decay?.hyperparameters ?? [:]) { $1 })
    }

    public func restore(_ state: OptimizerState) throws {
        guard state.kind == "sgd" else { throw OptimizerStateError(description: "optimizer state is for '\(state.kind)', not 'sgd'") }
        guard Set(state.slots.keys).isSubset(of: ["velocity"]) else {
            throw OptimizerStateError(description: "unexpected sgd slots \(state.slots.keys.sorted())")
        }
        step = state.step
        velocity = state.slots["velocity"] ?? []
    }
}

/// Adam (Kingma and Ba, 2015) with bias correction, as in PyTorch's default.
public final class Adam: Optimizer {
    public var learningRate: Float
    public let beta1: Float, beta2: Float, epsilon: Float
    /// An optional schedule for `learningRate` (nil: constant).
    public var decay: StepDecay?
    private var m: [[Float]] = []
    private var v: [[Float]] = []
    private var step = 0
    public var currentLearningRate: Float { decay?.rate(base: learningRate, step: step + 1) ?? learningRate }

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }

    public func update(_ parameters: [Tensor], gradients: [Tensor]) -> [Tensor] {
        let gradients = DataParallel.reduce(gradients, for: self)
        if m.isEmpty {
            m = parameters.map { [Float](repeating: 0, count: $0.count) }
            v = m
        }
        step += 1
        let c1 = 1 - Float(Foundation.pow(Double(beta1), Double(step)))
        let c2 = 1 - Float(Foundation.pow(Double(beta2), Double(step)))
        let stepSize = (decay?.rate(base: learningRate, step: step) ?? learningRate) / c1
        let c2Root = c2.squareRoot()
        return parameters.indices.map { i in
            let p = parameters[i], g = gradients[i]
            let out = TensorBuffer(count: p.count)
            let pp = p.buffer.pointer, gp = g.buffer.pointer, op = out.pointer
            m[i].withUnsafeMutableBufferPointer { mm in
                v[i].withUnsafeMutableBufferPointer { vv in
                    metaq_adam(p.count, pp, gp, mm.baseAddress!, vv.baseAddress!, beta1, beta2, stepSize, c2Root,
                               epsilon, op)
                }
            }
            return Tensor(shape: p.shape, buffer: out, requiresGradient: true)
        }
    }

    public var state: OptimizerState {
        OptimizerState(kind: "adam", step: step, slots: ["m": m, "v": v],
                       hyperparameters: ["lr": Double(learningRate), "beta1": Double(beta1), "beta2": Double(beta2), "epsilon": Double(epsilon)]
                           .merging(decay?.hyperparameters ?? [:]) { $1 })
    }

    public func restore(_ state: OptimizerState) throws {
        guard state.kind == "adam" else { throw OptimizerStateError(description: "optimizer state is for '\(state.kind)', not 'adam'") }
        guard Set(state.slots.keys).isSubset(of: ["m", "v"]), (state.slots["m"] ?? []).count == (state.slots["v"] ?? []).count else {
            throw OptimizerStateError(description: "adam state needs slots m and v for the same tensors")
        }
        step = state.step
        m = state.slots["m"] ?? []
        v = state.slots["v"] ?? []
    }
}
