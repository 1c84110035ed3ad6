import Foundation
import MetaQEngine

// A meta-learner written in the language:
//
//     learner m = custom < model net  loss meta_loss  adapt adapt  extras < ... >
//                          outer < opt adam lr 0.001 batch 25 > >
//
// `loss(params, extras, batch)` is the meta-loss of a meta-batch as a differentiable function
// of the model's parameters and the learner's extra tensors: a scalar (the batch's mean) or
// one loss per task. `adapt(params, extras, support, steps)` returns the fast weights after
// `steps` steps on a support set; `eval`, `metaq adapt` and `serve` use it. Both are compiled
// to engine calls on their first calls (Trace.swift), and a meta-batch is split across the
// engine's threads as the built-in learners split theirs.

final class ScriptLearner: MetaLearner, CheckpointableLearner, @unchecked Sendable {
    let model: Sequential
    let loss: LossKind
    let optimizer: Optimizer
    /// The learner's extra learnable tensors (learned rates, ...), optimised with the model.
    var extras: [Tensor]
    let extrasTree: TensorTree
    let lossFunction: Function
    let adaptFunction: Function
    /// fn(params, extras, support, x): predictions for query inputs after adaptation (metric
    /// methods compare with the support set); nil: the model on the fast weights.
    let predictFunction: Function?
    /// The interpreter its functions run in (its own one when loaded from a checkpoint).
    let interpreter: Interpreter
    /// Meta-steps taken (restored from checkpoints): the loss sees it as `batch.iteration`.
    var iteration = 0
    /// Adaptation steps for deployment requests that give none.
    let deploySteps: Int
    let range: SourceRange
    /// The top-level statement of the script that made this learner, and which of the
    /// learners it made this is: what deployment finds it by (ScriptSource).
    var declaration: (site: SourceRange, index: Int)?
    let lossCache = TraceCache()
    let adaptCache = TraceCache()
    let predictCache = TraceCache()
    /// A script error from the last `metaStep` or `evaluate` (their protocol cannot throw);
    /// the command that called them reports it.
    var pendingError: RuntimeError?

    init(model: Sequential, loss: LossKind, optimizer: Optimizer, extras: Value, lossFunction: Function, adaptFunction: Function,
         predictFunction: Function?, deploySteps: Int, interpreter: Interpreter, range: SourceRange,
         declaration: (site: SourceRange, index: Int)? = nil) {
        self.declaration = declaration
        self.deploySteps = deploySteps
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        var leaves: [Tensor] = []
        extrasTree = TensorTree.flatten(extras, into: &leaves)
        self.extras = leaves.map { $0.detached().requiringGradient() }
        self.lossFunction = lossFunction
        self.adaptFunction = adaptFunction
        self.predictFunction = predictFunction
        self.interpreter = interpreter
        self.range = range
    }

    var evaluatesConcurrently: Bool { false }
    var outerOptimizer: Optimizer? { optimizer }

    /// The script error a learner's last step or evaluation left, if it is a script learner.
    static func takeError(_ learner: MetaLearner) -> RuntimeError? {
        guard let s = learner as? ScriptLearner, let e = s.pendingError else { return nil }
        s.pendingError = nil
        return e
    }

    var extrasValue: Value { extrasTree.rebuild(extras) }

    func parametersValue(_ tensors: [Tensor]) -> Value {
        .record(Record(zip(model.parameterSpecs, tensors).map { ($0.name, .tensor($1)) }))
    }

    /// Whether the last compiled calls replay (nil) or why they are interpreted.
    var interpretedBecause: String? { lossCache.interpretedBecause ?? adaptCache.interpretedBecause ?? predictCache.interpretedBecause }

    /// The meta-batch as the loss function sees it: < support query tasks iteration >, with
    /// the meta-step count as a scalar tensor (so a schedule written with it compiles).
    func batchValue(_ batch: TaskBatch) -> Value {
        guard case var .record(r) = Interpreter.batchValue(batch) else { return .none }
        r["iteration"] = .tensor(Tensor(Float(iteration)))
        return .record(r)
    }

    // MARK: Training

    func metaStep(_ batch: TaskBatch) -> Float {
        do { return try step(batch) } catch {
            pendingError = error as? RuntimeError ?? RuntimeError("\(error)", at: range)
            return .nan
        }
    }

