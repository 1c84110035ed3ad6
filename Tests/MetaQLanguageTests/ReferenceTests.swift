import Foundation
import Testing
import MetaQLanguage

@Suite("Language reference")
struct ReferenceTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func generatedBuiltinsSectionMatchesTheKeyTables() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("docs/LANGUAGE.md"), encoding: .utf8)
        let begin = try #require(text.range(of: Reference.beginMarker), "docs/LANGUAGE.md lacks the generated section")
        let end = try #require(text.range(of: Reference.endMarker))
        let section = String(text[begin.lowerBound..<end.upperBound]) + "\n"
        #expect(section == Reference.markdown(), "docs/LANGUAGE.md is stale: regenerate with `metaq reference`")
    }

    @Test func theOwnLearnerExampleRuns() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("docs/LANGUAGE.md"), encoding: .utf8)
        let section = try #require(text.range(of: "## Writing your own learner"))
        let open = try #require(text.range(of: "```\n", range: section.upperBound..<text.endIndex))
        let close = try #require(text.range(of: "```\n", range: open.upperBound..<text.endIndex))
        let code = String(text[open.upperBound..<close.lowerBound])
        #expect(code.split(separator: "\n").count <= 30, "the complete MAML stays about 25 lines")
        let file = SourceFile(name: "own-learner.mq", text: code.replacingOccurrences(of: "iters 20000", with: "iters 20")
            .replacingOccurrences(of: "tasks 600", with: "tasks 20"))
        #expect(Checker.check(file).diagnostics.isEmpty)
        let output = BufferedOutput()
        let diagnostics = Interpreter(output: output).run(file)
        #expect(diagnostics.isEmpty, "\(diagnostics.map(\.message))")
        #expect(output.lines.joined(separator: "\n").contains("steps  mse"))
    }

    @Test func everyBuiltinExampleParses() {
        for schema in Builtins.allSchemas where !schema.example.isEmpty {
            let (_, diagnostics) = Parser.parse(SourceFile(name: schema.name, text: schema.example))
            #expect(diagnostics.isEmpty, "example of \(schema.name): \(diagnostics.map(\.message))")
        }
        for command in Builtins.commands.values {
            let (_, diagnostics) = Parser.parse(SourceFile(name: command.doc.name, text: command.doc.example))
            #expect(diagnostics.isEmpty, "example of \(command.doc.name)")
        }
    }

    @Test func everyExampleScriptPassesTheChecker() throws {
        let examples = Self.root.appendingPathComponent("examples")
        let files = try FileManager.default.subpathsOfDirectory(atPath: examples.path).filter { $0.hasSuffix(".mq") }
        #expect(!files.isEmpty)
        for name in files {
            let path = examples.appendingPathComponent(name).path
            let result = Checker.check(SourceFile(name: path, text: try String(contentsOfFile: path, encoding: .utf8)))
            #expect(result.diagnostics.isEmpty, "\(name): \(result.diagnostics.map(\.message))")
        }
    }

    @Test func helpComesFromTheSameTables() {
        let help = Help.topic("inner")
        #expect(help.contains("no builtin named 'inner'"))
        let maml = Help.topic("maml")
        for key in Builtins.blocks["maml"]!.schema.keys { #expect(maml.contains(key.name + ":")) }
        #expect(Help.topic("mpl").contains("did you mean 'mlp'?"))
    }

    @Test func helpForTheModulesThatShipWithMetaq() {
        // :help NAME and :help metaq/NAME print the module's leading comment; the overview
        // lists every module; a near miss gets a suggestion.
        for module in ShippedModule.all {
            let help = Help.topic(module.name)
            #expect(help.hasPrefix("import \"metaq/\(module.name)\""), "\(help)")
            #expect(Help.topic("metaq/" + module.name) == help)
            #expect(help.contains(module.summary.prefix(40)), "\(module.name): \(help)")
            #expect(Help.overview.contains("metaq/" + module.name))
        }
        #expect(Help.topic("matching").contains("fce_steps"))
        #expect(Help.topic("metagn").contains("did you mean 'metagan'?"))
    }
}
