import Foundation
import Testing
import MetaQLanguage

/// Keeps grammar/metaq.ebnf and the parser in step: every production in the grammar
/// has an example here that parses without diagnostics, and this table names no
/// production the grammar lacks.
@Suite struct GrammarTests {
    static let productionExamples: [String: String] = [
        // Lexical structure.
        "whitespace": "let\tx = 1\r\n",
        "comment": "let x = 1 # a note",
        "letter": "let a = 1",
        "digit": "let a = 7",
        "hex_digit": #"let s = "\u{1F600}""#,
        "identifier": "let my_name2 = 1",
        "keyword": "let t = true",
        "integer": "let n = 42",
        "float": "let f = 2.5E+2",
        "fraction": "let f = 0.01",
        "exponent": "let f = 1e-3",
        "string": #"let s = "hi""#,
        "string_character": #"let s = "a b""#,
        "escape": #"let s = "tab\t\"q\"\n\\\r\0""#,
        "unicode_escape": #"let s = "\u{41}""#,
        // Statements.
        "newline": "let x = 1\nlet y = 2",
        "terminator": "let x = 1; let y = 2",
        "program": exampleProgram,
        "statement_list": "a; b\n\nc;",
        "block": "if x { a; b\n c }",
        "statement": "x",
        "let_statement": "let x = 1",
        "var_statement": "var i = 0",
        "declaration": "model net = mlp < in 1 out 1 >",
        "function_declaration": "fn square(x) {\n  return x * x\n}",
        "parameter_list": "fn f(a, b,) { }",
        "return_statement": "fn f() { return }",
        "if_statement": "if a { } else if b { } else { }",
        "for_statement": "for x in xs { print x }",
        "while_statement": "while i < 3 { i = i + 1 }",
        "break_statement": "while true { break }",
        "continue_statement": "for x in xs { continue }",
        "import_statement": #"import "common.mq""#,
        "assignment": "r.rows[0] = 1",
        "assignment_target": "a[i] = 2",
        "expression_statement": "f(1)",
        "right_hand_side": "let r = eval m on sine < tasks 600 >",
        // Command calls.
        "command_call": #"save m to "sine.mqm""#,
        "command_argument": "print r.rows[0].mean",
        "connector": "train m on sine with extra",
        // Expressions.
        "expression": "let t = a or b and not c",
        "or_expression": "let t = true or false",
        "and_expression": "let t = a and b",
        "not_expression": "let t = not not a",
        "comparison": "let t = a < b",
        "comparison_operator": "let t = a != b",
        "range_expression": "let r = 0..2",
        "additive": "let x = 1 - 2 + 3",
        "multiplicative": "let x = 4 % 3 * 2 / 1",
        "unary": "let x = -2^2",
        "power": "let x = 2 ^ 3 ^ 2",
        "postfix": "let x = f(1)[0].y",
        "call_suffix": "let x = f(1, 2,)",
        "argument": "let x = f(x, steps: 5)",
        "member_suffix": "let x = a.b",
        "index_suffix": "let x = a[0]",
        "primary": "let x = (1)",
        "list": "let xs = [1,\n 2,\n]",
        "lambda": "let g = fn(x) -> x * 2",
        // Configuration blocks.
        "block_call": "let n = mlp < in 1 hidden [40, 40] out 1 >",
        "record": "let rec = < lr 0.01 steps 5 >",
        "configuration_block": "let n = mlp <\n  k 1,\n  j 2\n>",
        "entry": "let o = opt < inner < steps 1 > >",
        "key": "let n = mlp < in 1 >",
        "block_value": "let t = sinusoid < x -5..5 amplitude 2*pi >",
        "block_lambda": "tasks q = regression < f fn(x, a) -> a * x  a -1..1 >",
    ]

    @Test func everyProductionHasAnExampleAndEveryExampleAProduction() throws {
        let grammar = try Grammar(contentsOf: Self.grammarURL)
        let defined = Set(grammar.productions.map(\.name))
        let examples = Set(Self.productionExamples.keys)
        #expect(defined.subtracting(examples).sorted() == [], "productions without an example")
        #expect(examples.subtracting(defined).sorted() == [], "examples for productions the grammar lacks")
        #expect(grammar.productions.count > 50)
    }

    @Test func everyReferencedProductionIsDefinedOnce() throws {
        let grammar = try Grammar(contentsOf: Self.grammarURL)
        let names = grammar.productions.map(\.name)
        #expect(Set(names).count == names.count, "a production is defined twice")
        let undefined = Set(grammar.productions.flatMap(\.references)).subtracting(names)
        #expect(undefined.sorted() == [])
    }

    @Test(arguments: productionExamples.sorted { $0.key < $1.key })
    func exampleParsesWithoutDiagnostics(production: String, example: String) {
        let (file, _, diagnostics) = parse(example)
        #expect(lineColumnMessages(diagnostics, in: file) == [], "example for \(production)")
    }

    /// grammar/metaq.ebnf, found from this file: Tests/MetaQLanguageTests/ -> ../../grammar/.
    static var grammarURL: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()
            .appendingPathComponent("../../grammar/metaq.ebnf")
            .standardizedFileURL
    }
}

/// Just enough of an ISO 14977 EBNF reader to list productions and the names they use.
private struct Grammar {
    struct Production {
        var name: String
        var references: [String]
    }

    var productions: [Production] = []

    init(contentsOf url: URL) throws {
        let text = try String(contentsOf: url, encoding: .utf8)
        var words: [String] = []  // names, "=" and ";" in order; comments, terminals and specials dropped
        var characters = Array(text)[...]
        while let character = characters.first {
            if characters.starts(with: ["(", "*"]) {
                characters = characters.dropFirst(2)
                while !characters.isEmpty, !characters.starts(with: ["*", ")"]) { characters = characters.dropFirst() }
                characters = characters.dropFirst(2)
            } else if character == "\"" || character == "'" || character == "?" {
                characters = characters.dropFirst()
                characters = characters.drop { $0 != character }.dropFirst()
            } else if character.isLetter || character == "_" {
                let word = characters.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
                words.append(String(word))
                characters = characters.dropFirst(word.count)
            } else {
                if character == "=" || character == ";" { words.append(String(character)) }
                characters = characters.dropFirst()
            }
        }
        var index = 0
        while index + 1 < words.count {
            guard words[index + 1] == "=" else {
                index += 1
                continue
            }
            let end = words[index...].firstIndex(of: ";") ?? words.count
            productions.append(Production(name: words[index], references: Array(words[(index + 2)..<end])))
            index = end + 1
        }
    }
}
