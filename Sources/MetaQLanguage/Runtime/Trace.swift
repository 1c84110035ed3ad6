import Foundation
import MetaQEngine

// Compiling a script function to engine calls. A learner written in metaq calls its meta-loss
// and adaptation functions once per meta-step; interpreting them every time would put the
// tree walker (single-threaded, a dictionary lookup per name) in the hot path. Instead the
// first call with given argument shapes runs the interpreter with a `Tracer` attached: every
// tensor operation the function performs (primitives, arithmetic, model calls, `grad`) is
// recorded as one instruction over numbered slots. Later calls with the same shapes replay
// the instructions: a straight list of engine calls, no interpreter, safe to run on several
// threads at once (each share of a meta-batch replays on its own worker).
//
// What the interpreter decides from values (an `if` on a tensor's element, a number read
// from a tensor, a `var` of an enclosing scope that may change between calls, random draws,
// printing) cannot be replayed; such a function is marked untraceable and is interpreted on
// every call. The second call with a shape is run both ways and compared bit for bit before
// the trace is trusted, so a dependence the tracer did not see is caught, not replayed.

/// A value with its tensors taken out, to be put back: the structure (lists, records) of a
/// function's arguments or result, whose leaves are tensors or other values.
indirect enum TensorTree: @unchecked Sendable {
    case tensor
    case list([TensorTree])
    case record([(String, TensorTree)])
    case constant(Value)

    /// The tree of `value`, appending its tensors to `leaves` in order.
    static func flatten(_ value: Value, into leaves: inout [Tensor]) -> TensorTree {
        switch value {
        case let .tensor(t):
            leaves.append(t)
            return .tensor
        case let .list(items): return .list(items.map { flatten($0, into: &leaves) })
        case let .record(r): return .record(r.fields.map { ($0.key, flatten($0.value, into: &leaves)) })
        default: return .constant(value)
        }
    }

    /// The value with the tensors taken from `leaves` from `index` on.
    func rebuild(_ leaves: [Tensor], at index: inout Int) -> Value {
        switch self {
        case .tensor:
            index += 1
            return .tensor(leaves[index - 1])
        case let .list(items): return .list(items.map { $0.rebuild(leaves, at: &index) })
        case let .record(fields): return .record(Record(fields.map { ($0.0, $0.1.rebuild(leaves, at: &index)) }))
        case let .constant(v): return v
        }
    }

    func rebuild(_ leaves: [Tensor]) -> Value {
        var i = 0
        return rebuild(leaves, at: &i)
    }

    /// The number of tensor leaves.
    var tensorCount: Int {
        switch self {
        case .tensor: 1
        case let .list(items): items.reduce(0) { $0 + $1.tensorCount }
        case let .record(fields): fields.reduce(0) { $0 + $1.1.tensorCount }
        case .constant: 0
        }
    }

    /// Feeds the structure and the non-tensor values into a hash (part of a trace's key).
    func hash(into hasher: inout Hasher) {
        switch self {
        case .tensor: hasher.combine(0)
        case let .list(items):
            hasher.combine(1)
            hasher.combine(items.count)
            for item in items { item.hash(into: &hasher) }
        case let .record(fields):
            hasher.combine(2)
            hasher.combine(fields.count)
            for (key, value) in fields {
                hasher.combine(key)
                value.hash(into: &hasher)
            }
        case let .constant(v):
            hasher.combine(3)
            switch v {
            case let .int(i): hasher.combine(i)
            case let .float(f): hasher.combine(f.bitPattern)
            case let .bool(b): hasher.combine(b)
            case let .string(s), let .symbol(s): hasher.combine(s)
            case .none: hasher.combine(4)
            default:
                hasher.combine(v.typeName)
                hasher.combine(v.displayText)
            }
        }
    }

    /// A text that equals another tree's exactly when the two have the same structure and
    /// the same non-tensor values.
    var signature: String {
        switch self {
        case .tensor: "T"
        case let .list(items): "[" + items.map(\.signature).joined(separator: ",") + "]"
        case let .record(fields): "<" + fields.map { "\($0.0):\($0.1.signature)" }.joined(separator: ",") + ">"
        case let .constant(v): "=" + v.typeName + ":" + v.displayText
        }
    }
}