    /// The summed loss of `tasks` tasks from the loss function's result.
    private func summed(_ v: Value, tasks: Int) throws -> Tensor {
        guard case let .tensor(t) = v else {
            throw RuntimeError("the learner's loss function must return a tensor (a scalar or one loss per task), got a \(v.typeName)", at: range)
        }
        if t.count == 1 { return t.reshaped(to: []) * Float(tasks) }
        guard t.shape == [tasks] else {
            throw RuntimeError("the learner's loss function must return a scalar or one loss per task ([\(tasks)]), got shape \(t.shape)", at: range)
        }
        return t.sum()
    }

    func step(_ batch: TaskBatch) throws -> Float {
        let t = batch.taskCount
        let params = model.parameters
        let all = params + extras
        // As the built-in learners do: the tasks are split into one share per thread (at
        // least 4 tasks each), and a share whose inputs are large (image tasks) goes through
        // its tasks a few at a time, so the activations stay cache-sized.
        let shares = max(1, min(Parallel.threads, t / 4))
        let ranges = (0..<shares).map { t * $0 / shares..<t * ($0 + 1) / shares }
        let perTask = (batch.support.inputs.count + batch.query.inputs.count) / max(t, 1)
        let groupSize = max(1, (1 << 16) / max(perTask, 1))
        typealias Group = (range: Range<Int>, values: [Value], leaves: [Tensor], key: Int)
        let groups: [[Group]] = ranges.map { r in
            stride(from: r.lowerBound, to: r.upperBound, by: groupSize).map { start -> Group in
                let g = start..<min(start + groupSize, r.upperBound)
                let values = [parametersValue(params), extrasValue, batchValue(batch.tasks(g))]
                var leaves: [Tensor] = []
                let tree = TensorTree.list(values.map { TensorTree.flatten($0, into: &leaves) })
                return (g, values, leaves, TraceCache.key(tree, leaves))
            }
        }
        func accumulate(_ parts: [(Float, [Tensor])]) -> (Float, [Tensor]) {
            var loss: Float = 0
            var total: [Tensor]?
            for (l, g) in parts {
                loss += l
                total = total.map { zip($0, g).map { $0 + $1 } } ?? g
            }
            return (loss, total ?? all.map { Tensor.zeros($0.shape) })
        }
        var results: [(Float, [Tensor])] = []
        if groups.allSatisfy({ $0.allSatisfy { lossCache.trusted($0.key) != nil } }) {
            // Every share replays its compiled form on its own thread.
            let traces = groups.map { $0.map { lossCache.trusted($0.key)! } }
            let context = ForwardContext.current
            let outcomes = Parallel.mapShares(t, shares: shares) { r -> Result<(Float, [Tensor]), Error> in
                let w = ranges.firstIndex(of: r)!
                return Result {
                    accumulate(try zip(groups[w], traces[w]).map { group, trace in
                        let leaves = try ForwardContext.with(context.offset(by: group.range.lowerBound)) { try trace.replay(group.leaves) }
                        let value = trace.outputTree.rebuild(leaves)
                        let total = try summed(value, tasks: group.range.count)
                        return (total.scalar, gradients(of: total, with: all))
                    })
                }
            }
            results = try outcomes.map { try $0.get() }
        } else {
            interpreter.differentiationDepth += 1
            defer { interpreter.differentiationDepth -= 1 }
            for share in groups {
                results.append(accumulate(try share.map { group in
                    let value = try ForwardContext.with(ForwardContext.current.offset(by: group.range.lowerBound)) {
                        try interpreter.callCompiled(lossFunction, group.values, cache: lossCache, at: range)
                    }
                    let total = try summed(value, tasks: group.range.count)
                    return (total.scalar, gradients(of: total, with: all))
                }))
            }
        }
        var lossSum = results[0].0
        var grads = results[0].1
        for (l, g) in results.dropFirst() {
            lossSum += l
            grads = zip(grads, g).map { $0 + $1 }
        }
        let scale = 1 / Float(t)
        let meanLoss = lossSum * scale
        // Across ranks every rank updates (the sum waits for all); a non-finite loss then
        // stops all of them.
        guard meanLoss.isFinite || DataParallel.group != nil else { return meanLoss }
        let updated = optimizer.update(all, gradients: grads.map { $0.scaled(by: scale) })
        model.parameters = Array(updated[..<params.count])
        extras = Array(updated[params.count...])
        iteration += 1
        return meanLoss
    }

