import Foundation

/// Static checks that need no training: syntax, names used before they are defined,
/// declaration kinds, command and block names, block keys (unknown, missing, or a literal of
/// the wrong type), `break`/`continue` outside loops and `return` outside functions, and
/// imports. `metaq check` runs it; it never evaluates anything.
///
/// ```swift
/// let result = Checker.check(SourceFile(name: "a.mq", text: "print x"))
/// result.diagnostics   // undefined name 'x'
/// ```
public struct Checker {
    public struct Result {
        public var diagnostics: [Diagnostic]
        public var files: [SourceFile]
    }

    private var diagnostics: [Diagnostic] = []
    private var files: [SourceFile] = []
    private var scopes: [Set<String>] = []
    /// Names defined anywhere at top level (function bodies may use globals defined later).
    private var globalNames = Set<String>()
    private var loopDepth = 0
    private var functionDepth = 0
    private var importing: [String] = []
    /// Argument counts of the functions a call may reach by name: builtins with a declared
    /// arity, and top-level `fn` declarations and `let f = fn(...)` lambdas of the script.
    private var arities: [String: ClosedRange<Int>] = Builtins.functions.compactMapValues(\.arity)

    public static func check(_ source: SourceFile) -> Result {
        var checker = Checker()
        checker.scopes = [Set(Builtins.functions.keys)]
        checker.checkFile(source, importedAt: nil)
        let sorted = checker.diagnostics.sorted { ($0.range.fileName, $0.range.start) < ($1.range.fileName, $1.range.start) }
        return Result(diagnostics: sorted, files: checker.files)
    }

    private mutating func checkFile(_ source: SourceFile, importedAt: SourceRange?) {
        files.append(source)
        let (program, syntax) = Parser.parse(source)
        diagnostics += syntax
        guard syntax.isEmpty else { return }
        collectGlobals(program.statements)
        importing.append(source.name)
        for statement in program.statements { check(statement) }
        importing.removeLast()
    }

    private mutating func collectGlobals(_ statements: [Statement]) {
        for s in statements {
            switch s.kind {
            case let .let(name, value):
                globalNames.insert(name.name)
                if case let .lambda(parameters, _) = value.kind { arities[name.name] = parameters.count...parameters.count }
                else { arities[name.name] = nil }
            case let .var(name, _), let .declaration(_, name, _):
                globalNames.insert(name.name)
                arities[name.name] = nil
            case let .function(name, parameters, _):
                globalNames.insert(name.name)
                arities[name.name] = parameters.count...parameters.count
            default: break
            }
        }
    }

    private mutating func error(_ message: String, _ range: SourceRange, notes: [Diagnostic.Note] = []) {
        diagnostics.append(.error(message, at: range, stage: .check, notes: notes))
    }

    private func isDefined(_ name: String) -> Bool {
        if scopes.contains(where: { $0.contains(name) }) { return true }
        return functionDepth > 0 && globalNames.contains(name)
    }

    private mutating func define(_ name: String) { scopes[scopes.count - 1].insert(name) }

    private mutating func withScope(_ body: (inout Checker) -> Void) {
        scopes.append([])
        body(&self)
        scopes.removeLast()
    }

    private mutating func check(_ block: Block) {
        withScope { c in for s in block.statements { c.check(s) } }
    }

    private mutating func check(_ statement: Statement) {
        switch statement.kind {
        case let .let(name, value), let .var(name, value):
            check(value)
            define(name.name)
        case let .declaration(kind, name, value):
            let kinds = Builtins.declarationKinds.map(\.keyword)
            let category = Builtins.declarationKinds.first { $0.keyword == kind.name }?.category
            if category == nil {
                let hint = nearest(kind.name, in: kinds).map { "; did you mean '\($0)'?" } ?? " (\(Builtins.declarationKindList))"
                error("unknown declaration kind '\(kind.name)'\(hint)", kind.range)
            } else if case let .blockCall(head, _) = value.kind, let schema = Builtins.blocks[head.name]?.schema,
                      schema.category != category {
                error("'\(kind.name)' declaration needs \(category == .environment ? "an" : "a") \(category!.rawValue), but '\(head.name)' makes a \(schema.category.rawValue)", value.range)
            }
            check(value)
            define(name.name)
        case let .assignment(target, value):
            check(target)
            check(value)
        case let .function(name, parameters, body):
            define(name.name)
            functionDepth += 1
            let savedLoops = loopDepth
            loopDepth = 0
            withScope { c in
                for p in parameters { c.define(p.name) }
                c.check(body)
            }
            loopDepth = savedLoops
            functionDepth -= 1
        case let .return(value):
            if functionDepth == 0 { error("'return' outside a function", statement.range) }
            if let value { check(value) }
        case let .if(branches, elseBody):
            for b in branches {
                check(b.condition)
                check(b.body)
            }
            if let elseBody { check(elseBody) }
        case let .for(variable, sequence, body):
            check(sequence)
            loopDepth += 1
            withScope { c in
                c.define(variable.name)
                c.check(body)
            }
            loopDepth -= 1
        case let .while(condition, body):
            check(condition)
            loopDepth += 1
            check(body)
            loopDepth -= 1
        case .break, .continue:
            if loopDepth == 0 { error("'\(statement.kind.isBreak ? "break" : "continue")' outside a loop", statement.range) }
        case let .import(path):
            checkImport(path, at: statement.range)
        case let .expression(e):
            check(e)
        }
    }

