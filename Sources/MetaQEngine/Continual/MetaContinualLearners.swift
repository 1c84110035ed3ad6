/// MAML over a task stream with a decayed historical loss: while learning task i, the
/// meta-objective is `L_i + sum_{j<i} lambda^(i-j) L_j`, each `L` the query loss after
/// adapting on a support episode of that task, over a bounded memory of earlier tasks' data
/// (the `memoryTasks` most recent, `memoryExamples` examples each). Each meta-step uses the
/// current task and up to `batch - 1` remembered ones, all in one batched computation.
public final class DecayedMAML: ContinualLearner {
    public let model: Sequential
    public let loss: LossKind
    public var inner: InnerLoop
    public var firstOrder: Bool
    public let optimizer: Optimizer
    public let lambda: Float
    public let memoryTasks: Int
    public let memoryExamples: Int
    /// Meta-steps per task and tasks per meta-step.
    public var steps: Int
    public var batch: Int
    public var support: Int
    public var query: Int
    /// Remembered tasks: (arrival index, a bounded pool of their examples).
    public private(set) var memory: [(index: Int, pool: ExamplePool)] = []
    private var arrived = 0

    public init(
        model: Sequential, loss: LossKind, inner: InnerLoop, firstOrder: Bool = false, optimizer: Optimizer,
        lambda: Float, memoryTasks: Int, memoryExamples: Int, steps: Int, batch: Int, support: Int, query: Int
    ) {
        self.model = model
        self.loss = loss
        self.inner = inner
        self.firstOrder = firstOrder
        self.optimizer = optimizer
        self.lambda = lambda
        self.memoryTasks = memoryTasks
        self.memoryExamples = memoryExamples
        self.steps = steps
        self.batch = batch
        self.support = support
        self.query = query
    }

    public func learn(_ task: StreamTask, using rng: inout RandomGenerator) {
        let i = arrived
        for _ in 0..<steps {
            let recalled = memory.count <= batch - 1 ? Array(memory.indices) : rng.sample(batch - 1, from: memory.count)
            // Episodes are stacked into one batch, so they share sizes every pool can supply
            // (remembered pools keep fewer examples than the current one).
            let pools = [task.pool] + recalled.map { memory[$0].pool }
            let smallest = pools.map { $0.classes == nil ? $0.count : $0.perClass }.min()!
            let s = min(support, smallest - 1), q = min(query, smallest - s)
            var episodes = [task.pool.episode(support: s, query: q, using: &rng)]
            var weights: [Float] = [1]
            for m in recalled {
                episodes.append(memory[m].pool.episode(support: s, query: q, using: &rng))
                weights.append(Float(pow(Double(lambda), Double(i - memory[m].index))))
            }
            let tasks = TaskBatch.concatenate(episodes)
            let w = Tensor(weights)
            let fast = inner.adapt(model: model, loss: loss, support: tasks.support, from: model.parameters,
                                   steps: inner.steps, createGraph: !firstOrder)
            let perTask = loss.perTask(model.forward(tasks.query.inputs, parameters: fast, tasks: episodes.count), tasks.query.targets)
            let objective = (perTask * w).sum()
            model.parameters = optimizer.update(model.parameters, gradients: gradients(of: objective, with: model.parameters))
        }
        // Remember a bounded sample of this task.
        let keep: [Int]
        if let classes = task.pool.classes {
            // At least two per class, so a remembered task can still form an episode.
            let perClass = min(task.pool.perClass, max(2, memoryExamples / classes))
            keep = (0..<classes).flatMap { c in rng.sample(perClass, from: task.pool.perClass).map { c * task.pool.perClass + $0 } }
        } else {
            keep = rng.sample(min(max(2, memoryExamples), task.pool.count), from: task.pool.count)
        }
        let kept = task.pool.rows(keep)
        memory.append((i, ExamplePool(kept, classes: task.pool.classes)))
        if memory.count > memoryTasks { memory.removeFirst() }
        arrived += 1
    }

    public func score(_ tasks: [StreamTask], adaptation: InnerLoop) -> [Float] {
        adaptedScores(model: model, loss: loss, parameters: model.parameters, tasks: tasks, adaptation: adaptation)
    }
}

import Foundation

/// Prototypical Networks with an external memory bank (classification streams): a budget of
/// stored examples per class of earlier tasks, and a knowledge-transfer term that trains on
/// episodes drawn from the bank alongside the current task's episodes, so the embedding keeps
/// separating old classes.
public final class PrototypeMemoryLearner: ContinualLearner {
    public let protonet: PrototypicalNetwork
    public var model: Sequential { protonet.model }
    public var loss: LossKind { .crossEntropy }
    public let budget: Int
    public let transferWeight: Float
    public var steps: Int
    public var support: Int
    public var query: Int
    /// Stored examples: per remembered task, a pool of `budget` examples per class.
    public private(set) var bank: [ExamplePool] = []

    public init(protonet: PrototypicalNetwork, budget: Int, transferWeight: Float, steps: Int, support: Int, query: Int) {
        self.protonet = protonet
        self.budget = budget
        self.transferWeight = transferWeight
        self.steps = steps
        self.support = support
        self.query = query
    }

