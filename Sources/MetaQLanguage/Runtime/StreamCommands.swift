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
                throw RuntimeError("'lifelong' needs a continual learner (finetune, replay, ewc, decayed_maml, protomem, genreplay); '\(learner.kind)' learns task batches: use 'online' or 'train'", at: c.arguments[0].range)
            }
            let adaptation = InnerLoop(steps: c.options.int("eval_steps"), learningRate: Float(c.options.number("eval_lr")))
            let report = learnStream(engine, stream: stream.stream, method: learner.kind, adaptation: adaptation, using: &interp.rng,
                                     shouldStop: interp.shouldInterrupt)
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
                throw RuntimeError("'online' needs a meta-learner (maml, anil, metasgd, reptile); '\(learner.kind)' is a continual learner: use 'lifelong'", at: c.arguments[0].range)
            }
            let o = c.options
            let report = onlineMetaLearning(
                engine, stream: stream.stream, buffer: o.int("buffer"), metaSteps: o.int("meta_steps"), metaBatch: o.int("batch"),
                support: stream.support, query: stream.support, adaptation: InnerLoop(steps: o.int("eval_steps"), learningRate: Float(o.number("eval_lr"))),
                proficiency: o.number("proficiency"), maximumSteps: o.int("max_steps"), using: &interp.rng, shouldStop: interp.shouldInterrupt)
            learner.iterations += report.before.count * o.int("meta_steps")
            // A diverged meta-learner scores NaN (or infinity): an error, not a table of NaN.
            if let task = report.before.indices.first(where: { !report.before[$0].isFinite || !report.after[$0].isFinite }) {
                throw RuntimeError("'online' diverged: the scores of task \(task) are not finite numbers (NaN or infinite)\(task > 0 ? " after meta-training on the tasks before it" : ""); lower the learning rates", at: c.range)
            }
            return .onlineReport(report)
        },
        CommandBuiltin(
            doc: FunctionDoc(name: "plot", signature: "plot REPORT to \"file.svg\"",
                             summary: "Draws a lifelong report (a heat map of R and each task's score over the stream) or an online report (steps to proficiency per task, against from-scratch) as an SVG file.",
                             example: "plot r to \"lifelong.svg\""),
            options: noOptions("plot")) { c, _ in
            let value = try c.argument(nil, "a report")
            let (path, targetRange) = try c.destinationPath("\"file.svg\"")
            let svg: String
            switch value.value {
            case let .lifelongReport(r): svg = Plot.lifelong(r)
            case let .onlineReport(r): svg = Plot.online(r)
            default: throw RuntimeError("'plot' draws lifelong and online reports, not a \(value.value.typeName)", at: value.range)
            }
            do { try TextFile.write(svg, to: path) } catch {
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
            if learner.kind != "protomem" {
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

/// SVG drawings of continual-learning reports.
enum Plot {
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// A heat map of R (left) and one line per task across the stream (right).
    static func lifelong(_ r: ContinualReport) -> String {
        let n = r.matrix.count, m = r.matrix.first?.count ?? 0
        let cell = max(12, min(28, 480 / max(m, 1)))
        let values = r.matrix.flatMap { $0 }.filter(\.isFinite)
        let lo = values.min() ?? 0, hi = values.max() ?? 1
        func color(_ v: Double) -> String {
            guard v.isFinite else { return "#cccccc" }
            var t = hi > lo ? (v - lo) / (hi - lo) : 0.5
            if !r.higherIsBetter { t = 1 - t }
            let red = Int(255 * (1 - t)), green = Int(80 + 150 * t), blue = Int(90 + 60 * (1 - t))
            return String(format: "#%02x%02x%02x", red, green, blue)
        }
        let left = 60, top = 50
        let mapWidth = m * cell, mapHeight = n * cell
        let chartLeft = left + mapWidth + 80, chartWidth = 420, chartHeight = max(mapHeight, 240)
        var svg = ["<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(chartLeft + chartWidth + 40)\" height=\"\(top + chartHeight + 70)\" font-family=\"sans-serif\" font-size=\"11\">",
                   "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
                   "<text x=\"\(left)\" y=\"20\" font-size=\"14\">\(escape(r.method)): R[i][j], \(r.metric) on task j (column) after learning task i (row)</text>",
                   String(format: "<text x=\"%d\" y=\"36\">ACC %.4f  BWT %.4f  FWT %.4f</text>", left, r.averageScore, r.backwardTransfer, r.forwardTransfer)]
        for (i, row) in r.matrix.enumerated() {
            for (j, v) in row.enumerated() {
                svg.append("<rect x=\"\(left + j * cell)\" y=\"\(top + i * cell)\" width=\"\(cell)\" height=\"\(cell)\" fill=\"\(color(v))\"><title>R[\(i)][\(j)] = \(String(format: "%.4f", v))</title></rect>")
            }
            svg.append("<text x=\"\(left - 6)\" y=\"\(top + i * cell + cell / 2 + 4)\" text-anchor=\"end\">\(i)</text>")
        }
        for j in 0..<m { svg.append("<text x=\"\(left + j * cell + cell / 2)\" y=\"\(top + mapHeight + 14)\" text-anchor=\"middle\">\(j)</text>") }
        svg.append("<text x=\"\(left + mapWidth / 2)\" y=\"\(top + mapHeight + 30)\" text-anchor=\"middle\">task j</text>")
        // Curves: task j's score after each learned task i >= j.
        let x0 = chartLeft, y0 = top
        func px(_ i: Int) -> Double { Double(x0) + Double(chartWidth) * Double(i) / Double(max(n - 1, 1)) }
        func py(_ v: Double) -> Double { Double(y0 + chartHeight) - Double(chartHeight) * (hi > lo ? (v - lo) / (hi - lo) : 0.5) }
        svg.append("<rect x=\"\(x0)\" y=\"\(y0)\" width=\"\(chartWidth)\" height=\"\(chartHeight)\" fill=\"none\" stroke=\"#999\"/>")
        for j in 0..<m {
            let points = (j..<n).compactMap { i -> String? in
                let v = r.matrix[i][j]
                return v.isFinite ? String(format: "%.1f,%.1f", px(i), py(v)) : nil
            }
            let hue = Int(360.0 * Double(j) / Double(max(m, 1)))
            svg.append("<polyline fill=\"none\" stroke=\"hsl(\(hue),70%,45%)\" stroke-width=\"1.5\" points=\"\(points.joined(separator: " "))\"><title>task \(j)</title></polyline>")
        }
        svg.append(String(format: "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.3g</text>", x0 - 4, y0 + 10, hi))
        svg.append(String(format: "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%.3g</text>", x0 - 4, y0 + chartHeight, lo))
        svg.append("<text x=\"\(x0 + chartWidth / 2)\" y=\"\(y0 + chartHeight + 30)\" text-anchor=\"middle\">tasks learned (each line: one task's \(r.metric) from when it was learned)</text>")
        svg.append("</svg>")
        return svg.joined(separator: "\n") + "\n"
    }

    /// Steps to proficiency per task: meta-learned start against a fresh start.
    static func online(_ r: OnlineReport) -> String {
        let n = r.before.count, width = 520, height = 260, left = 60, top = 40
        let top2 = Double(r.maximumSteps + 1)
        func px(_ i: Int) -> Double { Double(left) + Double(width) * Double(i) / Double(max(n - 1, 1)) }
        func py(_ k: Int) -> Double { Double(top + height) - Double(height) * Double(k) / top2 }
        func line(_ ks: [Int], _ color: String) -> String {
            "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(ks.enumerated().map { String(format: "%.1f,%.1f", px($0.offset), py($0.element)) }.joined(separator: " "))\"/>"
        }
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(width + 2 * left)" height="\(height + 2 * top + 20)" font-family="sans-serif" font-size="11">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="20" font-size="14">SGD steps to reach \(r.metric) \(r.higherIsBetter ? ">=" : "<=") \(Value.format(r.proficiency)), per arriving task</text>
            <rect x="\(left)" y="\(top)" width="\(width)" height="\(height)" fill="none" stroke="#999"/>
            \(line(r.stepsToProficiency, "#1f77b4"))
            \(line(r.scratchStepsToProficiency, "#d62728"))
            <text x="\(left + 10)" y="\(top + 14)" fill="#1f77b4">from the meta-learned start</text>
            <text x="\(left + 10)" y="\(top + 28)" fill="#d62728">from scratch</text>
            <text x="\(left - 4)" y="\(top + 10)" text-anchor="end">\(r.maximumSteps + 1)</text>
            <text x="\(left - 4)" y="\(top + height)" text-anchor="end">0</text>
            <text x="\(left + width / 2)" y="\(top + height + 20)" text-anchor="middle">task (arrival order)</text>
            </svg>

            """
    }
}
