import CKernels
import Synchronization

/// What a derivative rule sees when the gradient of an operation's output arrives.
///
/// With `createsGraph` off, the rule's tensor operations record no graph: recording is
/// paused on the thread while the backward pass runs, whatever the operands (so a rule that
/// differentiates a computation of its own, like the fused batch-norm chain, does that only
/// with `createsGraph` on, and takes a direct path otherwise). With it on,
/// they record one, and because every rule is written with differentiable tensor operations,
/// the gradients it returns can be differentiated again (the second-order MAML
/// meta-gradient relies on this).
public struct BackwardContext {
    /// The gradient of the loss with respect to the operation's output.
    public let grad: Tensor
    /// The operation's inputs (shape-only links for the values the rule does not read).
    public let inputs: [Tensor]
    public let output: Tensor
    /// Whether the gradients the rule returns are to be differentiable (`createGraph`).
    public let createsGraph: Bool

    /// Whether input `index` needs a gradient (rules skip work for constants).
    public func needs(_ index: Int) -> Bool { inputs[index].requiresGradient }

    /// Whether operations on `operands` record nothing here: a first-order pass, or none of
    /// them requires a gradient. Fused rules then compute their gradients directly instead
    /// of composing differentiable operations.
    public func recordsNothing(from operands: Tensor...) -> Bool {
        !createsGraph || operands.allSatisfy { !$0.requiresGradient }
    }
}

/// A derivative rule: the gradients with respect to each input (nil where not needed).
public typealias DerivativeRule = (BackwardContext) -> [Tensor?]

/// Which values an operation's derivative rule reads, beyond shapes. The graph keeps only
/// those alive: an input the rule does not read is recorded as a shape-only link (same
/// shape and graph node, no elements), so its buffer is freed as soon as nothing else holds
/// it. This is what keeps second-order MAML's memory per inner step low: the scaled inner
/// gradients and the products that produce them are read by nothing in the backward pass.
public struct SavedValues: Sendable, Equatable {
    /// Bit i set: the rule reads input i's elements.
    let inputMask: UInt64
    /// Whether the rule reads the output's elements.
    let output: Bool

    /// Every input and the output (the safe default).
    public static let all = SavedValues(inputMask: ~0, output: true)
    /// Shapes only: linear operations that move or sum elements (add, reshape, slices...).
    public static let shapes = SavedValues(inputMask: 0, output: false)
    /// The inputs at `indices`, not the output.
    public static func inputs(_ indices: Int...) -> SavedValues {
        SavedValues(inputMask: indices.reduce(0) { $0 | (1 << UInt64($1)) }, output: false)
    }
    /// The output only (exp, tanh, sigmoid, sqrt).
    public static let output = SavedValues(inputMask: 0, output: true)

    func readsInput(_ index: Int) -> Bool { index >= 64 || inputMask & (1 << UInt64(index)) != 0 }
}

/// The record of one differentiable operation: its inputs and its derivative rule.
public final class GradientNode: @unchecked Sendable {
    public let name: StaticString
    /// The operation's inputs; those whose elements the rule does not read are shape-only
    /// links (see ``SavedValues``).
    public let inputs: [Tensor]
    /// Whether the rule reads the output's elements; when it does not, consumers may hold
    /// the output as a shape-only link.
    let readsOutput: Bool
    let rule: DerivativeRule
    /// The order nodes were made in, across threads: a node's inputs always have smaller
    /// numbers than the node. The gradient walk stops at nodes older than every tensor it
    /// differentiates with respect to, which therefore cannot lead to one of them.
    let sequence: UInt64

    private static let made = Atomic<UInt64>(0)

    init(name: StaticString, inputs: [Tensor], readsOutput: Bool, rule: @escaping DerivativeRule) {
        self.name = name
        self.inputs = inputs
        self.readsOutput = readsOutput
        self.rule = rule
        self.sequence = GradientNode.made.add(1, ordering: .relaxed).newValue
    }
}

