import Foundation
import MetaQLanguage

/// The JSON mode behind the Jupyter kernel (`metaq kernel-json`): one request per line on
/// standard input, JSON replies one per line on standard output. A thin Python kernel
/// (`metaq jupyter install`) relays between Jupyter and this process.
///
/// Requests, each with an `id` that its replies repeat:
/// - `{"type": "execute", "code": "..."}`: runs a cell as a REPL entry (code, or `:commands`
///   one per line). Replies: `stream` (`name` stdout, `text`), `display` (`data`: a MIME
///   bundle: text/plain, text/html for tables, image/svg+xml for plots), `progress` (`text`:
///   the bar), `error` (`ename`, `evalue`, `traceback`: the diagnostics with their carets),
///   then `done` (`status`: ok, error).
/// - `{"type": "complete", "code": "...", "cursor": N}`: `complete_reply` with `matches`,
///   `cursor_start`, `cursor_end` (cursor positions count Unicode scalars, as Jupyter's do).
/// - `{"type": "inspect", "code": "...", "cursor": N}`: `inspect_reply` with `found` and
///   `text` (what `:help NAME` prints for the word at the cursor).
/// Interrupting is SIGINT to this process: a running `train`, `eval`, `lifelong`, `online` or
/// loop stops at its next step and the session is kept.
public final class KernelSession {
    private let sink = KernelOutput()
    private let errors = KernelErrors()
    private let repl: REPL

    public init() {
        // No history file: a notebook is its own record.
        var environment = ProcessInfo.processInfo.environment
        environment["METAQ_HISTORY"] = ""
        repl = REPL(output: sink, errors: errors, environment: environment)
    }

    /// Serves requests until standard input ends.
    public func run() {
        Interrupt.install()
        while let line = readLine() {
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            handle(line)
        }
    }

    func handle(_ line: String) {
        guard let data = line.data(using: .utf8),
              let request = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let type = request["type"] as? String else {
            KernelOutput.send(["type": "done", "id": NSNull(), "status": "error", "evalue": "not a JSON request: \(line.prefix(80))"])
            return
        }
        let id = request["id"] ?? NSNull()
        let code = request["code"] as? String ?? ""
        switch type {
        case "execute":
            execute(code, id: id)
        case "complete":
            let cursor = request["cursor"] as? Int ?? code.unicodeScalars.count
            let before = String(String.UnicodeScalarView(code.unicodeScalars.prefix(cursor)))
            let completion = Completion.complete(before, names: repl.sessionNames)
            KernelOutput.send(["type": "complete_reply", "id": id, "matches": completion.candidates,
                               "cursor_start": cursor - completion.word.unicodeScalars.count, "cursor_end": cursor])
        case "inspect":
            let cursor = request["cursor"] as? Int ?? code.unicodeScalars.count
            let word = KernelSession.word(in: code, at: cursor)
            let text = word.isEmpty ? "" : Help.topic(word)
            KernelOutput.send(["type": "inspect_reply", "id": id, "found": !word.isEmpty && !text.hasPrefix("no builtin named"), "text": text])
        default:
            KernelOutput.send(["type": "done", "id": id, "status": "error", "evalue": "unknown request type '\(type)'"])
        }
    }

    private func execute(_ code: String, id: Any) {
        sink.id = id
        errors.text = []
        Interrupt.clear()
        let trimmed = code.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix(":") {
            // Session commands, one per line.
            for line in trimmed.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                _ = repl.handle(String(line))
            }
        } else if !trimmed.isEmpty {
            _ = repl.handle(code)
        }
        sink.finishProgress()
        if errors.text.isEmpty {
            KernelOutput.send(["type": "done", "id": id, "status": "ok"])
        } else {
            let traceback = errors.text.joined(separator: "\n")
            let first = traceback.split(separator: "\n").first.map(String.init) ?? "error"
            // "file:line:col: error: message": the message.
            let evalue = first.range(of: "error: ").map { String(first[$0.upperBound...]) } ?? first
            KernelOutput.send(["type": "error", "id": id, "ename": "metaq error", "evalue": evalue, "traceback": traceback.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)])
            KernelOutput.send(["type": "done", "id": id, "status": "error"])
        }
    }

    /// The identifier around `cursor` (Unicode scalar offset).
    static func word(in code: String, at cursor: Int) -> String {
        let scalars = Array(code.unicodeScalars)
        func isWordChar(_ s: Unicode.Scalar) -> Bool { s == "_" || CharacterSet.alphanumerics.contains(s) }
        var start = min(max(cursor, 0), scalars.count), end = start
        while start > 0, isWordChar(scalars[start - 1]) { start -= 1 }
        while end < scalars.count, isWordChar(scalars[end]) { end += 1 }
        return String(String.UnicodeScalarView(scalars[start..<end]))
    }
}

/// Diagnostics of the running cell, kept to be sent as one error.
final class KernelErrors: OutputSink {
    var text: [String] = []
    func write(_ line: String) { text.append(line) }
}

/// Output of the running cell as JSON messages.
final class KernelOutput: OutputSink {
    var id: Any = NSNull()
    private var lastProgress = Date.distantPast

    static func send(_ message: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: message, options: [.sortedKeys]) else { return }
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }

    func write(_ line: String) {
        KernelOutput.send(["type": "stream", "id": id, "name": "stdout", "text": line + "\n"])
    }

    /// A value: rich (a display) when it has an HTML form, else printed text.
    func emit(_ value: Value) {
        guard let html = KernelOutput.html(value) else { return write(value.displayText) }
        KernelOutput.send(["type": "display", "id": id, "data": ["text/plain": value.displayText, "text/html": html]])
    }

    func progress(_ state: ProgressState) {
        let now = Date()
        guard now.timeIntervalSince(lastProgress) > 0.25 || state.done >= state.total else { return }
        lastProgress = now
        KernelOutput.send(["type": "progress", "id": id, "text": state.bar(width: 100)])
    }

    var showsImages: Bool { true }

    func display(svg: String) {
        KernelOutput.send(["type": "display", "id": id, "data": ["image/svg+xml": svg, "text/plain": "<plot>"]])
    }

    /// Eval reports as HTML tables.
    static func html(_ value: Value) -> String? {
        guard case let .report(r) = value else { return nil }
        func e(_ s: String) -> String { s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;") }
        let percent = r.metric == "accuracy"
        var rows = ["<table>", "<thead><tr><th>steps</th><th>\(e(r.metric))</th><th>95% CI</th><th>tasks</th></tr></thead>", "<tbody>"]
        for row in r.rows {
            let mean = percent ? String(format: "%.2f%%", 100 * row.mean) : String(format: "%.4f", row.mean)
            let ci = percent ? String(format: "± %.2f%%", 100 * row.confidence95) : String(format: "± %.4f", row.confidence95)
            rows.append("<tr><td>\(row.steps)</td><td>\(mean)</td><td>\(ci)</td><td>\(row.tasks)</td></tr>")
        }
        return (rows + ["</tbody>", "</table>"]).joined()
    }
}