    private mutating func checkImport(_ path: String, at range: SourceRange) {
        let shipped = ShippedModule.forImport(path)
        let base = (range.fileName as NSString).deletingLastPathComponent
        let resolved = shipped != nil ? path : ((path.hasPrefix("/") || base.isEmpty ? path : base + "/" + path) as NSString).standardizingPath
        if importing.contains(resolved) {
            error("import cycle: \((importing + [resolved]).joined(separator: " -> "))", range)
            return
        }
        let text: String
        if let (name, module) = shipped {
            guard let module else {
                error(ShippedModule.unknownModuleMessage(path, name: name), range)
                return
            }
            text = module.source
        } else {
            do { text = try TextFile.read(resolved) } catch let problem {
                error("cannot read imported file '\(path)' (looked for \(resolved)): \(problem)", range)
                return
            }
        }
        if files.contains(where: { $0.name == resolved }) { return }
        let savedGlobals = globalNames
        checkFile(SourceFile(name: resolved, text: text), importedAt: range)
        // Names the import defines become visible to the importer.
        for name in globalNames.subtracting(savedGlobals) { define(name) }
    }

    private mutating func check(_ e: Expression) {
        switch e.kind {
        case .integer, .float, .string, .boolean, .pi: break
        case let .name(name):
            if !isDefined(name) {
                let visible = scopes.flatMap { $0 } + Array(globalNames)
                let later = globalNames.contains(name) ? " (it is defined later in the file)" : ""
                let hint = later.isEmpty ? (nearest(name, in: visible).map { "; did you mean '\($0)'?" } ?? "") : later
                error("undefined name '\(name)'\(hint)", e.range)
            }
        case let .list(items): items.forEach { check($0) }
        case let .record(entries): entries.forEach { check($0.value) }
        case let .blockCall(head, entries):
            if let schema = Builtins.blocks[head.name]?.schema {
                check(entries, against: schema, head: head)
            } else if !isDefined(head.name) {
                let hint = nearest(head.name, in: Array(Builtins.blocks.keys)).map { "; did you mean '\($0)'?" } ?? ""
                error("unknown block '\(head.name)'\(hint)", head.range)
                entries.forEach { check($0.value) }
            } else {
                entries.forEach { check($0.value) }
            }
        case let .lambda(parameters, body):
            withScope { c in
                for p in parameters { c.define(p.name) }
                c.check(body)
            }
        case let .call(callee, arguments):
            check(callee)
            arguments.forEach { check($0.value) }
            // A wrong argument count to a function known by name (not shadowed locally).
            if case let .name(name) = callee.kind, let expected = arities[name],
               !scopes.dropFirst().contains(where: { $0.contains(name) }), !expected.contains(arguments.count) {
                let count = expected.lowerBound == expected.upperBound ? "\(expected.lowerBound)" : "\(expected.lowerBound) to \(expected.upperBound)"
                let signature = Builtins.functions[name].map { " (\($0.doc.signature))" } ?? ""
                error("'\(name)' takes \(count) argument\(expected.upperBound == 1 ? "" : "s"), got \(arguments.count)\(signature)", e.range)
            }
        case let .member(base, _): check(base)
        case let .index(base, index):
            check(base)
            check(index)
        case let .unary(_, operand): check(operand)
        case let .binary(_, lhs, rhs):
            check(lhs)
            check(rhs)
        case let .command(name, arguments, options):
            arguments.forEach { check($0.value) }
            if let command = Builtins.commands[name.name] {
                check(options ?? [], against: command.options, head: name)
            } else if !isDefined(name.name) {
                let hint = nearest(name.name, in: Array(Builtins.commands.keys) + scopes.flatMap { $0 }).map { "; did you mean '\($0)'?" } ?? ""
                error("unknown command '\(name.name)'\(hint)", name.range)
            }
        }
    }

