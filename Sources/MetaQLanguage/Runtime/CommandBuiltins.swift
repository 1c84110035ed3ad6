import Foundation
import MetaQEngine

extension Builtins {
    static func noOptions(_ name: String) -> BlockSchema {
        BlockSchema(name, .command, summary: "(no options)", keys: [], example: "")
    }

    static let commandList: [CommandBuiltin] = [
        CommandBuiltin(
            doc: FunctionDoc(name: "print", signature: "print value [with value ...]", summary: "Prints values: numbers, lists, records, tensors (summarised), models, eval tables.",
                             example: "print r"),
            options: noOptions("print")) { c, interp in
            let values = c.arguments.map(\.value)
            if values.count == 1 { interp.output.emit(values[0]) } else { interp.output.write(values.map(\.displayText).joined(separator: " ")) }
            return .none
        },
        CommandBuiltin(
            doc: FunctionDoc(name: "seed", signature: "seed N", summary: "Resets the session's random generator; every later model, task and training draw follows from it.",
                             example: "seed 7"),
            options: noOptions("seed")) { c, interp in
            let a = try c.argument(nil, "a seed")
            guard case let .int(n) = a.value, n >= 0 else {
                let got = a.value.number != nil ? "\(a.value.typeName) \(a.value.displayText)" : "a \(a.value.typeName)"
                throw RuntimeError("seed needs a non-negative int, got \(got)", at: a.range)
            }
            interp.rng = RandomGenerator(seed: UInt64(n))
            return .none
        },
        CommandBuiltin(
            doc: FunctionDoc(name: "train", signature: "train LEARNER on TASKS | ENV < iters N log_every N checkpoint \"file.mqm\" every N resume BOOL >",
                             summary: "Meta-trains a learner on tasks for a number of meta-iterations, showing progress on standard error (a bar on a terminal, a line every few seconds otherwise). Tasks are drawn from the learner's own generator (split from the session's when it is declared), so a run resumed from a checkpoint continues bit-identically. With 'checkpoint' the learner is saved every 'every' iterations and at the end; with 'resume true' a run whose checkpoint exists continues from it (iters counts the whole run). Returns a record: iterations, seconds, loss (mean of the last log window), losses (one mean per window), log_every (iterations per window). On an environment (a maml_rl learner) the loss is the outer PPO loss, and the record adds return_before and return_after (the mean episode return before and after the inner steps in the last window) and their lists per window, and std (the Gaussian policy's learned standard deviation per action dimension); checkpoints and resuming work as on tasks, TensorBoard logs are not supported there yet.",
                             example: "train m on sine < iters 20000 checkpoint \"sine-run.mqm\" every 1000 resume true >"),
            options: BlockSchema("train", .command, summary: "Options of 'train'.", keys: [
                KeySpec("iters", .count, default: "1000", "meta-iterations (with resume: of the whole run, counting those in the checkpoint)"),
                KeySpec("log_every", .count, default: "0", "iterations per logged window (0: iters / 20)"),
                .optional("batch", .size, "tasks per meta-batch (default: the learner's outer batch)"),
                .optional("checkpoint", .string, "file to save the learner to, atomically, every 'every' iterations and when training ends"),
                KeySpec("every", .positiveInt, default: "1000", "iterations between checkpoints"),
                KeySpec("resume", .bool, default: "false", "if the checkpoint file exists, continue from it: its state replaces the learner's"),
                .optional("log", .string, "a folder for TensorBoard event files: the loss and the outer learning rate every logged window, and evaluation scores every 'eval_every' iterations"),
                KeySpec("eval_every", .count, default: "0", "with 'log': evaluate every this many iterations (0: never) on 'eval_tasks' tasks, the same ones each time, after 0 and 1 adaptation steps"),
                KeySpec("eval_tasks", .size, default: "50", "with 'log' and 'eval_every': tasks per logged evaluation"),
            ], example: "train m on sine < iters 20000 checkpoint \"sine-run.mqm\" every 1000 >")) { c, interp in
            try interp.train(c)
        },
        CommandBuiltin(
            doc: FunctionDoc(name: "eval", signature: "eval LEARNER on TASKS | ENV < tasks N support K query Q steps [..] >",
                             summary: "Adapts on fresh tasks and reports the mean query score (MSE, or accuracy for classification) with its 95% confidence interval, per adaptation step count. On an environment (a maml_rl learner) the score is the average return per episode of each new task after each number of policy-gradient adaptation steps (default steps [0, 1, 2, 3]), each step on fresh episodes. Returns a report.",
                             example: "let r = eval m on sine < tasks 600 support 5 steps [1, 5, 10] >"),
            options: BlockSchema("eval", .command, summary: "Options of 'eval'.", keys: [
                KeySpec("tasks", .positiveInt, default: "100", "fresh test tasks"),
                .optional("support", .size, "support examples (default: the tasks' own)"),
                .optional("query", .size, "query examples (default: the tasks' own)"),
                KeySpec("steps", .intList, default: "[0, 1, 5, 10]", "adaptation step counts to report"),
                KeySpec("batch", .size, default: "25", "tasks evaluated together"),
                .optional("episodes", .string, "fixed episodes of 'images' tasks to evaluate exactly, instead of fresh tasks: a CSV file listing them (as the 'episodes' command writes), or a folder FOLDER/<episode>/<class>/ of each class's images named support* and query* (decoded with the tasks' settings); the report's rows then hold each episode's score ('scores') and its 'episodes' their names"),
                .optional("scores", .string, "with 'episodes': a CSV file to write each episode's score to (episode, steps, score; episodes named as in the CSV file or by their folders)"),
            ], example: "eval m on sine < tasks 600 steps [1, 5, 10] >")) { c, interp in
            try interp.evaluate(c)
        },
        CommandBuiltin(
            doc: FunctionDoc(name: "save", signature: "save LEARNER | MODEL to \"file.mqm\"",
                             summary: "Saves a learner (its model, configuration, optimiser state, learned extras such as Meta-SGD's rates or a memory bank, its training generator and iteration count) or a model alone to a checkpoint: a safetensors file whose weights other tools can read. The write is atomic: a crash leaves the previous file intact.",
                             example: "save m to \"sine.mqm\""),
            options: noOptions("save")) { c, _ in
            let value = try c.argument(nil, "a learner or model")
            let (path, targetRange) = try c.destinationPath("\"file.mqm\"")
            do { try TextFile.requireFolder(of: path) } catch { throw RuntimeError("cannot save \(path): \(error)", at: targetRange) }
            do {
                switch value.value {
                case let .learner(l): try l.checkpoint().write(to: path)
                case let .model(m): try m.checkpoint().write(to: path)
                default: throw RuntimeError("'save' needs a learner or a model, got a \(value.value.typeName)", at: value.range)
                }
            } catch let error as CheckpointError {
                throw RuntimeError("cannot save: \(error.message(about: path))", at: c.range)
            }
            return .none
        },
        CommandBuiltin(
            doc: FunctionDoc(name: "write", signature: "write VALUE to \"file.csv\" | \"file.json\"",
                             summary: "Writes a value to a file: reports and lists of records as CSV rows, anything as JSON (by the file's extension). JSON has no NaN or infinity: such numbers are written as the strings \"nan\", \"inf\" and \"-inf\".",
                             example: "write r to \"results.csv\""),
            options: noOptions("write")) { c, interp in
            let value = try c.argument(nil, "a value").value
            let (path, targetRange) = try c.destinationPath("\"file\"")
            do { try Export.write(value, to: path) } catch { throw RuntimeError("cannot write \(path): \(error)", at: targetRange) }
            return .none
        },
    ]
}

