/// Parses metaq source into a ``Program``.
///
/// The parser is a recursive-descent parser over the grammar in `grammar/metaq.ebnf`.
/// It never stops at the first error: a syntax error is reported once, the rest of
/// the statement is skipped up to the next statement boundary (panic-mode recovery),
/// and parsing goes on, so one run reports every independent error in a file.
///
///     let source = SourceFile(name: "sine.mq", text: "train m on sine < iters 20000 >")
///     let (program, diagnostics) = Parser.parse(source)
///     ASTPrinter.format(program)
///     // "(command train m (on sine) (options (iters 20000)))"
public final class Parser {
    /// How deeply expressions and blocks may nest before the parser reports
    /// `expression nested too deeply` instead of recursing further.
    public static let maximumNestingDepth = 128

    /// Parses a source file, returning the program and all lexical and syntax
    /// diagnostics in source order. Statements with syntax errors are left out of the program.
    public static func parse(_ source: SourceFile) -> (program: Program, diagnostics: [Diagnostic]) {
        let lexed = Lexer.scan(source)
        let parser = Parser(source: source, lexed: lexed)
        let program = parser.parseProgram()
        let diagnostics = (lexed.diagnostics + parser.diagnostics).enumerated()
            .sorted { ($0.element.range.start, $0.offset) < ($1.element.range.start, $1.offset) }
            .map(\.element)
        return (program, diagnostics)
    }

    /// Whether `text` ends where more input could complete it, so that a REPL
    /// should read a continuation line: inside an unclosed `(`, `[`, `{`, block
    /// `<` or string, or right after something that needs more, such as an operator.
    ///
    ///     Parser.isIncomplete("model net = mlp <")  // true
    ///     Parser.isIncomplete("print (1 + 2)")      // false
    public static func isIncomplete(_ text: String) -> Bool {
        let source = SourceFile(name: "<input>", text: text)
        let lexed = Lexer.scan(source)
        if lexed.endsInsideString { return true }
        let parser = Parser(source: source, lexed: lexed)
        _ = parser.parseProgram()
        return parser.endedUnexpectedly
    }

    private let source: SourceFile
    private let tokens: [Token]
    private var position = 0
    private var diagnostics: [Diagnostic] = []
    /// The brackets and blocks around the current token, innermost last.
    private var openDelimiters: [OpenDelimiter] = []
    /// The current nesting depth, limited by ``maximumNestingDepth``.
    private var depth = 0
    /// How many loops enclose the current statement within the current function.
    private var loopDepth = 0
    /// Whether an error at the end of the file was already reported; later ones are
    /// consequences of the same missing text and stay silent.
    private var reportedAtEnd: Bool
    /// Whether some construct needed more input when the file ended.
    private var endedUnexpectedly = false
    /// The answers of ``opensNestedBlock(at:)`` by token index.
    private var blockOpenings: [Int: Bool] = [:]

    private init(source: SourceFile, lexed: Lexer.Output) {
        self.source = source
        tokens = lexed.tokens
        reportedAtEnd = lexed.endsInsideString
    }

    // MARK: - Statements

    private func parseProgram() -> Program {
        let statements = parseStatements(insideBraces: false)
        return Program(statements: statements, range: SourceRange(fileName: source.name, start: 0, end: source.byteCount))
    }

    /// Parses statements up to the end of the file or, inside braces, up to the `}`.
    /// This is where panic-mode recovery happens.
    private func parseStatements(insideBraces: Bool) -> [Statement] {
        var statements: [Statement] = []
        while true {
            while current.kind == .semicolon { advance() }
            if current.kind == .endOfFile || (insideBraces && current.kind == .rightBrace) {
                return statements
            }
            let start = position
            let outerDelimiters = openDelimiters.count
            do {
                statements.append(try parseStatement())
                try expectStatementEnd()
            } catch {
                synchronize(statementStart: start, keeping: outerDelimiters, insideBraces: insideBraces)
            }
            if position == start { advance() }  // always make progress
        }
    }

    private func parseStatement() throws -> Statement {
        let first = current
        switch first.kind {
        case .keyword(.let), .keyword(.var): return try parseBinding()
        case .keyword(.fn) where token(at: position + 1).kind == .identifier: return try parseFunction()
        case .keyword(.return): return try parseReturn()
        case .keyword(.if): return try parseIf()
        case .keyword(.for): return try parseFor()
        case .keyword(.while): return try parseWhile()
        case .keyword(.break), .keyword(.continue): return parseLoopJump()
        case .keyword(.import): return try parseImport()
        case .keyword(.else):
            throw syntaxError("'else' without a preceding 'if'", at: first.range)
        case .rightParen, .rightBracket, .rightBrace:
            throw syntaxError("unexpected '\(first.lexeme)' without a matching opening bracket", at: first.range)
        case .identifier where isAtDeclaration: return try parseDeclaration()
        default: return try parseExpressionStatement()
        }
    }