    public func learn(_ task: StreamTask, using rng: inout RandomGenerator) {
        for _ in 0..<steps {
            let current = task.pool.episode(support: support, query: query, using: &rng)
            var objective = protonet.loss.perTask(protonet.logits(current, parameters: model.parameters), current.query.targets).mean()
            let usable = bank.filter { $0.perClass >= 2 }
            if !usable.isEmpty, transferWeight > 0 {
                let stored = usable[rng.nextInt(below: usable.count)]
                let s = max(1, min(support, stored.perClass - 1)), q = max(1, min(query, stored.perClass - s))
                let recalled = stored.episode(support: s, query: q, using: &rng)
                objective = objective + protonet.loss.perTask(protonet.logits(recalled, parameters: model.parameters), recalled.query.targets)
                    .mean().scaled(by: transferWeight)
            }
            model.parameters = protonet.optimizer.update(model.parameters, gradients: gradients(of: objective, with: model.parameters))
        }
        guard let classes = task.pool.classes else { return }
        let perClass = min(budget, task.pool.perClass)
        let keep = (0..<classes).flatMap { c in rng.sample(perClass, from: task.pool.perClass).map { c * task.pool.perClass + $0 } }
        bank.append(ExamplePool(task.pool.rows(keep), classes: classes))
    }

    /// Replaces the memory bank (restoring a checkpoint).
    func restoreBank(_ pools: [ExamplePool]) { bank = pools }

    public func score(_ tasks: [StreamTask], adaptation: InnerLoop) -> [Float] {
        guard !tasks.isEmpty else { return [] }
        let batch = TaskBatch.concatenate(tasks.map(\.test))
        return protonet.loss.scores(protonet.logits(batch, parameters: model.parameters.map { $0.detached() }), batch.query.targets)
    }
}

/// A small variational autoencoder over flattened inputs (Kingma and Welling 2014), used by
/// generative replay. Images in [0, 1] use a sigmoid decoder with binary cross-entropy;
/// other inputs a linear decoder with squared error.
public final class VariationalAutoencoder {
    public let encoder: Sequential
    public let decoder: Sequential
    public let latent: Int
    public let inputShape: [Int]
    public let bounded: Bool
    public let optimizer: Optimizer

    public init(inputShape: [Int], hidden: Int, latent: Int, bounded: Bool, learningRate: Float, using rng: inout RandomGenerator) {
        let d = inputShape.reduce(1, *)
        self.inputShape = inputShape
        self.latent = latent
        self.bounded = bounded
        encoder = Sequential(layers: [.flatten, .linear(inputs: d, outputs: hidden), .activation(.relu), .linear(inputs: hidden, outputs: 2 * latent)], using: &rng)
        var decoderLayers: [Layer] = [.linear(inputs: latent, outputs: hidden), .activation(.relu), .linear(inputs: hidden, outputs: d)]
        if bounded { decoderLayers.append(.activation(.sigmoid)) }
        decoder = Sequential(layers: decoderLayers, using: &rng)
        optimizer = Adam(learningRate: learningRate)
    }

    /// One training step on inputs `[n, ...]`; returns the negative ELBO per example.
    @discardableResult
    public func train(on x: Tensor, using rng: inout RandomGenerator) -> Float {
        let n = x.shape[0], d = inputShape.reduce(1, *)
        let params = encoder.parameters + decoder.parameters
        let split = encoder.parameters.count
        let stats = encoder.forward(x, parameters: Array(params[..<split]), tasks: nil)
        let mu = stats.slice(axis: 1, 0..<latent), logVariance = stats.slice(axis: 1, latent..<2 * latent)
        let noise = Tensor.normal([n, latent], using: &rng)
        let z = mu + (logVariance.scaled(by: 0.5)).exp() * noise
        let reconstruction = decoder.forward(z, parameters: Array(params[split...]), tasks: nil)
        let flat = x.reshaped(to: [n, d])
        let reconstructionLoss: Tensor
        if bounded {
            let p = reconstruction.adding(1e-6).log(), q = (1 - reconstruction).adding(1e-6).log()
            reconstructionLoss = -(flat * p + (1 - flat) * q).sum()
        } else {
            reconstructionLoss = (reconstruction - flat).squared().sum()
        }
        let kl = ((mu.squared() + logVariance.exp() - logVariance).adding(-1)).sum().scaled(by: 0.5)
        let objective = (reconstructionLoss + kl).scaled(by: 1 / Float(n))
        let updated = optimizer.update(params, gradients: gradients(of: objective, with: params))
        encoder.parameters = Array(updated[..<split])
        decoder.parameters = Array(updated[split...])
        return objective.scalar
    }

    /// `count` samples shaped `[count] + inputShape`, decoded from the prior.
    public func sample(_ count: Int, using rng: inout RandomGenerator) -> Tensor {
        let z = Tensor.normal([count, latent], using: &rng)
        return decoder.forward(z, parameters: decoder.parameters.map { $0.detached() }, tasks: nil).reshaped(to: [count] + inputShape)
    }
}