/// A function recorded as engine calls over numbered slots: the arguments' tensors first,
/// then constants, then each instruction's results.
final class Trace: @unchecked Sendable {
    struct Instruction {
        let name: String
        let inputs: [Int]
        let outputs: [Int]
        let run: ([Tensor]) throws -> [Tensor]
    }

    var constants: [(slot: Int, value: Tensor)] = []
    var instructions: [Instruction] = []
    var slotCount: Int
    var outputSlots: [Int] = []
    var outputTree: TensorTree = .constant(.none)
    /// The shapes of the arguments' tensors it was traced with: it replays only on those.
    let inputShapes: [[Int]]

    init(inputs: [Tensor]) {
        slotCount = inputs.count
        inputShapes = inputs.map(\.shape)
    }

    struct Mismatch: Error, CustomStringConvertible {
        var description: String { "a compiled function was given arguments of other shapes than it was compiled for" }
    }

    /// The function's result tensors for new argument tensors (same shapes as traced).
    func replay(_ inputs: [Tensor]) throws -> [Tensor] {
        guard inputs.count == inputShapes.count, zip(inputs, inputShapes).allSatisfy({ $0.shape == $1 }) else { throw Mismatch() }
        var slots = [Tensor?](repeating: nil, count: slotCount)
        for i in inputs.indices { slots[i] = inputs[i] }
        for (s, t) in constants { slots[s] = t }
        for instruction in instructions {
            let results = try instruction.run(instruction.inputs.map { slots[$0]! })
            for (s, r) in zip(instruction.outputs, results) { slots[s] = r }
        }
        return outputSlots.map { slots[$0]! }
    }
}

/// Records the tensor operations of one interpreted call (see the file's header).
final class Tracer {
    let trace: Trace
    /// Environments made before this serial belong to enclosing scopes.
    let firstScope: UInt64
    private var slotOf: [ObjectIdentifier: Int] = [:]
    /// Every tensor seen, kept alive so that no identifier is reused during the trace.
    private var seen: [Tensor] = []
    /// Why the function cannot be replayed, once something is found.
    var failure: String?

    init(inputs: [Tensor], firstScope: UInt64) {
        trace = Trace(inputs: inputs)
        self.firstScope = firstScope
        for (i, t) in inputs.enumerated() {
            slotOf[ObjectIdentifier(t)] = i
            seen.append(t)
        }
    }

    func fail(_ reason: String) { if failure == nil { failure = reason } }

    /// The slot holding `t`; a tensor the trace has not produced is a constant.
    func slot(_ t: Tensor) -> Int {
        if let s = slotOf[ObjectIdentifier(t)] { return s }
        let s = trace.slotCount
        trace.slotCount += 1
        slotOf[ObjectIdentifier(t)] = s
        seen.append(t)
        trace.constants.append((s, t))
        return s
    }

    func record(_ name: String, inputs: [Tensor], outputs: [Tensor], run: @escaping ([Tensor]) throws -> [Tensor]) {
        let inputSlots = inputs.map(slot)
        var outputSlots: [Int] = []
        for t in outputs {
            let s = trace.slotCount
            trace.slotCount += 1
            slotOf[ObjectIdentifier(t)] = s
            seen.append(t)
            outputSlots.append(s)
        }
        trace.instructions.append(Trace.Instruction(name: name, inputs: inputSlots, outputs: outputSlots, run: run))
    }

    func finish(_ result: Value) -> Trace {
        var leaves: [Tensor] = []
        trace.outputTree = TensorTree.flatten(result, into: &leaves)
        trace.outputSlots = leaves.map(slot)
        return trace
    }
}

/// The compiled forms of one script function, by argument shapes.
final class TraceCache: @unchecked Sendable {
    enum State {
        /// Traced once; the next call checks the replay against the interpreter.
        case traced(Trace)
        /// Checked: replayed from now on.
        case trusted(Trace)
        /// Interpreted on every call, for this reason.
        case interpreted(String)
    }

    private(set) var states: [Int: State] = [:]
    /// Why the function is interpreted (the first reason found), for `:help`-style reports.
    private(set) var interpretedBecause: String?

    /// The key of a call: a hash of the arguments' structure, non-tensor values, and each
    /// tensor's shape and whether it takes gradients. (A trace also checks the shapes it is
    /// given before it replays.)
    static func key(_ tree: TensorTree, _ leaves: [Tensor]) -> Int {
        var hasher = Hasher()
        tree.hash(into: &hasher)
        for t in leaves {
            hasher.combine(t.shape)
            hasher.combine(t.requiresGradient)
        }
        return hasher.finalize()
    }

