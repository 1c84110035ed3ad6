import MetaQEngine
/// The builtins section of docs/LANGUAGE.md, generated from the same schemas that validate
/// blocks, complete keys in the REPL and answer `:help`; a test keeps the file in step.
public enum Reference {
    public static let beginMarker = "<!-- BEGIN GENERATED BUILTINS (metaq reference) -->"
    public static let endMarker = "<!-- END GENERATED BUILTINS -->"

    public static func markdown() -> String {
        var out = [beginMarker, ""]
        let schemas = Builtins.blocks.values.map(\.schema)
        for (category, title) in [(BlockSchema.Category.model, "Models"), (.layer, "Layers"), (.tasks, "Task distributions"), (.environment, "Environments (reinforcement learning)"), (.stream, "Task streams"), (.learner, "Learners")] {
            out.append("### \(title)\n")
            for schema in schemas.filter({ $0.category == category }).sorted(by: { $0.name < $1.name }) {
                out.append(section(schema))
            }
        }
        out.append("### Commands\n")
        for command in Builtins.commandList + Builtins.streamCommands {
            out.append("#### `\(command.doc.name)`\n\n`\(command.doc.signature)`\n\n\(command.doc.summary)\n")
            if !command.options.keys.isEmpty { out.append(table(command.options)) }
            out.append("```\n\(command.doc.example)\n```\n")
        }
        out.append("### Tensor primitives\n")
        out.append("The engine's table of differentiable operations (Sources/MetaQEngine/Autodiff/Primitives.swift), each a function of the language. `g` is the gradient arriving at the output, `y` the output. Composite rows are made of other rows, and their derivative is their parts'.\n")
        out.append("| function | what it does | derivative | its rule reads | order |\n|---|---|---|---|---|")
        for p in Primitives.table {
            let order = switch p.differentiation {
            case .none: "constant"
            case .firstOrder: "first"
            case .anyOrder: "any"
            }
            out.append("| `\(p.signature)` | \(p.summary) | \(p.rule)\(p.composite ? " (composite)" : "") | \(p.reads) | \(order) |")
        }
        out.append("")
        out.append("### Functions\n")
        out.append("| function | what it does | example |\n|---|---|---|")
        for name in Builtins.functions.keys.sorted() where Primitives.byName[name] == nil {
            let doc = Builtins.functions[name]!.doc
            out.append("| `\(doc.signature)` | \(doc.summary) | `\(doc.example)` |")
        }
        out += ["", endMarker]
        return out.joined(separator: "\n") + "\n"
    }

    static func section(_ schema: BlockSchema) -> String {
        var text = "#### `\(schema.name)`\n\n\(schema.summary)\n\n" + table(schema)
        if let extra = schema.extraKeys { text += "\nOther keys: \(extra).\n" }
        return text + "\n```\n\(schema.example)\n```\n"
    }

    static func table(_ schema: BlockSchema) -> String {
        var rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
        func add(_ s: BlockSchema, prefix: String) {
            for key in s.keys {
                let def = key.defaultText.map { $0 == "none" ? "optional" : "`\($0)`" } ?? "**required**"
                rows.append("| `\(prefix)\(key.name)` | \(key.type.description.replacingOccurrences(of: "|", with: "\\|")) | \(def) | \(key.summary) |")
                if case let .record(inner) = key.type { add(inner, prefix: prefix + key.name + ".") }
            }
        }
        add(schema, prefix: "")
        return rows.joined(separator: "\n") + "\n"
    }
}
