import Foundation
import MetaQEngine

extension Builtins {
    static let adaptationKeys = [
        KeySpec("eval_steps", .count, default: "5", "SGD steps on a task's test support set before scoring it"),
        KeySpec("eval_lr", .positive, default: "0.01", "learning rate of those steps"),
    ]

    static let streamCommands: [CommandBuiltin] = [
        CommandBuiltin(
            doc: FunctionDoc(name: "lifelong", signature: "lifelong LEARNER on STREAM < eval_steps K eval_lr LR >",
                             summary: "Learns a stream task by task with a continual learner, scoring every task after each one (after adapting on its test support set). Returns a report: the matrix R, ACC, BWT, FWT and forgetting.",
                             example: "let r = lifelong naive on s < eval_steps 5 >"),
            options: BlockSchema("lifelong", .command, summary: "Options of 'lifelong'.", keys: adaptationKeys, example: "lifelong naive on s < eval_steps 5 >")) { c, interp in
            let (learner, stream) = try interp.learnerAndStream(c)
            guard case let .continual(engine) = try learner.engine(for: stream.stream.loss) else {
                throw RuntimeError("'lifelong' needs a continual learner (\(Builtins.continualBlocks.map(\.schema.name).joined(separator: ", "))); '\(learner.kind)' learns task batches: use 'online' or 'train'", at: c.arguments[0].range)
            }
            let adaptation = InnerLoop(steps: c.options.int("eval_steps"), learningRate: Float(c.options.number("eval_lr")))
            let report = learnStream(engine, stream: stream.stream, method: learner.kind, adaptation: adaptation, using: &interp.rng,
                                     shouldStop: interp.shouldInterrupt, progress: interp.progressReporter("lifelong \(learner.kind)"))
            interp.output.finishProgress()
            // A diverged learner scores NaN (or infinity) on every task: an error, not a table of NaN.
            if !report.initial.allSatisfy(\.isFinite) {
                throw RuntimeError("'lifelong': the scores before learning are not finite numbers (NaN or infinite); check the model and the stream's data", at: c.range)
            }
            if let row = report.matrix.firstIndex(where: { !$0.allSatisfy(\.isFinite) }) {
                throw RuntimeError("'lifelong' diverged: the scores after learning task \(row) (\(report.taskNames[row])) are not finite numbers (NaN or infinite); lower the learner's learning rate", at: c.range)
            }
            return .lifelongReport(report)
        },
        CommandBuiltin(
            doc: FunctionDoc(name: "online", signature: "online LEARNER on STREAM < buffer N meta_steps N proficiency X ... >",
                             summary: "Online meta-learning (follow the meta-leader): each arriving task is scored before and after adapting from the meta-learned start, with its SGD steps to proficiency (also from a fresh random start); then the start is meta-trained on a bounded buffer of tasks seen. Returns a report.",
                             example: "let o = online m on s < buffer 10 meta_steps 100 proficiency 0.3 >"),
            options: BlockSchema("online", .command, summary: "Options of 'online'.", keys: [
                KeySpec("buffer", .size, default: "10", "tasks kept for meta-training"),
                KeySpec("meta_steps", .count, default: "100", "meta-updates after each task"),
                KeySpec("batch", .size, default: "5", "tasks per meta-update"),
                KeySpec("proficiency", .positive, default: "0.5", "the MSE to get below (or accuracy to reach)"),
                KeySpec("max_steps", .positiveInt, default: "50", "most SGD steps tried when counting steps to proficiency"),
            ] + adaptationKeys, example: "online m on s < meta_steps 100 >")) { c, interp in
            let (learner, stream) = try interp.learnerAndStream(c)
            guard case let .meta(engine) = try learner.engine(for: stream.stream.loss) else {
                throw RuntimeError("'online' needs a meta-learner (\((Builtins.learnerBlocks + [Builtins.scriptLearnerBlock]).map(\.schema.name).joined(separator: ", "))); '\(learner.kind)' is a continual learner: use 'lifelong'", at: c.arguments[0].range)
            }
            let o = c.options
            let report = onlineMetaLearning(
                engine, stream: stream.stream, buffer: o.int("buffer"), metaSteps: o.int("meta_steps"), metaBatch: o.int("batch"),
                support: stream.support, query: stream.support, adaptation: InnerLoop(steps: o.int("eval_steps"), learningRate: Float(o.number("eval_lr"))),
                proficiency: o.number("proficiency"), maximumSteps: o.int("max_steps"), using: &interp.rng, shouldStop: interp.shouldInterrupt,
                progress: interp.progressReporter("online \(learner.kind)"))
            interp.output.finishProgress()
            learner.iterations += report.before.count * o.int("meta_steps")
            // A diverged meta-learner scores NaN (or infinity): an error, not a table of NaN.
            if let task = report.before.indices.first(where: { !report.before[$0].isFinite || !report.after[$0].isFinite }) {
                throw RuntimeError("'online' diverged: the scores of task \(task) are not finite numbers (NaN or infinite)\(task > 0 ? " after meta-training on the tasks before it" : ""); lower the learning rates", at: c.range)
            }
            return .onlineReport(report)
        },
        CommandBuiltin(
            doc: FunctionDoc(name: "plot", signature: "plot VALUE to \"file.svg\" | plot VALUE to \"file.png\" | plot VALUE (in a notebook: inline)",
                             summary: "Draws VALUE as an SVG file (or a PNG file, rendered by rsvg-convert from Debian's librsvg2-bin, when the name ends in .png): a training log (the record 'train' returns: raw and smoothed loss), an eval report (score against adaptation steps with 95% bands), a list or record of eval reports (one line per learner, with a legend), a lifelong report (a heat map of R with its colour scale, and each task's score over the stream), an online report (steps to proficiency per task against from-scratch, runs that never reached the target marked), a list of numbers or a 1-D tensor (a line), a record of numbers (bars), a record of lists of numbers (lines), a list of records (their numeric fields against the first one: lines, or a scatter of points when it is not in increasing order), a task's images ('sample(tasks, 1)': the first task's support and query images, titled and set apart, each with its label; a split such as 'b.support': its images with their labels), or a tensor of images as a grid ([N, H, W] gray, [N, H, W, C] with C 1 or 3, channels last as the engine's image tasks; [H, W] or [H, W, C] is one image; [T, N, H, W, C] a row per task; values outside 0..1 are scaled from their range to black..white).",
                             example: "plot log to \"out/loss.svg\""),
            options: noOptions("plot")) { c, interp in
            let value = try c.argument(nil, "a value to draw")
            let inline = interp.output.showsImages && !c.arguments.contains { $0.connector == .to }
            let (path, targetRange) = inline ? ("", c.range) : try c.destinationPath("\"file.svg\"")
            let svg: String
            do { svg = try Plot.svg(for: value.value) } catch let e as Plot.PlotError {
                throw RuntimeError("'plot' cannot draw \(e.what)", at: value.range)
            }
            if inline {
                interp.output.display(svg: svg)
                return .none
            }
            do {
                if path.lowercased().hasSuffix(".png") { try Plot.writePNG(svg, to: path) } else { try TextFile.write(svg, to: path) }
            } catch {
                throw RuntimeError("cannot write \(path): \(error)", at: targetRange)
            }
            return .none
        },
    ]
}

