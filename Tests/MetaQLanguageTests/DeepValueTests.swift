import Foundation
import Testing
import MetaQEngine
import MetaQLanguage

/// Lists and records nested far deeper than the Swift stack allows recursion are printed,
/// compared, converted with `str`, written as JSON and freed; each used to crash.
@Suite struct DeepValueTests {
    /// Runs `text` in a fresh interpreter (freed when it returns); its output lines and
    /// diagnostics.
    private func run(_ text: String) -> (lines: [String], errors: [String]) {
        let output = BufferedOutput()
        let diagnostics = Interpreter(output: output).run(SourceFile(name: "deep.mq", text: text))
        return (output.lines, diagnostics.map(\.message))
    }

    private static let deepList = "var x = []\nfor i in range(20000) { x = [x] }\n"
    private static let deepRecord = "var r = < >\nfor i in range(20000) { r = < inner r n i > }\n"

    @Test func deepListsPrintAndConvertToStrings() {
        let result = run(Self.deepList + "print x\nprint len(str(x))")
        #expect(result.errors == [])
        #expect(result.lines.count == 2)
        #expect(result.lines.first == String(repeating: "[", count: 20001) + String(repeating: "]", count: 20001))
        #expect(result.lines.last == "40002")
    }

    @Test func deepRecordsPrint() {
        let result = run(Self.deepRecord + "print r\nprint len(str(r))")
        #expect(result.errors == [])
        #expect(result.lines.first?.hasPrefix("< inner < inner < inner ") == true)
        #expect(result.lines.last.flatMap { Int($0) } == result.lines.first?.count)
        let shallow = run("var r = < >\nfor i in range(2) { r = < inner r n i > }\nprint r")
        #expect(shallow.lines == ["< inner < inner <  > n 0 > n 1 >"])
    }

    @Test func deepValuesCompare() {
        let result = run(Self.deepList + """
            var y = []
            for i in range(20000) { y = [y] }
            var z = [1]
            for i in range(20000) { z = [z] }
            print x == y
            print x == z
            print x != z
            """)
        #expect(result.errors == [])
        #expect(result.lines == ["true", "false", "true"])
        let records = run(Self.deepRecord + """
            var s = < >
            for i in range(20000) { s = < inner s n i > }
            print r == s
            """)
        #expect(records.lines == ["true"])
    }

    @Test func deepValuesAreWrittenAsJSON() throws {
        let path = NSTemporaryDirectory() + "metaq-deep-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = run(Self.deepList + "write [x, < a x >] to \"\(path)\"")
        #expect(result.errors == [])
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.hasPrefix("[\n  [\n    [\n"))
        #expect(text.filter { $0 == "[" }.count == 2 * 20001 + 1)
        #expect(text.filter { $0 == "{" }.count == 1)
        // x twice, 2 lines a level, indented up to 32 levels: the text grows with the depth.
        #expect(text.utf8.count < 2 * 20001 * 2 * 70)
    }

    @Test func deepValuesAreFreed() {
        // Freed when the interpreter and its globals are; 50,000 deep crashed.
        #expect(run("var x = []\nfor i in range(50000) { x = [x] }\nprint 1").lines == ["1"])
        #expect(run("var r = < >\nfor i in range(50000) { r = < inner r > }\nprint 1").lines == ["1"])
        #expect(run("var x = []\nfor i in range(50000) { x = [< a x >] }\nx = 0\nprint x").lines == ["0"])
    }

    /// NaN inside a tensor or report made JSONSerialization throw a raw NSCocoaErrorDomain
    /// error; it is written as a string, like a NaN float.
    @Test func nanInsideTensorsIsWrittenAsAString() {
        #expect(Value.tensor(Tensor([Float.nan, 1, -.infinity])).jsonText() == #"{"shape":[3],"values":["nan",1.0,"-inf"]}"#)
    }

    @Test func smallValuesKeepTheirJSON() {
        let value = Value.record(Record([("b", .list([.int(1), .float(2.5), .string("q\"\n"), .none])), ("a", .float(.nan)), ("c", .record(Record()))]))
        #expect(value.jsonText() == #"{"a":"nan","b":[1,2.5,"q\"\n",null],"c":{}}"#)
        #expect(value.jsonText(pretty: true) == "{\n  \"a\": \"nan\",\n  \"b\": [\n    1,\n    2.5,\n    \"q\\\"\\n\",\n    null\n  ],\n  \"c\": {}\n}")
    }
}
