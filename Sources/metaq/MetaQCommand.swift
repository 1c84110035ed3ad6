import ArgumentParser
import Foundation
import MetaQEngine
import MetaQLanguage
import MetaQREPL

@main
struct MetaQ: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metaq",
        abstract: "A scripting language and REPL for meta-learning research.",
        discussion: "With no subcommand, starts the REPL.",
        version: "0.1.0",
        subcommands: [Run.self, Sweep.self, Check.self, REPLCommand.self, ReferenceCommand.self, Adapt.self, Serve.self, Inspect.self, Demo.self, Jupyter.self, KernelJSON.self],
        defaultSubcommand: REPLCommand.self)
}

/// Reads a script from a path, or standard input for "-".
func readScript(_ path: String) throws -> SourceFile {
    if path == "-" {
        var text = ""
        while let line = readLine(strippingNewline: false) { text += line }
        return SourceFile(name: "<stdin>", text: text)
    }
    let text: String
    do { text = try TextFile.read(path) } catch {
        throw ValidationError("cannot read \(path): \(error)")
    }
    return SourceFile(name: path, text: text)
}

/// metaq's exit statuses (from sysexits.h, and the shell's 128 + SIGINT).
enum ExitStatus {
    static let success: Int32 = 0
    /// A syntax error, or an error found before the script ran (`metaq check`, `--set`).
    static let dataError: Int32 = 65
    /// An error while the script ran.
    static let runtimeError: Int32 = 70
    /// Ctrl-C (SIGINT).
    static let interrupted: Int32 = 130

    /// 70 when a diagnostic was found while running, else 65.
    static func of(_ diagnostics: [Diagnostic]) -> Int32 {
        diagnostics.contains { $0.stage == .run } ? runtimeError : dataError
    }
}

/// Prints diagnostics to standard error, each ending with a line break, and exits with
/// their status (65 or 70).
func fail(with diagnostics: [Diagnostic], files: [SourceFile]) -> Never {
    FileHandle.standardError.write(Data((DiagnosticRenderer(files: files).render(diagnostics) + "\n").utf8))
    Foundation.exit(ExitStatus.of(diagnostics))
}

/// Makes Ctrl-C end the process with exit status 130 (not by the signal, which some callers
/// see as a negative status).
func exitOnInterrupt() {
    signal(SIGINT) { _ in _exit(ExitStatus.interrupted) }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a metaq script.",
        discussion: """
            --set overrides a top-level 'let'/'var' (--set iters=100) or a key of a declaration's \
            block (--set sine.support=5, --set m.inner.steps=3). Values are metaq expressions; \
            text that is not one is taken as a string (--set root=data/omniglot).
            """)

    @ArgumentParser.Argument(help: "The script to run ('-' for standard input).") var file: String
    @Option(name: .customLong("set"), help: ArgumentHelp("Override a top-level value: name=value or decl.key=value.", valueName: "key=value"))
    var overrides: [String] = []
    @Option(help: "Seed the random generator before the script runs.") var seed: UInt64?
    @Flag(help: "Print results as JSON lines.") var json = false
    @Flag(help: "Show no progress on standard error (by default: a bar on a terminal, otherwise a line every 5 seconds; METAQ_PROGRESS_SECONDS sets the interval).")
    var quiet = false

    func run() throws {
        exitOnInterrupt()
        // Under mpirun: one of several processes that train together (DataParallel).
        let mpi: MPI?
        do { mpi = try MPI.startIfLaunched() } catch {
            FileHandle.standardError.write(Data("metaq: \(error)\n".utf8))
            throw ExitCode(ExitStatus.runtimeError)
        }
        DataParallel.group = mpi
        let leader = DataParallel.isLeader
        if let mpi, file == "-" {
            // mpirun gives standard input to the first process only.
            mpi.abort(message: "under mpirun every process reads the script: give a file, not standard input", status: ExitStatus.dataError)
        }
        let source = try readScript(file)
        let progress = ProgressDisplay(quiet: quiet || !leader)
        // Only the first process prints.
        let output: OutputSink
        if !leader { output = SilentOutput() } else if json { output = JSONOutput(progress: progress) } else { output = TerminalOutput(progress: progress) }
        let interpreter = Interpreter(output: output)
        if let seed { interpreter.rng = RandomGenerator(seed: seed) }
        interpreter.overrides = try parseOverrides(overrides)
        let diagnostics = interpreter.run(source)
        guard let mpi else {
            if !diagnostics.isEmpty { fail(with: diagnostics, files: Array(interpreter.files.values)) }
            return
        }
        if !diagnostics.isEmpty {
            let text = DiagnosticRenderer(files: Array(interpreter.files.values)).render(diagnostics)
            if mpi.rank != 0 {
                // Most errors happen on every process alike: the first reports them, and
                // its abort ends this one. An error of this process alone is reported here.
                sleep(2)
            }
            mpi.abort(message: "stopping all \(mpi.size) processes after an error:\n" + text, status: ExitStatus.of(diagnostics))
        }
        if leader, DataParallel.steps > 0, ProcessInfo.processInfo.environment["METAQ_MPI_STATS"] != nil {
            FileHandle.standardError.write(Data(String(
                format: "metaq: %d processes, %d data-parallel meta-steps, %.3f ms summing per step, %d bytes summed per step\n",
                mpi.size, DataParallel.steps, 1000 * DataParallel.reductionSeconds / Double(DataParallel.steps), DataParallel.lastStepBytes).utf8))
        }
        mpi.finalize()
    }
}