/// Deep generative replay (Shin et al. 2017): a VAE learns the inputs of every task so far
/// (replaying its own earlier samples), and the network trains on the current task plus
/// generated inputs labelled by its own snapshot from before the task (soft targets), which
/// keeps the function it had learned.
public final class GenerativeReplay: DirectTrainingLearner, ContinualLearner {
    /// Makes the generator for inputs of the given shape (made when the first task arrives).
    let makeGenerator: ([Int]) -> VariationalAutoencoder
    public private(set) var generator: VariationalAutoencoder!
    public let replayWeight: Float
    private var previous: (solver: [Tensor], generator: Sequential?)?

    public init(model: Sequential, loss: LossKind, optimizer: Optimizer, steps: Int, batch: Int,
                replayWeight: Float, generator: @escaping (_ inputShape: [Int]) -> VariationalAutoencoder) {
        self.makeGenerator = generator
        self.replayWeight = replayWeight
        super.init(model: model, loss: loss, optimizer: optimizer, steps: steps, batch: batch)
    }

    public func learn(_ task: StreamTask, using rng: inout RandomGenerator) {
        if generator == nil { generator = makeGenerator(Array(task.pool.inputs.shape.dropFirst())) }
        let oldGenerator = previous.map { _ in Sequential(layers: generator.decoder.layers, parameters: generator.decoder.parameters.map { $0.detached() }) }
        let oldSolver = previous?.solver
        for _ in 0..<steps {
            let current = task.pool.minibatch(batch, using: &rng)
            var replayInputs: Tensor?
            if let oldGenerator {
                let z = Tensor.normal([batch, generator.latent], using: &rng)
                replayInputs = oldGenerator.forward(z, parameters: oldGenerator.parameters, tasks: nil)
                    .reshaped(to: [batch] + generator.inputShape)
            }
            // The generator learns current inputs and its own earlier samples.
            let realInputs = current.inputs.reshaped(to: Array(current.inputs.shape.dropFirst()))
            generator.train(on: replayInputs.map { Tensor.concatenate([realInputs, $0], axis: 0) } ?? realInputs, using: &rng)
            step { p in
                var objective = taskLoss(current, parameters: p)
                if let replayInputs, let oldSolver {
                    let x = replayInputs.reshaped(to: [1] + replayInputs.shape)
                    let target = model.forward(x, parameters: oldSolver, tasks: 1).detached()
                    let now = model.forward(x, parameters: p, tasks: 1)
                    let distill: Tensor = loss == .crossEntropy
                        ? -(target.softmax() * now.logSoftmax()).sum(axis: -1).mean()
                        : (now - target).squared().mean()
                    objective = objective + distill.scaled(by: replayWeight)
                }
                return objective
            }
        }
        previous = (model.parameters.map { $0.detached() }, nil)
    }
}

// MARK: Registry row and checkpoints

/// Prototypical Networks with a memory bank; the bank is tensors of the snapshot
/// (`memory.I.inputs`, `memory.I.labels`).
public struct PrototypeMemorySettings: LearnerSettings, Equatable {
    public var distance: PrototypeDistance
    public var budget: Int
    public var transferWeight: Float
    public var steps: Int
    public var support: Int
    public var query: Int

    public static let kind = LearnerKind(
        "protomem", key: "prototypeMemory", settings: PrototypeMemorySettings.self, training: .stream, outputsEmbeddings: true,
        summary: "Prototypical Networks with a memory bank of past classes, for lifelong learning.",
        adaptation: { learner in
            guard case let .continual(memory as PrototypeMemoryLearner) = learner else { return nil }
            return .prototypes(memory.protonet)
        })

    public func makeLearner(from snapshot: LearnerSnapshot, model: Sequential, optimizer: Optimizer) throws(CheckpointError) -> RestoredLearner {
        try snapshot.requireClassification()
        guard budget >= 1, steps >= 1, support >= 1, query >= 1, transferWeight.isFinite else {
            throw snapshot.inconsistent("invalid protomem settings (budget \(budget), steps \(steps), support \(support), query \(query))")
        }
        let learner = PrototypeMemoryLearner(
            protonet: PrototypicalNetwork(model: model, distance: distance, optimizer: optimizer),
            budget: budget, transferWeight: transferWeight, steps: steps, support: support, query: query)
        learner.restoreBank(try snapshot.memoryBank())
        return .continual(learner)
    }
}

extension PrototypeMemoryLearner: CheckpointableLearner {
    public var snapshot: LearnerSnapshot {
        var tensors: [String: Tensor] = [:]
        for (i, pool) in bank.enumerated() {
            guard case let .labels(labels) = pool.targets else { continue }
            tensors["memory.\(i).inputs"] = pool.inputs.detached()
            tensors["memory.\(i).labels"] = Tensor(labels.map(Float.init))
        }
        return LearnerSnapshot(
            configuration: LearnerConfiguration(PrototypeMemorySettings(distance: protonet.distance, budget: budget, transferWeight: transferWeight,
                                            steps: steps, support: support, query: query)),
            loss: loss, optimizer: protonet.optimizer.state, optimized: model.parameterSpecs.map(\.name), tensors: tensors)
    }
}