extension Interpreter {
    func learnerAndTasks(_ c: CommandInvocation) throws -> (LearnerValue, TasksValue, MetaLearner) {
        let l = try c.argument(nil, "a learner"), t = try c.argument(.on, "tasks")
        guard case let .learner(learner) = l.value else { throw RuntimeError("'\(c.name.name)' needs a learner, got a \(l.value.typeName)", at: l.range) }
        guard case let .tasks(tasks) = t.value else { throw RuntimeError("'\(c.name.name) ... on' needs tasks, got a \(t.value.typeName)", at: t.range) }
        let d = tasks.distribution
        if !(LearnerKind.named(learner.kind)?.outputsEmbeddings ?? false) {
            do {
                let out = try learner.model.network.outputShape(for: d.inputShape)
                // A script learner with its own 'predict' decides what the model outputs.
                guard out == [d.outputCount] || learner.options["predict"] != nil else {
                    throw RuntimeError("model output \(out) does not fit \(tasks.kind) tasks, which need \(d.outputCount) output\(d.outputCount == 1 ? "" : "s")", at: l.range)
                }
            } catch let e as ShapeError {
                throw RuntimeError("model does not fit \(tasks.kind) inputs of shape \(d.inputShape): \(e.message)", at: l.range)
            }
        } else if d.loss != .crossEntropy {
            throw RuntimeError("a protonet needs classification tasks; \(tasks.kind) tasks are regression", at: t.range)
        } else {
            // An embedding network's output size is free, but it must take the tasks' inputs
            // (a gray conv4 on RGB images would otherwise stop the program).
            do { _ = try learner.model.network.outputShape(for: d.inputShape) } catch {
                throw RuntimeError("model does not fit \(tasks.kind) inputs of shape \(d.inputShape): \(error.message)", at: l.range)
            }
        }
        guard case let .meta(engine) = try learner.engine(for: d.loss) else {
            throw RuntimeError("'\(learner.kind)' is a continual learner: use it with 'lifelong ... on STREAM'", at: l.range)
        }
        return (learner, tasks, engine)
    }

