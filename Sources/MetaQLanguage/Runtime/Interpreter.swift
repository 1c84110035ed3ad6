import Foundation
import MetaQEngine

/// Where a running script's output goes. The library never prints by itself: the command
/// line, the REPL and the tests each supply their own sink.
public protocol OutputSink: AnyObject {
    /// A line printed by the script (`print`).
    func write(_ line: String)
    /// A printed value, when the sink wants structure (`--json`); defaults to `write`.
    func emit(_ value: Value)
    /// Training progress: `done` of `total` iterations, recent loss, rate.
    func progress(label: String, done: Int, total: Int, loss: Float, rate: Double)
    /// Progress of `train`, `eval`, `lifelong` or `online`; defaults to the call above.
    func progress(_ state: ProgressState)
    /// The end of a progress display.
    func finishProgress()
    /// Whether the sink shows pictures itself (a notebook): then `plot VALUE` without a file
    /// draws inline through `display(svg:)`.
    var showsImages: Bool { get }
    func display(svg: String)
}

extension OutputSink {
    public func emit(_ value: Value) { write(value.displayText) }
    public func progress(label: String, done: Int, total: Int, loss: Float, rate: Double) {}
    public func progress(_ state: ProgressState) {
        progress(label: state.label, done: state.done, total: state.total, loss: state.loss ?? .nan, rate: state.rate)
    }
    public func finishProgress() {}
    public var showsImages: Bool { false }
    public func display(svg: String) {}
}

/// Collects output lines in memory (tests, `metaq check`).
public final class BufferedOutput: OutputSink {
    public private(set) var lines: [String] = []
    public init() {}
    public func write(_ line: String) { lines.append(line) }
}

/// Runs metaq programs: a tree-walking evaluator over the AST, binding the engine's models,
/// task distributions and learners.
///
/// ```swift
/// let interpreter = Interpreter(output: BufferedOutput())
/// let diagnostics = interpreter.run(SourceFile(name: "a.mq", text: "print 1 + 2"))
/// ```
public final class Interpreter {
    public let output: OutputSink
    /// The builtin functions, the outermost scope: a script's `let log = ...` shadows `log`
    /// in its own scope without changing what a module's functions see.
    let builtins = Environment()
    /// The scope of the script (and of the files it imports with `import "file.mq"`).
    public let globals: Environment
    /// The scopes of the modules that ship with metaq, by import path: each runs in a scope
    /// of its own over the builtins, and an import binds its definitions in the importer's.
    private var moduleScopes: [String: Environment] = [:]
    /// The session's random generator; `seed N` resets it.
    public var rng = RandomGenerator(seed: 0)
    /// Checked between training iterations; when it returns true the loop stops cleanly
    /// (the REPL sets it from Ctrl-C).
    public var shouldInterrupt: @Sendable () -> Bool = { false }
    /// Every source file seen (for rendering diagnostics).
    public private(set) var files: [String: SourceFile] = [:]
    /// `--set` overrides: top-level `let`/`var` names or `declaration.key[.key]` paths.
    public var overrides: [String: Expression] = [:]
    private(set) var usedOverrides = Set<String>()

    var callStack: [(String, SourceRange)] = []
    private var importing: [String] = []
    private var imported = Set<String>()
    var datasets: [String: ImageFolderDataset] = [:]
    /// Image datasets loaded by 'images' blocks, by layout, size, channels and normalisation.
    var imageDatasets: [String: ImageDataset] = [:]
    /// Records tensor operations while a script function is being compiled (Trace.swift).
    var tracer: Tracer?
    /// How many enclosing computations will differentiate what is computed now (`grad`
    /// calls and script learners' meta-losses): gradients taken inside one are built as
    /// differentiable graphs, so a gradient of a gradient works.
    var differentiationDepth = 0
    /// Deployment mode (`metaq adapt`, `serve` on a script learner): only definitions run;
    /// commands are skipped, task families are not loaded, statements that fail are skipped.
    var deploying = false
    /// Script learners by where they were declared (ScriptSource.key).
    var scriptLearners: [String: LearnerValue] = [:]
    /// The top-level statement of the file being run (not of a file it imports) that runs
    /// now, and how many script learners it has made: a learner made by a module's function
    /// is keyed by the statement that called it.
    var topLevelStatement: SourceRange?
    var learnersInStatement = 0
    /// The generators made by `generator(seed)`, by their function value.
    var generators: [ObjectIdentifier: GeneratorBox] = [:]
    static let maximumCallDepth = 400