    /// Checks that the statement just parsed ends at a newline, `;`, `}` or the end of the file.
    private func expectStatementEnd() throws {
        if current.kind == .semicolon {
            advance()
        } else if !isAtStatementEnd {
            throw syntaxError("expected newline or ';' after statement, found \(current.quotedDescription)", at: current.range)
        }
    }

    private var isAtStatementEnd: Bool {
        switch current.kind {
        case .semicolon, .rightBrace, .endOfFile: true
        default: current.newlineBefore
        }
    }

    /// `let NAME = rhs` or `var NAME = rhs`.
    private func parseBinding() throws -> Statement {
        let keyword = advance()
        guard current.kind == .identifier else {
            var found = current.quotedDescription
            if case .keyword = current.kind { found = "keyword " + found }
            throw syntaxError("expected a name after '\(keyword.lexeme)', found \(found)", at: current.range)
        }
        let name = identifier(advance())
        guard current.kind == .equal else {
            throw syntaxError("expected '=' after '\(keyword.lexeme) \(name.name)'", at: missingLocation)
        }
        advance()
        let value = try parseRightHandSide()
        let kind: Statement.Kind = keyword.kind == .keyword(.var)
            ? .var(name: name, value: value)
            : .let(name: name, value: value)
        return Statement(kind, range: keyword.range.union(value.range))
    }

    /// Whether the current identifier starts `KIND NAME =`, all on one line.
    private var isAtDeclaration: Bool {
        let name = token(at: position + 1)
        let equal = token(at: position + 2)
        return name.kind == .identifier && !name.newlineBefore && equal.kind == .equal && !equal.newlineBefore
    }

    /// `KIND NAME = rhs`, such as `model net = mlp < in 1 out 1 >`.
    private func parseDeclaration() throws -> Statement {
        let kind = identifier(advance())
        let name = identifier(advance())
        advance()
        let value = try parseRightHandSide()
        return Statement(.declaration(kind: kind, name: name, value: value), range: kind.range.union(value.range))
    }

    /// `fn NAME(PARAMETERS) { BODY }`
    private func parseFunction() throws -> Statement {
        let keyword = advance()
        let name = identifier(advance())
        let parameters = try parseParameters(after: "'fn \(name.name)'")
        let enclosingLoops = loopDepth
        loopDepth = 0
        defer { loopDepth = enclosingLoops }
        let body = try parseBlock(purpose: "to begin the body of '\(name.name)'")
        return Statement(.function(name: name, parameters: parameters, body: body), range: keyword.range.union(body.range))
    }

    private func parseReturn() throws -> Statement {
        let keyword = advance()
        if isAtStatementEnd { return Statement(.return(nil), range: keyword.range) }
        let value = try parseRightHandSide()
        return Statement(.return(value), range: keyword.range.union(value.range))
    }

    /// `if c { } else if c { } else { }`, with the `else if` chain flattened into branches.
    private func parseIf() throws -> Statement {
        let keyword = advance()
        var branches: [ConditionalBranch] = []
        var elseBody: Block?
        var end = keyword.range
        while true {
            let condition = try parseExpression(.normal)
            let body = try parseBlock(purpose: "after the condition of 'if'")
            branches.append(ConditionalBranch(condition: condition, body: body))
            end = body.range
            guard current.kind == .keyword(.else) else { break }
            advance()
            if current.kind == .keyword(.if) {
                advance()
                continue
            }
            let finalBody = try parseBlock(purpose: "after 'else'")
            elseBody = finalBody
            end = finalBody.range
            break
        }
        return Statement(.if(branches: branches, elseBody: elseBody), range: keyword.range.union(end))
    }

    /// `for NAME in SEQUENCE { BODY }`
    private func parseFor() throws -> Statement {
        let keyword = advance()
        guard current.kind == .identifier else {
            throw syntaxError("expected a loop variable name after 'for', found \(current.quotedDescription)", at: current.range)
        }
        let variable = identifier(advance())
        guard current.kind == .keyword(.in) else {
            throw syntaxError("expected 'in' after 'for \(variable.name)'", at: missingLocation)
        }
        advance()
        let sequence = try parseExpression(.normal)
        let body = try parseLoopBody(purpose: "after the sequence of 'for'")
        return Statement(.for(variable: variable, sequence: sequence, body: body), range: keyword.range.union(body.range))
    }