    // MARK: Adaptation and evaluation

    /// Per-task fast weights after `steps` steps of the script's adaptation on `support`,
    /// from `parameters` (detached: evaluation and deployment differentiate nothing).
    func adapt(_ support: Split, from parameters: [Tensor], steps: Int) throws -> [Tensor] {
        let supportValue = Interpreter.splitValue(support)
        let result = try interpreter.callCompiled(
            adaptFunction, [parametersValue(parameters), extrasTree.rebuild(extras.map { $0.detached() }), supportValue, .int(steps)],
            cache: adaptCache, at: range)
        let (fast, _) = try interpreter.parameterList(result, for: model, at: range)
        return fast.map { $0.detached() }
    }

    /// Predictions for query inputs `x [tasks, examples, ...]` with the fast weights.
    func predict(_ support: Split, _ x: Tensor, fast: [Tensor]) throws -> Tensor {
        let tasks = support.taskCount
        guard let predictFunction else { return model.forward(x, parameters: fast, tasks: tasks) }
        let value = try interpreter.callCompiled(
            predictFunction, [parametersValue(fast), extrasTree.rebuild(extras.map { $0.detached() }), Interpreter.splitValue(support), .tensor(x)],
            cache: predictCache, at: range)
        guard case let .tensor(p) = value, p.rank >= 2, p.shape[0] == tasks, p.shape[1] == x.shape[1] else {
            throw RuntimeError("the learner's predict function must return predictions [\(tasks), \(x.shape[1]), ...], got \(value.typeName == "tensor" ? "shape \(value)" : "a \(value.typeName)")", at: range)
        }
        return p.detached()
    }

    func evaluate(_ batch: TaskBatch, steps: [Int]) -> [[Float]] {
        // Each step count adapts from the meta-parameters (the script's adaptation starts
        // from shared parameters; it need not accept its own fast weights).
        let tasks = batch.taskCount
        let start = model.parameters.map { $0.detached() }
        var scores: [Int: [Float]] = [:]
        do {
            for target in Set(steps).sorted() {
                let fast = target == 0 ? start : try adapt(batch.support, from: start, steps: target)
                let predictions = try predict(batch.support, batch.query.inputs, fast: fast)
                scores[target] = loss.scores(predictions, batch.query.targets)
            }
        } catch {
            pendingError = error as? RuntimeError ?? RuntimeError("\(error)", at: range)
            return steps.map { _ in [Float](repeating: .nan, count: tasks) }
        }
        return steps.map { scores[$0]! }
    }

    // MARK: Checkpoints

    var extraNames: [String] { extras.indices.map { "extras.\($0)" } }

    var snapshot: LearnerSnapshot {
        LearnerSnapshot(configuration: LearnerConfiguration(ScriptSettings(extras: extras.count)), loss: loss, optimizer: optimizer.state,
                        optimized: model.parameterSpecs.map(\.name) + extraNames,
                        tensors: Dictionary(uniqueKeysWithValues: zip(extraNames, extras.map { $0.detached() })))
    }

    /// Takes a checkpoint's state (`train ... < resume true >`): parameters, extras and the
    /// optimiser's state.
    func restore(_ snapshot: LearnerSnapshot, parameters: [Tensor], step: Int) throws(CheckpointError) {
        guard let count = snapshot.configuration.settings(as: ScriptSettings.self)?.extras, count == extras.count else {
            throw CheckpointError(.inconsistent, "it holds a learner with other extras than this one")
        }
        var restored: [Tensor] = []
        for (name, current) in zip(extraNames, extras) {
            guard let t = snapshot.tensors[name], t.shape == current.shape else {
                throw CheckpointError(.inconsistent, "its extra tensor '\(name)' is missing or has another shape")
            }
            restored.append(t.requiringGradient())
        }
        let shapes = (parameters + restored).map(\.shape)
        for (slot, arrays) in snapshot.optimizer.slots where !arrays.isEmpty {
            guard arrays.count == shapes.count, zip(arrays, shapes).allSatisfy({ $0.count == $1.reduce(1, *) }) else {
                throw CheckpointError(.inconsistent, "optimizer slot '\(slot)' does not fit this learner's tensors")
            }
        }
        do { try optimizer.restore(snapshot.optimizer) } catch {
            throw CheckpointError(.inconsistent, "\(error)")
        }
        model.parameters = parameters.map { $0.requiringGradient() }
        extras = restored
        iteration = step
    }
}