    public init(output: OutputSink) {
        self.output = output
        globals = Environment(parent: builtins)
        Builtins.install(into: builtins)
    }

    /// Parses and runs a whole file; returns the diagnostics (empty on success). An
    /// override (`--set`) that matches nothing in the file or the files it imports is
    /// reported before anything runs.
    @discardableResult
    public func run(_ source: SourceFile) -> [Diagnostic] {
        Interpreter.onLargeStack { self.runHere(source) }
    }

    /// Evaluates one REPL entry in the session: the value of a final expression statement
    /// (nil for other statements), or the diagnostics when it fails.
    public func evaluate(_ source: SourceFile) -> (value: Value?, diagnostics: [Diagnostic]) {
        Interpreter.onLargeStack { self.evaluateHere(source) }
    }

    /// The stack scripts run on: the tree-walking evaluator recurses for every call and nested
    /// expression, and a script's runaway recursion must reach the call-depth limit (an error)
    /// long before the end of the stack (a crash). 1 GiB of address space, committed only as
    /// it is used.
    static let stackSize = 1 << 30

    /// Runs `body` on a thread with a large stack and waits for it (directly, when already on
    /// such a thread).
    static func onLargeStack<T>(_ body: () -> T) -> T {
        if Thread.current.threadDictionary["metaq.largeStack"] != nil { return body() }
        return withoutActuallyEscaping(body) { body in
            let box = LargeStackBox<T>()
            box.body = body
            let done = DispatchSemaphore(value: 0)
            let thread = Thread {
                Thread.current.threadDictionary["metaq.largeStack"] = true
                box.result = box.body!()
                box.body = nil      // the body must not outlive the call (it does not escape)
                done.signal()
            }
            thread.stackSize = stackSize
            thread.start()
            done.wait()
            return box.result!
        }
    }

    private func runHere(_ source: SourceFile) -> [Diagnostic] {
        files[source.name] = source
        let (program, syntax) = Parser.parse(source)
        if !syntax.isEmpty { return syntax }
        if let name = unmatchedOverrides(program.statements).first {
            return [.error("--set \(name): no top-level 'let', 'var' or declaration key '\(name)' in this script", at: program.range, stage: .check)]
        }
        do {
            try executeTopLevel(program.statements)
            return []
        } catch let error as RuntimeError {
            return [error.diagnostic]
        } catch {
            return [.error("\(error)", at: program.range, stage: .run)]
        }
    }

    private func evaluateHere(_ source: SourceFile) -> (value: Value?, diagnostics: [Diagnostic]) {
        files[source.name] = source
        let (program, syntax) = Parser.parse(source)
        if !syntax.isEmpty { return (nil, syntax) }
        do {
            var last: Value?
            for statement in program.statements {
                last = nil
                if case let .expression(e) = statement.kind {
                    // Commands such as `eval` return values the session shows too.
                    topLevelStatement = statement.range
                    learnersInStatement = 0
                    last = try evaluate(e, in: globals)
                } else {
                    try executeTopLevel([statement])
                }
            }
            return (last, [])
        } catch let error as RuntimeError {
            return (nil, [error.diagnostic])
        } catch {
            return (nil, [.error("\(error)", at: program.range)])
        }
    }

    // MARK: Statements

    enum Flow {
        case normal, breakLoop, continueLoop
        case returned(Value)
    }

    func executeTopLevel(_ statements: [Statement]) throws {
        try executeTopLevel(statements, in: globals)
    }

    private func executeTopLevel(_ statements: [Statement], in scope: Environment) throws {
        for statement in statements {
            if importing.isEmpty {
                // Script learners made while this statement runs are keyed by it (ScriptSource).
                topLevelStatement = statement.range
                learnersInStatement = 0
            }
            if deploying {
                // Definitions only: a statement that fails (it needed something that did not
                // run) is skipped, as are task declarations (no data is loaded).
                if case let .declaration(kind, _, _) = statement.kind, kind.name == "tasks" { continue }
                _ = try? execute(applyingOverrides(statement), in: scope)
                continue
            }
            switch try execute(applyingOverrides(statement), in: scope) {
            case .normal: continue
            case .breakLoop, .continueLoop: throw RuntimeError("'break' or 'continue' outside a loop", at: statement.range)
            case .returned: throw RuntimeError("'return' outside a function", at: statement.range)
            }
        }
    }

