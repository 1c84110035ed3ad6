import MetaQEngine

extension Builtins {
    static func innerSchema(steps: Int, lr: String, lrSummary: String = "inner SGD learning rate") -> BlockSchema {
        BlockSchema(
            "inner", .option, summary: "The inner loop: SGD on each task's support set.",
            keys: [
                KeySpec("steps", .int(min: 0, max: InnerLoop.maximumSteps), default: "\(steps)", "inner SGD steps during meta-training"),
                KeySpec("lr", .positive, default: lr, lrSummary),
                .optional("lrs", .numberList, "per-step learning rates (overrides lr for step i)"),
            ],
            example: "inner < steps \(steps) lr \(lr) >")
    }

    static func outerSchema(opt: String, lr: String, batch: Int) -> BlockSchema {
        BlockSchema(
            "outer", .option, summary: "The outer loop: the meta-optimiser and the tasks per meta-batch.",
            keys: [
                KeySpec("opt", .choice(["adam", "sgd"]), default: opt, "meta-optimiser"),
                KeySpec("lr", .positive, default: lr, "meta learning rate"),
                KeySpec("batch", .size, default: "\(batch)", "tasks per meta-batch"),
                KeySpec("momentum", .number(min: 0, max: 0.999), default: "0", "SGD momentum"),
                KeySpec("decay", .number(min: 0.001, max: 1), default: "1", "multiply the learning rate by this every `every` meta-steps (1: constant)"),
                KeySpec("every", .positiveInt, default: "1000", "meta-steps between learning-rate decays"),
            ],
            example: "outer < opt \(opt) lr \(lr) batch \(batch) >")
    }

    static let modelKey = KeySpec("model", .model, default: nil, "the network being meta-learned")
    static let orderKey = KeySpec("order", .int(min: 1, max: 2), default: "2", "2: exact meta-gradient through the inner loop; 1: first-order approximation")

    static func optimizer(_ outer: ValidatedBlock) -> Optimizer {
        let lr = Float(outer.number("lr"))
        let optimizer: Optimizer = outer.string("opt") == "sgd" ? SGD(learningRate: lr, momentum: Float(outer.number("momentum"))) : Adam(learningRate: lr)
        if outer.number("decay") < 1 { optimizer.decay = StepDecay(factor: Float(outer.number("decay")), every: outer.int("every")) }
        return optimizer
    }

    static func innerLoop(_ inner: ValidatedBlock) -> InnerLoop {
        InnerLoop(steps: inner.int("steps"), learningRate: Float(inner.number("lr")),
                  stepLearningRates: inner.numbers("lrs")?.map(Float.init))
    }

    static func learnerValue(_ kind: String, _ b: ValidatedBlock, _ interp: Interpreter, make: @escaping (Sequential, ValidatedBlock, ValidatedBlock, LossKind) -> MetaLearner) -> Value {
        guard case let .model(model)? = b.record["model"] else { preconditionFailure("validated model key") }
        let outer = b.sub("outer")
        let inner = b.schema.key("inner") != nil ? b.sub("inner") : outer
        return .learner(LearnerValue(kind: kind, model: model, options: b.record, metaBatch: outer.int("batch"), rng: interp.rng.split()) { loss in
            .meta(make(model.network, inner, outer, loss))
        })
    }

