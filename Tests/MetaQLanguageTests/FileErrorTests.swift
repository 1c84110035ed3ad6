import Foundation
import Testing
import MetaQLanguage

/// Files that cannot be read or written give errors that say why, not Foundation's raw
/// NSCocoaErrorDomain errors; and a bad seed names the value.
@Suite struct FileErrorTests {
    private func scratch() -> String {
        let path = NSTemporaryDirectory() + "metaq-files-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The diagnostics of `text` run as DIR/main.mq, DIR replaced by `dir`.
    private func errors(_ text: String, in dir: String) -> [String] {
        let source = SourceFile(name: dir + "/main.mq", text: text.replacingOccurrences(of: "DIR", with: dir))
        return Interpreter(output: BufferedOutput()).run(source).map(\.message)
    }

    @Test func writingIntoAMissingFolderSaysSo() {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(errors("write [1] to \"DIR/none/a.json\"", in: dir) == ["cannot write \(dir)/none/a.json: the folder '\(dir)/none' does not exist"])
        #expect(errors("write [1] to \"DIR/none/a.csv\"", in: dir) == ["cannot write \(dir)/none/a.csv: the folder '\(dir)/none' does not exist"])
        #expect(errors("write [1] to \"DIR\"", in: dir) == ["cannot write \(dir): it is a folder, not a file"])
        #expect(errors("model n = mlp < in 1 out 1 >\nsave n to \"DIR/none/n.mqm\"", in: dir)
            == ["cannot save \(dir)/none/n.mqm: the folder '\(dir)/none' does not exist"])
        #expect(errors("""
            tasks sine = sinusoid < support 2 query 2 >
            stream s = stream < tasks sine count 2 pool 4 support 2 query 2 >
            learner m = finetune < model mlp < in 1 out 1 > steps 1 >
            let r = lifelong m on s
            plot r to "DIR/none/r.svg"
            """, in: dir) == ["cannot write \(dir)/none/r.svg: the folder '\(dir)/none' does not exist"])
    }

    @Test func aCheckpointIntoAMissingFolderFailsBeforeTraining() {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let interpreter = Interpreter(output: BufferedOutput())
        let failed = interpreter.evaluate(SourceFile(name: dir + "/a.mq", text: """
            tasks sine = sinusoid < support 2 query 2 >
            learner m = maml < model mlp < in 1 out 1 > >
            train m on sine < iters 5 checkpoint "\(dir)/none/m.mqm" >
            """))
        #expect(failed.diagnostics.map(\.message) == ["cannot save the checkpoint \(dir)/none/m.mqm: the folder '\(dir)/none' does not exist"])
        #expect(interpreter.evaluate(SourceFile(name: dir + "/b.mq", text: "m.iterations")).value?.displayText == "0")
    }

    @Test func missingAndNonUTF8FilesAreTold() throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data([0xFF, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: dir + "/binary.mq"))
        #expect(throws: TextFileError("no such file")) { try TextFile.read(dir + "/missing.mq") }
        #expect(throws: TextFileError("it is not UTF-8 text")) { try TextFile.read(dir + "/binary.mq") }
        #expect(throws: TextFileError("it is a folder, not a file")) { try TextFile.read(dir) }
        #expect(errors("import \"binary.mq\"", in: dir) == ["cannot read imported file 'binary.mq' (looked for \(dir)/binary.mq): it is not UTF-8 text"])
        #expect(errors("import \"missing.mq\"", in: dir) == ["cannot read imported file 'missing.mq' (looked for \(dir)/missing.mq): no such file"])
        let checked = Checker.check(SourceFile(name: dir + "/main.mq", text: "import \"binary.mq\"")).diagnostics.map(\.message)
        #expect(checked == ["cannot read imported file 'binary.mq' (looked for \(dir)/binary.mq): it is not UTF-8 text"])
    }

    @Test func aBadSeedNamesItsValue() {
        #expect(errors("seed -3", in: "/tmp") == ["seed needs a non-negative int, got int -3"])
        #expect(errors("seed 1.5", in: "/tmp") == ["seed needs a non-negative int, got float 1.5"])
        #expect(errors("seed \"x\"", in: "/tmp") == ["seed needs a non-negative int, got a string"])
    }
}