    func execute(_ block: Block, in env: Environment) throws -> Flow {
        let scope = Environment(parent: env)
        for statement in block.statements {
            let flow = try execute(statement, in: scope)
            if case .normal = flow { continue }
            return flow
        }
        return .normal
    }

    func execute(_ statement: Statement, in env: Environment) throws -> Flow {
        switch statement.kind {
        case let .let(name, value):
            env.define(name.name, try evaluate(value, in: env), at: name.range)
        case let .var(name, value):
            env.define(name.name, try evaluate(value, in: env), mutable: true, at: name.range)
        case let .declaration(kind, name, value):
            let v = try evaluate(value, in: env)
            try checkDeclaration(kind: kind, value: v, at: value.range)
            env.define(name.name, v, at: name.range)
        case let .assignment(target, value):
            try assign(try evaluate(value, in: env), to: target, in: env)
        case let .function(name, parameters, body):
            env.define(name.name, .function(Function(
                name: name.name, body: .script(parameters: parameters.map(\.name), body: .block(body), closure: env))), at: name.range)
        case let .return(value):
            return .returned(try value.map { try evaluate($0, in: env) } ?? .none)
        case let .if(branches, elseBody):
            for branch in branches where try truth(evaluate(branch.condition, in: env), at: branch.condition.range) {
                return try execute(branch.body, in: env)
            }
            if let elseBody { return try execute(elseBody, in: env) }
        case let .for(variable, sequence, body):
            for item in try iterate(evaluate(sequence, in: env), at: sequence.range) {
                if shouldInterrupt() { throw RuntimeError("interrupted", at: statement.range) }
                let scope = Environment(parent: env)
                scope.define(variable.name, item, at: variable.range)
                switch try execute(body, in: scope) {
                case .breakLoop: return .normal
                case .returned(let v): return .returned(v)
                case .normal, .continueLoop: continue
                }
            }
        case let .while(condition, body):
            while try truth(evaluate(condition, in: env), at: condition.range) {
                if shouldInterrupt() { throw RuntimeError("interrupted", at: statement.range) }
                switch try execute(body, in: env) {
                case .breakLoop: return .normal
                case .returned(let v): return .returned(v)
                case .normal, .continueLoop: continue
                }
            }
        case .break: return .breakLoop
        case .continue: return .continueLoop
        case let .import(path):
            try importFile(path, at: statement.range, into: env)
        case let .expression(e):
            _ = try evaluate(e, in: env)
        }
        return .normal
    }

    private func checkDeclaration(kind: Identifier, value: Value, at range: SourceRange) throws {
        guard let expected = Builtins.declarationKinds.first(where: { $0.keyword == kind.name })?.category.rawValue else {
            let kinds = Builtins.declarationKinds.map(\.keyword)
            let hint = nearest(kind.name, in: kinds).map { "; did you mean '\($0)'?" } ?? " (\(Builtins.declarationKindList))"
            throw RuntimeError("unknown declaration kind '\(kind.name)'\(hint)", at: kind.range)
        }
        guard value.typeName == expected else {
            throw RuntimeError("'\(kind.name)' declaration needs \(expected == "environment" ? "an" : "a") \(expected), but the value is a \(value.typeName)", at: range)
        }
    }

    private func assign(_ value: Value, to target: Expression, in env: Environment) throws {
        switch target.kind {
        case let .name(name):
            guard try env.assign(name, value, at: target.range) else {
                throw RuntimeError("cannot assign to undefined name '\(name)'; declare it first with 'var \(name) = ...'", at: target.range)
            }
        case let .member(base, name):
            guard case var .record(record) = try evaluate(base, in: env) else {
                throw RuntimeError("only record fields can be assigned", at: target.range)
            }
            record[name.name] = value
            try assign(.record(record), to: base, in: env)
        case let .index(base, index):
            let container = try evaluate(base, in: env)
            let i = try evaluate(index, in: env)
            switch (container, i) {
            case (.list(var items), .int(let k)):
                let at = k < 0 ? k + items.count : k
                guard items.indices.contains(at) else { throw RuntimeError("index \(k) out of range for a list of \(items.count)", at: index.range) }
                items[at] = value
                try assign(.list(items), to: base, in: env)
            case (.record(var record), .string(let key)):
                record[key] = value
                try assign(.record(record), to: base, in: env)
            default:
                throw RuntimeError("cannot assign to an element of a \(container.typeName) with a \(i.typeName) index", at: target.range)
            }
        default:
            throw RuntimeError("cannot assign to this expression", at: target.range)
        }
    }

