import Foundation
import MetaQEngine

extension Builtins {
    static let continualTrainingKeys = [
        KeySpec("steps", .positiveInt, default: "100", "optimiser steps per task"),
        KeySpec("batch", .size, default: "20", "examples per minibatch"),
        KeySpec("opt", .choice(["adam", "sgd"]), default: "adam", "optimiser"),
        KeySpec("lr", .positive, default: "0.001", "learning rate"),
    ]

    static func directOptimizer(_ b: ValidatedBlock) -> Optimizer {
        b.string("opt") == "sgd" ? SGD(learningRate: Float(b.number("lr"))) : Adam(learningRate: Float(b.number("lr")))
    }

    static func continualValue(_ kind: String, _ b: ValidatedBlock, _ interp: Interpreter, make: @escaping (Sequential, LossKind) throws -> ContinualLearner) -> Value {
        guard case let .model(model)? = b.record["model"] else { preconditionFailure("validated model key") }
        return .learner(LearnerValue(kind: kind, model: model, options: b.record, metaBatch: 1, isContinual: true, rng: interp.rng.split()) { loss in
            .continual(try make(model.network, loss))
        })
    }

    static let streamBlocks: [BlockBuiltin] = [
        BlockBuiltin(schema: BlockSchema(
            "stream", .stream,
            summary: "An ordered, reproducible sequence of tasks arriving one at a time, drawn from a task distribution: regression families with optional drift and recurrence, or one Omniglot alphabet after another.",
            keys: [
                KeySpec("tasks", .tasks, default: nil, "the distribution tasks are drawn from"),
                KeySpec("count", .size, default: "20", "tasks in the stream (for by_alphabet: at most one per alphabet)"),
                KeySpec("drift", .number(min: 0, max: 1), default: "0", "regression: each task's parameters move by this fraction of their range per task"),
                KeySpec("recurrence", .number(min: 0, max: 1), default: "0", "regression: probability that an earlier task comes back"),
                KeySpec("by_alphabet", .bool, default: "false", "image tasks: one task per alphabet, in order"),
                KeySpec("pool", .int(min: 2, max: Limits.maximumSize), default: "50", "training examples per task (per class for classification)"),
                KeySpec("support", .size, default: "10", "support examples (per class) of training episodes and of each task's test episode"),
                KeySpec("query", .size, default: "20", "query examples (per class) of each task's test episode"),
            ],
            example: "stream s = stream < tasks sine count 20 drift 0.02 recurrence 0.1 pool 50 support 10 query 50 >")) { b, interp in
            guard case let .tasks(source)? = b.record["tasks"] else { preconditionFailure() }
            let count = b.int("count"), pool = b.int("pool"), support = b.int("support"), query = b.int("query")
            let stream: TaskStream
            let summary: String
            do {
                if let family = source.distribution as? RegressionTasks {
                    stream = try TaskStream.regression(family, count: count, drift: Float(b.number("drift")), recurrence: b.number("recurrence"),
                                                       pool: pool, support: support, query: query, using: &interp.rng)
                    summary = "\(source.kind) regression, drift \(Value.format(b.number("drift"))), recurrence \(Value.format(b.number("recurrence")))"
                } else if let images = source.distribution as? ImageClassificationTasks {
                    var sources: [(name: String, tasks: TaskDistribution)] = []
                    if b.bool("by_alphabet") {
                        let alphabets = Array(Set(images.classes.map { images.dataset.alphabet(ofClass: $0) })).sorted()
                        for alphabet in alphabets.prefix(count) {
                            sources.append((alphabet, try ImageClassificationTasks(dataset: images.dataset, alphabets: [alphabet], ways: images.ways, rotations: images.rotations, augmentation: images.augmentation)))
                        }
                    } else {
                        sources = (0..<count).map { ("task \($0)", images) }
                    }
                    try images.dataset.requireImages(shots: pool, queries: support + query, classes: images.classes)
                    stream = try TaskStream.classification(sources, pool: pool, support: support, query: query, using: &interp.rng)
                    summary = "\(images.ways)-way image tasks" + (b.bool("by_alphabet") ? ", one alphabet after another" : "")
                } else {
                    stream = try TaskStream.sampled(from: source.distribution, count: count, pool: pool, support: support, query: query, using: &interp.rng)
                    summary = "\(source.kind) tasks"
                }
            } catch let e as RuntimeError { throw e } catch {
                throw b.error("\(error)", key: "tasks")
            }
            return .stream(StreamValue(stream: stream, summary: summary, support: support, query: query))
        },
    ]

