/// Turns metaq source text into tokens.
///
/// The lexer never stops early: a bad character, escape or literal is reported as
/// a diagnostic and lexing goes on. The token list always ends with `.endOfFile`.
///
///     let (tokens, diagnostics) = Lexer.tokenize(SourceFile(name: "a.mq", text: "x 0..2"))
///     tokens.map(\.lexeme)  // ["x", "0", "..", "2", ""]
///     diagnostics.isEmpty   // true
public final class Lexer {
    /// The result of lexing one file.
    struct Output {
        var tokens: [Token]
        var diagnostics: [Diagnostic]
        /// Whether the text ends inside a string literal.
        var endsInsideString: Bool
    }

    private let source: SourceFile
    private let bytes: [UInt8]
    private var position = 0
    private var tokens: [Token] = []
    private var diagnostics: [Diagnostic] = []
    private var endsInsideString = false

    private init(source: SourceFile) {
        self.source = source
        bytes = source.bytes
    }

    /// Splits a source file into tokens, ending with `.endOfFile`, and reports lexical errors.
    public static func tokenize(_ source: SourceFile) -> (tokens: [Token], diagnostics: [Diagnostic]) {
        let output = scan(source)
        return (output.tokens, output.diagnostics)
    }

    static func scan(_ source: SourceFile) -> Output {
        let lexer = Lexer(source: source)
        lexer.scanAll()
        return Output(tokens: lexer.tokens, diagnostics: lexer.diagnostics, endsInsideString: lexer.endsInsideString)
    }

    // MARK: - Scanning