    /// The file an `import` at `range` reads: relative to the importing file.
    private func resolvedImport(_ path: String, from range: SourceRange) -> String {
        let base = (range.fileName as NSString).deletingLastPathComponent
        let resolved = path.hasPrefix("/") ? path : (base.isEmpty ? path : base + "/" + path)
        return (resolved as NSString).standardizingPath
    }

    /// Runs an imported file once. A file of the user's runs in the script's scope; a module
    /// that ships with metaq runs in a scope of its own (so the names a script defines cannot
    /// change what its functions call), and its definitions are bound in `env`.
    private func importFile(_ path: String, at range: SourceRange, into env: Environment) throws {
        let shipped = ShippedModule.forImport(path)
        let standardized = shipped != nil ? path : resolvedImport(path, from: range)
        if let scope = moduleScopes[standardized] {
            env.defineAll(scope)
            return
        }
        if imported.contains(standardized) { return }
        guard !importing.contains(standardized) else {
            throw RuntimeError("import cycle: \((importing + [standardized]).joined(separator: " -> "))", at: range)
        }
        let text: String
        if let (name, module) = shipped {
            // A module that ships with metaq, by name.
            guard let module else {
                throw RuntimeError(ShippedModule.unknownModuleMessage(path, name: name), at: range)
            }
            text = module.source
        } else {
            do { text = try TextFile.read(standardized) } catch {
                throw RuntimeError("cannot read imported file '\(path)' (looked for \(standardized)): \(error)", at: range)
            }
        }
        let source = SourceFile(name: standardized, text: text)
        files[standardized] = source
        let (program, syntax) = Parser.parse(source)
        if let first = syntax.first {
            throw RuntimeError(first.message, at: first.range, notes: [.init("imported here", at: range)])
        }
        importing.append(standardized)
        defer { importing.removeLast() }
        if shipped != nil {
            let scope = Environment(parent: builtins)
            try executeTopLevel(program.statements, in: scope)
            moduleScopes[standardized] = scope
            env.defineAll(scope)
        } else {
            try executeTopLevel(program.statements, in: globals)
        }
        imported.insert(standardized)
    }

    // MARK: Overrides (--set)

    /// The override keys that nothing in `source` (or the files it imports at the top level)
    /// would apply to, sorted; nil when `source` has a syntax error. Nothing is run (`metaq
    /// sweep` checks its keys with it before starting any run).
    public func unmatchedOverrides(in source: SourceFile) -> [String]? {
        let (program, syntax) = Parser.parse(source)
        guard syntax.isEmpty else { return nil }
        usedOverrides = []
        return unmatchedOverrides(program.statements)
    }

    /// The overrides that no top-level statement of `statements`, or of the files they
    /// import at the top level, would apply to (sorted); nothing is run.
    private func unmatchedOverrides(_ statements: [Statement]) -> [String] {
        guard !overrides.isEmpty else { return [] }
        var seen = Set<String>()
        func visit(_ statements: [Statement]) {
            for statement in statements {
                _ = applyingOverrides(statement)
                guard case let .import(path) = statement.kind else { continue }
                let shipped = ShippedModule.forImport(path)
                let file = shipped != nil ? path : resolvedImport(path, from: statement.range)
                guard seen.insert(file).inserted,
                      let text = shipped.map({ $0.module?.source }) ?? (try? String(contentsOfFile: file, encoding: .utf8)) else { continue }
                let (program, syntax) = Parser.parse(SourceFile(name: file, text: text))
                if syntax.isEmpty { visit(program.statements) }
            }
        }
        visit(statements)
        return Set(overrides.keys).subtracting(usedOverrides).sorted()
    }

    /// Replaces the value of an overridden top-level `let`/`var`, or a key of a declaration's
    /// block (`sine.support`, `m.inner.steps`).
    private func applyingOverrides(_ statement: Statement) -> Statement {
        guard !overrides.isEmpty else { return statement }
        var s = statement
        switch statement.kind {
        case let .let(name, value):
            if let o = overrides[name.name] { usedOverrides.insert(name.name); s.kind = .let(name: name, value: o) } else { _ = value }
        case let .var(name, _):
            if let o = overrides[name.name] { usedOverrides.insert(name.name); s.kind = .var(name: name, value: o) }
        case let .declaration(kind, name, value):
            if let o = overrides[name.name] {
                usedOverrides.insert(name.name)
                s.kind = .declaration(kind: kind, name: name, value: o)
            } else {
                s.kind = .declaration(kind: kind, name: name, value: overriding(value, path: name.name))
            }
        default: break
        }
        return s
    }

