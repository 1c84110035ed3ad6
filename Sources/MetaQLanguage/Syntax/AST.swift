// The abstract syntax tree of metaq. Every node is a Sendable value that carries
// the SourceRange it was parsed from; `ASTPrinter` shows trees as S-expressions.

/// A parsed source file: its statements in order.
///
///     let (program, _) = Parser.parse(SourceFile(name: "a.mq", text: "let x = 1\nprint x"))
///     program.statements.count  // 2
public struct Program: Sendable, Hashable {
    public var statements: [Statement]
    public var range: SourceRange

    public init(statements: [Statement], range: SourceRange) {
        self.statements = statements
        self.range = range
    }
}

/// A name as written in the source: a variable, parameter, key, label or kind.
public struct Identifier: Sendable, Hashable {
    public var name: String
    public var range: SourceRange

    public init(name: String, range: SourceRange) {
        self.name = name
        self.range = range
    }
}

/// A braced list of statements: `{ i = i + 1 }`.
public struct Block: Sendable, Hashable {
    public var statements: [Statement]
    public var range: SourceRange

    public init(statements: [Statement], range: SourceRange) {
        self.statements = statements
        self.range = range
    }
}

/// One statement.
///
///     // model net = mlp < in 1 out 1 >
///     case .declaration(kind: "model", name: "net", value: <block call>)
public struct Statement: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        /// `let name = value`
        case `let`(name: Identifier, value: Expression)
        /// `var name = value`, a mutable binding.
        case `var`(name: Identifier, value: Expression)
        /// `kind name = value`, such as `model net = mlp < ... >`; the evaluator checks the kind.
        case declaration(kind: Identifier, name: Identifier, value: Expression)
        /// `target = value`, where the target is a name, member (`a.b`) or element (`a[i]`).
        case assignment(target: Expression, value: Expression)
        /// `fn name(parameters) { body }`
        case function(name: Identifier, parameters: [Identifier], body: Block)
        /// `return` or `return value`
        case `return`(Expression?)
        /// `if c1 { } else if c2 { } else { }`: one branch per condition, in order.
        case `if`(branches: [ConditionalBranch], elseBody: Block?)
        /// `for variable in sequence { body }`
        case `for`(variable: Identifier, sequence: Expression, body: Block)
        /// `while condition { body }`
        case `while`(condition: Expression, body: Block)
        case `break`
        case `continue`
        /// `import "path"`; `path` is the decoded string.
        case `import`(path: String)
        /// An expression evaluated for its effect, including command calls such as `print r`.
        case expression(Expression)
    }

    public var kind: Kind
    public var range: SourceRange

    public init(_ kind: Kind, range: SourceRange) {
        self.kind = kind
        self.range = range
    }
}

/// One `condition { body }` part of an `if` statement.
public struct ConditionalBranch: Sendable, Hashable {
    public var condition: Expression
    public var body: Block

    public init(condition: Expression, body: Block) {
        self.condition = condition
        self.body = body
    }

    /// From the start of the condition to the end of the body.
    public var range: SourceRange { condition.range.union(body.range) }
}

/// One expression.
///
///     // 1 + 2 * 3
///     case .binary(.add, 1, .binary(.multiply, 2, 3))
public struct Expression: Sendable, Hashable {
    public indirect enum Kind: Sendable, Hashable {
        case integer(Int)
        case float(Double)
        case string(String)
        case boolean(Bool)
        /// The constant `pi`.
        case pi
        /// A variable reference.
        case name(String)
        /// `[a, b, c]`
        case list([Expression])
        /// An anonymous record `< key value ... >`.
        case record([Entry])
        /// A block call `head < key value ... >`, such as `mlp < in 1 out 1 >`.
        case blockCall(head: Identifier, entries: [Entry])
        /// `fn(parameters) -> body`
        case lambda(parameters: [Identifier], body: Expression)
        /// `callee(arguments)`; arguments may be labelled: `f(x, steps: 5)`.
        case call(callee: Expression, arguments: [Argument])
        /// `base.name`
        case member(base: Expression, name: Identifier)
        /// `base[index]`
        case index(base: Expression, index: Expression)
        case unary(UnaryOperator, Expression)
        case binary(BinaryOperator, Expression, Expression)
        /// A command call by juxtaposition, `name arg [connector arg]* [< options >]`:
        /// `train m on sine < iters 20000 >` has arguments `m` and `on sine` and one option.
        case command(name: Identifier, arguments: [CommandArgument], options: [Entry]?)
    }

    public var kind: Kind
    public var range: SourceRange

    public init(_ kind: Kind, range: SourceRange) {
        self.kind = kind
        self.range = range
    }
}

/// A prefix operator; the raw value is how `ASTPrinter` writes it.
public enum UnaryOperator: String, Sendable, Hashable {
    /// `-x`
    case negate = "-"
    /// `not x`
    case not
}

/// An infix operator; the raw value is its metaq spelling.
///
///     BinaryOperator(rawValue: "<=")  // .lessEqual
public enum BinaryOperator: String, Sendable, Hashable {
    case or, and
    case equal = "==", notEqual = "!=", less = "<", greater = ">", lessEqual = "<=", greaterEqual = ">="
    /// `a..b`
    case range = ".."
    case add = "+", subtract = "-", multiply = "*", divide = "/", remainder = "%"
    /// `a @ b`, the matrix product (batched over leading axes), at the precedence of `*`.
    case matrixProduct = "@"
    /// `a ^ b`, right-associative.
    case power = "^"
}

/// A `key value` entry of a block call, record or command options.
public struct Entry: Sendable, Hashable {
    public var key: Identifier
    public var value: Expression
    public var range: SourceRange

    public init(key: Identifier, value: Expression, range: SourceRange) {
        self.key = key
        self.value = value
        self.range = range
    }
}

/// An argument of a call: `x` or `steps: 5`.
public struct Argument: Sendable, Hashable {
    public var label: Identifier?
    public var value: Expression
    public var range: SourceRange

    public init(label: Identifier?, value: Expression, range: SourceRange) {
        self.label = label
        self.value = value
        self.range = range
    }
}

/// The keyword that introduces a command argument after the first: `on`, `to` or `with`.
public enum Connector: String, Sendable, Hashable {
    case on, to, with
}

/// An argument of a command call: `m` or `on sine`.
public struct CommandArgument: Sendable, Hashable {
    /// `nil` for the first argument.
    public var connector: Connector?
    public var value: Expression
    public var range: SourceRange

    public init(connector: Connector?, value: Expression, range: SourceRange) {
        self.connector = connector
        self.value = value
        self.range = range
    }
}