    func state(_ key: Int) -> State? { states[key] }

    func set(_ key: Int, _ state: State) {
        states[key] = state
        if case let .interpreted(why) = state, interpretedBecause == nil { interpretedBecause = why }
    }

    /// The trusted trace for `key`, when there is one (safe to call from worker threads
    /// while nothing sets states).
    func trusted(_ key: Int) -> Trace? {
        if case let .trusted(t)? = states[key] { return t }
        return nil
    }
}

extension Interpreter {
    /// Calls a script function through its compiled form: traced on the first call with
    /// these argument shapes, checked against the interpreter on the second, replayed after.
    /// Runs on the interpreter's thread.
    func callCompiled(_ f: Function, _ arguments: [Value], cache: TraceCache, at range: SourceRange) throws -> Value {
        var leaves: [Tensor] = []
        let trees = arguments.map { TensorTree.flatten($0, into: &leaves) }
        let key = TraceCache.key(.list(trees), leaves)
        // Each run (interpreted or replayed) under the caller's forward context with its
        // dropout calls numbered from 0: both runs of a second call draw the same masks.
        let context = ForwardContext.current
        func interpret() throws -> Value {
            try ForwardContext.with(context) { try call(f, arguments: arguments.map { (nil, $0, range) }, at: range) }
        }
        func replay(_ trace: Trace) throws -> [Tensor] {
            try ForwardContext.with(context) { try trace.replay(leaves) }
        }
        switch cache.state(key) {
        case let .trusted(trace)?:
            return try trace.outputTree.rebuild(replay(trace))
        case .interpreted?:
            return try interpret()
        case let .traced(trace)?:
            let expected = try interpret()
            var want: [Tensor] = []
            let tree = TensorTree.flatten(expected, into: &want)
            let got = try replay(trace)
            if tree.signature == trace.outputTree.signature && got.count == want.count
                && zip(got, want).allSatisfy({ $0.shape == $1.shape && $0.scalars.elementsEqual($1.scalars) { $0.bitPattern == $1.bitPattern } }) {
                cache.set(key, .trusted(trace))
            } else {
                cache.set(key, .interpreted("its compiled form gave other values than the interpreter on a second call (it depends on something that changes between calls)"))
            }
            return expected
        case nil:
            guard tracer == nil else { return try interpret() }
            let tracer = Tracer(inputs: leaves, firstScope: Environment.nextSerial)
            self.tracer = tracer
            let result: Value
            do {
                result = try interpret()
                self.tracer = nil
            } catch {
                self.tracer = nil
                throw error
            }
            if let why = tracer.failure {
                cache.set(key, .interpreted(why))
            } else {
                cache.set(key, .traced(tracer.finish(result)))
            }
            return result
        }
    }

    /// Runs one tensor operation, recording it when a trace is being made. `body` must
    /// compute its results from `inputs` and values it captured, nothing else.
    func tensorOperation(_ name: String, _ inputs: [Tensor], at range: SourceRange,
                         _ body: @escaping ([Tensor]) throws(ShapeError) -> Tensor) throws -> Tensor {
        let result: Tensor
        do throws(ShapeError) { result = try body(inputs) } catch {
            throw RuntimeError(error.message.hasPrefix(name + ":") ? error.message : "\(name): \(error.message)", at: range)
        }
        if let tracer {
            tracer.record(name, inputs: inputs, outputs: [result]) { ts in
                do throws(ShapeError) { return [try body(ts)] } catch { throw RuntimeError("\(name): \(error.message)", at: range) }
            }
        }
        return result
    }

    /// The same for an operation with several results (gradients, a model's parameters).
    func tensorOperations(_ name: String, _ inputs: [Tensor], at range: SourceRange,
                          _ body: @escaping ([Tensor]) -> [Tensor]) -> [Tensor] {
        let results = body(inputs)
        tracer?.record(name, inputs: inputs, outputs: results, run: body)
        return results
    }

    /// Notes that the interpreter used a tensor's values (they cannot be replayed).
    func readsTensorValues(_ what: String) {
        tracer?.fail("it reads tensor values (\(what)) to decide what to do")
    }
}