    private func overriding(_ value: Expression, path: String) -> Expression {
        guard case let .blockCall(head, entries) = value.kind else { return value }
        return Expression(.blockCall(head: head, entries: overriding(entries, path: path)), range: value.range)
    }

    private func overriding(_ entries: [Entry], path: String) -> [Entry] {
        var result = entries.map { entry -> Entry in
            let key = path + "." + entry.key.name
            if let o = overrides[key] {
                usedOverrides.insert(key)
                return Entry(key: entry.key, value: o, range: entry.range)
            }
            if case let .record(inner) = entry.value.kind {
                return Entry(key: entry.key, value: Expression(.record(overriding(inner, path: key)), range: entry.value.range), range: entry.range)
            }
            return entry
        }
        // Keys the script leaves at their default can be set too.
        for (key, o) in overrides.sorted(by: { $0.key < $1.key }) where key.hasPrefix(path + ".") {
            let rest = key.dropFirst(path.count + 1)
            guard !rest.contains("."), !entries.contains(where: { $0.key.name == rest }) else { continue }
            usedOverrides.insert(key)
            result.append(Entry(key: Identifier(name: String(rest), range: o.range), value: o, range: o.range))
        }
        return result
    }

    // MARK: Expressions

    func evaluate(_ e: Expression, in env: Environment) throws -> Value {
        switch e.kind {
        case let .integer(i): return .int(i)
        case let .float(f): return .float(f)
        case let .string(s): return .string(s)
        case let .boolean(b): return .bool(b)
        case .pi: return .float(Double.pi)
        case let .name(name):
            if let tracer {
                if let (binding, scope) = env.lookupBinding(name), binding.isMutable, scope.serial < tracer.firstScope {
                    tracer.fail("it reads '\(name)', a 'var' of an enclosing scope that may change between calls")
                }
            }
            guard let v = env.lookup(name) else {
                let hint = nearest(name, in: env.visibleNames).map { "; did you mean '\($0)'?" } ?? ""
                throw RuntimeError("undefined name '\(name)'\(hint)", at: e.range)
            }
            return v
        case let .list(items):
            return .list(try items.map { try evaluate($0, in: env) })
        case let .record(entries):
            var record = Record()
            for entry in entries { record[entry.key.name] = try evaluateEntry(entry, type: nil, in: env) }
            return .record(record)
        case let .blockCall(head, entries):
            if let block = Builtins.blocks[head.name] {
                let validated = try validate(entries, against: block.schema, head: head, in: env)
                do {
                    return try block.make(validated, self)
                } catch let error as RuntimeError {
                    throw error
                } catch let error as LearnerMismatch {
                    throw RuntimeError(error.message, at: e.range)
                } catch {
                    throw RuntimeError("\(head.name): \(error)", at: e.range)
                }
            }
            if case let .function(f)? = env.lookup(head.name) {
                var record = Record()
                for entry in entries { record[entry.key.name] = try evaluateEntry(entry, type: nil, in: env) }
                return try call(f, arguments: [(nil, .record(record), e.range)], at: e.range)
            }
            let hint = nearest(head.name, in: Array(Builtins.blocks.keys)).map { "; did you mean '\($0)'?" } ?? ""
            throw RuntimeError("unknown block '\(head.name)'\(hint)", at: head.range)
        case let .lambda(parameters, body):
            return .function(Function(name: "lambda", body: .script(parameters: parameters.map(\.name), body: .expression(body), closure: env)))
        case let .call(callee, arguments):
            let f = try evaluate(callee, in: env)
            if case let .model(model) = f {
                let args = try arguments.map { ($0.label?.name, try evaluate($0.value, in: env), $0.range) }
                return try callModel(model, args, at: e.range)
            }
            guard case let .function(function) = f else {
                throw RuntimeError("a \(f.typeName) is not callable", at: callee.range)
            }
            let args = try arguments.map { ($0.label?.name, try evaluate($0.value, in: env), $0.range) }
            return try call(function, arguments: args, at: e.range)
        case let .member(base, name):
            return try member(of: evaluate(base, in: env), name: name)
        case let .index(base, index):
            return try element(of: evaluate(base, in: env), at: evaluate(index, in: env), range: index.range)
        case let .unary(op, operand):
            let v = try evaluate(operand, in: env)
            switch (op, v) {
            case (.negate, .int(let i)):
                guard i != .min else { throw RuntimeError("integer overflow", at: e.range) }
                return .int(-i)
            case (.negate, .float(let f)): return .float(-f)
            case (.negate, .tensor(let t)): return .tensor(try tensorOperation("negate", [t], at: e.range) { -$0[0] })
            case (.negate, .record): return try arithmetic(.multiply, .int(-1), v, at: e.range)
            case (.not, _): return .bool(!(try truth(v, at: operand.range)))
            default: throw RuntimeError("cannot negate a \(v.typeName)", at: e.range)
            }
        case let .binary(op, lhs, rhs):
            if op == .and {
                return .bool(try truth(evaluate(lhs, in: env), at: lhs.range) && truth(evaluate(rhs, in: env), at: rhs.range))
            }
            if op == .or {
                return .bool(try truth(evaluate(lhs, in: env), at: lhs.range) || truth(evaluate(rhs, in: env), at: rhs.range))
            }
            return try arithmetic(op, try evaluate(lhs, in: env), try evaluate(rhs, in: env), at: e.range)
        case let .command(name, arguments, options):
            tracer?.fail("it runs the command '\(name.name)'")
            if deploying { throw RuntimeError("commands do not run when deploying", at: e.range) }
            if let command = Builtins.commands[name.name] {
                let args = try arguments.map { CommandArgumentValue(connector: $0.connector, value: try evaluate($0.value, in: env), range: $0.value.range) }
                let validated = try options.map { try validate($0, against: command.options, head: name, in: env) }
                    ?? validate([], against: command.options, head: name, in: env)
                do {
                    return try command.run(CommandInvocation(name: name, arguments: args, options: validated, range: e.range), self)
                } catch let error as LearnerMismatch {
                    throw RuntimeError(error.message, at: e.range)
                }
            }
            if case let .function(f)? = env.lookup(name.name) {
                guard options == nil else { throw RuntimeError("'\(name.name)' takes no options block", at: e.range) }
                let args = try arguments.map { (String?.none, try evaluate($0.value, in: env), $0.range) }
                return try call(f, arguments: args, at: e.range)
            }
            let hint = nearest(name.name, in: Array(Builtins.commands.keys) + env.visibleNames).map { "; did you mean '\($0)'?" } ?? ""
            throw RuntimeError("unknown command '\(name.name)'\(hint)", at: name.range)
        }
    }

