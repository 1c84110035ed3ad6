import Testing
import MetaQLanguage

/// One diagnostics golden case: source and the exact `line:column: message` list it yields.
struct DiagnosticCase: Sendable, CustomTestStringConvertible {
    var source: String
    var expected: [String]
    var testDescription: String { source.debugDescription }

    init(_ source: String, _ expected: String...) {
        self.source = source
        self.expected = expected
    }
}

@Suite struct DiagnosticTests {
    static let lexical: [DiagnosticCase] = [
        DiagnosticCase("let x = &", "1:9: unexpected character '&'"),
        DiagnosticCase("let x = 1 & 2\nlet y = 2", "1:11: unexpected character '&'"),
        DiagnosticCase("let s = \"abc", "1:9: unterminated string literal"),
        DiagnosticCase("f(\"abc", "1:3: unterminated string literal"),
        DiagnosticCase(#"let s = "a\qb""#, "1:11: invalid escape sequence '\\q'"),
        DiagnosticCase("let n = 99999999999999999999", "1:9: integer literal '99999999999999999999' is too large"),
    ]

    static let syntax: [DiagnosticCase] = [
        // Statements.
        DiagnosticCase("let x =", "1:8: expected expression after '='"),
        DiagnosticCase("let x = )", "1:9: expected expression after '='"),
        DiagnosticCase("let x =\nlet y = 2", "1:8: expected expression after '='"),
        DiagnosticCase("let = 3", "1:5: expected a name after 'let', found '='"),
        DiagnosticCase("let in = 3", "1:5: expected a name after 'let', found keyword 'in'"),
        DiagnosticCase("let x 3", "1:7: expected '=' after 'let x'"),
        DiagnosticCase("var x", "1:6: expected '=' after 'var x'"),
        DiagnosticCase("fn f { }", "1:6: expected '(' after 'fn f'"),
        DiagnosticCase("fn f(x) x", "1:9: expected '{' to begin the body of 'f'"),
        DiagnosticCase("fn f(1) { }", "1:6: expected a parameter name, found '1'"),
        DiagnosticCase("fn f(a b) { }", "1:8: expected ',' or ')' in parameter list, found 'b'"),
        DiagnosticCase("fn f(a, a) { }", "1:9: duplicate parameter 'a'"),
        DiagnosticCase("if x = 1 { }", "1:6: expected '{' after the condition of 'if'"),
        DiagnosticCase("if x { } else y", "1:15: expected '{' after 'else'"),
        DiagnosticCase("for x xs { }", "1:7: expected 'in' after 'for x'"),
        DiagnosticCase("for 1 in xs { }", "1:5: expected a loop variable name after 'for', found '1'"),
        DiagnosticCase("while { }", "1:7: expected expression after 'while'"),
        DiagnosticCase("import x", "1:8: expected a string path after 'import', found 'x'"),
        DiagnosticCase("else { }", "1:1: 'else' without a preceding 'if'"),
        DiagnosticCase(")", "1:1: unexpected ')' without a matching opening bracket"),
        DiagnosticCase("break", "1:1: 'break' can only be used inside a loop"),
        DiagnosticCase("while true { fn g() { continue } }", "1:23: 'continue' can only be used inside a loop"),
        DiagnosticCase("1 = 2", "1:1: cannot assign to this expression; assign to a name, a member 'a.b' or an element 'a[i]'"),
        DiagnosticCase("f(x) = 2", "1:1: cannot assign to this expression; assign to a name, a member 'a.b' or an element 'a[i]'"),
        DiagnosticCase("let a = 1 let b = 2", "1:11: expected newline or ';' after statement, found 'let'"),
        DiagnosticCase("print f (x)", "1:9: expected newline or ';' after statement, found '('"),
        DiagnosticCase("let t = 1 < a 2", "1:15: expected newline or ';' after statement, found '2'"),
        DiagnosticCase("save m\nto \"f\"", "2:1: expected a statement, found 'to'"),
        DiagnosticCase("* 3", "1:1: expected a statement, found '*'"),
        // Expressions.
        DiagnosticCase("let v = 1 +", "1:12: expected expression after '+'"),
        DiagnosticCase("let v = not", "1:12: expected expression after 'not'"),
        DiagnosticCase("let v = a.", "1:11: expected a member name after '.', found end of file"),
        DiagnosticCase("let v = a.3", "1:11: expected a member name after '.', found '3'"),
        DiagnosticCase("let v = fn(x) x", "1:15: expected '->' after the parameters of a lambda"),
        DiagnosticCase("let v = fn x -> x", "1:12: expected '(' after 'fn'"),
        DiagnosticCase("let v = f(1 2)", "1:13: expected ',' or ')' in argument list, found '2'"),
        DiagnosticCase("let v = f(a: )", "1:14: expected expression after ':'"),
        DiagnosticCase("let v = [1 2]", "1:12: expected ',' or ']' in list, found '2'"),
        DiagnosticCase("let v = a[1 2]", "1:13: expected ']' after index, found '2'"),
        DiagnosticCase("let v = (1 2)", "1:12: expected ')', found '2'"),
        DiagnosticCase("let v = ()", "1:10: expected expression after '('"),
        DiagnosticCase("let t = a < b < c", "1:15: 'a < b < c': comparison operators do not chain; add parentheses"),
        DiagnosticCase("let t = a == b != c == d", "1:16: 'a == b != c': comparison operators do not chain; add parentheses"),
        DiagnosticCase("let r = 0..1..2", "1:13: '0..1..2': range operators do not chain; add parentheses"),
        DiagnosticCase("let t = a < b < ccccccccccccccccccccccccccccccccccccccccc",
                       "1:15: comparison operators do not chain; add parentheses"),
        DiagnosticCase("let q = a.b < c 1 >",
                       "1:13: a block '<' can only follow a plain name; to compare, put the left side in parentheses"),
        // Configuration blocks.
        DiagnosticCase("let b = < 3 >", "1:11: expected a key (identifier) in block, found '3'"),
        DiagnosticCase("let b = m < a 1 3 >", "1:17: expected a key (identifier) in block, found '3'"),
        DiagnosticCase("let b = m < a 1 b >", "1:19: expected a value after key 'b'"),
        DiagnosticCase("let b = m < a 1 b x < 3 >", "1:21: expected a key (identifier) in block, found '<'"),
        DiagnosticCase("let b = m < a 1 b 2 a 3 >", "1:21: duplicate key 'a' in block"),
        DiagnosticCase("let b = m < a < x 1 x 2 > >", "1:21: duplicate key 'x' in block"),
        // Unclosed brackets report at the opening bracket.
        DiagnosticCase("let v = (1 + 2", "1:9: expected ')' to close '(' opened here"),
        DiagnosticCase("let v = (1 +", "1:9: expected ')' to close '(' opened here"),
        DiagnosticCase("let v = [1, 2", "1:9: expected ']' to close '[' opened here"),
        DiagnosticCase("let v = f(1,", "1:10: expected ')' to close '(' opened here"),
        DiagnosticCase("let v = a[", "1:10: expected ']' to close '[' opened here"),
        DiagnosticCase("fn f() {\n  print 1\n", "1:8: expected '}' to close '{' opened here"),
        DiagnosticCase("if x {\n  if y {\n", "2:8: expected '}' to close '{' opened here"),
        DiagnosticCase("let b = m < a 1", "1:11: expected '>' to close block opened here"),
        DiagnosticCase("model net = mlp <\n  in 1\n  out 1\n", "1:17: expected '>' to close block opened here"),
        DiagnosticCase("let r = < a 1", "1:9: expected '>' to close block opened here"),
        DiagnosticCase("fn f(a,", "1:5: expected ')' to close '(' opened here"),
    ]

    @Test(arguments: lexical + syntax)
    func golden(_ golden: DiagnosticCase) {
        let (file, _, diagnostics) = parse(golden.source)
        #expect(lineColumnMessages(diagnostics, in: file) == golden.expected)
    }

    @Test func threeIndependentErrorsGiveExactlyThreeDiagnostics() {
        let (file, program, diagnostics) = parse("""
            let a =
            let b = [1 2]
            let c = mlp < in 1 3 >
            let d = 4
            """)
        #expect(lineColumnMessages(diagnostics, in: file) == [
            "1:8: expected expression after '='",
            "2:12: expected ',' or ']' in list, found '2'",
            "3:20: expected a key (identifier) in block, found '3'",
        ])
        #expect(ASTPrinter.format(program) == "(let d 4)")
    }

    @Test func recoveryResumesAtTheNextStatementInsideBraces() {
        let (file, program, diagnostics) = parse("""
            fn f(x) {
              let y = (x +
              return 2
            }
            while true {
              let q = ]
              print q
            }
            """)
        #expect(lineColumnMessages(diagnostics, in: file) == [
            "2:15: expected expression after '+'",
            "6:11: expected expression after '='",
        ])
        #expect(ASTPrinter.format(program) == """
            (fn f (x) (do (return 2)))
            (while true (do (command print q)))
            """)
    }

    @Test func oneErrorInTheExampleProgramGivesOneDiagnostic() {
        let broken = exampleProgram.replacing("support K query 10", with: "support K query 10 )")
        let (file, program, diagnostics) = parse(broken)
        #expect(lineColumnMessages(diagnostics, in: file) == ["5:83: expected a key (identifier) in block, found ')'"])
        #expect(program.statements.count == 23)
    }

    @Test func unclosedBracketNotePointsAtTheEndOfTheFile() {
        let (file, _, diagnostics) = parse("let v = (1 + 2\n")
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.notes == [Diagnostic.Note("file ends here", at: file.endRange)])
    }

    @Test func mismatchedBracketNotePointsAtTheOpeningBracket() {
        let (file, _, diagnostics) = parse("let v = f(1 2)")
        let notes = diagnostics.first?.notes ?? []
        #expect(notes.map(\.message) == ["to match this '('"])
        #expect(notes.first?.range.map { file.location(of: $0.start).description } == "1:10")
    }

    @Test func duplicateKeyNotePointsAtTheFirstKey() {
        let (file, _, diagnostics) = parse("let b = m < lr 1\n  lr 2 >")
        #expect(lineColumnMessages(diagnostics, in: file) == ["2:3: duplicate key 'lr' in block"])
        let note = diagnostics.first?.notes.first
        #expect(note?.message == "'lr' is first given here")
        #expect(note?.range.map { file.location(of: $0.start).description } == "1:13")
    }

    @Test func chainedComparisonSuggestsParentheses() {
        let (_, _, diagnostics) = parse("let t = a < b < c")
        #expect(diagnostics.first?.fixIt == "(a < b) < c")
    }

    @Test func assignmentInConditionSuggestsEquality() {
        let (_, _, diagnostics) = parse("if x = 1 { }")
        #expect(diagnostics.first?.fixIt == "use '==' to compare two values")
    }

    @Test(arguments: [
        ("let v = " + String(repeating: "(", count: 200) + "1" + String(repeating: ")", count: 200), "1:137"),
        ("let v = " + String(repeating: "[", count: 200) + String(repeating: "]", count: 200), "1:137"),
        ("let v = " + String(repeating: "-", count: 200) + "1", "1:137"),
        ("let v = " + String(repeating: "not ", count: 200) + "x", "1:521"),
        ("let v = " + String(repeating: "m < k ", count: 200) + "1" + String(repeating: " >", count: 200), "1:393"),
        ("let v = " + String(repeating: "fn() -> ", count: 200) + "1", "1:1033"),
        ("let v = 2" + String(repeating: "^2", count: 200), "1:265"),
        ("let v = 1" + String(repeating: " + 1", count: 200), "1:521"),
        ("let v = a" + String(repeating: ".b", count: 200), "1:264"),
        ("let v = f" + String(repeating: "(1)", count: 200), "1:389"),
        (String(repeating: "if x {\n", count: 200) + String(repeating: "}\n", count: 200), "129:4"),
    ])
    func nestingTooDeepIsOneDiagnostic(source: String, location: String) {
        let (file, _, diagnostics) = parse(source + "\nlet after = 1")
        #expect(lineColumnMessages(diagnostics, in: file) == ["\(location): expression nested too deeply"])
    }

    @Test func nestingTooDeepRecoversAtTheNextStatement() {
        let deep = String(repeating: "(", count: 300) + "1" + String(repeating: ")", count: 300)
        let (_, program, diagnostics) = parse("let v = \(deep)\nlet after = 1")
        #expect(diagnostics.count == 1)
        #expect(ASTPrinter.format(program) == "(let after 1)")
    }
}

@Suite struct DiagnosticRendererTests {
    @Test func rendersLocationSourceLineCaretAndFixIt() {
        let file = SourceFile(name: "sine.mq", text: "seed 7\n\tlet t = a < b < c\n")
        let (_, diagnostics) = Parser.parse(file)
        #expect(DiagnosticRenderer(file: file).render(diagnostics) == """
            sine.mq:2:16: error: 'a < b < c': comparison operators do not chain; add parentheses
            \tlet t = a < b < c
            \t              ^
            fix-it: (a < b) < c
            """)
    }

    @Test func rendersTheDocumentedExample() {
        let file = SourceFile(name: "a.mq", text: "let x = (1 + 2")
        let (_, diagnostics) = Parser.parse(file)
        #expect(DiagnosticRenderer(file: file).render(diagnostics) == """
            a.mq:1:9: error: expected ')' to close '(' opened here
            let x = (1 + 2
                    ^
            a.mq:1:15: note: file ends here
            let x = (1 + 2
                          ^
            """)
    }

    @Test func caretSpansTheRangeAndCountsCharacters() {
        let text = "let é = \"ab\\q\" + 1\nnext"
        let file = SourceFile(name: "u.mq", text: text)
        let start = text.utf8.count - "ab\\q\" + 1\nnext".utf8.count - 1
        let diagnostic = Diagnostic(
            severity: .warning, message: "spanning",
            range: SourceRange(fileName: "u.mq", start: start, end: start + 10),
            notes: [Diagnostic.Note("unlocated"), Diagnostic.Note("elsewhere", at: SourceRange(fileName: "u.mq", start: 25, end: 25))]
        )
        #expect(DiagnosticRenderer(file: file).render(diagnostic) == """
            u.mq:1:9: warning: spanning
            let é = "ab\\q" + 1
                    ^~~~~~~~~~
            note: unlocated
            u.mq:2:5: note: elsewhere
            next
                ^
            """)
    }

    @Test func rangeInAnUnknownFileRendersWithoutSource() {
        let file = SourceFile(name: "a.mq", text: "x")
        let diagnostic = Diagnostic.error("missing", at: SourceRange(fileName: "b.mq", start: 0, end: 1))
        #expect(DiagnosticRenderer(file: file).render(diagnostic) == "b.mq: error: missing")
    }

    @Test func rendersLexicalErrorsWithTheirWholeRange() {
        let file = SourceFile(name: "l.mq", text: "let s = \"a\\qb\"")
        let (_, diagnostics) = Parser.parse(file)
        #expect(DiagnosticRenderer(file: file).render(diagnostics) == """
            l.mq:1:11: error: invalid escape sequence '\\q'
            let s = "a\\qb"
                      ^~
            """)
    }
}
