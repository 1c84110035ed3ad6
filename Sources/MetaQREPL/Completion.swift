import Foundation
import MetaQLanguage

/// Tab completion, as a pure function of the text typed so far in the current entry (earlier
/// continuation lines included) and the names bound in the session. The libedit glue in
/// `LineReader` only hands the text in and the candidates back.
///
/// What is offered depends on where the cursor is:
/// - inside a block, at a key: the block's valid keys not given yet, from the same schemas the
///   validator uses (`learner m = maml < model net inner < st` offers `steps`);
/// - inside a block, at a value: the key's choices (`act ` offers `relu`, `tanh`, ...), `true`
///   and `false` for a bool, or the session's names and the builtins of the right kind;
/// - inside a string: file paths;
/// - at the start of an entry after `:`: the REPL's commands, then their arguments;
/// - elsewhere: keywords, declaration kinds, commands, builtins and session names.
public struct Completion: Equatable, Sendable {
    /// What kind of word is completed, which decides what is typed after a sole candidate.
    public enum Kind: Equatable, Sendable {
        /// A name, keyword, key or choice: a space follows it.
        case name
        /// A file path; `quoted` when it is inside a string literal, which a file closes.
        case path(quoted: Bool)
    }

    /// The end of the typed text that every candidate replaces; it may be empty.
    public let word: String
    /// The completions of `word`, sorted, each starting with `word`.
    public let candidates: [String]
    public let kind: Kind

    /// What to type after `candidate` when it is the only one: a space after a name, the
    /// closing quote after a file inside a string, nothing after a directory.
    public func terminator(after candidate: String) -> String {
        switch kind {
        case .name: " "
        case let .path(quoted): candidate.hasSuffix("/") || !quoted ? "" : "\""
        }
    }

    /// The completions of the word at the end of `text`, given the names bound in the session.
    ///
    ///     Completion.candidates(for: "learner m = maml < model net inner < st", names: ["net"])
    ///     // ["steps"]
    public static func candidates(for text: String, names: [String]) -> [String] {
        complete(text, names: names).candidates
    }

    /// The word at the end of `text` and its completions.
    public static func complete(_ text: String, names: [String]) -> Completion {
        if text.drop(while: { $0 == " " || $0 == "\t" }).hasPrefix(":") {
            return completeSessionCommand(text, names: names)
        }
        return completeCode(text, names: names)
    }

    /// No completion at all.
    static let nothing = Completion(word: "", candidates: [], kind: .name)

    /// The candidates from `pool` that start with `word`, sorted and without repeats.
    static func matching(_ word: String, in pool: [String], kind: Kind = .name) -> Completion {
        Completion(word: word, candidates: Set(pool.filter { $0.hasPrefix(word) }).sorted(), kind: kind)
    }
}

// MARK: REPL commands

extension Completion {
    private static func completeSessionCommand(_ text: String, names: [String]) -> Completion {
        let line = text.drop(while: { $0 == " " || $0 == "\t" })
        guard !line.contains("\n") else { return .nothing }
        guard let space = line.firstIndex(of: " ") else {
            return matching(String(line), in: SessionCommand.allCases.map { ":" + $0.rawValue })
        }
        guard let command = SessionCommand(word: String(line[..<space])) else { return .nothing }
        let argument = String(line[line.index(after: space)...].drop(while: { $0 == " " }))
        switch command.argument {
        case .none:
            return .nothing
        case .builtinName:
            guard !argument.contains(" ") else { return .nothing }
            return matching(argument, in: Array(Builtins.blocks.keys) + Array(Builtins.commands.keys) + Array(Builtins.functions.keys) + ShippedModule.all.map(\.name))
        case .path:
            if argument.hasPrefix("\"") { return completePath(String(argument.dropFirst()), quoted: true) }
            return completePath(String(argument.split(separator: " ", omittingEmptySubsequences: false).last ?? ""), quoted: false)
        case .code:
            return completeCode(argument, names: names)
        }
    }
}

// MARK: Paths

extension Completion {
    /// The files and directories whose paths start with `word`, relative to the current
    /// directory unless absolute; `~/` stands for the home directory. Hidden entries are
    /// offered only when the typed name starts with a dot.
    static func completePath(_ word: String, quoted: Bool) -> Completion {
        let slash = word.lastIndex(of: "/")
        let directory = slash.map { String(word[...$0]) } ?? ""
        let base = slash.map { String(word[word.index(after: $0)...]) } ?? word
        let listed = directory.isEmpty ? "." : (directory as NSString).expandingTildeInPath
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: listed)) ?? []
        let paths = entries.filter { $0.hasPrefix(base) && ($0.hasPrefix(".") == base.hasPrefix(".")) }.map { entry in
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: (listed as NSString).appendingPathComponent(entry), isDirectory: &isDirectory)
            return directory + entry + (exists && isDirectory.boolValue ? "/" : "")
        }
        return matching(word, in: paths, kind: .path(quoted: quoted))
    }
}