    /// `while CONDITION { BODY }`
    private func parseWhile() throws -> Statement {
        let keyword = advance()
        let condition = try parseExpression(.normal)
        let body = try parseLoopBody(purpose: "after the condition of 'while'")
        return Statement(.while(condition: condition, body: body), range: keyword.range.union(body.range))
    }

    private func parseLoopBody(purpose: String) throws -> Block {
        loopDepth += 1
        defer { loopDepth -= 1 }
        return try parseBlock(purpose: purpose)
    }

    /// `break` or `continue`; outside a loop it is reported but parsing goes on.
    private func parseLoopJump() -> Statement {
        let keyword = advance()
        if loopDepth == 0 {
            diagnostics.append(.error("'\(keyword.lexeme)' can only be used inside a loop", at: keyword.range))
        }
        return Statement(keyword.kind == .keyword(.break) ? .break : .continue, range: keyword.range)
    }

    /// `import "PATH"`
    private func parseImport() throws -> Statement {
        let keyword = advance()
        guard case .string(let path) = current.kind else {
            throw syntaxError("expected a string path after 'import', found \(current.quotedDescription)", at: current.range)
        }
        let pathToken = advance()
        return Statement(.import(path: path), range: keyword.range.union(pathToken.range))
    }

    /// An expression statement, a command call, or an assignment `TARGET = rhs`.
    private func parseExpressionStatement() throws -> Statement {
        guard current.kind.beginsOperand || current.kind == .keyword(.not) else {
            throw syntaxError("expected a statement, found \(current.quotedDescription)", at: current.range)
        }
        let expression = try parseRightHandSide()
        guard current.kind == .equal, !isAtLineBreak else {
            return Statement(.expression(expression), range: expression.range)
        }
        guard expression.isAssignable else {
            throw syntaxError(
                "cannot assign to this expression; assign to a name, a member 'a.b' or an element 'a[i]'",
                at: expression.range
            )
        }
        advance()
        let value = try parseRightHandSide()
        return Statement(.assignment(target: expression, value: value), range: expression.range.union(value.range))
    }

    /// `{ STATEMENTS }`; `purpose` completes the message `expected '{' ...`.
    private func parseBlock(purpose: String) throws -> Block {
        guard current.kind == .leftBrace else {
            let fixIt = current.kind == .equal ? "use '==' to compare two values" : nil
            throw syntaxError("expected '{' \(purpose)", at: missingLocation, fixIt: fixIt)
        }
        let outerDepth = depth
        defer { depth = outerDepth }
        try descend()
        let open = advance()
        openDelimiters.append(OpenDelimiter(kind: .brace, token: open))
        let statements = parseStatements(insideBraces: true)
        let close = try expectClosing(.rightBrace, of: open, expected: "'}' at the end of the block")
        return Block(statements: statements, range: open.range.union(close.range))
    }

    // MARK: - Command calls

    /// A command call if the next tokens make one, otherwise an expression. Command
    /// calls are allowed only here: at the start of an expression statement and as
    /// the whole right-hand side of `let`, `var`, declarations, assignments and `return`.
    private func parseRightHandSide() throws -> Expression {
        if current.kind == .identifier, beginsCommandArgument(at: position + 1) {
            return try parseCommand()
        }
        return try parseExpression(.normal)
    }

    /// `NAME ARG [CONNECTOR ARG]* [< OPTIONS >]`, such as `train m on sine < iters 20000 >`.
    private func parseCommand() throws -> Expression {
        let name = identifier(advance())
        var arguments: [CommandArgument] = []
        var connector: (kind: Connector, token: Token)?
        while true {
            let value = try parseExpression(.commandArgument)
            let range = connector.map { $0.token.range.union(value.range) } ?? value.range
            arguments.append(CommandArgument(connector: connector?.kind, value: value, range: range))
            guard !isAtLineBreak, case .keyword(let keyword) = current.kind,
                  let next = Connector(rawValue: keyword.rawValue) else { break }
            connector = (next, advance())
        }
        var range = name.range.union(arguments.last?.range ?? name.range)
        var options: [Entry]?
        if !isAtLineBreak, opensBlock(at: position) {
            let block = try parseConfigurationBlock()
            options = block.entries
            range = range.union(block.range)
        }
        return Expression(.command(name: name, arguments: arguments, options: options), range: range)
    }

    /// Whether the token at `index`, right after a name, starts a command's first argument.
    private func beginsCommandArgument(at index: Int) -> Bool {
        let token = token(at: index)
        return !token.newlineBefore && (token.kind == .keyword(.not) || beginsValue(at: index))
    }