    /// One meta-update of `engine` on a fresh meta-batch of `batch` tasks; its mean query
    /// loss. Under mpirun the batch is split across the processes (``DataParallel``): each
    /// samples its share of the tasks, each task from its own generator split from one step
    /// seed, and the meta-gradients are summed across processes before the update.
    func metaStep(_ engine: MetaLearner, learner: LearnerValue, tasks: TasksValue, batch: Int, at range: SourceRange) throws -> Float {
        // Sampled from a copy: a task family written in the language runs script code,
        // which must not meet an access to the learner's generator in progress.
        var generator = learner.rng
        guard let group = DataParallel.group else {
            let b: TaskBatch
            do { b = try tasks.distribution.sample(tasks: batch, support: tasks.support, query: tasks.query, using: &generator) } catch let e as RuntimeError { throw e } catch {
                throw RuntimeError("\(error)", at: range)
            }
            learner.rng = generator
            // A training pass (dropout active), with a key that follows from the learner's
            // generator, which checkpoints keep: a resumed run draws the same masks.
            var keys = generator
            return ForwardContext.with(.training(key: keys.next())) { engine.metaStep(b) }
        }
        if let reason = DataParallel.unsupported(engine) {
            throw RuntimeError("'\(learner.kind)' cannot be trained across \(group.size) processes: \(reason)", at: range)
        }
        guard batch >= group.size else {
            throw RuntimeError("a meta-batch of \(batch) task\(batch == 1 ? "" : "s") cannot be split across \(group.size) processes: use a batch of at least \(group.size) or fewer processes", at: range)
        }
        let stepSeed = generator.next()
        learner.rng = generator
        // Every rank's tasks keep their place in the whole batch: the dropout masks do not
        // depend on the number of processes.
        let training = ForwardContext.training(key: ~stepSeed, taskOffset: DataParallel.share(of: batch, rank: group.rank, size: group.size).lowerBound)
        do {
            return try ForwardContext.with(training) { () throws -> Float in
                try DataParallel.metaStep(engine, group: group, tasks: batch, stepSeed: stepSeed) { share, seed in
                    TaskBatch.concatenate(try share.map { i in
                        var g = DataParallel.taskGenerator(stepSeed: seed, index: i)
                        return try tasks.distribution.sample(tasks: 1, support: tasks.support, query: tasks.query, using: &g)
                    })
                }
            }
        } catch let e as RuntimeError { throw e } catch {
            throw RuntimeError("\(error)", at: range)
        }
    }