    private func scanAll() {
        var spaceBefore = true
        var newlineBefore = true
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }  // a UTF-8 byte order mark
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                position += 1
                spaceBefore = true
            case UInt8(ascii: "\n"):
                position += 1
                spaceBefore = true
                newlineBefore = true
            case UInt8(ascii: "#"):
                while position < bytes.count, bytes[position] != UInt8(ascii: "\n") { position += 1 }
                spaceBefore = true
            default:
                let start = position
                let kind = scanToken()
                let lexeme = String(decoding: bytes[start..<position], as: UTF8.self)
                tokens.append(Token(
                    kind: kind, lexeme: lexeme, range: range(start, position),
                    spaceBefore: spaceBefore, newlineBefore: newlineBefore
                ))
                spaceBefore = false
                newlineBefore = false
            }
        }
        tokens.append(Token(
            kind: .endOfFile, lexeme: "", range: range(bytes.count, bytes.count),
            spaceBefore: spaceBefore, newlineBefore: newlineBefore
        ))
    }

    /// Scans the token starting at `position`, which is not whitespace or a comment.
    private func scanToken() -> TokenKind {
        let byte = bytes[position]
        if byte.isDigit { return scanNumber() }
        if byte.isIdentifierStart { return scanWord() }
        if byte == UInt8(ascii: "\"") { return scanString() }
        position += 1
        switch byte {
        case UInt8(ascii: "+"): return .plus
        case UInt8(ascii: "*"): return .star
        case UInt8(ascii: "@"): return .at
        case UInt8(ascii: "/"): return .slash
        case UInt8(ascii: "%"): return .percent
        case UInt8(ascii: "^"): return .caret
        case UInt8(ascii: ","): return .comma
        case UInt8(ascii: ":"): return .colon
        case UInt8(ascii: ";"): return .semicolon
        case UInt8(ascii: "("): return .leftParen
        case UInt8(ascii: ")"): return .rightParen
        case UInt8(ascii: "["): return .leftBracket
        case UInt8(ascii: "]"): return .rightBracket
        case UInt8(ascii: "{"): return .leftBrace
        case UInt8(ascii: "}"): return .rightBrace
        case UInt8(ascii: "-"): return consume(">") ? .arrow : .minus
        case UInt8(ascii: "."): return consume(".") ? .dotDot : .dot
        case UInt8(ascii: "="): return consume("=") ? .equalEqual : .equal
        case UInt8(ascii: "<"): return consume("=") ? .lessEqual : .less
        case UInt8(ascii: ">"): return consume("=") ? .greaterEqual : .greater
        case UInt8(ascii: "!") where consume("="): return .bangEqual
        default:
            position -= 1
            return scanUnknownCharacter()
        }
    }

    private func scanNumber() -> TokenKind {
        let start = position
        skipDigits()
        var isFloat = false
        if peek(0) == UInt8(ascii: "."), peek(1).isDigit {
            position += 1
            skipDigits()
            isFloat = true
        }
        if peek(0) == UInt8(ascii: "e") || peek(0) == UInt8(ascii: "E") {
            let signLength = peek(1) == UInt8(ascii: "+") || peek(1) == UInt8(ascii: "-") ? 1 : 0
            if peek(1 + signLength).isDigit {
                position += 1 + signLength
                skipDigits()
                isFloat = true
            }
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        if isFloat {
            let value = Double(text) ?? .infinity
            if !value.isFinite {
                report("float literal '\(text)' is out of range", start, position)
            }
            return .float(value)
        }
        guard let value = Int(text) else {
            report("integer literal '\(text)' is too large", start, position)
            return .integer(Int.max)
        }
        return .integer(value)
    }

    private func scanWord() -> TokenKind {
        let start = position
        while position < bytes.count, bytes[position].isIdentifierContinuation { position += 1 }
        // Keywords are 2 to 8 lowercase letters; skip the lookup for other words.
        guard position - start <= 8, bytes[start] >= UInt8(ascii: "a") else { return .identifier }
        let word = String(decoding: bytes[start..<position], as: UTF8.self)
        return Keyword(rawValue: word).map(TokenKind.keyword) ?? .identifier
    }

    /// Scans a string literal, which may span lines, decoding its escapes.
    private func scanString() -> TokenKind {
        let start = position
        position += 1
        var value: [UInt8] = []
        while true {
            guard position < bytes.count else {
                endsInsideString = true
                diagnostics.append(.error(
                    "unterminated string literal", at: range(start, position),
                    notes: [Diagnostic.Note("file ends here", at: source.endRange)]
                ))
                break
            }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                position += 1
                break
            }
            if byte == UInt8(ascii: "\\") {
                scanEscape(into: &value)
            } else {
                value.append(byte)
                position += 1
            }
        }
        return .string(String(decoding: value, as: UTF8.self))
    }

    /// Scans an escape sequence at the backslash at `position`, appending its value.
    private func scanEscape(into value: inout [UInt8]) {
        let start = position
        position += 1
        guard position < bytes.count else { return }  // reported as an unterminated string
        let byte = bytes[position]
        let simple: UInt8? = switch byte {
        case UInt8(ascii: "n"): UInt8(ascii: "\n")
        case UInt8(ascii: "t"): UInt8(ascii: "\t")
        case UInt8(ascii: "r"): UInt8(ascii: "\r")
        case UInt8(ascii: "0"): 0
        case UInt8(ascii: "\\"): UInt8(ascii: "\\")
        case UInt8(ascii: "\""): UInt8(ascii: "\"")
        default: nil
        }
        if let simple {
            value.append(simple)
            position += 1
        } else if byte == UInt8(ascii: "u") {
            position += 1
            if let scalar = scanUnicodeEscape(start: start) {
                value.append(contentsOf: scalar.utf8)
            }
        } else {
            let end = position + scalarLength(at: position)
            let character = String(decoding: bytes[position..<end], as: UTF8.self)
            position = end
            report("invalid escape sequence '\\\(character.escapedForMessage)'", start, position)
        }
    }

    /// Scans the `{hex}` part of a `\u{...}` escape whose backslash is at `start`.
    private func scanUnicodeEscape(start: Int) -> Unicode.Scalar? {
        guard peek(0) == UInt8(ascii: "{") else {
            report("invalid unicode escape: expected '{' after '\\u'", start, position)
            return nil
        }
        position += 1
        var digits = 0
        var code: UInt32 = 0
        while let digit = peek(0).hexValue, digits < 8 {
            code = code << 4 | UInt32(digit)
            digits += 1
            position += 1
        }
        guard digits > 0, peek(0) == UInt8(ascii: "}") else {
            report("invalid unicode escape: expected 1 to 8 hex digits and '}'", start, position)
            return nil
        }
        position += 1
        guard let scalar = Unicode.Scalar(code) else {
            let text = String(decoding: bytes[start..<position], as: UTF8.self)
            report("invalid unicode escape '\(text)': not a Unicode scalar value", start, position)
            return nil
        }
        return scalar
    }

    private func scanUnknownCharacter() -> TokenKind {
        let start = position
        position += scalarLength(at: position)
        let character = String(decoding: bytes[start..<position], as: UTF8.self)
        report("unexpected character '\(character.escapedForMessage)'", start, position)
        return .unknown
    }

    // MARK: - Helpers

    private func peek(_ offset: Int) -> UInt8 {
        position + offset < bytes.count ? bytes[position + offset] : 0
    }

    private func consume(_ expected: Unicode.Scalar) -> Bool {
        guard peek(0) == UInt8(ascii: expected) else { return false }
        position += 1
        return true
    }

    private func skipDigits() {
        while peek(0).isDigit { position += 1 }
    }

    /// The byte length of the UTF-8 scalar starting at `offset`, never past the end.
    private func scalarLength(at offset: Int) -> Int {
        let lead = bytes[offset]
        let length = switch lead {
        case 0xF0...: 4
        case 0xE0...: 3
        case 0xC0...: 2
        default: 1
        }
        return min(length, bytes.count - offset)
    }

    private func range(_ start: Int, _ end: Int) -> SourceRange {
        SourceRange(fileName: source.name, start: start, end: end)
    }

    private func report(_ message: String, _ start: Int, _ end: Int) {
        diagnostics.append(.error(message, at: range(start, end)))
    }
}

private extension UInt8 {
    var isDigit: Bool { self >= UInt8(ascii: "0") && self <= UInt8(ascii: "9") }

    var isIdentifierStart: Bool {
        (self >= UInt8(ascii: "a") && self <= UInt8(ascii: "z"))
            || (self >= UInt8(ascii: "A") && self <= UInt8(ascii: "Z"))
            || self == UInt8(ascii: "_")
    }

    var isIdentifierContinuation: Bool { isIdentifierStart || isDigit }

    var hexValue: UInt8? {
        switch self {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): self - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): self - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): self - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

private extension String {
    /// The text with control characters written as escapes, fit to quote in a message.
    var escapedForMessage: String {
        unicodeScalars.map { $0.properties.generalCategory == .control ? $0.escaped(asASCII: true) : String($0) }.joined()
    }
}