/// Parses `--set key=value` pairs into expressions.
func parseOverrides(_ pairs: [String]) throws -> [String: MetaQLanguage.Expression] {
    var result: [String: MetaQLanguage.Expression] = [:]
    for pair in pairs {
        guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else {
            throw ValidationError("--set expects key=value, got '\(pair)'")
        }
        let key = String(pair[..<eq]).trimmingCharacters(in: .whitespaces)
        let text = String(pair[pair.index(after: eq)...])
        let source = SourceFile(name: "--set \(key)", text: "let __value = \(text)")
        let (program, diagnostics) = Parser.parse(source)
        if diagnostics.isEmpty, program.statements.count == 1, case let .let(_, value) = program.statements[0].kind, !isBareName(value) {
            result[key] = value
        } else {
            let quoted = SourceFile(name: "--set \(key)", text: "let __value = \"\(text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\"")
            guard case let .let(_, value)? = Parser.parse(quoted).program.statements.first?.kind else {
                throw ValidationError("--set \(key): cannot use '\(text)' as a value")
            }
            result[key] = value
        }
    }
    return result
}

private func isBareName(_ e: MetaQLanguage.Expression) -> Bool {
    if case .name = e.kind { return true }
    return false
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Parse and check a script without running it.",
        discussion: "Reports syntax errors, undefined names, unknown or missing block keys, and values of the wrong type, with file:line:col and a caret.")

    @ArgumentParser.Argument(help: "The script to check.") var file: String

    func run() throws {
        let source = try readScript(file)
        let result = Checker.check(source)
        if !result.diagnostics.isEmpty { fail(with: result.diagnostics, files: result.files) }
        print("\(file): ok")
    }
}

struct REPLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repl", abstract: "Start the interactive REPL (the default with no subcommand).")

    func run() throws {
        guard REPL(output: TerminalOutput()).run() else { throw ExitCode.failure }
    }
}

/// Prints script output to standard output and progress to standard error: a bar fitted to
/// the terminal, or a plain line every few seconds when standard error is not a terminal.
final class TerminalOutput: OutputSink {
    private let display: ProgressDisplay

    init(progress: ProgressDisplay = ProgressDisplay()) { display = progress }

    func write(_ line: String) {
        finishProgress()
        print(line)
        fflush(nil)
    }

    func progress(label: String, done: Int, total: Int, loss: Float, rate: Double) {
        progress(ProgressState(label: label, done: done, total: total, loss: loss.isNaN ? nil : loss, elapsed: rate > 0 ? Double(done) / rate : 0))
    }

    func progress(_ state: ProgressState) {
        fflush(nil)
        display.show(state)
    }

    func finishProgress() { display.finish() }
}

/// Discards everything: the output of every process but the first under mpirun.
final class SilentOutput: OutputSink {
    func write(_ line: String) {}
    func emit(_ value: Value) {}
}

/// Prints every printed value as one JSON line; progress goes to standard error as with
/// TerminalOutput.
final class JSONOutput: OutputSink {
    private let display: ProgressDisplay

    init(progress: ProgressDisplay = ProgressDisplay()) { display = progress }

    func write(_ line: String) { emit(.string(line)) }

    func emit(_ value: Value) {
        display.finish()
        print(Value.record(Record([("type", .string(value.typeName)), ("value", value)])).jsonText())
    }

    func progress(_ state: ProgressState) { display.show(state) }
    func finishProgress() { display.finish() }
}

struct ReferenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reference", abstract: "Print the builtins reference (the generated part of docs/LANGUAGE.md).")

    func run() throws {
        print(Reference.markdown(), terminator: "")
    }
}