    /// Whether the token at `index` begins a value by metaq's layout rules: a literal,
    /// name, `true`, `false`, `pi` or `fn`; a `(` or `[` with whitespace before it; or a
    /// `-` with whitespace before it and none after it (`x -5..5`).
    private func beginsValue(at index: Int) -> Bool {
        let token = token(at: index)
        switch token.kind {
        case .integer, .float, .string, .identifier, .keyword(.true), .keyword(.false), .keyword(.pi), .keyword(.fn):
            return true
        case .leftParen, .leftBracket:
            return token.spaceBefore
        case .minus:
            let next = self.token(at: index + 1)
            return token.spaceBefore && !next.spaceBefore && next.kind != .endOfFile
        default:
            return false
        }
    }

    // MARK: - Expressions

    /// Parses an expression: a full one, or in a block value one at the range level.
    private func parseExpression(_ context: ExpressionContext) throws -> Expression {
        context == .blockValue ? try parseRange(context) : try parseOr(context)
    }

    private func parseOr(_ context: ExpressionContext) throws -> Expression {
        try parseLeftAssociative(context, operand: { try $0.parseAnd($1) }) { kind in
            kind == .keyword(.or) ? .or : nil
        }
    }

    private func parseAnd(_ context: ExpressionContext) throws -> Expression {
        try parseLeftAssociative(context, operand: { try $0.parseNot($1) }) { kind in
            kind == .keyword(.and) ? .and : nil
        }
    }

    private func parseNot(_ context: ExpressionContext) throws -> Expression {
        guard current.kind == .keyword(.not) else { return try parseComparison(context) }
        let outerDepth = depth
        defer { depth = outerDepth }
        try descend()
        let keyword = advance()
        let operand = try parseNot(context)
        return Expression(.unary(.not, operand), range: keyword.range.union(operand.range))
    }

    private func parseComparison(_ context: ExpressionContext) throws -> Expression {
        try parseNonAssociative(context, operatorName: "comparison operators", operand: { try $0.parseRange($1) }) {
            try $0.comparisonOperator($1)
        }
    }

    /// The comparison operator at the current token, if there is one. A `<` that opens
    /// a block is no comparison: in a command argument it starts the command's options.
    private func comparisonOperator(_ context: ExpressionContext) throws -> BinaryOperator? {
        guard !isAtLineBreak else { return nil }
        let comparison: BinaryOperator? = switch current.kind {
        case .equalEqual: .equal
        case .bangEqual: .notEqual
        case .less: .less
        case .greater: .greater
        case .lessEqual: .lessEqual
        case .greaterEqual: .greaterEqual
        default: nil
        }
        if comparison == .less, opensBlock(at: position) {
            if context == .commandArgument { return nil }
            throw syntaxError(
                "a block '<' can only follow a plain name; to compare, put the left side in parentheses",
                at: current.range
            )
        }
        return comparison
    }

    private func parseRange(_ context: ExpressionContext) throws -> Expression {
        try parseNonAssociative(context, operatorName: "range operators", operand: { try $0.parseAdditive($1) }) {
            parser, _ in parser.isAtLineBreak || parser.current.kind != .dotDot ? nil : .range
        }
    }

    private func parseAdditive(_ context: ExpressionContext) throws -> Expression {
        try parseLeftAssociative(context, operand: { try $0.parseMultiplicative($1) }) { kind in
            switch kind {
            case .plus: .add
            case .minus: .subtract
            default: nil
            }
        }
    }

    private func parseMultiplicative(_ context: ExpressionContext) throws -> Expression {
        try parseLeftAssociative(context, operand: { try $0.parseUnary($1) }) { kind in
            switch kind {
            case .star: .multiply
            case .at: .matrixProduct
            case .slash: .divide
            case .percent: .remainder
            default: nil
            }
        }
    }

    /// Parses `operand (operator operand)*`, grouping to the left: `a - b - c` is `(a - b) - c`.
    private func parseLeftAssociative(
        _ context: ExpressionContext,
        operand: (Parser, ExpressionContext) throws -> Expression,
        operator binaryOperator: (TokenKind) -> BinaryOperator?
    ) throws -> Expression {
        var left = try operand(self, context)
        let outerDepth = depth
        defer { depth = outerDepth }
        while !isAtLineBreak, let binary = binaryOperator(current.kind) {
            advance()
            try descend()
            let right = try operand(self, context)
            left = Expression(.binary(binary, left, right), range: left.range.union(right.range))
        }
        return left
    }