extension Builtins {
    static let scriptLearnerBlock = BlockBuiltin(schema: BlockSchema(
        "custom", .learner,
        summary: "A meta-learner written in the language: 'loss' is fn(params, extras, batch), the meta-loss of a meta-batch (a scalar, or one loss per task), differentiated with respect to the model's parameters and the extras; 'adapt' is fn(params, extras, support, steps), the fast weights after adapting to a support set (used by eval, adapt and serve). Both are compiled to engine calls on first use, and meta-batches are split across threads.",
        keys: [modelKey,
               KeySpec("loss", .function, default: nil, "fn(params, extras, batch): the meta-loss"),
               KeySpec("adapt", .function, default: nil, "fn(params, extras, support, steps): fast weights after adaptation"),
               KeySpec("steps", .int(min: 0, max: 10_000), default: "1", "adaptation steps when a deployment request (metaq adapt, serve) gives none"),
               .optional("predict", .function, "fn(params, extras, support, x): predictions for query inputs x with the adapted params (metric methods compare with the support set); default net(x, params)"),
               .optional("name", .string, "the learner's name when printed and in checkpoints' descriptions (a module's learner gives its own: matching, meta_lstm, metagan)"),
               KeySpec("extras", .tensors, default: "<>", "extra learnable tensors (a record or list of tensors), optimised with the model and saved in checkpoints"),
               KeySpec("outer", .record(outerSchema(opt: "adam", lr: "0.001", batch: 25)), default: "<>", "outer loop")],
        example: "learner m = custom < model net loss meta_loss adapt adapt outer < lr 0.001 batch 25 > >")) { b, interp in
        guard case let .model(model)? = b.record["model"], case let .function(lossFunction)? = b.record["loss"],
              case let .function(adaptFunction)? = b.record["adapt"] else { preconditionFailure("validated keys") }
        let predictFunction: Function? = if case let .function(f)? = b.record["predict"] { f } else { nil }
        let extras = b.record["extras"] ?? .record(Record())
        var leaves: [Tensor] = []
        _ = TensorTree.flatten(extras, into: &leaves)
        let outer = b.sub("outer")
        let range = b.range
        let steps = b.int("steps")
        let site = interp.topLevelStatement ?? range, index = interp.learnersInStatement
        interp.learnersInStatement += 1
        let value = LearnerValue(kind: b.string("name") ?? "custom", model: model, options: b.record, metaBatch: outer.int("batch"), rng: interp.rng.split()) { loss in
            .meta(ScriptLearner(model: model.network, loss: loss, optimizer: optimizer(outer), extras: extras,
                                lossFunction: lossFunction, adaptFunction: adaptFunction, predictFunction: predictFunction,
                                deploySteps: steps, interpreter: interp, range: range, declaration: (site, index)))
        }
        interp.scriptLearners[ScriptSource.key(site, index)] = value
        // Checkpoints written before learners were keyed by statement name the block itself.
        interp.scriptLearners[ScriptSource.key(range)] = interp.scriptLearners[ScriptSource.key(range)] ?? value
        return .learner(value)
    }
}

extension Interpreter {
    /// The engine learner behind the learner named `name` (made for `loss` if it has not met
    /// tasks yet): for benchmarks and embedding programs.
    public func metaLearner(named name: String, loss: LossKind) -> MetaLearner? {
        guard case let .learner(l)? = globals.lookup(name), case let .meta(m)? = try? l.engine(for: loss) else { return nil }
        return m
    }

    /// Why the script learner named `name` runs its functions interpreted (nil: compiled, or
    /// not a script learner).
    public func interpretedReason(of name: String) -> String? {
        guard case let .learner(l)? = globals.lookup(name), case let .meta(s as ScriptLearner)? = l.learner else { return nil }
        return s.interpretedBecause
    }
}

// MARK: Deployment