extension Interpreter {
    func learnerAndStream(_ c: CommandInvocation) throws -> (LearnerValue, StreamValue) {
        let l = try c.argument(nil, "a learner"), s = try c.argument(.on, "a stream")
        guard case let .learner(learner) = l.value else { throw RuntimeError("'\(c.name.name)' needs a learner, got a \(l.value.typeName)", at: l.range) }
        guard case let .stream(stream) = s.value else { throw RuntimeError("'\(c.name.name) ... on' needs a stream, got a \(s.value.typeName)", at: s.range) }
        guard let first = stream.stream.tasks.first else { throw RuntimeError("the stream has no tasks", at: s.range) }
        let inputShape = Array(first.pool.inputs.shape.dropFirst())
        do {
            let out = try learner.model.network.outputShape(for: inputShape)
            if !(LearnerKind.named(learner.kind)?.outputsEmbeddings ?? false) {
                let needed = stream.stream.loss == .crossEntropy ? (first.pool.classes ?? 1) : 1
                guard out == [needed] else {
                    throw RuntimeError("model output \(out) does not fit this stream's tasks, which need \(needed) output\(needed == 1 ? "" : "s")", at: l.range)
                }
            }
        } catch let e as ShapeError {
            throw RuntimeError("model does not fit the stream's inputs of shape \(inputShape): \(e.message)", at: l.range)
        }
        return (learner, stream)
    }
}