    /// Evaluates an entry's value; for a key that takes a choice, a bare name is the choice.
    func evaluateEntry(_ entry: Entry, type: KeyType?, in env: Environment) throws -> Value {
        if case .choice? = type, case let .name(n) = entry.value.kind { return .symbol(n) }
        if case let .record(schema)? = type, case let .record(entries) = entry.value.kind {
            return .record(try validate(entries, against: schema, head: entry.key, in: env).record)
        }
        return try evaluate(entry.value, in: env)
    }

    func truth(_ v: Value, at range: SourceRange) throws -> Bool {
        guard case let .bool(b) = v else { throw RuntimeError("expected a bool condition, got a \(v.typeName)", at: range) }
        return b
    }

    /// The items a `for` loop visits; a range's integers are made one at a time.
    private func iterate(_ v: Value, at range: SourceRange) throws -> AnySequence<Value> {
        switch v {
        case let .list(items): return AnySequence(items)
        case let .range(a, b):
            guard a == a.rounded(), b == b.rounded() else {
                throw RuntimeError("'for' over a range needs integer bounds (got \(Value.format(a))..\(Value.format(b)))", at: range)
            }
            // Double(Int.max) is 2^63, one past the largest int.
            guard a >= Double(Int.min), a < Double(Int.max), b >= Double(Int.min), b < Double(Int.max) else {
                throw RuntimeError("'for' over a range needs bounds that fit in an int (got \(Value.format(a))..\(Value.format(b)))", at: range)
            }
            return a <= b ? AnySequence((Int(a)...Int(b)).lazy.map { .int($0) }) : AnySequence([])
        case let .string(s): return AnySequence(s.map { .string(String($0)) })
        case let .record(r): return AnySequence(r.keys.map { .string($0) })
        default: throw RuntimeError("cannot iterate over a \(v.typeName)", at: range)
        }
    }

    // MARK: Calls

