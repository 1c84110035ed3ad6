import Foundation
import MetaQLanguage

/// The interactive metaq session: reads entries (asking for continuation lines while a
/// block, bracket or string is open), evaluates them in one persistent interpreter, and
/// prints their values and diagnostics. Errors never end the session; Ctrl-C stops a
/// training loop at the next step, or drops the line being typed.
///
/// When standard input is not a terminal it prints no prompts and runs the whole input as
/// one script, like `metaq run -`. The command line starts it with
/// `REPL(output: TerminalOutput()).run()`.
public final class REPL {
    static let banner = "metaq 0.1.0: a language for meta-learning. :help for help, :quit or Ctrl-D to leave."
    /// The prompt for an entry's first line.
    static let prompt = "metaq> "
    /// The prompt for the further lines of an entry with a block, bracket or string open.
    static let continuationPrompt = "  ...> "

    /// Where values and messages go (standard output in the command line).
    let output: OutputSink
    /// Where diagnostics go (standard error in the command line).
    let errors: OutputSink
    private let environment: [String: String]
    private var interpreter: Interpreter
    /// Entries of earlier sessions and of this one, oldest first, for `:history`.
    private var history: [String] = []
    private let historyFile: HistoryFile?
    /// Whether saving the history failed (reported once).
    private var historyFailed = false
    private var entryCount = 0

    /// A session printing values to `output` and diagnostics to `errors`. `environment`
    /// gives `TERM` and the history file (`METAQ_HISTORY`, `HOME`).
    public init(output: OutputSink, errors: OutputSink = StandardErrorOutput(),
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.output = output
        self.errors = errors
        self.environment = environment
        historyFile = HistoryFile.defaultPath(environment: environment).map { HistoryFile(path: $0) }
        interpreter = REPL.makeInterpreter(output: output)
    }

    private static func makeInterpreter(output: OutputSink) -> Interpreter {
        let interpreter = Interpreter(output: output)
        interpreter.shouldInterrupt = { Interrupt.isRequested }
        return interpreter
    }

    /// Runs until the end of the input or `:quit`. Returns false when input that is not a
    /// terminal ran as a script and failed.
    public func run() -> Bool {
        let mode = InputMode.current(environment: environment)
        guard mode != .script else { return runScript(readAllInput()) }
        interact(mode: mode)
        return true
    }

    private func readAllInput() -> String {
        var text = ""
        while let line = Swift.readLine(strippingNewline: false) { text += line }
        return text
    }

    /// Runs input that did not come from a terminal as one script.
    func runScript(_ text: String) -> Bool {
        let diagnostics = interpreter.run(SourceFile(name: "<stdin>", text: text))
        report(diagnostics)
        return diagnostics.isEmpty
    }

    private func interact(mode: InputMode) {
        Interrupt.install()
        history = historyFile?.load() ?? []
        let reader = LineReader(mode: mode, history: history, historyLimit: historyFile?.limit ?? 1000) { [unowned self] in
            interpreter.globals.visibleNames
        }
        output.write(REPL.banner)
        while let entry = readEntry(from: reader) {
            guard !entry.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { continue }
            record(entry, in: reader)
            Interrupt.clear()
            if !handle(entry) { break }
        }
    }

    /// One entry: lines are read while the text is incomplete (an open block, bracket or
    /// string). Returns "" when Ctrl-C drops it, nil at the end of the input.
    private func readEntry(from reader: LineReader) -> String? {
        var lines: [String] = []
        while true {
            reader.earlierLines = lines
            switch reader.readLine(prompt: lines.isEmpty ? REPL.prompt : REPL.continuationPrompt) {
            case .end:
                output.write("")
                // An unfinished entry still runs, to report what it lacks.
                return lines.isEmpty ? nil : lines.joined(separator: "\n")
            case .interrupted:
                output.write(reader.mode == .editing ? "^C" : "")
                return ""
            case let .line(line):
                lines.append(line)
                let entry = lines.joined(separator: "\n")
                if entry.drop(while: \.isWhitespace).hasPrefix(":") || !Parser.isIncomplete(entry) { return entry }
            }
        }
    }

    /// Adds an entry to the up-arrow history, and as the newest entry (earlier copies
    /// removed, as in the file) to the `:history` list and the history file.
    private func record(_ entry: String, in reader: LineReader) {
        reader.remember(entry)
        history.removeAll { $0 == entry }
        history.append(entry)
        do {
            try historyFile?.append(entry)
        } catch {
            if !historyFailed { errors.write("warning: history is not saved: \(error)") }
            historyFailed = true
        }
    }

