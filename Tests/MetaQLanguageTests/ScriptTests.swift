import Foundation
import Testing
import MetaQLanguage

/// Golden script tests in the style of craftinginterpreters: every file in Scripts/ runs, and
/// its output must equal its `# expect: TEXT` comments (in order), its diagnostics its
/// `# expect error: LINE:COL: MESSAGE` comments, and the static checker's diagnostics its
/// `# check error: LINE:COL: MESSAGE` comments.
struct GoldenScript: CustomStringConvertible, Sendable {
    let path: String
    let source: String
    var description: String { (path as NSString).lastPathComponent }

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Scripts").path

    static var all: [GoldenScript] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".mq") }.sorted().map {
            let path = directory + "/" + $0
            return GoldenScript(path: path, source: (try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
        }
    }

    func expectations(_ marker: String) -> [String] {
        source.split(separator: "\n", omittingEmptySubsequences: false).compactMap { line in
            guard let r = line.range(of: "# \(marker): ") else { return nil }
            return String(line[r.upperBound...])
        }
    }
}

/// Formats diagnostics as `LINE:COL: MESSAGE` for comparison.
func located(_ diagnostics: [Diagnostic], in file: SourceFile) -> [String] {
    diagnostics.map { d in
        let at = file.location(of: d.range.start)
        return "\(at.line):\(at.column): \(d.message)"
    }
}

@Suite("Golden scripts")
struct ScriptTests {
    @Test("script", arguments: GoldenScript.all)
    func script(_ script: GoldenScript) {
        let file = SourceFile(name: script.path, text: script.source)
        let output = BufferedOutput()
        let diagnostics = Interpreter(output: output).run(file)
        #expect(output.lines == script.expectations("expect"), "output of \(script)")
        #expect(located(diagnostics, in: file) == script.expectations("expect error"), "diagnostics of \(script)")
        let checked = Checker.check(file)
        #expect(located(checked.diagnostics, in: file) == script.expectations("check error"), "static check of \(script)")
    }

    @Test func thereAreScripts() {
        #expect(GoldenScript.all.count >= 10)
    }
}