    func call(_ f: Function, arguments: [(String?, Value, SourceRange)], at range: SourceRange) throws -> Value {
        switch f.body {
        case let .builtin(builtin):
            return try builtin.call(arguments.map { BuiltinArgument(label: $0.0, value: $0.1, range: $0.2) }, range, self)
        case let .script(parameters, body, closure):
            guard callStack.count < Self.maximumCallDepth else {
                throw RuntimeError("call depth exceeded \(Self.maximumCallDepth) (runaway recursion?)", at: range)
            }
            guard arguments.count == parameters.count else {
                throw RuntimeError("'\(f.name)' takes \(parameters.count) argument\(parameters.count == 1 ? "" : "s"), got \(arguments.count)", at: range)
            }
            let scope = Environment(parent: closure)
            var positional = 0
            var bound = Set<String>()
            for (label, value, argRange) in arguments {
                let name: String
                if let label {
                    guard parameters.contains(label) else {
                        throw RuntimeError("'\(f.name)' has no parameter '\(label)' (parameters: \(parameters.joined(separator: ", ")))", at: argRange)
                    }
                    name = label
                } else {
                    while positional < parameters.count && bound.contains(parameters[positional]) { positional += 1 }
                    name = parameters[positional]
                }
                guard bound.insert(name).inserted else { throw RuntimeError("argument '\(name)' given twice", at: argRange) }
                scope.define(name, value)
            }
            callStack.append((f.name, range))
            defer { callStack.removeLast() }
            do {
                switch body {
                case let .expression(e): return try evaluate(e, in: scope)
                case let .block(block):
                    if case let .returned(v) = try execute(block, in: scope) { return v }
                    return .none
                }
            } catch var error as RuntimeError {
                // Every call the error passes through, outermost last. (Comparing with the
                // depth here, as before, kept only the inner half of the chain.)
                error.callStack.append((f.name, range))
                throw error
            }
        }
    }

    // MARK: Members and elements

    private func member(of v: Value, name: Identifier) throws -> Value {
        let n = name.name
        switch v {
        case let .record(r):
            if let field = r[n] { return field }
            throw RuntimeError("record has no field '\(n)'" + (nearest(n, in: r.keys).map { "; did you mean '\($0)'?" } ?? " (fields: \(r.keys.joined(separator: ", ")))"), at: name.range)
        case let .report(report):
            let fields = Record.of(report)
            if let field = fields[n] { return field }
            throw RuntimeError("an eval report has no field '\(n)' (fields: \(fields.keys.joined(separator: ", ")))", at: name.range)
        case let .tensor(t):
            switch n {
            case "shape": return .list(t.shape.map { .int($0) })
            case "count": return .int(t.count)
            case "values":
                readsTensorValues("'.values'")
                return .list(t.scalars.map { .float(Double($0)) })
            case "rank": return .int(t.rank)
            default: throw RuntimeError("a tensor has no field '\(n)' (fields: shape, rank, count, values)", at: name.range)
            }
        case let .list(items):
            if n == "length" { return .int(items.count) }
        case let .model(m):
            switch n {
            case "parameters": return .int(m.network.parameterCount)
            case "params": return modelParameters(m, at: name.range)
            case "layers": return .list(m.network.layers.map { .string(Value.layerText($0)) })
            case "input_shape":
                guard let shape = m.inputShape else { throw RuntimeError("this model does not record its input shape", at: name.range) }
                return .list(shape.map { .int($0) })
            case "output_shape":
                guard let shape = m.inputShape, let out = try? m.network.outputShape(for: shape) else {
                    throw RuntimeError("this model does not record its input shape", at: name.range)
                }
                return .list(out.map { .int($0) })
            default: break
            }
        case let .learner(l):
            switch n {
            case "iterations": return .int(l.iterations)
            case "model": return .model(l.model)
            case "kind": return .string(l.kind)
            case "params": return modelParameters(l.model, at: name.range)
            case "extras":
                // A learner's learned tensors besides the model's: a script learner's extras,
                // Meta-SGD's per-parameter rates (named like the parameters).
                if case let .meta(s as ScriptLearner)? = l.learner { return s.extrasValue }
                if case let .meta(m as MetaSGD)? = l.learner {
                    return .record(Record(zip(m.model.parameterSpecs, m.learningRates).map { ($0.name, .tensor($1.detached())) }))
                }
                return .record(Record())
            case "compiled":
                // Whether a script learner's functions run compiled, or why not.
                if case let .meta(s as ScriptLearner)? = l.learner { return s.interpretedBecause.map { .string("no: " + $0) } ?? .string("yes") }
                return .string("built in")
            default: break
            }
        case let .lifelongReport(r):
            switch n {
            case "acc": return .float(r.averageScore)
            case "bwt": return .float(r.backwardTransfer)
            case "fwt": return .float(r.forwardTransfer)
            case "forgetting": return .list(r.forgetting.map { .float($0) })
            case "matrix": return .list(r.matrix.map { .list($0.map { .float($0) }) })
            case "method": return .string(r.method)
            case "seconds": return .float(r.seconds)
            default: throw RuntimeError("a lifelong report has no field '\(n)' (fields: acc, bwt, fwt, forgetting, matrix, method, seconds)", at: name.range)
            }
        case let .onlineReport(r):
            switch n {
            case "before": return .list(r.before.map { .float($0) })
            case "after": return .list(r.after.map { .float($0) })
            case "steps": return .list(r.stepsToProficiency.map { .int($0) })
            case "scratch_steps": return .list(r.scratchStepsToProficiency.map { .int($0) })
            default: throw RuntimeError("an online report has no field '\(n)' (fields: before, after, steps, scratch_steps)", at: name.range)
            }
        case let .tasks(t):
            switch n {
            case "support": return .int(t.support)
            case "query": return .int(t.query)
            case "kind": return .string(t.kind)
            default: break
            }
        default: break
        }
        throw RuntimeError("a \(v.typeName) has no field '\(n)'", at: name.range)
    }