extension Tensor {
    /// Wraps a freshly computed buffer as the result of an operation, recording the
    /// operation when any input requires a gradient and this thread is not inside a
    /// first-order backward pass (see ``BackwardContext``). `saves` names the values the rule
    /// reads; the others are held as shape-only links.
    @inline(__always)
    static func result(
        _ name: StaticString, shape: [Int], buffer: TensorBuffer, inputs: consuming [Tensor], saves: SavedValues = .all,
        rule: @escaping DerivativeRule
    ) -> Tensor {
        if metaq_recording_paused() != 0 { return Tensor(shape: shape, buffer: buffer) }
        var tracked = false
        for i in inputs.indices where inputs[i].requiresGradient {
            tracked = true
            break
        }
        guard tracked else { return Tensor(shape: shape, buffer: buffer) }
        if saves != .all {
            // `inputs` is this call's own array (consumed), so this replaces in place.
            for i in inputs.indices where !saves.readsInput(i) { inputs[i] = inputs[i].graphLink }
        }
        return Tensor(
            shape: shape, buffer: buffer,
            node: GradientNode(name: name, inputs: inputs, readsOutput: saves.output, rule: rule))
    }

    /// This tensor as a graph input whose elements are never read: a shape-only stand-in
    /// sharing the node when the producing rule does not read its output either, and for
    /// constants; the tensor itself for leaves that take gradients (their identity matters).
    var graphLink: Tensor {
        if buffer === TensorBuffer.empty { return self }
        if let node {
            return node.readsOutput ? self : Tensor(shapeOnly: shape, count: count, node: node)
        }
        return requiresGradient ? self : Tensor(shapeOnly: shape, count: count, node: nil)
    }
}

/// The key a tensor has in the gradient walk: its node (shared with its shape-only links),
/// or for a leaf the tensor itself.
@inline(__always)
private func graphKey(_ t: Tensor) -> ObjectIdentifier {
    if let node = t.node { return ObjectIdentifier(node) }
    return ObjectIdentifier(t)
}

