/// A reserved word of metaq.
///
/// Words such as `model`, `print` or `train` are not keywords: they are ordinary
/// identifiers that the parser reads as declarations or command calls.
///
///     Keyword(rawValue: "while")  // .while
///     Keyword(rawValue: "print")  // nil
public enum Keyword: String, Sendable, Hashable, CaseIterable {
    case `let`, `var`, fn, `return`, `if`, `else`, `for`, `in`, `while`, `import`
    case `true`, `false`, and, or, not, pi, on, to, with, `break`, `continue`
}

/// The kind of a ``Token``; literal kinds carry their decoded value.
public enum TokenKind: Sendable, Hashable {
    /// A name that is not a keyword: `net`, `print`, `_tmp2`.
    case identifier
    case keyword(Keyword)
    /// An integer literal such as `42`. An overflowing literal is diagnosed and holds `Int.max`.
    case integer(Int)
    /// A floating-point literal such as `0.01` or `2.5E+2`.
    case float(Double)
    /// A string literal; the payload is its value with escapes decoded.
    case string(String)
    case plus, minus, star, slash, percent, caret
    /// `@`, the matrix product.
    case at
    case equalEqual, bangEqual, less, greater, lessEqual, greaterEqual
    case equal, dotDot, arrow, dot, comma, colon, semicolon
    case leftParen, rightParen, leftBracket, rightBracket, leftBrace, rightBrace
    /// A character the lexer could not use; the lexer has already reported it,
    /// so the parser stays silent about it.
    case unknown
    case endOfFile
}

/// One lexical token with its exact source text and position.
///
/// The two spacing flags carry what the lexer skipped before the token; the
/// parser uses them for metaq's layout rules (`f(x)` is a call, `f (x)` is not).
///
///     let (tokens, _) = Lexer.tokenize(SourceFile(name: "a.mq", text: "f (x)"))
///     tokens[1].spaceBefore  // true
public struct Token: Sendable, Hashable {
    public var kind: TokenKind
    /// The token's source text, for example `2.5E+2` or `"a\tb"` with its quotes.
    public var lexeme: String
    public var range: SourceRange
    /// Whether whitespace, a comment or the start of the file comes right before the token.
    public var spaceBefore: Bool
    /// Whether a line break or the start of the file comes before the token.
    public var newlineBefore: Bool

    public init(kind: TokenKind, lexeme: String, range: SourceRange, spaceBefore: Bool, newlineBefore: Bool) {
        self.kind = kind
        self.lexeme = lexeme
        self.range = range
        self.spaceBefore = spaceBefore
        self.newlineBefore = newlineBefore
    }
}

extension TokenKind {
    /// Whether the token can be a key in a configuration block: any identifier or keyword.
    public var isKeyLike: Bool {
        switch self {
        case .identifier, .keyword: true
        default: false
        }
    }

    /// Whether an expression can end with this token, so that a `<` after it can be a comparison.
    public var endsOperand: Bool {
        switch self {
        case .identifier, .integer, .float, .string, .keyword(.true), .keyword(.false), .keyword(.pi),
             .rightParen, .rightBracket, .greater:
            true
        default:
            false
        }
    }

    /// Whether the token can only begin a statement, which makes it a safe place to
    /// resume after an error inside an unclosed `(` or `[`.
    var beginsStatementOnly: Bool {
        switch self {
        case .keyword(.let), .keyword(.var), .keyword(.if), .keyword(.for), .keyword(.while),
             .keyword(.return), .keyword(.import), .keyword(.break), .keyword(.continue):
            true
        default:
            false
        }
    }
}

extension Token {
    /// How messages name the token: `'x'`, `'3'`, `a string` or `end of file`.
    var quotedDescription: String {
        switch kind {
        case .endOfFile: return "end of file"
        case .string: return "a string"
        default:
            let text = lexeme.count > 24 ? lexeme.prefix(24) + "…" : Substring(lexeme)
            return "'\(text)'"
        }
    }
}
