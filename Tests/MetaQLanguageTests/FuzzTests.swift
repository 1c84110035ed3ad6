import Testing
import MetaQLanguage

/// Feeds the lexer and parser random and mutated inputs: nothing may crash or hang,
/// and every diagnostic must point inside its source.
@Suite struct FuzzTests {
    /// SplitMix64: a tiny seeded generator, so every run sees the same inputs.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64

        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let vocabulary: [String] = Keyword.allCases.map(\.rawValue) + [
        "x", "m", "k", "print", "train", "mlp", "model", "sine",
        "0", "42", "1.5", "1e-3", "2.5E+2", "99999999999999999999", "1e999",
        "\"s\"", "\"a\\tb\"", "\"\\q\"", "\"\\u{D800}\"", "\"open",
        "+", "-", "*", "/", "%", "^", "==", "!=", "<", ">", "<=", ">=", "=", "..", "->", ".", ",", ":", ";",
        "(", ")", "[", "]", "{", "}", "<", ">", "<", ">",
        "\n", "\n", "#c\n", "@", "!", "é", "\u{0}", "\t",
    ]

    static let interestingBytes = Array("<>()[]{}\"\\#\n\t -=.,:;^e01x".utf8)

    /// 10,000 inputs in ten batches of 1,000, one seed each, so batches run in parallel:
    /// 400 token soups, 200 random byte strings decoded lossily, 100 mutations of the
    /// whole example program and 300 mutations of excerpts of it.
    @Test(.timeLimit(.minutes(1)), arguments: 0..<10)
    func randomAndMutatedInputsNeverCrash(batch: Int) {
        var random = SplitMix64(state: 0x5EED_2026 &+ UInt64(batch))
        var inputs: [String] = []
        for _ in 0..<400 { inputs.append(Self.tokenSoup(&random)) }
        for _ in 0..<200 { inputs.append(Self.randomBytes(&random)) }
        for _ in 0..<100 { inputs.append(Self.mutated(Self.exampleLines[...], &random)) }
        for _ in 0..<300 {
            let start = Int.random(in: 0..<Self.exampleLines.count, using: &random)
            let end = min(start + Int.random(in: 1...8, using: &random), Self.exampleLines.count)
            inputs.append(Self.mutated(Self.exampleLines[start..<end], &random))
        }
        #expect(inputs.count == 1_000)
        for (index, input) in inputs.enumerated() {
            check(input, name: "fuzz\(batch)-\(index).mq")
        }
    }

    @Test(arguments: [
        String(repeating: "(", count: 20_000),
        String(repeating: ")", count: 20_000),
        String(repeating: "-", count: 20_000) + "1",
        String(repeating: "not ", count: 10_000),
        "let v = 1" + String(repeating: " + 1", count: 10_000),
        "let v = a" + String(repeating: ".b", count: 10_000),
        "let v = f" + String(repeating: "()", count: 10_000),
        "let v = [" + String(repeating: "1, ", count: 10_000) + "]",
        String(repeating: "{", count: 20_000),
        String(repeating: "if x {", count: 10_000),
        String(repeating: "<", count: 20_000),
        String(repeating: "m < k ", count: 10_000),
        "x" + String(repeating: " < k", count: 10_000),
        String(repeating: "fn() -> ", count: 10_000),
        String(repeating: "a < b ", count: 10_000),
        String(repeating: "\"", count: 20_001),
        String(repeating: "\n", count: 20_000),
        String(repeating: "x = ", count: 10_000),
    ])
    func pathologicalInputsFinish(_ input: String) {
        check(input, name: "pathological.mq")
    }

    /// Lexes, parses and statically checks `text`, checking that every range lies inside it. Checks are
    /// collected and expected once, which keeps the debug build fast.
    private func check(_ text: String, name: String) {
        let file = SourceFile(name: name, text: text)
        var problems: [String] = []
        let (tokens, lexicalDiagnostics) = Lexer.tokenize(file)
        if tokens.last?.kind != .endOfFile { problems.append("no end-of-file token") }
        var previousEnd = 0
        for token in tokens {
            if token.range.start < previousEnd || token.range.end > file.byteCount {
                problems.append("token '\(token.lexeme)' out of order or out of range")
            }
            previousEnd = token.range.end
        }
        let (program, diagnostics) = Parser.parse(file)
        if diagnostics.count < lexicalDiagnostics.count { problems.append("lexical diagnostics lost") }
        for diagnostic in diagnostics {
            for range in [diagnostic.range] + diagnostic.notes.compactMap(\.range)
            where range.fileName != name || range.start < 0 || range.start > range.end || range.end > file.byteCount {
                problems.append("'\(diagnostic.message)' has range \(range.start)..<\(range.end)")
            }
        }
        _ = ASTPrinter.format(program)
        _ = DiagnosticRenderer(file: file).render(diagnostics)
        // The static checker (run by `metaq check`) must survive anything the parser accepts.
        let checked = Checker.check(file)
        for diagnostic in checked.diagnostics where diagnostic.range.fileName == name
            && (diagnostic.range.start < 0 || diagnostic.range.end > file.byteCount) {
            problems.append("checker: '\(diagnostic.message)' out of range")
        }
        _ = DiagnosticRenderer(files: checked.files).render(checked.diagnostics)
        _ = Parser.isIncomplete(text)
        #expect(problems == [], "in \(text.debugDescription)")
    }

    private static func tokenSoup(_ random: inout SplitMix64) -> String {
        let separators = ["", " ", " ", "\n"]
        var text = ""
        for _ in 0..<Int.random(in: 1...40, using: &random) {
            text += vocabulary.randomElement(using: &random) ?? ""
            text += separators.randomElement(using: &random) ?? ""
        }
        return text
    }

    private static func randomBytes(_ random: inout SplitMix64) -> String {
        let bytes = (0..<Int.random(in: 0...120, using: &random)).map { _ in
            Bool.random(using: &random)
                ? UInt8.random(in: 0...255, using: &random)
                : interestingBytes.randomElement(using: &random) ?? 0
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static let exampleLines = exampleProgram.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)

    /// Example program lines with a few characters or lines deleted, duplicated or swapped.
    private static func mutated(_ lines: ArraySlice<String>, _ random: inout SplitMix64) -> String {
        var bytes = Array(lines.joined(separator: "\n").utf8)
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            guard bytes.count > 2 else { break }
            let a = Int.random(in: 0..<bytes.count, using: &random)
            let b = Int.random(in: 0..<bytes.count, using: &random)
            let length = Int.random(in: 1...8, using: &random)
            switch Int.random(in: 0..<6, using: &random) {
            case 0: bytes.removeSubrange(a..<min(a + length, bytes.count))
            case 1: bytes.insert(contentsOf: bytes[a..<min(a + length, bytes.count)], at: b)
            case 2: bytes.swapAt(a, b)
            case 3, 4, 5:
                var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
                let i = Int.random(in: 0..<lines.count, using: &random)
                let j = Int.random(in: 0..<lines.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: lines.remove(at: i)
                case 1: lines.insert(lines[i], at: j)
                default: lines.swapAt(i, j)
                }
                bytes = Array(lines.joined(separator: [UInt8(ascii: "\n")]))
            default: break
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