    func train(_ c: CommandInvocation) throws -> Value {
        if let (learner, _, engine) = try learnerAndEnvironment(c) { return try trainRL(c, learner: learner, engine: engine) }
        var (learner, tasks, engine) = try learnerAndTasks(c)
        let o = c.options
        var iterations = o.int("iters")
        let checkpointPath = o.string("checkpoint")
        if let path = checkpointPath {
            // Before training, not after it.
            do { try TextFile.requireFolder(of: path) } catch {
                throw RuntimeError("cannot save the checkpoint \(path): \(error)", at: o.range(of: "checkpoint"))
            }
        }
        let every = o.int("every")
        if o.bool("resume") {
            guard let path = checkpointPath else { throw o.error("'resume' needs 'checkpoint', the file to resume from", key: "resume") }
            if FileManager.default.fileExists(atPath: path) {
                do {
                    try learner.restore(try Checkpoint.read(from: path))
                } catch {
                    throw RuntimeError("cannot resume: \(error.message(about: path))", at: o.range(of: "checkpoint"))
                }
                engine = try learnerAndTasks(c).2
                iterations = max(iterations - learner.iterations, 0)
                output.write("resuming from \(path) at iteration \(learner.iterations)")
            }
        }
        func saveCheckpoint() throws {
            guard let path = checkpointPath else { return }
            do { try learner.checkpoint().write(to: path) } catch {
                output.finishProgress()
                throw RuntimeError("cannot save the checkpoint: \(error.message(about: path))", at: o.range(of: "checkpoint"))
            }
        }
        let batch = o.optionalInt("batch") ?? learner.metaBatch
        try Limits.requireBatch(tasks: batch, support: tasks.support, query: tasks.query, of: tasks.distribution, at: c.range)
        let window = o.int("log_every") > 0 ? o.int("log_every") : max(iterations / 20, 1)
        // TensorBoard event files: made before training, so a bad folder costs no work.
        var eventLog: EventLog?
        if let folder = o.string("log") {
            do { eventLog = try EventLog(folder: folder) } catch {
                throw RuntimeError("cannot write TensorBoard logs to '\(folder)': \(error.localizedDescription)", at: o.range(of: "log"))
            }
        } else if o.int("eval_every") > 0 {
            throw o.error("'eval_every' logs evaluation scores: it needs 'log', the folder to write them to", key: "eval_every")
        }
        func logEvaluation() throws {
            guard let eventLog else { return }
            // The same tasks every time (a fixed generator), so the curve compares like with like.
            var generator = RandomGenerator(seed: 0x7E57)
            let report = try engine.evaluate(on: tasks.distribution, tasks: o.int("eval_tasks"), support: tasks.support, query: tasks.query,
                                             steps: [0, 1], using: &generator)
            if let error = ScriptLearner.takeError(engine) { throw error }
            try eventLog.scalars(Dictionary(uniqueKeysWithValues: report.rows.map { ("eval/\(report.metric)_after_\($0.steps)_steps", Double($0.mean)) }),
                                 step: learner.iterations)
        }
        var losses: [Value] = []
        var sum: Float = 0, count = 0
        var last: Float = .nan
        let start = Date()
        var done = 0
        var lastProgress = Date.distantPast
        var savedAt: Int?
        while done < iterations {
            if shouldInterrupt() { break }
            let loss = try metaStep(engine, learner: learner, tasks: tasks, batch: batch, at: c.range)
            if let error = ScriptLearner.takeError(engine) {
                output.finishProgress()
                throw error
            }
            guard loss.isFinite else {
                output.finishProgress()
                throw RuntimeError("training diverged at iteration \(learner.iterations + 1) (loss \(loss.isNaN ? "NaN" : "\(loss)"))\(engine is ScriptLearner && DataParallel.group == nil ? "; the parameters are those before this iteration" : ""); lower the learning rates", at: c.range)
            }
            sum += loss
            count += 1
            done += 1
            learner.iterations += 1
            if learner.iterations % every == 0 {
                try saveCheckpoint()
                savedAt = learner.iterations
            }
            if count == window || done == iterations {
                last = sum / Float(count)
                losses.append(.float(Double(last)))
                sum = 0
                count = 0
                var scalars = ["loss": Double(last)]
                if let rate = engine.outerOptimizer?.currentLearningRate { scalars["learning_rate"] = Double(rate) }
                do { try eventLog?.scalars(scalars, step: learner.iterations) } catch {
                    throw RuntimeError("cannot write the TensorBoard log: \(error.localizedDescription)", at: o.range(of: "log"))
                }
            }
            if o.int("eval_every") > 0, learner.iterations % o.int("eval_every") == 0 {
                do { try logEvaluation() } catch let e as RuntimeError { throw e } catch {
                    throw RuntimeError("cannot log an evaluation: \(error)", at: o.range(of: "eval_every"))
                }
            }
            if Date().timeIntervalSince(lastProgress) > 0.1 || done == iterations {
                lastProgress = Date()
                output.progress(ProgressState(label: "train \(learner.kind)", done: done, total: iterations, unit: "it", loss: loss,
                                              elapsed: Date().timeIntervalSince(start)))
            }
        }
        output.finishProgress()
        if savedAt != learner.iterations { try saveCheckpoint() }
        if count > 0 { last = sum / Float(count); losses.append(.float(Double(last))) }
        let seconds = Date().timeIntervalSince(start)
        if done < iterations { output.write("interrupted after \(done) of \(iterations) iterations") }
        return .record(Record([("iterations", .int(done)), ("seconds", .float(seconds)), ("loss", .float(Double(last))), ("losses", .list(losses)), ("log_every", .int(window))]))
    }