    static let continualBlocks: [BlockBuiltin] = [
        BlockBuiltin(schema: BlockSchema(
            "finetune", .learner, summary: "Naive sequential fine-tuning: train on each new task's data only (the baseline that forgets).",
            keys: [modelKey] + continualTrainingKeys,
            example: "learner naive = finetune < model net steps 100 lr 0.001 >")) { b, interp in
            continualValue("finetune", b, interp) { net, loss in
                SequentialFineTuning(model: net, loss: loss, optimizer: directOptimizer(b), steps: b.int("steps"), batch: b.int("batch"))
            }
        },
        BlockBuiltin(schema: BlockSchema(
            "replay", .learner, summary: "Experience replay with a reservoir memory of a fixed number of past examples, replayed with every minibatch.",
            keys: [modelKey, KeySpec("memory", .size, default: "200", "examples kept in the reservoir")] + continualTrainingKeys,
            example: "learner er = replay < model net memory 200 >")) { b, interp in
            continualValue("replay", b, interp) { net, loss in
                ExperienceReplay(model: net, loss: loss, optimizer: directOptimizer(b), steps: b.int("steps"), batch: b.int("batch"), memorySize: b.int("memory"))
            }
        },
        BlockBuiltin(schema: BlockSchema(
            "ewc", .learner, summary: "Elastic Weight Consolidation (online form): a quadratic penalty weighted by the accumulated diagonal Fisher information of earlier tasks.",
            keys: [modelKey, KeySpec("lambda", .positive, default: "100", "penalty strength"),
                   KeySpec("fisher_batches", .positiveInt, default: "20", "minibatches for each Fisher estimate")] + continualTrainingKeys,
            example: "learner e = ewc < model net lambda 100 >")) { b, interp in
            continualValue("ewc", b, interp) { net, loss in
                ElasticWeightConsolidation(model: net, loss: loss, optimizer: directOptimizer(b), steps: b.int("steps"), batch: b.int("batch"),
                                           lambda: Float(b.number("lambda")), fisherBatches: b.int("fisher_batches"))
            }
        },
        BlockBuiltin(schema: BlockSchema(
            "decayed_maml", .learner,
            summary: "MAML over a stream with a decayed historical loss: the meta-objective adds lambda^(i-j) times the post-adaptation loss of every remembered earlier task j.",
            keys: [modelKey, orderKey,
                   KeySpec("lambda", .number(min: 0, max: 1), default: "0.8", "decay per task of earlier tasks' weight"),
                   KeySpec("memory", .size, default: "10", "earlier tasks remembered"),
                   KeySpec("memory_examples", .size, default: "20", "examples kept per remembered task"),
                   KeySpec("steps", .positiveInt, default: "100", "meta-steps per task"),
                   KeySpec("batch", .size, default: "5", "tasks per meta-step (the current one plus remembered ones)"),
                   KeySpec("support", .size, default: "10", "support examples per episode"),
                   KeySpec("query", .size, default: "10", "query examples per episode"),
                   KeySpec("inner", .record(innerSchema(steps: 1, lr: "0.01")), default: "<>", "inner loop"),
                   KeySpec("outer", .record(outerSchema(opt: "adam", lr: "0.001", batch: 5)), default: "<>", "meta-optimiser (its batch is unused; see batch)")],
            example: "learner lm = decayed_maml < model net lambda 0.8 memory 10 steps 100 >")) { b, interp in
            let inner = b.sub("inner"), outer = b.sub("outer")
            return continualValue("decayed_maml", b, interp) { net, loss in
                DecayedMAML(model: net, loss: loss, inner: innerLoop(inner), firstOrder: b.int("order") == 1, optimizer: optimizer(outer),
                            lambda: Float(b.number("lambda")), memoryTasks: b.int("memory"), memoryExamples: b.int("memory_examples"),
                            steps: b.int("steps"), batch: b.int("batch"), support: b.int("support"), query: b.int("query"))
            }
        },
        BlockBuiltin(schema: BlockSchema(
            "protomem", .learner,
            summary: "Prototypical Networks with an external memory bank of stored examples per class of earlier tasks, and a knowledge-transfer term that also trains on episodes from the bank (classification streams).",
            keys: [modelKey, KeySpec("distance", .choice(["euclidean", "cosine"]), default: "euclidean", "distance to prototypes"),
                   KeySpec("budget", .int(min: 2, max: Limits.maximumSize), default: "5", "examples stored per class (at least 2, so memory can form episodes)"),
                   KeySpec("transfer", .positive, default: "1", "weight of the loss on episodes from memory"),
                   KeySpec("steps", .positiveInt, default: "100", "episodes per task"),
                   KeySpec("support", .size, default: "1", "support examples per class in training episodes"),
                   KeySpec("query", .size, default: "5", "query examples per class in training episodes"),
                   KeySpec("lr", .positive, default: "0.001", "Adam learning rate")],
            example: "learner pm = protomem < model embed budget 5 transfer 1.0 >")) { b, interp in
            continualValue("protomem", b, interp) { net, loss in
                guard loss == .crossEntropy else { throw LearnerMismatch(message: "protomem learns classification streams; this stream is regression") }
                let protonet = PrototypicalNetwork(model: net, distance: PrototypeDistance(rawValue: b.string("distance")!)!, optimizer: Adam(learningRate: Float(b.number("lr"))))
                return PrototypeMemoryLearner(protonet: protonet, budget: b.int("budget"), transferWeight: Float(b.number("transfer")),
                                              steps: b.int("steps"), support: b.int("support"), query: b.int("query"))
            }
        },
        BlockBuiltin(schema: BlockSchema(
            "genreplay", .learner,
            summary: "Deep generative replay: a VAE trained alongside learns the inputs of every task so far; the network also trains on generated inputs labelled by its own earlier snapshot.",
            keys: [modelKey, KeySpec("latent", .size, default: "8", "VAE latent dimensions"),
                   KeySpec("hidden", .size, default: "128", "VAE hidden units"),
                   KeySpec("weight", .positive, default: "1", "weight of the replay loss"),
                   KeySpec("vae_lr", .positive, default: "0.001", "VAE learning rate")] + continualTrainingKeys,
            example: "learner gr = genreplay < model net latent 8 hidden 128 >")) { b, interp in
            let seed = interp.rng.split()
            return continualValue("genreplay", b, interp) { net, loss in
                GenerativeReplay(model: net, loss: loss, optimizer: directOptimizer(b), steps: b.int("steps"), batch: b.int("batch"),
                                 replayWeight: Float(b.number("weight"))) { inputShape in
                    // Images (height, width, channels) are in [0, 1]: a sigmoid decoder.
                    var rng = seed
                    return VariationalAutoencoder(inputShape: inputShape, hidden: b.int("hidden"), latent: b.int("latent"),
                                                  bounded: inputShape.count == 3, learningRate: Float(b.number("vae_lr")), using: &rng)
                }
            }
        },
    ]
}