// MARK: Code

extension Completion {
    static let keywords = Keyword.allCases.map(\.rawValue)
    /// The words before a declaration's name (`model net = ...`).
    static let declarationKinds = Builtins.declarationKinds.map(\.keyword)
    /// Keywords that can begin an expression.
    static let expressionWords = ["true", "false", "pi", "fn", "not"]

    /// Completion in metaq code: nothing inside a comment or right after an operand, a path
    /// inside a string, else what ``ContextScanner`` finds can come at the end of the text.
    private static func completeCode(_ text: String, names: [String]) -> Completion {
        let (tokens, _) = Lexer.tokenize(SourceFile(name: "<completion>", text: text))
        let byteCount = text.utf8.count
        var context = tokens.dropLast()  // the end-of-file token
        let last = context.last

        // Inside a string: a path; after `import`, also the modules that ship with metaq.
        if let last, case .string = last.kind, last.range.end == byteCount, !isClosedString(last.lexeme) {
            let word = String(last.lexeme.dropFirst())
            let files = completePath(word, quoted: true)
            guard context.dropLast().last?.lexeme == "import" else { return files }
            let modules = ShippedModule.all.map(\.path).filter { $0.hasPrefix(word) }
            return Completion(word: word, candidates: Set(files.candidates + modules).sorted(), kind: .path(quoted: true))
        }
        // Inside a comment: nothing.
        let trailing = text.utf8.dropFirst(last?.range.end ?? 0)
        if trailing.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).last?.contains(UInt8(ascii: "#")) == true {
            return .nothing
        }
        // The word being typed: a name right at the end, or nothing after a space or operator.
        var word = ""
        if let last, last.range.end == byteCount {
            switch last.kind {
            case .identifier, .keyword:
                word = last.lexeme
                context = context.dropLast()
            default:
                guard !last.kind.endsCompletedText, last.kind != .dot else { return .nothing }
            }
        }
        var scanner = ContextScanner()
        let significant = Array(context)
        for index in significant.indices {
            scanner.consume(significant[index], followedBy: significant[(index + 1)...])
        }
        return matching(word, in: scanner.offers(names: names))
    }

    /// Whether a string token's source text ends with its closing quote (not an escaped one).
    private static func isClosedString(_ lexeme: String) -> Bool {
        guard lexeme.count >= 2, lexeme.hasSuffix("\"") else { return false }
        let backslashes = lexeme.dropLast().reversed().prefix { $0 == "\\" }.count
        return backslashes % 2 == 0
    }
}

/// Follows the brackets, braces and blocks open at the end of the typed text, and for the
/// innermost block whether a key or a value comes next.
private struct ContextScanner {
    /// A bracket, brace or block open before the cursor.
    struct Frame {
        enum Kind { case paren, bracket, brace, block }
        var kind: Kind
        /// The block's key table, when known: a builtin's block, a nested block key's or a
        /// command's options.
        var schema: BlockSchema?
        /// The key whose value is being read; nil while a key is expected.
        var key: String?
        /// Whether the current key's value has begun.
        var valueStarted = false
        /// The keys given so far, which completion does not offer again.
        var keysGiven: Set<String> = []
    }

    var frames: [Frame] = []
    var previous: Token?
    var atStatementStart = true
    /// The command the current statement calls (`train`, `eval`, ...), whose options a
    /// `< ... >` at the statement's own level gives.
    var statementCommand: String?

    mutating func consume(_ token: Token, followedBy rest: ArraySlice<Token>) {
        defer { previous = token }
        let atStatementLevel = frames.last.map { $0.kind == .brace } ?? true
        if atStatementLevel {
            if token.kind == .semicolon || (token.newlineBefore && !(previous?.kind.continuesLine ?? false)) {
                beginStatement()
            }
            if case .identifier = token.kind, Builtins.commands[token.lexeme] != nil,
               atStatementStart || previous?.kind == .equal {
                statementCommand = token.lexeme
            }
            atStatementStart = false
        }
        switch token.kind {
        case .leftParen:
            markValue()
            frames.append(Frame(kind: .paren))
        case .leftBracket:
            markValue()
            frames.append(Frame(kind: .bracket))
        case .leftBrace:
            markValue()
            frames.append(Frame(kind: .brace))
            beginStatement()
        case .rightParen: close(.paren)
        case .rightBracket: close(.bracket)
        case .rightBrace:
            close(.brace)
            if frames.last.map({ $0.kind == .brace }) ?? true { beginStatement() }
        case .less:
            let meaning = meaningOfLess(followedBy: rest)
            markValue()
            if case let .block(schema) = meaning { frames.append(Frame(kind: .block, schema: schema)) }
        case .greater where frames.last?.kind == .block:
            frames.removeLast()
        case .comma where frames.last?.kind == .block:
            frames[frames.count - 1].key = nil
        default:
            guard frames.last?.kind == .block else { return }
            if token.kind.isKeyLike, startsKey(frames[frames.count - 1]) {
                frames[frames.count - 1].key = token.lexeme
                frames[frames.count - 1].valueStarted = false
                frames[frames.count - 1].keysGiven.insert(token.lexeme)
            } else {
                markValue()
            }
        }
    }