/// Where a script learner was declared: saved in its checkpoints so that `metaq adapt` and
/// `metaq serve` can rebuild its functions from the script.
enum ScriptSource {
    static let text = "script"
    static let path = "script_path"
    static let offset = "script_offset"
    static let steps = "script_steps"
    /// Which of the learners made by the statement at `offset` (a function of a module can
    /// make several).
    static let index = "script_index"

    static func key(_ range: SourceRange) -> String { "\(range.fileName)#\(range.start)" }
    static func key(_ range: SourceRange, _ index: Int) -> String { "\(range.fileName)#\(range.start)#\(index)" }
}

extension ScriptLearner {
    /// The checkpoint attributes that let deployment rebuild this learner.
    func sourceAttributes(in interpreter: Interpreter) -> [String: String] {
        let (site, index) = declaration ?? (range, 0)
        guard let file = interpreter.files[site.fileName] else { return [:] }
        return [ScriptSource.text: file.text, ScriptSource.path: site.fileName, ScriptSource.offset: String(site.start),
                ScriptSource.index: String(index), ScriptSource.steps: String(deploySteps)]
    }
}

/// A script learner's adaptation for a deployed predictor: one request at a time (the
/// interpreter is single-threaded).
final class ScriptedLearnerAdaptation: ScriptedAdaptation, @unchecked Sendable {
    let learner: ScriptLearner
    let lock = NSLock()
    init(_ learner: ScriptLearner) { self.learner = learner }
    var defaultSteps: Int { learner.deploySteps }

    func predictions(support: Split, query: Tensor, steps: Int) throws -> Tensor {
        lock.lock()
        defer { lock.unlock() }
        let start = learner.model.parameters.map { $0.detached() }
        do {
            let fast = steps == 0 ? start : try learner.adapt(support, from: start, steps: steps)
            return try learner.predict(support, query, fast: fast)
        } catch let e as RuntimeError {
            throw PredictionError(e.message)
        }
    }
}

/// Predictors for deployment: built-in learners from their checkpoint alone, learners
/// written in metaq by running the script saved in the checkpoint in deployment mode (its
/// definitions only: commands do not run, task families are not loaded, nothing trains),
/// then taking the checkpoint's parameters and extras.
public enum Deployment {
    public static func predictor(for checkpoint: Checkpoint) throws(CheckpointError) -> FewShotPredictor {
        guard checkpoint.learner?.configuration.settings is ScriptSettings else { return try FewShotPredictor(checkpoint: checkpoint) }
        let (_, script) = try scriptLearner(from: checkpoint)
        return try FewShotPredictor(checkpoint: checkpoint, scripted: ScriptedLearnerAdaptation(script))
    }

    /// A script learner rebuilt from a checkpoint in an interpreter of its own, with the
    /// checkpoint's state (`load` and deployment).
    static func scriptLearner(from checkpoint: Checkpoint) throws(CheckpointError) -> (LearnerValue, ScriptLearner) {
        let attributes = checkpoint.attributes
        guard let text = attributes[ScriptSource.text], let path = attributes[ScriptSource.path],
              let offset = attributes[ScriptSource.offset].flatMap(Int.init) else {
            throw CheckpointError(.unsupported, "it holds a learner written in a script but not the script")
        }
        let interpreter = Interpreter(output: BufferedOutput())
        interpreter.deploying = true
        let problems = interpreter.run(SourceFile(name: path, text: text))
        let site = SourceRange(fileName: path, start: offset, end: offset)
        let key = attributes[ScriptSource.index].flatMap(Int.init).map { ScriptSource.key(site, $0) } ?? ScriptSource.key(site)
        guard let value = interpreter.scriptLearners[key],
              let snapshot = checkpoint.learner else {
            let why = problems.first.map { ": \($0.message)" } ?? ""
            throw CheckpointError(.unsupported, "the script saved in it no longer declares its learner\(why)")
        }
        guard checkpoint.layers == value.model.network.layers else {
            throw CheckpointError(.inconsistent, "the script's model differs from the saved one")
        }
        guard case let .meta(script as ScriptLearner)? = try? value.engine(for: snapshot.loss) else {
            throw CheckpointError(.inconsistent, "the script's learner is not a script learner")
        }
        try value.restore(checkpoint)
        interpreter.deploying = false
        return (value, script)
    }
}