    func evaluate(_ c: CommandInvocation) throws -> Value {
        if let (learner, _, engine) = try learnerAndEnvironment(c) { return try evaluateRL(c, learner: learner, engine: engine) }
        let (learner, tasks, engine) = try learnerAndTasks(c)
        let o = c.options
        let steps = o.ints("steps")
        guard !steps.isEmpty, steps.allSatisfy({ $0 >= 0 }) else { throw o.error("'steps' needs non-negative step counts", key: "steps") }
        if let path = o.string("episodes") {
            return try evaluateListedEpisodes(c, path: path, tasks: tasks, engine: engine, steps: steps)
        }
        if o.keyRanges["scores"] != nil { throw o.error("'scores' lists the score of each listed episode: it needs 'episodes'", key: "scores") }
        let support = o.optionalInt("support") ?? tasks.support, query = o.optionalInt("query") ?? tasks.query
        try Limits.requireBatch(tasks: min(o.int("batch"), o.int("tasks")), support: support, query: query, of: tasks.distribution, at: c.range)
        defer { output.finishProgress() }
        do {
            // A copy of the session's generator: a script function evaluated inside may draw
            // from the session's generator too (no overlapping access).
            var generator = rng
            let report = try engine.evaluate(on: tasks.distribution, tasks: o.int("tasks"), support: support,
                                             query: query, steps: steps, batchSize: o.int("batch"), using: &generator,
                                             shouldStop: shouldInterrupt, progress: progressReporter("eval \(learner.kind)"))
            rng = generator
            if let error = ScriptLearner.takeError(engine) { throw error }
            let evaluated = report.rows.first?.tasks ?? 0
            if evaluated < o.int("tasks") {
                throw RuntimeError("interrupted after \(evaluated) of \(o.int("tasks")) tasks", at: c.range)
            }
            if let row = report.rows.first(where: { !$0.mean.isFinite }) {
                throw RuntimeError("evaluation diverged: the \(report.metric) after \(row.steps) steps is not a finite number (\(row.mean.isNaN ? "NaN" : "infinite")); lower the inner learning rate or evaluate with fewer steps", at: c.range)
            }
            if report.metric == "mse", let best = report.rows.min(by: { $0.mean < $1.mean }),
               let worst = report.rows.max(by: { $0.mean < $1.mean }),
               worst.mean > 1e10 || worst.mean > 1e6 * max(best.mean, 1e-6) {
                // Adaptation that explodes (a learned inner rate trained for fewer steps than
                // evaluated, say) is reported, with the numbers, above the report.
                let compared = best.steps == worst.steps ? "" : " (after \(best.steps) steps: \(Value.format(best.mean)))"
                output.write("warning: adaptation diverges: the mse after \(worst.steps) steps is \(Value.format(worst.mean))\(compared); the inner learning rate is too large for that many steps (was the learner trained with fewer?)")
            }
            return .report(report)
        } catch let e as RuntimeError { throw e } catch {
            throw RuntimeError("\(error)", at: c.range)
        }
    }
}

/// Writing values to CSV or JSON files.
enum Export {
    static func write(_ value: Value, to path: String) throws {
        let text: String
        if path.lowercased().hasSuffix(".csv") {
            text = try csv(value)
        } else {
            text = value.jsonText(pretty: true) + "\n"
        }
        try TextFile.write(text, to: path)
    }

    /// Reports and lists of records become a header and one row per record.
    static func csv(_ value: Value) throws -> String {
        let rows: [Record]
        switch value {
        case let .report(r):
            rows = r.rows.map { Record([("steps", .int($0.steps)), (r.metric, .float($0.mean)), ("ci95", .float($0.confidence95)), ("tasks", .int($0.tasks))]) }
        case let .list(items):
            rows = try items.map {
                if case let .record(r) = $0 { return r }
                if $0.number != nil { return Record([("value", $0)]) }
                throw CSVExportError(description: "CSV needs a report or a list of records or numbers")
            }
        case let .record(r): rows = [r]
        default: throw CSVExportError(description: "CSV needs a report or a list of records, got a \(value.typeName)")
        }
        let header = rows.first?.keys ?? []
        func field(_ v: Value?) -> String {
            let s = v?.displayText ?? ""
            return s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        return ([header.joined(separator: ",")] + rows.map { r in header.map { field(r[$0]) }.joined(separator: ",") }).joined(separator: "\n") + "\n"
    }

    struct CSVExportError: Error, CustomStringConvertible { let description: String }
}