    /// Parses `operand [operator operand]` for operators that do not chain. A chain such
    /// as `a < b < c` is reported once and parsed as if grouped to the left, with no recovery needed.
    private func parseNonAssociative(
        _ context: ExpressionContext,
        operatorName: String,
        operand: (Parser, ExpressionContext) throws -> Expression,
        operator binaryOperator: (Parser, ExpressionContext) throws -> BinaryOperator?
    ) throws -> Expression {
        var result = try operand(self, context)
        let outerDepth = depth
        defer { depth = outerDepth }
        var operatorCount = 0
        while let binary = try binaryOperator(self, context) {
            let operatorToken = advance()
            try descend()
            let right = try operand(self, context)
            if operatorCount == 1 {
                reportChain(of: operatorName, first: result, operator: operatorToken, right: right)
            }
            operatorCount += 1
            result = Expression(.binary(binary, result, right), range: result.range.union(right.range))
        }
        return result
    }

    /// Reports `'a < b < c': comparison operators do not chain; add parentheses` at the second operator.
    private func reportChain(of operatorName: String, first: Expression, operator operatorToken: Token, right: Expression) {
        let chain = source.text(in: first.range.union(right.range))
        let advice = "\(operatorName) do not chain; add parentheses"
        guard chain.count <= 40, !chain.contains("\n") else {
            diagnostics.append(.error(advice, at: operatorToken.range))
            return
        }
        let rest = source.text(in: operatorToken.range.union(right.range))
        diagnostics.append(.error(
            "'\(chain)': \(advice)", at: operatorToken.range,
            fixIt: "(\(source.text(in: first.range))) \(rest)"
        ))
    }

    /// `-x`. Unary minus binds looser than `^`, so `-2^2` is `-(2^2)`.
    private func parseUnary(_ context: ExpressionContext) throws -> Expression {
        let outerDepth = depth
        defer { depth = outerDepth }
        try descend()
        guard current.kind == .minus else { return try parsePower(context) }
        let minus = advance()
        let operand = try parseUnary(context)
        return Expression(.unary(.negate, operand), range: minus.range.union(operand.range))
    }

    /// `a ^ b`, right-associative; the exponent may be negated: `2 ^ -1`.
    private func parsePower(_ context: ExpressionContext) throws -> Expression {
        let base = try parsePostfix(context)
        guard !isAtLineBreak, current.kind == .caret else { return base }
        advance()
        let exponent = try parseUnary(context)
        return Expression(.binary(.power, base, exponent), range: base.range.union(exponent.range))
    }

    /// Calls `f(x)` and indexing `a[i]` (no whitespace before the bracket) and members `a.b`.
    private func parsePostfix(_ context: ExpressionContext) throws -> Expression {
        var expression = try parsePrimary(context)
        let outerDepth = depth
        defer { depth = outerDepth }
        while true {
            switch current.kind {
            case .leftParen where !current.spaceBefore:
                try descend()
                expression = try parseCall(expression)
            case .leftBracket where !current.spaceBefore:
                try descend()
                expression = try parseIndex(expression)
            case .dot where !isAtLineBreak:
                try descend()
                advance()
                guard current.kind.isKeyLike else {
                    throw syntaxError("expected a member name after '.', found \(current.quotedDescription)", at: current.range)
                }
                let name = identifier(advance())
                expression = Expression(.member(base: expression, name: name), range: expression.range.union(name.range))
            default:
                return expression
            }
        }
    }

    private func parseCall(_ callee: Expression) throws -> Expression {
        let open = advance()
        openDelimiters.append(OpenDelimiter(kind: .parenthesis, token: open))
        var arguments: [Argument] = []
        while current.kind != .rightParen {
            var label: Identifier?
            if current.kind.isKeyLike, token(at: position + 1).kind == .colon {
                label = identifier(advance())
                advance()
            }
            let value = try parseExpression(.normal)
            arguments.append(Argument(label: label, value: value, range: (label?.range ?? value.range).union(value.range)))
            guard current.kind == .comma else { break }
            advance()
        }
        let close = try expectClosing(.rightParen, of: open, expected: "',' or ')' in argument list")
        return Expression(.call(callee: callee, arguments: arguments), range: callee.range.union(close.range))
    }

    private func parseIndex(_ base: Expression) throws -> Expression {
        let open = advance()
        openDelimiters.append(OpenDelimiter(kind: .bracket, token: open))
        let index = try parseExpression(.normal)
        let close = try expectClosing(.rightBracket, of: open, expected: "']' after index")
        return Expression(.index(base: base, index: index), range: base.range.union(close.range))
    }

