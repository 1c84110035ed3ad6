/// Prints syntax trees as compact S-expressions, for golden tests and the REPL's `:ast`.
///
///     let (program, _) = Parser.parse(SourceFile(name: "a.mq", text: "let x = 1 + 2 * 3"))
///     ASTPrinter.format(program)  // "(let x (+ 1 (* 2 3)))"
///
/// Statements print as `(let x e)`, `(var x e)`, `(decl KIND NAME e)`, `(= target e)`,
/// `(fn NAME (PARAMETERS) BODY)`, `(return [e])`, `(if c BODY (elif c BODY) (else BODY))`,
/// `(for x e BODY)`, `(while c BODY)`, `(break)`, `(continue)` and `(import "path")`;
/// a braced body as `(do STATEMENTS)`; an expression statement as its expression.
/// Expressions print literals as written in metaq (floats always with a `.` or exponent),
/// operators in prefix form (`(- x)` is negation), and `(list ...)`, `(record ENTRIES)`,
/// `(block HEAD ENTRIES)`, `(lambda (PARAMETERS) BODY)`, `(call f ARGUMENTS)` with
/// `(label: e)` for labelled arguments, `(. base name)`, `(index base i)` and
/// `(command NAME ARGUMENTS [(options ENTRIES)])` with `(on e)` for connected arguments.
/// An entry prints as `(key value)`.
public enum ASTPrinter {
    /// One line per top-level statement.
    public static func format(_ program: Program) -> String {
        program.statements.map(format).joined(separator: "\n")
    }

    public static func format(_ statement: Statement) -> String {
        switch statement.kind {
        case .let(let name, let value):
            return "(let \(name.name) \(format(value)))"
        case .var(let name, let value):
            return "(var \(name.name) \(format(value)))"
        case .declaration(let kind, let name, let value):
            return "(decl \(kind.name) \(name.name) \(format(value)))"
        case .assignment(let target, let value):
            return "(= \(format(target)) \(format(value)))"
        case .function(let name, let parameters, let body):
            return "(fn \(name.name) \(format(parameters)) \(format(body)))"
        case .return(let value):
            return value.map { "(return \(format($0)))" } ?? "(return)"
        case .if(let branches, let elseBody):
            var parts = ["if"]
            for (index, branch) in branches.enumerated() {
                let text = "\(format(branch.condition)) \(format(branch.body))"
                parts.append(index == 0 ? text : "(elif \(text))")
            }
            if let elseBody { parts.append("(else \(format(elseBody)))") }
            return "(\(parts.joined(separator: " ")))"
        case .for(let variable, let sequence, let body):
            return "(for \(variable.name) \(format(sequence)) \(format(body)))"
        case .while(let condition, let body):
            return "(while \(format(condition)) \(format(body)))"
        case .break:
            return "(break)"
        case .continue:
            return "(continue)"
        case .import(let path):
            return "(import \(quoted(path)))"
        case .expression(let expression):
            return format(expression)
        }
    }

    public static func format(_ expression: Expression) -> String {
        switch expression.kind {
        case .integer(let value):
            return String(value)
        case .float(let value):
            return String(value)
        case .string(let value):
            return quoted(value)
        case .boolean(let value):
            return String(value)
        case .pi:
            return "pi"
        case .name(let name):
            return name
        case .list(let elements):
            return list("list", elements.map(format))
        case .record(let entries):
            return list("record", entries.map(format))
        case .blockCall(let head, let entries):
            return list("block \(head.name)", entries.map(format))
        case .lambda(let parameters, let body):
            return "(lambda \(format(parameters)) \(format(body)))"
        case .call(let callee, let arguments):
            return list("call \(format(callee))", arguments.map(format))
        case .member(let base, let name):
            return "(. \(format(base)) \(name.name))"
        case .index(let base, let index):
            return "(index \(format(base)) \(format(index)))"
        case .unary(let unary, let operand):
            return "(\(unary.rawValue) \(format(operand)))"
        case .binary(let binary, let left, let right):
            return "(\(binary.rawValue) \(format(left)) \(format(right)))"
        case .command(let name, let arguments, let options):
            var parts = arguments.map(format)
            if let options { parts.append(list("options", options.map(format))) }
            return list("command \(name.name)", parts)
        }
    }

    private static func format(_ block: Block) -> String {
        list("do", block.statements.map(format))
    }

    private static func format(_ parameters: [Identifier]) -> String {
        "(\(parameters.map(\.name).joined(separator: " ")))"
    }

    private static func format(_ entry: Entry) -> String {
        "(\(entry.key.name) \(format(entry.value)))"
    }

    private static func format(_ argument: Argument) -> String {
        argument.label.map { "(\($0.name): \(format(argument.value)))" } ?? format(argument.value)
    }

    private static func format(_ argument: CommandArgument) -> String {
        argument.connector.map { "(\($0.rawValue) \(format(argument.value)))" } ?? format(argument.value)
    }

    /// `(head item item ...)`, or `(head)` with no items.
    private static func list(_ head: String, _ items: [String]) -> String {
        "(\(([head] + items).joined(separator: " ")))"
    }

    /// A string literal in metaq syntax, escaped so that it reads back as the same value.
    private static func quoted(_ value: String) -> String {
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            case "\0": result += "\\0"
            case _ where scalar.properties.generalCategory == .control:
                result += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