    private func element(of container: Value, at index: Value, range: SourceRange) throws -> Value {
        switch (container, index) {
        case let (.list(items), .int(k)):
            let at = k < 0 ? k + items.count : k
            guard items.indices.contains(at) else { throw RuntimeError("index \(k) out of range for a list of \(items.count)", at: range) }
            return items[at]
        case let (.string(s), .int(k)):
            let chars = Array(s)
            let at = k < 0 ? k + chars.count : k
            guard chars.indices.contains(at) else { throw RuntimeError("index \(k) out of range for a string of \(chars.count)", at: range) }
            return .string(String(chars[at]))
        case let (.record(r), .string(key)):
            guard let v = r[key] else { throw RuntimeError("record has no field '\(key)'", at: range) }
            return v
        case let (.tensor(t), .int(k)):
            guard t.rank > 0 else { throw RuntimeError("cannot index a scalar tensor", at: range) }
            let at = k < 0 ? k + t.shape[0] : k
            guard at >= 0 && at < t.shape[0] else { throw RuntimeError("index \(k) out of range for axis of extent \(t.shape[0])", at: range) }
            let rowShape = Array(t.shape.dropFirst())
            let row = try tensorOperation("index", [t], at: range) { $0[0].slice(axis: 0, at..<at + 1).reshaped(to: rowShape) }
            if row.rank == 0 { readsTensorValues("an element as a number") }
            return row.rank == 0 ? .float(Double(row.scalar)) : .tensor(row)
        default:
            throw RuntimeError("cannot index a \(container.typeName) with a \(index.typeName)", at: range)
        }
    }
}

extension Record {
    /// The fields of an evaluation report as the language sees them.
    /// A report's fields; listed episodes add `episodes` (their names) and each row's
    /// `scores` (one per episode, in that order).
    static func of(_ report: EvaluationReport) -> Record {
        var fields: [(String, Value)] = [
            ("metric", .string(report.metric)),
            ("rows", .list(report.rows.map { row in
                var fields: [(String, Value)] = [("steps", .int(row.steps)), ("mean", .float(row.mean)), ("ci95", .float(row.confidence95)), ("tasks", .int(row.tasks))]
                if let scores = row.scores { fields.append(("scores", .list(scores.map { .float($0) }))) }
                return .record(Record(fields))
            })),
            ("steps", .list(report.rows.map { .int($0.steps) })),
            ("means", .list(report.rows.map { .float($0.mean) })),
            ("ci95", .list(report.rows.map { .float($0.confidence95) })),
        ]
        if let names = report.episodes { fields.append(("episodes", .list(names.map { .string($0) }))) }
        return Record(fields)
    }
}

/// Hands a body and its result between a caller and the large-stack thread that runs it.
private final class LargeStackBox<T>: @unchecked Sendable {
    var body: (() -> T)?
    var result: T?
}