/// Reverse-mode gradients of `output` with respect to each of `inputs`.
///
/// - Parameters:
///   - output: the value to differentiate; a scalar unless `seed` is given.
///   - inputs: tensors `output` depends on (leaves such as parameters, or intermediate values).
///   - seed: the gradient of some downstream scalar with respect to `output`
///     (a vector-Jacobian product); defaults to one.
///   - createGraph: when true, the returned gradients are themselves differentiable
///     functions of the inputs, so a gradient of a gradient can be taken.
/// - Returns: one gradient per input, with the input's shape; zeros where `output` does
///   not depend on the input.
///
/// ```swift
/// let x = Tensor([3]).requiringGradient()
/// let y = (x * x * x).sum()
/// let dy = gradients(of: y, with: [x], createGraph: true)[0]      // 3x^2 = 27
/// let d2y = gradients(of: dy.sum(), with: [x])[0]                  // 6x = 18
/// ```
public func gradients(
    of output: Tensor, with inputs: [Tensor], seed: Tensor? = nil, createGraph: Bool = false
) -> [Tensor] {
    precondition(
        seed != nil || output.count == 1,
        "gradients(of:) needs a seed for a non-scalar output of shape \(output.shape)")
    if let seed { precondition(seed.shape == output.shape, "seed shape \(seed.shape) != output shape \(output.shape)") }

    // Number the tensors reachable from `output` through tensors that require gradients (one
    // slot per graph key), in a post-order walk: inputs before the tensors computed from them.
    // The walk is iterative so that deep graphs (long inner loops, long training scripts)
    // cannot overflow the stack. Each slot's input slots sit in one flat array (-1 for
    // constants), so the rest of the function indexes arrays instead of hashing.
    var slotOf: [ObjectIdentifier: Int] = [:]
    var tensors: [Tensor] = []
    var firstInput: [Int] = []          // where a slot's input slots start in inputSlots
    var inputSlots: [Int] = []
    var order: [Int] = []
    slotOf.reserveCapacity(512)
    tensors.reserveCapacity(512)
    firstInput.reserveCapacity(512)
    inputSlots.reserveCapacity(1024)
    order.reserveCapacity(512)

    func newSlot(_ tensor: Tensor, key: ObjectIdentifier) -> Int {
        let slot = tensors.count
        slotOf[key] = slot
        tensors.append(tensor)
        firstInput.append(inputSlots.count)
        inputSlots.append(contentsOf: repeatElement(-1, count: tensor.node?.inputs.count ?? 0))
        return slot
    }
    // Nodes made before every wanted tensor cannot have one among their inputs (inputs are
    // made first), so the walk does not enter them: an inner loop's step-k gradient walks
    // step k's graph, not the k - 1 steps before it. A wanted leaf (no node) disables this.
    var horizon = UInt64.max
    for x in inputs { horizon = min(horizon, x.node?.sequence ?? 0) }
    var stack: [(slot: Int, next: Int)] = [(newSlot(output, key: graphKey(output)), 0)]
    while let (slot, next) = stack.popLast() {
        guard let node = tensors[slot].node, node.sequence >= horizon, next < node.inputs.count else {
            order.append(slot)
            continue
        }
        stack.append((slot, next + 1))
        let child = node.inputs[next]
        guard child.requiresGradient else { continue }
        let key = graphKey(child)
        if let known = slotOf[key] {
            inputSlots[firstInput[slot] + next] = known
        } else {
            let childSlot = newSlot(child, key: key)
            inputSlots[firstInput[slot] + next] = childSlot
            stack.append((childSlot, 0))
        }
    }

    // A slot is relevant when it is wanted or one of its inputs is relevant; only those get
    // gradients. The post-order visits inputs first, so one pass settles it.
    var wanted = [Bool](repeating: false, count: tensors.count)
    for x in inputs { if let slot = slotOf[graphKey(x)] { wanted[slot] = true } }
    var relevant = wanted
    for slot in order where !relevant[slot] {
        let count = tensors[slot].node?.inputs.count ?? 0
        let base = firstInput[slot]
        for i in 0..<count where inputSlots[base + i] >= 0 && relevant[inputSlots[base + i]] {
            relevant[slot] = true
            break
        }
    }

    // Without createGraph the rules' operations must record nothing: pause recording on this
    // thread for the pass (a rule may call gradients again, hence the restore).
    let wasPaused = metaq_set_recording_paused(createGraph ? 0 : 1)
    defer { _ = metaq_set_recording_paused(wasPaused) }
    var grads = [Tensor?](repeating: nil, count: tensors.count)
    let start = seed ?? Tensor.ones(output.shape)
    grads[0] = createGraph ? start : start.detached()

    for slot in order.reversed() where relevant[slot] {
        let tensor = tensors[slot]
        guard let node = tensor.node, let grad = grads[slot] else { continue }
        let inputGrads = node.rule(BackwardContext(grad: grad, inputs: node.inputs, output: tensor, createsGraph: createGraph))
        let base = firstInput[slot]
        for (i, g) in inputGrads.enumerated() {
            let target = inputSlots[base + i]
            guard let g, target >= 0, relevant[target] else { continue }
            assert(g.shape == tensors[target].shape, "\(node.name): gradient shape \(g.shape) != input shape \(tensors[target].shape)")
            guard var existing = grads[target] else { grads[target] = g; continue }
            grads[target] = nil
            if !createGraph && g.shape == existing.shape && isKnownUniquelyReferenced(&existing)
                && existing.ownsBufferUniquely() && existing.buffer !== g.buffer {
                // A constant sum that nothing else sees: add into it instead of allocating.
                let (acc, add, n) = (existing.buffer.pointer, g.buffer.pointer, existing.count)
                Parallel.forEachChunk(n) { range in
                    metaq_accumulate(range.count, acc + range.lowerBound, add + range.lowerBound)
                }
                grads[target] = existing
            } else {
                grads[target] = existing + g
            }
        }
        // Interior tensors' gradients are no longer needed once propagated, unless wanted.
        if !wanted[slot] { grads[slot] = nil }
    }
    return inputs.map { x in slotOf[graphKey(x)].flatMap { grads[$0] } ?? Tensor.zeros(x.shape) }
}