    private mutating func beginStatement() {
        atStatementStart = true
        statementCommand = nil
    }

    /// Notes that the innermost block's current value has begun.
    private mutating func markValue() {
        guard frames.last?.kind == .block, frames[frames.count - 1].key != nil else { return }
        frames[frames.count - 1].valueStarted = true
    }

    /// Closes the innermost open `kind` and anything left open inside it.
    private mutating func close(_ kind: Frame.Kind) {
        guard let index = frames.lastIndex(where: { $0.kind == kind }) else { return }
        frames.removeSubrange(index...)
    }

    /// Whether a key-like token in `block` starts a new entry: when a key is expected, or
    /// when the value so far is complete (a value cannot continue with a name).
    private func startsKey(_ block: Frame) -> Bool {
        guard block.key != nil else { return true }
        return block.valueStarted && (previous?.kind.endsCompletedText ?? false)
    }

    /// What a `<` means: a comparison, or the opening of a block with its schema when known.
    private enum Less {
        case comparison
        case block(BlockSchema?)
    }

    /// What the `<` just read means. It opens a block after a block key of record type, a
    /// builtin block's name, the arguments of a command with options, or where no operand
    /// precedes it (an anonymous record). After another name it opens a block when
    /// `key value`, `>` or a line break follows, as the parser decides, or when nothing
    /// follows yet; otherwise it compares.
    private func meaningOfLess(followedBy rest: ArraySlice<Token>) -> Less {
        if let block = frames.last, block.kind == .block, let key = block.key, !block.valueStarted {
            if case let .record(inner)? = block.schema?.key(key)?.type { return .block(inner) }
            return .block(nil)
        }
        guard let previous, previous.kind.endsCompletedText else { return .block(nil) }
        guard case .identifier = previous.kind else { return .comparison }
        if let builtin = Builtins.blocks[previous.lexeme] { return .block(builtin.schema) }
        if let command = statementCommand.flatMap({ Builtins.commands[$0] }), !command.options.keys.isEmpty,
           !frames.contains(where: { $0.kind == .block }) {
            return .block(command.options)
        }
        guard let next = rest.first else { return .block(nil) }
        if next.newlineBefore || next.kind == .greater { return .block(nil) }
        guard next.kind.isKeyLike else { return .comparison }
        guard let after = rest.dropFirst().first else { return .block(nil) }
        return after.kind.startsValue ? .block(nil) : .comparison
    }

    /// The words that can come at the cursor.
    func offers(names: [String]) -> [String] {
        guard let block = frames.last, block.kind == .block else {
            if frames.last?.kind == .paren || frames.last?.kind == .bracket { return expressionWords(names) }
            return Completion.keywords + Completion.declarationKinds + Array(Builtins.commands.keys) + expressionWords(names)
        }
        if startsKey(block) {
            guard let schema = block.schema else { return expressionWords(names) }
            return schema.keys.map(\.name).filter { !block.keysGiven.contains($0) }
        }
        guard let key = block.key, !block.valueStarted, let type = block.schema?.key(key)?.type else {
            return expressionWords(names)
        }
        switch type {
        case let .choice(choices): return choices
        case .bool: return ["true", "false"]
        case .model: return names + builtins(.model)
        case .tasks: return names + builtins(.tasks)
        case .function: return names + ["fn"]
        case .record, .string: return []
        case .int, .number, .range, .intList, .stringList, .numberList, .tensors, .layers: return expressionWords(names)
        }
    }

    private func expressionWords(_ names: [String]) -> [String] {
        names + Array(Builtins.blocks.keys) + Completion.expressionWords
    }

    private func builtins(_ category: BlockSchema.Category) -> [String] {
        Builtins.blocks.values.filter { $0.schema.category == category }.map(\.schema.name)
    }
}

private extension TokenKind {
    /// The parser's rule for a token that ends an operand, plus `}`: right after a closed
    /// statement block there is nothing to complete.
    var endsCompletedText: Bool { endsOperand || self == .rightBrace }

    /// Whether a value can begin with the token.
    var startsValue: Bool {
        switch self {
        case .identifier, .integer, .float, .string, .leftBracket, .leftParen, .minus, .less,
             .keyword(.true), .keyword(.false), .keyword(.pi), .keyword(.fn), .keyword(.not):
            true
        default:
            false
        }
    }

    /// Whether a line ending with the token goes on to the next line.
    var continuesLine: Bool {
        switch self {
        case .plus, .minus, .star, .at, .slash, .percent, .caret, .equalEqual, .bangEqual, .less, .lessEqual,
             .greaterEqual, .equal, .dotDot, .arrow, .dot, .comma, .colon, .keyword(.and), .keyword(.or), .keyword(.not):
            true
        default:
            false
        }
    }
}
