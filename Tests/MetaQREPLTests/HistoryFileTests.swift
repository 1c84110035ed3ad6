import Foundation
import Testing
@testable import MetaQREPL

@Suite struct HistoryFileTests {
    @Test(arguments: [
        "print 1",
        "model net = mlp <\n  in 1 out 1\n>",
        "print \"a\\nb\"",
        "let path = \"C:\\\\data\\\\new\"",
        "trailing backslash \\",
        "crlf\r\nline",
        "",
    ])
    func entriesRoundTripThroughOneLine(_ entry: String) {
        let line = HistoryFile.encode(entry)
        #expect(!line.contains("\n") && !line.contains("\r"))
        #expect(HistoryFile.decode(Substring(line)) == entry)
    }

    @Test func multiLineEntriesRoundTripThroughTheFile() throws {
        let history = try HistoryFile(path: temporaryDirectory() + "/history")
        let entries = ["seed 7", "learner m = maml < model net\n  inner < steps 1 >\n>", "print \"x\\\\n\""]
        for entry in entries { try history.append(entry) }
        #expect(history.load() == entries)
        #expect(try String(contentsOfFile: history.path, encoding: .utf8).split(separator: "\n").count == 3)
    }

    @Test func aRepeatedEntryMovesToTheEnd() throws {
        let history = try HistoryFile(path: temporaryDirectory() + "/history")
        for entry in ["a", "b", "a", "c", "c"] { try history.append(entry) }
        #expect(history.load() == ["b", "a", "c"])
    }

    @Test func theFileKeepsTheNewestEntries() throws {
        let history = try HistoryFile(path: temporaryDirectory() + "/history", limit: 5)
        for i in 1...8 { try history.append("print \(i)") }
        #expect(history.load() == (4...8).map { "print \($0)" })
    }

    @Test func aMissingFileIsAnEmptyHistory() throws {
        #expect(try HistoryFile(path: temporaryDirectory() + "/none").load().isEmpty)
    }

    @Test func theFileIsPrivateAndNoTemporaryFileRemains() throws {
        let directory = try temporaryDirectory()
        let history = HistoryFile(path: directory + "/history")
        try history.append("print 1")
        let attributes = try FileManager.default.attributesOfItem(atPath: history.path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["history"])
    }

    /// Sessions appending at the same time (here threads, each with its own open file
    /// description, as separate processes have) never lose each other's entries.
    @Test func concurrentAppendsKeepEveryEntry() throws {
        let directory = try temporaryDirectory()
        let history = HistoryFile(path: directory + "/history")
        DispatchQueue.concurrentPerform(iterations: 4) { session in
            for i in 0..<25 { try? history.append("print \(session * 100 + i)") }
        }
        let entries = history.load()
        #expect(entries.count == 100)
        #expect(Set(entries) == Set((0..<4).flatMap { s in (0..<25).map { "print \(s * 100 + $0)" } }))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["history"])
    }

    @Test func anUnwritableLocationIsAnError() throws {
        let history = HistoryFile(path: "/nonexistent-directory-for-metaq/history")
        #expect(throws: HistoryError.self) { try history.append("print 1") }
    }

    @Test func theDefaultPath() {
        #expect(HistoryFile.defaultPath(environment: ["HOME": "/home/r"]) == "/home/r/.metaq_history")
        #expect(HistoryFile.defaultPath(environment: ["HOME": "/home/r", "METAQ_HISTORY": "/tmp/h"]) == "/tmp/h")
        #expect(HistoryFile.defaultPath(environment: ["HOME": "/home/r", "METAQ_HISTORY": ""]) == nil)
    }
}
