/// Help text generated from the builtins' schemas (the same source the validator and the
/// language reference use).
public enum Help {
    public static var overview: String {
        let blocks = Builtins.blocks.values.map(\.schema)
        func names(_ c: BlockSchema.Category) -> String { blocks.filter { $0.category == c }.map(\.name).sorted().joined(separator: ", ") }
        return """
            Declarations:  model NAME = ...   tasks NAME = ...   env NAME = ...   learner NAME = ...   stream NAME = ...
            models:        \(names(.model))
            tasks:         \(names(.tasks))
            environments:  \(names(.environment))
            streams:       \(names(.stream))
            learners:      \(names(.learner))
            commands:      \((Builtins.commandList + Builtins.streamCommands).map(\.doc.name).joined(separator: ", "))
            functions:     \(Builtins.functions.keys.sorted().joined(separator: ", "))
            modules:       \(ShippedModule.all.map(\.path).joined(separator: ", "))  (import "metaq/NAME")
            REPL:          :help [NAME]  :vars  :type EXPR  :time EXPR  :load FILE  :reset  :history [N]  :quit
            :help NAME shows a builtin's keys, types and defaults.
            """
    }

    /// Help for one builtin block, command or function, or a module that ships with metaq
    /// (by its name or its import path).
    public static func topic(_ name: String) -> String {
        if let block = Builtins.blocks[name] { return render(block.schema) }
        if let command = Builtins.commands[name] {
            var text = "\(command.doc.signature)\n  \(command.doc.summary)\n  example: \(command.doc.example)"
            if !command.options.keys.isEmpty { text += "\n" + keyTable(command.options) }
            return text
        }
        if let f = Builtins.functions[name] {
            return "\(f.doc.signature)\n  \(f.doc.summary)\n  example: \(f.doc.example)"
        }
        if let module = ShippedModule.named(name) ?? ShippedModule.forImport(name)?.module {
            let lines = module.documentation.split(separator: "\n", omittingEmptySubsequences: false).map { $0.isEmpty ? "" : "  " + $0 }
            return "import \"\(module.path)\"  (a module written in metaq, \(module.codeLines) lines of code)\n" + lines.joined(separator: "\n")
        }
        let all = Array(Builtins.blocks.keys) + Array(Builtins.commands.keys) + Array(Builtins.functions.keys) + ShippedModule.all.map(\.name)
        return "no builtin named '\(name)'" + (nearest(name, in: all).map { "; did you mean '\($0)'?" } ?? "")
    }

    static func render(_ schema: BlockSchema) -> String {
        var text = "\(schema.name) < ... >  (\(schema.category.rawValue))\n  \(schema.summary)\n" + keyTable(schema)
        if let extra = schema.extraKeys { text += "\n  other keys: \(extra)" }
        text += "\n  example: \(schema.example)"
        return text
    }

    static func keyTable(_ schema: BlockSchema, indent: String = "  ") -> String {
        schema.keys.map { key in
            let def = key.defaultText.map { $0 == "none" ? "optional" : "default \($0)" } ?? "required"
            var line = "\(indent)\(key.name): \(key.type.description), \(def). \(key.summary)"
            if case let .record(inner) = key.type { line += "\n" + keyTable(inner, indent: indent + "    ") }
            return line
        }.joined(separator: "\n")
    }
}
