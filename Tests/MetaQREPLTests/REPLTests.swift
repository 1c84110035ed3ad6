import Foundation
import MetaQLanguage
import Testing
@testable import MetaQREPL

/// Drives a session entry by entry, without a terminal.
private final class Session {
    let output = BufferedOutput()
    let errors = BufferedOutput()
    let repl: REPL

    init() {
        repl = REPL(output: output, errors: errors, environment: ["METAQ_HISTORY": ""])
    }

    /// Runs an entry; returns what it printed to standard output and to standard error.
    @discardableResult
    func enter(_ entry: String) -> (output: String, errors: String) {
        let (outputBefore, errorsBefore) = (output.lines.count, errors.lines.count)
        _ = repl.handle(entry)
        return (output.lines.dropFirst(outputBefore).joined(separator: "\n"), errors.lines.dropFirst(errorsBefore).joined(separator: "\n"))
    }
}

@Suite struct REPLTests {
    @Test func valuesPrintAndStatePersists() {
        let session = Session()
        #expect(session.enter("let x = 2").output == "")
        #expect(session.enter("x * 21").output == "42")
        #expect(session.enter("[x, 1.5, \"s\"]").output == "[2, 1.5, \"s\"]")
        #expect(session.enter("< lr 0.01 steps 5 >").output == "< lr 0.01 steps 5 >")
    }

    @Test func modelsPrintTheirLayersAndParameterCount() {
        let session = Session()
        session.enter("model net = mlp <\n  in 1 hidden [8] out 1\n>")
        #expect(session.enter("net").output == "model mlp: linear(1->8) -> relu -> linear(8->1) (25 parameters)")
    }

    @Test func anErrorShowsACaretAndTheSessionGoesOn() {
        let session = Session()
        session.enter("let a = 1")
        let failed = session.enter("print a + nope")
        #expect(failed.output == "")
        #expect(failed.errors.contains("<repl:2>:1:11: error:"))
        #expect(failed.errors.contains("print a + nope\n          ^~~~"))
        #expect(session.enter("print a + 1") == ("2", ""))
    }

    @Test func syntaxErrorsAreReported() {
        let session = Session()
        #expect(session.enter("let = 3").errors.contains("error:"))
        #expect(session.enter("1 + 1").output == "2")
    }

    @Test func typeAndTime() {
        let session = Session()
        session.enter("let r = < a 1 >")
        #expect(session.enter(":type r").output == "record")
        #expect(session.enter(":type 1.5").output == "float")
        #expect(session.enter(":type let y = 1").output == "none")
        #expect(session.enter(":type nope").errors.contains("error:"))
        let timed = session.enter(":time 2 + 3").output.split(separator: "\n")
        #expect(timed.first == "5")
        #expect(timed.last?.hasPrefix("time: ") == true && timed.last?.hasSuffix(" s") == true)
        #expect(session.enter(":type").output == "usage: :type EXPR")
    }

    @Test func varsListsTheSessionsNamesOnly() {
        let session = Session()
        #expect(session.enter(":vars").output == "(no variables)")
        session.enter("let x = 3")
        session.enter("fn double(v) { return v * 2 }")
        #expect(session.enter(":vars").output == "double: function = <function double>\nx: int = 3")
    }

    @Test func helpForABuiltinShowsItsKeysAndDefaults() {
        let session = Session()
        let help = session.enter(":help maml").output
        #expect(help.contains("maml < ... >  (learner)"))
        #expect(help.contains("steps: int in 0...10000, default 1."))
        #expect(session.enter(":help").output.contains("learners:"))
        #expect(session.enter(":help mamll").output.contains("did you mean 'maml'?"))
    }

    @Test func resetUnbindsEverything() {
        let session = Session()
        session.enter("let x = 1")
        #expect(session.enter(":reset").output.hasPrefix("session reset"))
        #expect(session.enter("x").errors.contains("error:"))
        #expect(session.enter("len([1, 2])").output == "2")
    }

    @Test func loadRunsAFileInTheSession() throws {
        let directory = try temporaryDirectory()
        let file = directory + "/defs.mq"
        try "let loaded = 7\n".write(toFile: file, atomically: true, encoding: .utf8)
        let session = Session()
        #expect(session.enter(":load \"\(file)\"") == ("", ""))
        #expect(session.enter("loaded * 6").output == "42")
        #expect(session.enter(":load \(directory)/missing.mq").output == "cannot read \(directory)/missing.mq: no such file")
    }

    @Test func quitEndsAndUnknownCommandsAreExplained() {
        let session = Session()
        #expect(session.repl.handle(":quit") == false)
        #expect(session.repl.handle(":q") == false)
        #expect(session.repl.handle(":vars") == true)
        #expect(session.enter(":nope").output.hasPrefix("unknown command :nope; commands: :help [NAME]"))
    }

    @Test func aScriptFromAPipeRunsWhole() {
        let session = Session()
        #expect(session.repl.runScript("let x = 2\nprint x * 21\n"))
        #expect(session.output.lines == ["42"])
        #expect(!session.repl.runScript("print nope\n"))
        #expect(session.errors.lines.joined().contains("<stdin>:1:7: error:"))
    }

    @Test func inputModes() {
        #expect(InputMode.choose(inputIsTerminal: true, outputIsTerminal: true, terminalType: "xterm") == .editing)
        #expect(InputMode.choose(inputIsTerminal: true, outputIsTerminal: true, terminalType: "dumb") == .plain)
        #expect(InputMode.choose(inputIsTerminal: true, outputIsTerminal: true, terminalType: nil) == .plain)
        #expect(InputMode.choose(inputIsTerminal: true, outputIsTerminal: false, terminalType: "xterm") == .plain)
        #expect(InputMode.choose(inputIsTerminal: false, outputIsTerminal: true, terminalType: "xterm") == .script)
    }

    @Test func sessionCommandsParse() {
        #expect(SessionCommand(word: ":help") == .help)
        #expect(SessionCommand(word: ":exit") == .quit)
        #expect(SessionCommand(word: "help") == nil)
        #expect(SessionCommand(word: ":nope") == nil)
    }
}
