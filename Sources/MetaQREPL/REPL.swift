import Foundation
import MetaQEngine
import MetaQLanguage

/// The interactive metaq session: reads statements (asking for continuation lines while a
/// block, bracket or string is open), evaluates them in one persistent interpreter, and prints
/// values and diagnostics. Errors never end the session.
///
/// When standard input is not a terminal it prints no prompts and runs the whole input as a
/// script, like `metaq run -`.
public final class REPL {
    let reader: LineReader
    let output = REPLOutput()
    var interpreter: Interpreter
    var entryCount = 0
    var history: [String] = []

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        reader = LineReader(environment: environment)
        interpreter = Interpreter(output: output)
    }

    /// Runs until end of input or `:quit`.
    public func run() {
        guard reader.isInteractive else { return runScriptFromInput() }
        print("metaq 0.1.0: a language for meta-learning. :help for help, :quit or Ctrl-D to leave.")
        while let entry = readEntry() {
            let trimmed = entry.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            reader.remember(entry)
            history.append(entry)
            if trimmed.hasPrefix(":") {
                if !runCommand(trimmed) { break }
            } else {
                evaluate(entry)
            }
        }
    }

    private func runScriptFromInput() {
        var text = ""
        while let line = reader.readLine(prompt: "") { text += line + "\n" }
        let diagnostics = interpreter.run(SourceFile(name: "<stdin>", text: text))
        if !diagnostics.isEmpty {
            FileHandle.standardError.write(Data(DiagnosticRenderer(files: Array(interpreter.files.values)).render(diagnostics).utf8))
            exit(1)
        }
    }

    /// One complete entry: lines are joined while the input is incomplete.
    private func readEntry() -> String? {
        guard var text = reader.readLine(prompt: "metaq> ") else { return nil }
        while Parser.isIncomplete(text) {
            guard let more = reader.readLine(prompt: "  ...> ") else { break }
            text += "\n" + more
        }
        return text
    }

    func evaluate(_ text: String) {
        entryCount += 1
        let source = SourceFile(name: "<repl:\(entryCount)>", text: text)
        let (value, diagnostics) = interpreter.evaluate(source)
        if !diagnostics.isEmpty {
            FileHandle.standardError.write(Data(DiagnosticRenderer(files: Array(interpreter.files.values)).render(diagnostics).utf8))
        } else if let value, !isNone(value) {
            print(value.displayText)
        }
    }

    private func isNone(_ v: Value) -> Bool {
        if case .none = v { return true }
        return false
    }

    /// Runs a `:command`; returns false to end the session.
    func runCommand(_ line: String) -> Bool {
        let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
        let argument = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
        switch parts[0] {
        case ":quit", ":q", ":exit":
            return false
        case ":help":
            print(argument.isEmpty ? Help.overview : Help.topic(argument))
        case ":vars":
            let names = interpreter.globals.localBindings.filter { if case .function(let f) = $0.1, Builtins.functions[f.name] != nil { false } else { true } }
            print(names.isEmpty ? "(no variables)" : names.map { "\($0.0): \($0.1.typeName) = \($0.1.displayText.split(separator: "\n").first ?? "")" }.joined(separator: "\n"))
        case ":type":
            let (value, diagnostics) = interpreter.evaluate(SourceFile(name: "<type>", text: argument))
            if let value { print(value.typeName) } else { report(diagnostics) }
        case ":time":
            let start = Date()
            evaluate(argument)
            print(String(format: "(%.3f s)", Date().timeIntervalSince(start)))
        case ":load":
            guard let text = try? String(contentsOfFile: argument, encoding: .utf8) else {
                print("cannot read \(argument)")
                return true
            }
            report(interpreter.run(SourceFile(name: argument, text: text)))
        case ":reset":
            interpreter = Interpreter(output: output)
            print("session reset")
        case ":history":
            print(history.enumerated().map { "\($0.offset + 1)  \($0.element)" }.joined(separator: "\n"))
        default:
            let commands = [":help", ":vars", ":type", ":time", ":load", ":reset", ":history", ":quit"]
            print("unknown command \(parts[0]); commands: \(commands.joined(separator: " "))")
        }
        return true
    }

    private func report(_ diagnostics: [Diagnostic]) {
        guard !diagnostics.isEmpty else { return }
        FileHandle.standardError.write(Data(DiagnosticRenderer(files: Array(interpreter.files.values)).render(diagnostics).utf8))
    }
}

/// Prints REPL output directly.
final class REPLOutput: OutputSink {
    func write(_ line: String) { print(line) }
}