    /// Keys checked against a schema: unknown keys, missing required keys, and literal values
    /// of the wrong type (values computed at run time are checked when the script runs).
    private mutating func check(_ entries: [Entry], against schema: BlockSchema, head: Identifier) {
        var given = Set<String>()
        for entry in entries {
            let name = entry.key.name
            given.insert(name)
            guard let spec = schema.key(name) else {
                if schema.extraKeys == nil {
                    let hint = schema.suggestion(for: name).map { "; did you mean '\($0)'?" }
                        ?? " (valid keys: \(schema.keys.map(\.name).joined(separator: ", ")))"
                    error("unknown key '\(name)' in '\(schema.name)'\(hint)", entry.key.range)
                }
                check(entry.value)
                continue
            }
            switch (spec.type, entry.value.kind) {
            case let (.record(inner), .record(nested)):
                check(nested, against: inner, head: entry.key)
            case (.choice, .name):
                checkChoice(entry, spec: spec, schema: schema)
            default:
                if let problem = literalMismatch(entry.value, spec.type) {
                    error("key '\(name)' of '\(schema.name)' expects \(spec.type.description), got \(problem)", entry.value.range)
                }
                check(entry.value)
            }
        }
        let missing = schema.keys.filter { $0.isRequired && !given.contains($0.name) }
        for spec in missing {
            let range = entries.reduce(head.range) { $0.union($1.range) }
            error("'\(schema.name)' needs key '\(spec.name)' (\(spec.type.description)): \(spec.summary)", range)
        }
    }

    private mutating func checkChoice(_ entry: Entry, spec: KeySpec, schema: BlockSchema) {
        guard case let .choice(names) = spec.type, case let .name(n) = entry.value.kind, !names.contains(n) else { return }
        let hint = nearest(n, in: names).map { "; did you mean '\($0)'?" } ?? ""
        error("key '\(spec.name)' of '\(schema.name)' expects \(spec.type.description), got '\(n)'\(hint)", entry.value.range)
    }

    /// A description of a literal that cannot have the type, or nil when it fits or is not a literal.
    private func literalMismatch(_ e: Expression, _ type: KeyType) -> String? {
        let literal: String
        switch e.kind {
        case let .integer(i): literal = "int \(i)"
        case let .float(f): literal = "float \(Value.format(f))"
        case let .string(s): literal = "string \"\(s)\""
        case let .boolean(b): literal = "bool \(b)"
        case .list: literal = "a list"
        case .lambda: literal = "a function"
        case .record: literal = "a block"
        case .unary(.negate, let inner):
            if case let .integer(i) = inner.kind { return literalMismatch(Expression(.integer(-i), range: e.range), type) }
            if case let .float(f) = inner.kind { return literalMismatch(Expression(.float(-f), range: e.range), type) }
            return nil
        default: return nil
        }
        let fits: Bool
        switch (type, e.kind) {
        case let (.int(lo, hi), .integer(i)): fits = i >= lo && i <= hi
        case (.int, _): fits = false
        case let (.number(lo, hi), .integer(i)): fits = Double(i) >= lo && Double(i) <= hi
        case let (.number(lo, hi), .float(f)): fits = f >= lo && f <= hi
        case (.number, _): fits = false
        case (.bool, .boolean), (.string, .string), (.function, .lambda), (.record, .record): fits = true
        case (.range, .integer), (.range, .float): fits = true
        case (.intList, .list), (.intList, .integer), (.numberList, .list), (.numberList, .integer), (.numberList, .float),
             (.stringList, .list), (.stringList, .string), (.choice, .string), (.layers, .list): fits = true
        case (.tensors, _): fits = true
        default: fits = false
        }
        return fits ? nil : literal
    }
}

extension Statement.Kind {
    fileprivate var isBreak: Bool {
        if case .break = self { return true }
        return false
    }
}