    private func parsePrimary(_ context: ExpressionContext) throws -> Expression {
        let token = current
        switch token.kind {
        case .integer(let value):
            advance()
            return Expression(.integer(value), range: token.range)
        case .float(let value):
            advance()
            return Expression(.float(value), range: token.range)
        case .string(let value):
            advance()
            return Expression(.string(value), range: token.range)
        case .keyword(.true), .keyword(.false):
            advance()
            return Expression(.boolean(token.kind == .keyword(.true)), range: token.range)
        case .keyword(.pi):
            advance()
            return Expression(.pi, range: token.range)
        case .identifier:
            advance()
            // In a command argument, a block after a name is the command's options.
            if context != .commandArgument, !isAtLineBreak, opensBlock(at: position) {
                let block = try parseConfigurationBlock()
                return Expression(.blockCall(head: identifier(token), entries: block.entries), range: token.range.union(block.range))
            }
            return Expression(.name(token.lexeme), range: token.range)
        case .leftParen:
            return try parseParenthesized()
        case .leftBracket:
            return try parseList()
        case .keyword(.fn):
            return try parseLambda(context)
        case .less:
            let block = try parseConfigurationBlock()
            return Expression(.record(block.entries), range: block.range)
        default:
            let after = previous.map { " after \($0.quotedDescription)" } ?? ""
            throw syntaxError("expected expression\(after)", at: missingLocation)
        }
    }

    private func parseParenthesized() throws -> Expression {
        let open = advance()
        openDelimiters.append(OpenDelimiter(kind: .parenthesis, token: open))
        let inner = try parseExpression(.normal)
        let close = try expectClosing(.rightParen, of: open, expected: "')'")
        return Expression(inner.kind, range: open.range.union(close.range))
    }

    /// `[a, b, c]`, with an optional trailing comma.
    private func parseList() throws -> Expression {
        let open = advance()
        openDelimiters.append(OpenDelimiter(kind: .bracket, token: open))
        var elements: [Expression] = []
        while current.kind != .rightBracket {
            elements.append(try parseExpression(.normal))
            guard current.kind == .comma else { break }
            advance()
        }
        let close = try expectClosing(.rightBracket, of: open, expected: "',' or ']' in list")
        return Expression(.list(elements), range: open.range.union(close.range))
    }

    /// `fn(PARAMETERS) -> BODY`; the body is parsed in the lambda's own context, so in a
    /// block value it stops before the next key.
    private func parseLambda(_ context: ExpressionContext) throws -> Expression {
        let keyword = advance()
        let parameters = try parseParameters(after: "'fn'")
        guard current.kind == .arrow else {
            throw syntaxError("expected '->' after the parameters of a lambda", at: missingLocation)
        }
        advance()
        let body = try parseExpression(context)
        return Expression(.lambda(parameters: parameters, body: body), range: keyword.range.union(body.range))
    }

    /// `(a, b, c)`, the parameters of a function or lambda.
    private func parseParameters(after owner: String) throws -> [Identifier] {
        guard current.kind == .leftParen else {
            throw syntaxError("expected '(' after \(owner)", at: missingLocation)
        }
        let open = advance()
        openDelimiters.append(OpenDelimiter(kind: .parenthesis, token: open))
        var parameters: [Identifier] = []
        while current.kind != .rightParen {
            guard current.kind == .identifier else {
                throw syntaxError("expected a parameter name, found \(current.quotedDescription)", at: current.range)
            }
            let parameter = identifier(advance())
            if let first = parameters.first(where: { $0.name == parameter.name }) {
                diagnostics.append(.error(
                    "duplicate parameter '\(parameter.name)'", at: parameter.range,
                    notes: [Diagnostic.Note("'\(parameter.name)' is first declared here", at: first.range)]
                ))
            }
            parameters.append(parameter)
            guard current.kind == .comma else { break }
            advance()
        }
        _ = try expectClosing(.rightParen, of: open, expected: "',' or ')' in parameter list")
        return parameters
    }

    // MARK: - Configuration blocks

