import Foundation
import Testing
@testable import MetaQREPL

@Suite struct CompletionTests {
    let names = ["net", "sine", "m", "alpha", "len", "sin"]

    @Test func keysOfTheInnermostOpenBlock() {
        #expect(Completion.candidates(for: "learner m = maml < model net inner < st", names: names) == ["steps"])
        #expect(Completion.candidates(for: "learner m = maml < model net inner < ", names: names) == ["lr", "lrs", "steps"])
        #expect(Completion.candidates(for: "learner m = maml < model net outer < ", names: names) == ["batch", "decay", "every", "lr", "momentum", "opt"])
    }

    @Test func keysAlreadyGivenAreNotOffered() {
        #expect(Completion.candidates(for: "model net = mlp < in 1 out 1 ", names: names) == ["act", "flatten", "hidden", "init"])
        #expect(Completion.candidates(for: "learner m = maml < model net inner < steps 1 lr 0.01 > ", names: names)
            == ["checkpoint", "order", "outer"])
    }

    @Test func aKeyFollowsACompleteValue() {
        #expect(Completion.candidates(for: "learner m = maml < model net inner < steps 1 > ou", names: names) == ["outer"])
        #expect(Completion.candidates(for: "tasks t = sinusoid < amplitude 0.1..5.0 ph", names: names) == ["phase"])
        #expect(Completion.candidates(for: "model n = mlp < hidden [40, 40] o", names: names) == ["out"])
        #expect(Completion.candidates(for: "tasks q = regression < f fn(x, a) -> a * x  x -3..3 sup", names: names) == ["support"])
    }

    @Test func blocksSpanningLines() {
        let text = "learner m = maml < model net\n  inner < steps 1 >\n  outer < o"
        #expect(Completion.candidates(for: text, names: names) == ["opt"])
    }

    @Test func valuesOfAKey() {
        #expect(Completion.candidates(for: "model n = mlp < in 1 out 1 act ", names: names) == ["elu", "gelu", "leaky_relu", "relu", "sigmoid", "swish", "tanh"])
        #expect(Completion.candidates(for: "learner m = maml < model net outer < opt a", names: names) == ["adam"])
        #expect(Completion.candidates(for: "tasks o = omniglot < root \"x\" rotations ", names: names) == ["false", "true"])
        #expect(Completion.candidates(for: "learner m = maml < model n", names: names) == ["net"])
        #expect(Completion.candidates(for: "learner m = maml < model ", names: ["net"]) == ["conv4", "mlp", "net", "resnet12", "sequential"])
        #expect(Completion.candidates(for: "stream s = stream < tasks si", names: names) == ["sin", "sine", "sinusoid"])
    }

    @Test func commandOptions() {
        #expect(Completion.candidates(for: "train m on sine < it", names: names) == ["iters"])
        #expect(Completion.candidates(for: "let r = eval m on sine < tasks 10 st", names: names) == ["steps"])
        #expect(Completion.candidates(for: "train m on sine < iters 10 ", names: names) == ["batch", "checkpoint", "eval_every", "eval_tasks", "every", "log", "log_every", "resume"])
    }

    @Test func statementsAndExpressions() {
        #expect(Completion.candidates(for: "pri", names: names) == ["print"])
        #expect(Completion.candidates(for: "whi", names: names) == ["while"])
        #expect(Completion.candidates(for: "lea", names: names) == ["learner"])
        #expect(Completion.candidates(for: "print al", names: names) == ["alpha"])
        #expect(Completion.candidates(for: "let y = f(al", names: names) == ["alpha"])
        #expect(Completion.candidates(for: "let y = [1, al", names: names) == ["alpha"])
    }

    @Test func aComparisonOpensNoBlock() {
        #expect(Completion.candidates(for: "if alpha < m {\n  pri", names: names) == ["print"])
        #expect(Completion.candidates(for: "while alpha < 3 { tra", names: names) == ["train"])
        #expect(Completion.candidates(for: "if alpha < m { print 1 }\ntra", names: names) == ["train"])
    }

    @Test func nothingWhereNoNameCanGo() {
        #expect(Completion.candidates(for: "print 1 # pri", names: names).isEmpty)
        #expect(Completion.candidates(for: "print m.", names: names).isEmpty)
        #expect(Completion.candidates(for: "print 3", names: names).isEmpty)
        #expect(Completion.candidates(for: "print (1)", names: names).isEmpty)
    }

    @Test func sessionCommands() {
        #expect(Completion.candidates(for: ":he", names: names) == [":help"])
        #expect(Completion.candidates(for: ":t", names: names) == [":time", ":type"])
        #expect(Completion.candidates(for: ":help mam", names: names) == ["maml", "maml_rl"])
        #expect(Completion.candidates(for: ":type al", names: names) == ["alpha"])
        #expect(Completion.candidates(for: ":type mlp < in 1 o", names: names) == ["out"])
        #expect(Completion.candidates(for: ":reset x", names: names).isEmpty)
    }

    @Test func pathsInsideStrings() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(FileManager.default.createFile(atPath: directory + "/results.csv", contents: Data()))
        #expect(FileManager.default.createFile(atPath: directory + "/report.json", contents: Data()))
        #expect(FileManager.default.createFile(atPath: directory + "/.hidden", contents: Data()))
        try FileManager.default.createDirectory(atPath: directory + "/runs", withIntermediateDirectories: false)

        let completion = Completion.complete("write r to \"\(directory)/re", names: names)
        #expect(completion.word == directory + "/re")
        #expect(completion.candidates == [directory + "/report.json", directory + "/results.csv"])
        #expect(completion.kind == .path(quoted: true))
        #expect(completion.terminator(after: directory + "/results.csv") == "\"")

        #expect(Completion.candidates(for: "write r to \"\(directory)/", names: names)
            == [directory + "/report.json", directory + "/results.csv", directory + "/runs/"])
        #expect(Completion.candidates(for: "write r to \"\(directory)/.", names: names) == [directory + "/.hidden"])
        #expect(Completion.complete("write r to \"\(directory)/ru", names: names).terminator(after: directory + "/runs/") == "")

        let load = Completion.complete(":load \(directory)/res", names: names)
        #expect(load.candidates == [directory + "/results.csv"])
        #expect(load.terminator(after: directory + "/results.csv") == "")
    }

    @Test func modulesThatShipWithMetaq() {
        // After `import`, a string offers the modules as well as files; :help offers them too.
        #expect(Completion.candidates(for: "import \"metaq/m", names: names) == ["metaq/matching", "metaq/meta_lstm", "metaq/metagan"])
        let one = Completion.complete("import \"metaq/matc", names: names)
        #expect(one.candidates == ["metaq/matching"] && one.terminator(after: "metaq/matching") == "\"")
        #expect(Completion.candidates(for: "let s = \"metaq/m", names: names) == [])
        #expect(Completion.candidates(for: ":help meta_", names: names) == ["meta_lstm", "meta_step"])
        #expect(Completion.candidates(for: "learner m = custom < na", names: names) == ["name"])
    }

    @Test func aClosedStringIsNotAPath() {
        #expect(Completion.candidates(for: "print \"a\" + al", names: names) == ["alpha"])
        #expect(Completion.complete("print \"a\\\"", names: names).kind == .path(quoted: true))
    }

    @Test func namesAreFollowedByASpace() {
        #expect(Completion.complete("pri", names: names).terminator(after: "print") == " ")
    }
}

/// A new empty directory under the system's temporary directory.
func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "metaq-repl-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
