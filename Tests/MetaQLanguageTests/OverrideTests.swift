import Foundation
import Testing
import MetaQLanguage

/// `--set` overrides, and the stage of a diagnostic (which decides metaq's exit status).
@Suite struct OverrideTests {
    /// The expression of `text`, as `--set` would give it.
    private func expression(_ text: String) -> MetaQLanguage.Expression {
        guard case let .let(_, value)? = Parser.parse(SourceFile(name: "--set", text: "let v = \(text)")).program.statements.first?.kind else {
            preconditionFailure("not an expression: \(text)")
        }
        return value
    }

    private func scratch() -> String {
        let path = NSTemporaryDirectory() + "metaq-overrides-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs `text` (as DIR/main.mq) with `overrides`; its output and diagnostics.
    private func run(_ text: String, in dir: String, overrides: [String: String]) -> (lines: [String], diagnostics: [Diagnostic]) {
        let output = BufferedOutput()
        let interpreter = Interpreter(output: output)
        interpreter.overrides = overrides.mapValues(expression)
        let diagnostics = interpreter.run(SourceFile(name: dir + "/main.mq", text: text.replacingOccurrences(of: "DIR", with: dir)))
        return (output.lines, diagnostics)
    }

    @Test func aKeyThatMatchesNothingIsReportedBeforeAnythingRuns() {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = run("""
            print "running"
            write [1, 2] to "DIR/out.json"
            let iters = 10
            """, in: dir, overrides: ["itres": "5"])
        #expect(result.lines == [], "nothing ran")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.json"), "nothing was written")
        #expect(result.diagnostics.map(\.message) == ["--set itres: no top-level 'let', 'var' or declaration key 'itres' in this script"])
        #expect(result.diagnostics.map(\.stage) == [.check])
    }

    @Test func keysOfDeclarationsAndImportedFilesMatch() throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "let n = 1\n".write(toFile: dir + "/lib.mq", atomically: true, encoding: .utf8)
        let script = """
            import "lib.mq"
            tasks sine = sinusoid < support 5 >
            learner m = maml < model mlp < in 1 out 1 > inner < steps 1 > >
            print n
            print sine.query
            """
        let matched = run(script, in: dir, overrides: ["n": "2", "sine.query": "3", "sine.support": "4", "m.inner.lr": "0.1"])
        #expect(matched.diagnostics.map(\.message) == [])
        #expect(matched.lines == ["2", "3"])
        // Only a written nested block takes keys; 'outer' is left at its default here.
        let unmatched = run(script, in: dir, overrides: ["m.outer.lr": "0.1", "sine.support.x": "1"])
        #expect(unmatched.lines == [])
        #expect(unmatched.diagnostics.map(\.message) == ["--set m.outer.lr: no top-level 'let', 'var' or declaration key 'm.outer.lr' in this script"])
    }

    @Test func diagnosticsSayWhenTheyWereFound() {
        let syntax = Interpreter(output: BufferedOutput()).run(SourceFile(name: "a.mq", text: "let x ="))
        #expect(syntax.map(\.stage) == [.syntax])
        let runtime = Interpreter(output: BufferedOutput()).run(SourceFile(name: "a.mq", text: "print [1][3]"))
        #expect(runtime.map(\.stage) == [.run])
        let checked = Checker.check(SourceFile(name: "a.mq", text: "print nope"))
        #expect(checked.diagnostics.map(\.stage) == [.check])
        #expect(Checker.check(SourceFile(name: "a.mq", text: "print (")).diagnostics.map(\.stage) == [.syntax])
    }
}