    /// `< KEY VALUE [,] ... >`, the body of a block call, record or command options.
    private func parseConfigurationBlock() throws -> (entries: [Entry], range: SourceRange) {
        let outerDepth = depth
        defer { depth = outerDepth }
        try descend()
        let open = advance()
        openDelimiters.append(OpenDelimiter(kind: .block, token: open))
        var entries: [Entry] = []
        var firstKeys: [String: Identifier] = [:]
        while current.kind != .greater {
            guard current.kind.isKeyLike else {
                let isComparison = [.less, .lessEqual, .greaterEqual, .equalEqual, .bangEqual].contains(current.kind)
                throw syntaxError(
                    "expected a key (identifier) in block, found \(current.quotedDescription)", at: current.range,
                    fixIt: isComparison ? "a block value cannot compare; put the comparison in parentheses" : nil
                )
            }
            let key = identifier(advance())
            guard current.kind.beginsOperand else {
                throw syntaxError("expected a value after key '\(key.name)'", at: missingLocation)
            }
            let value = try parseExpression(.blockValue)
            if let first = firstKeys[key.name] {
                diagnostics.append(.error(
                    "duplicate key '\(key.name)' in block", at: key.range,
                    notes: [Diagnostic.Note("'\(key.name)' is first given here", at: first.range)]
                ))
            } else {
                firstKeys[key.name] = key
            }
            entries.append(Entry(key: key, value: value, range: key.range.union(value.range)))
            if current.kind == .comma { advance() }
        }
        let close = advance()
        openDelimiters.removeLast()
        return (entries, open.range.union(close.range))
    }

    /// The `<` rule of `grammar/metaq.ebnf`: whether the `<` at `index`, right after an
    /// identifier, opens a block. It does when the next token is `>` or starts a new
    /// line, or is a key followed on the same line by a value, or by a `<` that opens a
    /// nested block by the same rule (so `a < b < c` stays a comparison).
    private func opensBlock(at index: Int) -> Bool {
        guard token(at: index).kind == .less, index > 0, tokens[index - 1].kind == .identifier else { return false }
        return opensNestedBlock(at: index)
    }

    /// The `<` rule without the identifier before the `<`. A chain `k1 < k2 < ...` of
    /// keys and `<` has one answer, found by walking to its end once and remembered
    /// for every `<` in it, so that long chains cost linear time.
    private func opensNestedBlock(at index: Int) -> Bool {
        var chain: [Int] = []
        var less = index
        var opens: Bool
        while true {
            if let known = blockOpenings[less] {
                opens = known
                break
            }
            chain.append(less)
            let key = token(at: less + 1)
            if key.kind == .greater || key.kind == .endOfFile || key.newlineBefore {
                opens = true
                break
            }
            let value = token(at: less + 2)
            guard key.kind.isKeyLike, !value.newlineBefore else {
                opens = false
                break
            }
            guard value.kind == .less else {
                opens = beginsValue(at: less + 2)
                break
            }
            less += 2
        }
        for less in chain { blockOpenings[less] = opens }
        return opens
    }

    // MARK: - Errors and recovery

    /// Records a syntax error and returns the error that abandons the statement.
    ///
    /// At the end of the file inside an open bracket, the bracket is reported instead,
    /// at its opening token; only the first error at the end of the file is reported.
    /// Errors at a character the lexer already reported stay silent.
    private func syntaxError(
        _ message: String,
        at range: SourceRange,
        notes: [Diagnostic.Note] = [],
        fixIt: String? = nil
    ) -> SyntaxError {
        switch current.kind {
        case .unknown:
            return SyntaxError()
        case .endOfFile:
            endedUnexpectedly = true
            guard !reportedAtEnd else { return SyntaxError() }
            reportedAtEnd = true
            if let open = openDelimiters.last {
                diagnostics.append(.error(
                    "expected '\(open.kind.closing)' to close \(open.kind.opening) opened here", at: open.token.range,
                    notes: [Diagnostic.Note("file ends here", at: source.endRange)]
                ))
                return SyntaxError()
            }
        default:
            break
        }
        diagnostics.append(.error(message, at: range, notes: notes, fixIt: fixIt))
        return SyntaxError()
    }

    /// Consumes the token that closes `open`, the innermost open delimiter, and pops it;
    /// otherwise fails with `expected EXPECTED, found ...`.
    private func expectClosing(_ kind: TokenKind, of open: Token, expected: String) throws -> Token {
        guard current.kind == kind else {
            throw syntaxError(
                "expected \(expected), found \(current.quotedDescription)", at: current.range,
                notes: [Diagnostic.Note("to match this '\(open.lexeme)'", at: open.range)]
            )
        }
        openDelimiters.removeLast()
        return advance()
    }

    /// Enters one more level of nesting, or fails when nesting is too deep.
    private func descend() throws {
        depth += 1
        guard depth <= Parser.maximumNestingDepth else {
            throw syntaxError("expression nested too deeply", at: current.range)
        }
    }

