import Testing
@testable import MetaQLanguage

@Suite struct LexerTests {
    private func lex(_ text: String) -> (file: SourceFile, tokens: [Token], diagnostics: [Diagnostic]) {
        let file = SourceFile(name: "lex.mq", text: text)
        let (tokens, diagnostics) = Lexer.tokenize(file)
        return (file, tokens, diagnostics)
    }

    private func kinds(_ text: String) -> [TokenKind] {
        lex(text).tokens.map(\.kind)
    }

    @Test func everyOperatorAndPunctuation() {
        let text = "+ - * @ / % ^ == != < > <= >= = .. -> . , : ; ( ) [ ] { }"
        #expect(kinds(text) == [
            .plus, .minus, .star, .at, .slash, .percent, .caret,
            .equalEqual, .bangEqual, .less, .greater, .lessEqual, .greaterEqual,
            .equal, .dotDot, .arrow, .dot, .comma, .colon, .semicolon,
            .leftParen, .rightParen, .leftBracket, .rightBracket, .leftBrace, .rightBrace,
            .endOfFile,
        ])
    }

    @Test func operatorsWithoutSpaces() {
        #expect(kinds("a<=b->c..d") == [
            .identifier, .lessEqual, .identifier, .arrow, .identifier, .dotDot, .identifier, .endOfFile,
        ])
        #expect(kinds("x=-1") == [.identifier, .equal, .minus, .integer(1), .endOfFile])
    }

    @Test func everyKeyword() {
        for keyword in Keyword.allCases {
            #expect(kinds(keyword.rawValue) == [.keyword(keyword), .endOfFile])
        }
    }

    @Test func domainWordsAreIdentifiers() {
        for word in ["model", "tasks", "learner", "stream", "seed", "print", "train", "eval", "save", "load"] {
            #expect(kinds(word) == [.identifier, .endOfFile])
        }
    }

    @Test func identifiers() {
        let (_, tokens, diagnostics) = lex("_x9 net2 Lets letter")
        #expect(tokens.map(\.kind) == [.identifier, .identifier, .identifier, .identifier, .endOfFile])
        #expect(tokens.map(\.lexeme) == ["_x9", "net2", "Lets", "letter", ""])
        #expect(diagnostics.isEmpty)
    }

    @Test(arguments: [
        ("42", [TokenKind.integer(42)]),
        ("007", [.integer(7)]),
        ("0.01", [.float(0.01)]),
        ("1e-3", [.float(0.001)]),
        ("2.5E+2", [.float(250)]),
        ("3e2", [.float(300)]),
        ("0..2", [.integer(0), .dotDot, .integer(2)]),
        ("1.5..2", [.float(1.5), .dotDot, .integer(2)]),
        ("-5..5", [.minus, .integer(5), .dotDot, .integer(5)]),
        (".5", [.dot, .integer(5)]),
        ("1.x", [.integer(1), .dot, .identifier]),
        ("1e", [.integer(1), .identifier]),
        ("2e+x", [.integer(2), .identifier, .plus, .identifier]),
    ])
    func numbers(text: String, expected: [TokenKind]) {
        let (_, tokens, diagnostics) = lex(text)
        #expect(tokens.map(\.kind) == expected + [.endOfFile])
        #expect(diagnostics.isEmpty)
    }

    @Test func integerOverflowIsADiagnostic() {
        let (file, tokens, diagnostics) = lex("let n = 99999999999999999999")
        #expect(tokens[3].kind == .integer(Int.max))
        #expect(lineColumnMessages(diagnostics, in: file) == ["1:9: integer literal '99999999999999999999' is too large"])
        #expect(diagnostics.first?.range.length == 20)
    }

    @Test func largestIntegerIsFine() {
        #expect(kinds("9223372036854775807") == [.integer(Int.max), .endOfFile])
    }

    @Test func floatOverflowIsADiagnostic() {
        let (file, _, diagnostics) = lex("x 1e999")
        #expect(lineColumnMessages(diagnostics, in: file) == ["1:3: float literal '1e999' is out of range"])
    }

    @Test func stringEscapes() {
        let (_, tokens, diagnostics) = lex(#""tab\t\"quoted\"\n\\ \r\0 \u{1F600}\u{41}""#)
        #expect(tokens[0].kind == .string("tab\t\"quoted\"\n\\ \r\0 😀A"))
        #expect(diagnostics.isEmpty)
    }

    @Test func stringsKeepUnicodeAndMaySpanLines() {
        let (_, tokens, diagnostics) = lex("\"héllo\nwörld\" x")
        #expect(tokens.map(\.kind) == [.string("héllo\nwörld"), .identifier, .endOfFile])
        #expect(diagnostics.isEmpty)
    }

    @Test func unterminatedString() {
        let (file, tokens, diagnostics) = lex("let s = \"abc\nprint s")
        #expect(tokens.map(\.kind) == [.keyword(.let), .identifier, .equal, .string("abc\nprint s"), .endOfFile])
        #expect(lineColumnMessages(diagnostics, in: file) == ["1:9: unterminated string literal"])
        #expect(diagnostics[0].range == SourceRange(fileName: "lex.mq", start: 8, end: 20))
        #expect(diagnostics[0].notes == [Diagnostic.Note("file ends here", at: file.endRange)])
    }

    @Test func unterminatedStringEndingInBackslash() {
        let (file, _, diagnostics) = lex(#"x "ab\"#)
        #expect(lineColumnMessages(diagnostics, in: file) == ["1:3: unterminated string literal"])
    }

    @Test(arguments: [
        (#"s "a\qb""#, "1:5: invalid escape sequence '\\q'", 2),
        (#"s "\u{D800}""#, "1:4: invalid unicode escape '\\u{D800}': not a Unicode scalar value", 8),
        (#"s "\u{}""#, "1:4: invalid unicode escape: expected 1 to 8 hex digits and '}'", 3),
        (#"s "\u{123456789}""#, "1:4: invalid unicode escape: expected 1 to 8 hex digits and '}'", 11),
        (#"s "\u41""#, "1:4: invalid unicode escape: expected '{' after '\\u'", 2),
        (#"s "é\é""#, "1:5: invalid escape sequence '\\é'", 3),
    ])
    func badEscapes(text: String, expected: String, length: Int) {
        let (file, tokens, diagnostics) = lex(text)
        #expect(lineColumnMessages(diagnostics, in: file) == [expected])
        #expect(diagnostics.first?.range.length == length)
        #expect(tokens.count == 3)  // the string still becomes one token
    }

    @Test func badCharacterIsReportedAndLexingContinues() {
        let (file, tokens, diagnostics) = lex("let x = 1 & 2\n  y ! z $")
        #expect(lineColumnMessages(diagnostics, in: file) == [
            "1:11: unexpected character '&'",
            "2:5: unexpected character '!'",
            "2:9: unexpected character '$'",
        ])
        #expect(tokens.map(\.kind) == [
            .keyword(.let), .identifier, .equal, .integer(1), .unknown, .integer(2),
            .identifier, .unknown, .identifier, .unknown, .endOfFile,
        ])
    }

    @Test func nonASCIIAndControlCharacters() {
        let (file, _, diagnostics) = lex("x é\u{7}")
        #expect(lineColumnMessages(diagnostics, in: file) == [
            "1:3: unexpected character 'é'",
            "1:4: unexpected character '\\u{07}'",
        ])
        #expect(diagnostics[0].range.length == 2)
    }

    @Test func commentsAreSkipped() {
        let (_, tokens, _) = lex("a # comment < > \"\nb#c")
        #expect(tokens.map(\.lexeme) == ["a", "b", ""])
        #expect(tokens[1].newlineBefore)
    }

    @Test func spacingFlags() {
        let (_, tokens, _) = lex("f(x) f (x)\n  g")
        let flags = tokens.map { [$0.spaceBefore, $0.newlineBefore] }
        #expect(flags == [
            [true, true],  // f: start of file counts as both
            [false, false], [false, false], [false, false],  // ( x )
            [true, false], [true, false], [false, false], [false, false],  // f ( x )
            [true, true],  // g
            [false, false],  // end of file
        ])
    }

    @Test func tokenLocationsAreLineAndCharacterColumns() {
        let (file, tokens, _) = lex("a\n\t\"é\" b\r\n  c")
        let locations = tokens.map { file.location(of: $0.range.start).description }
        #expect(locations == ["1:1", "2:2", "2:6", "3:3", "3:4"])
        #expect(tokens[1].range.length == 4)  // "é" is two bytes
    }

    @Test func byteOrderMarkIsSkipped() {
        let (_, tokens, diagnostics) = lex("\u{FEFF}print 1")
        #expect(tokens.map(\.kind) == [.identifier, .integer(1), .endOfFile])
        #expect(diagnostics.isEmpty)
    }

    @Test func emptyInput() {
        let (_, tokens, diagnostics) = lex("")
        #expect(tokens.map(\.kind) == [.endOfFile])
        #expect(diagnostics.isEmpty)
    }
}