    /// Runs one entry: a `:command` or metaq code. Returns false to end the session.
    func handle(_ entry: String) -> Bool {
        let trimmed = entry.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.hasPrefix(":") { return runCommand(trimmed) }
        evaluate(entry)
        return true
    }

    /// Evaluates code in the session and prints its value (unless none) or its diagnostics.
    private func evaluate(_ text: String) {
        guard let value = value(of: text), !isNone(value) else { return }
        output.emit(value)
    }

    /// The value of code evaluated in the session (none for a statement), or nil after an
    /// error, which is printed.
    private func value(of text: String) -> Value? {
        entryCount += 1
        let (value, diagnostics) = interpreter.evaluate(SourceFile(name: "<repl:\(entryCount)>", text: text))
        guard diagnostics.isEmpty else {
            report(diagnostics)
            return nil
        }
        return value ?? Value.none
    }

    /// The names bound in the session (for completion).
    var sessionNames: [String] { interpreter.globals.visibleNames }

    private func isNone(_ value: Value) -> Bool {
        if case .none = value { return true }
        return false
    }

    private func report(_ diagnostics: [Diagnostic]) {
        guard !diagnostics.isEmpty else { return }
        output.finishProgress()
        errors.write(DiagnosticRenderer(files: Array(interpreter.files.values)).render(diagnostics))
    }

    /// Runs a `:command` line; returns false to end the session.
    private func runCommand(_ line: String) -> Bool {
        let word = String(line.prefix { !$0.isWhitespace })
        let argument = line.dropFirst(word.count).trimmingCharacters(in: .whitespaces)
        guard let command = SessionCommand(word: word) else {
            output.write("unknown command \(word); commands: " + SessionCommand.allCases.map(\.usage).joined(separator: "  "))
            return true
        }
        if argument.isEmpty, [.type, .time, .load].contains(command) {
            output.write("usage: \(command.usage)")
            return true
        }
        switch command {
        case .quit:
            return false
        case .help:
            output.write(argument.isEmpty ? Help.overview : Help.topic(argument))
        case .vars:
            output.write(variablesListing())
        case .type:
            if let value = value(of: argument) { output.write(value.typeName) }
        case .time:
            let start = Date()
            evaluate(argument)
            output.write(String(format: "time: %.3f s", Date().timeIntervalSince(start)))
        case .load:
            load(argument)
        case .reset:
            interpreter = REPL.makeInterpreter(output: output)
            output.write("session reset: every name is unbound")
        case .history:
            showHistory(argument)
        }
        return true
    }

    /// The session's variables, one per line with its type and the first line of its value.
    private func variablesListing() -> String {
        let variables = interpreter.globals.localBindings.filter { name, value in
            if case let .function(f) = value, case .builtin = f.body, Builtins.functions[name] != nil { return false }
            return true
        }
        guard !variables.isEmpty else { return "(no variables)" }
        return variables.map { name, value in
            "\(name): \(value.typeName) = \(value.displayText.split(separator: "\n").first ?? "")"
        }.joined(separator: "\n")
    }

    /// Runs a script file in the session, so its names stay bound.
    private func load(_ argument: String) {
        let unquoted = argument.count >= 2 && argument.hasPrefix("\"") && argument.hasSuffix("\"")
            ? String(argument.dropFirst().dropLast()) : argument
        let path = (unquoted as NSString).expandingTildeInPath
        let text: String
        do { text = try TextFile.read(path) } catch {
            output.write("cannot read \(path): \(error)")
            return
        }
        report(interpreter.run(SourceFile(name: path, text: text)))
    }

    /// The last entries of the history (20, or the count given), numbered.
    private func showHistory(_ argument: String) {
        guard let count = argument.isEmpty ? 20 : Int(argument), count >= 0 else {
            output.write("usage: \(SessionCommand.history.usage)")
            return
        }
        let first = max(history.count - count, 0)
        for (index, entry) in history.enumerated().dropFirst(first) {
            let number = String(index + 1)
            let indent = String(repeating: " ", count: number.count + 2)
            output.write(number + "  " + entry.replacingOccurrences(of: "\n", with: "\n" + indent))
        }
    }
}

/// Writes lines to standard error.
public final class StandardErrorOutput: OutputSink {
    public init() {}

    public func write(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