    /// Skips the rest of a statement that failed to parse: up to a newline outside
    /// brackets, a `;`, or the `}` of the enclosing block. Inside an unclosed `(` or
    /// `[` it also stops at a new line that starts with a statement keyword. A line
    /// whose first token is the error, or a stray closing bracket, is skipped whole.
    private func synchronize(statementStart: Int, keeping outerDelimiters: Int, insideBraces: Bool) {
        var open = openDelimiters[outerDelimiters...].map(\.kind)
        openDelimiters.removeSubrange(outerDelimiters...)
        var isFirst = true
        while current.kind != .endOfFile {
            let token = current
            if let innermost = open.last {
                if token.newlineBefore, token.kind.beginsStatementOnly, innermost == .parenthesis || innermost == .bracket {
                    return
                }
            } else {
                if token.kind == .semicolon {
                    advance()
                    return
                }
                if token.kind == .rightBrace, insideBraces { return }
                if token.newlineBefore, position != statementStart, !(isFirst && token.kind.isClosingBracket) { return }
            }
            switch token.kind {
            case .leftParen: open.append(.parenthesis)
            case .leftBracket: open.append(.bracket)
            case .leftBrace: open.append(.brace)
            case .less where beginsRecordOrBlock(at: position): open.append(.block)
            case .greater where open.last == .block: open.removeLast()
            case .rightParen: open.close(.parenthesis)
            case .rightBracket: open.close(.bracket)
            case .rightBrace: open.close(.brace)
            default: break
            }
            advance()
            isFirst = false
        }
    }

    /// Whether the `<` at `index` opens a block call or a record rather than comparing.
    private func beginsRecordOrBlock(at index: Int) -> Bool {
        opensBlock(at: index) || index == 0 || !tokens[index - 1].kind.endsOperand
    }

    // MARK: - Tokens

    private var current: Token { tokens[position] }

    private var previous: Token? { position > 0 ? tokens[position - 1] : nil }

    /// The token at `index`, or the end-of-file token past the end.
    private func token(at index: Int) -> Token {
        tokens[min(max(index, 0), tokens.count - 1)]
    }

    /// Moves to the next token, staying on the end-of-file token, and returns the one left behind.
    @discardableResult
    private func advance() -> Token {
        let token = current
        if position < tokens.count - 1 { position += 1 }
        return token
    }

    /// Whether the current token is on a new line where newlines end statements:
    /// at statement level and in `{ }`, but not inside `( )`, `[ ]` or `< >`.
    private var isAtLineBreak: Bool {
        guard current.newlineBefore else { return false }
        switch openDelimiters.last?.kind {
        case nil, .brace: return true
        default: return false
        }
    }

    /// Where to report something missing before the current token: at the token if it
    /// is on the same line, otherwise right after the previous token.
    private var missingLocation: SourceRange {
        if current.kind != .endOfFile, !current.newlineBefore { return current.range }
        return previous?.range.endPoint ?? current.range
    }

    private func identifier(_ token: Token) -> Identifier {
        Identifier(name: token.lexeme, range: token.range)
    }
}

// MARK: - Supporting types

/// Thrown to abandon the current statement; its diagnostic is already recorded.
private struct SyntaxError: Error {}

/// Where an expression is parsed, which changes what it may contain.
private enum ExpressionContext {
    /// Anywhere a full expression is allowed.
    case normal
    /// The top level of a command argument: a block after a name is the command's options.
    case commandArgument
    /// A configuration block value: range level, so no comparisons, and lambda bodies alike.
    case blockValue
}

/// A bracket or block the parser is inside.
private struct OpenDelimiter {
    enum Kind {
        case parenthesis, bracket, brace, block

        var opening: String {
            switch self {
            case .parenthesis: "'('"
            case .bracket: "'['"
            case .brace: "'{'"
            case .block: "block"
            }
        }

        var closing: String {
            switch self {
            case .parenthesis: ")"
            case .bracket: "]"
            case .brace: "}"
            case .block: ">"
            }
        }
    }

    var kind: Kind
    var token: Token
}

private extension [OpenDelimiter.Kind] {
    /// Closes the innermost delimiter of `kind` and any opened inside it; a closer with no opener is ignored.
    mutating func close(_ kind: OpenDelimiter.Kind) {
        if let index = lastIndex(of: kind) { removeSubrange(index...) }
    }
}

private extension TokenKind {
    /// Whether an operand can start with this token.
    var beginsOperand: Bool {
        switch self {
        case .integer, .float, .string, .identifier, .keyword(.true), .keyword(.false), .keyword(.pi), .keyword(.fn),
             .leftParen, .leftBracket, .minus, .less:
            true
        default:
            false
        }
    }

    var isClosingBracket: Bool {
        self == .rightParen || self == .rightBracket || self == .rightBrace
    }
}

private extension Expression {
    /// Whether the expression can be assigned to: a name, a member or an element.
    var isAssignable: Bool {
        switch kind {
        case .name, .member, .index: true
        default: false
        }
    }
}