    static let learnerBlocks: [BlockBuiltin] = [
        BlockBuiltin(schema: BlockSchema(
            "maml", .learner,
            summary: "Model-Agnostic Meta-Learning (Finn et al. 2017): inner SGD steps on each task's support set, outer update on the query loss; order 2 differentiates through the inner loop.",
            keys: [modelKey, orderKey, KeySpec("inner", .record(innerSchema(steps: 1, lr: "0.01")), default: "<>", "inner loop"),
                   KeySpec("outer", .record(outerSchema(opt: "adam", lr: "0.001", batch: 25)), default: "<>", "outer loop"),
                   KeySpec("checkpoint", .bool, default: "false", "recompute each inner step's graph in the backward pass instead of keeping it, about twice the compute: memory then grows only by the per-task parameters kept for each step (about 0.18 MiB per inner step for the sine MLP at meta-batch 25), not by every step's graph")],
            example: "learner m = maml < model net order 2 inner < steps 1 lr 0.01 > outer < opt adam lr 0.001 batch 25 > >")) { b, interp in
            let order = b.int("order"), checkpoint = b.bool("checkpoint")
            return learnerValue("maml", b, interp) { net, inner, outer, loss in
                MAML(model: net, loss: loss, inner: innerLoop(inner), firstOrder: order == 1, checkpointInnerLoop: checkpoint,
                     optimizer: optimizer(outer))
            }
        },
        BlockBuiltin(schema: BlockSchema(
            "anil", .learner,
            summary: "ANIL (Raghu et al. 2020): MAML that adapts only the final linear layer in the inner loop.",
            keys: [modelKey, orderKey, KeySpec("inner", .record(innerSchema(steps: 5, lr: "0.4")), default: "<>", "inner loop"),
                   KeySpec("outer", .record(outerSchema(opt: "adam", lr: "0.001", batch: 16)), default: "<>", "outer loop")],
            example: "learner a = anil < model net inner < steps 5 lr 0.4 > >")) { b, interp in
            let order = b.int("order")
            return learnerValue("anil", b, interp) { net, inner, outer, loss in
                MAML.anil(model: net, loss: loss, inner: innerLoop(inner), firstOrder: order == 1, optimizer: optimizer(outer))
            }
        },
        BlockBuiltin(schema: BlockSchema(
            "metasgd", .learner,
            summary: "Meta-SGD (Li et al. 2017): MAML with a meta-learned learning rate for every parameter element.",
            keys: [modelKey, orderKey, KeySpec("inner", .record(innerSchema(steps: 1, lr: "0.01", lrSummary: "initial per-parameter learning rate")), default: "<>", "inner loop"),
                   KeySpec("outer", .record(outerSchema(opt: "adam", lr: "0.001", batch: 25)), default: "<>", "outer loop")],
            example: "learner s = metasgd < model net inner < steps 1 lr 0.01 > >")) { b, interp in
            let order = b.int("order")
            return learnerValue("metasgd", b, interp) { net, inner, outer, loss in
                MetaSGD(model: net, loss: loss, innerSteps: inner.int("steps"), initialRate: Float(inner.number("lr")),
                        firstOrder: order == 1, optimizer: optimizer(outer))
            }
        },
        BlockBuiltin(schema: BlockSchema(
            "reptile", .learner,
            summary: "Reptile (Nichol et al. 2018): SGD on each task, then move the meta-parameters toward the adapted ones by the outer learning rate.",
            keys: [modelKey, KeySpec("inner", .record(innerSchema(steps: 5, lr: "0.01")), default: "<>", "inner loop"),
                   KeySpec("outer", .record(outerSchema(opt: "sgd", lr: "1.0", batch: 5)), default: "<>", "outer loop (SGD with lr epsilon is Reptile's update)"),
                   KeySpec("batched", .bool, default: "true", "adapt the tasks of a meta-batch together (false: one after another)")],
            example: "learner r = reptile < model net inner < steps 5 lr 0.01 > outer < lr 1.0 batch 5 > >")) { b, interp in
            let batched = b.bool("batched")
            return learnerValue("reptile", b, interp) { net, inner, outer, loss in
                Reptile(model: net, loss: loss, inner: innerLoop(inner), batched: batched, optimizer: optimizer(outer))
            }
        },
        BlockBuiltin(schema: BlockSchema(
            "protonet", .learner,
            summary: "Prototypical Networks (Snell et al. 2017): class prototypes are mean support embeddings; queries are classified by a softmax over negative distances. The model is the embedding network; support and query images go through it as separate batches (batch norm normalises each by its own statistics).",
            keys: [modelKey, KeySpec("distance", .choice(["euclidean", "cosine"]), default: "euclidean", "distance between embeddings and prototypes"),
                   KeySpec("outer", .record(outerSchema(opt: "adam", lr: "0.001", batch: 1)), default: "<>", "optimiser and episodes per step")],
            example: "learner p = protonet < model embed distance euclidean outer < lr 0.001 > >")) { b, interp in
            let distance = PrototypeDistance(rawValue: b.string("distance")!)!
            return learnerValue("protonet", b, interp) { net, _, outer, _ in
                PrototypicalNetwork(model: net, distance: distance, optimizer: optimizer(outer))
            }
        },
        BlockBuiltin(schema: BlockSchema(
            "pretrain", .learner,
            summary: "The pretrained baseline of the MAML paper: train one network on the pooled data of all tasks, then fine-tune on each test task's support set.",
            keys: [modelKey, KeySpec("inner", .record(innerSchema(steps: 10, lr: "0.01", lrSummary: "fine-tuning learning rate")), default: "<>", "fine-tuning at evaluation"),
                   KeySpec("outer", .record(outerSchema(opt: "adam", lr: "0.001", batch: 25)), default: "<>", "training on pooled tasks")],
            example: "learner base = pretrain < model net >")) { b, interp in
            return learnerValue("pretrain", b, interp) { net, inner, outer, loss in
                PretrainedBaseline(model: net, loss: loss, inner: innerLoop(inner), optimizer: optimizer(outer))
            }
        },
    ]
}
