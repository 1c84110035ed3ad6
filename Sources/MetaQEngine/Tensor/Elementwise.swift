import CKernels
import Foundation

// Elementwise arithmetic with NumPy broadcasting, and the unary functions. Every derivative
// rule is written with these same differentiable operations, so it can be differentiated again.

@inline(__always)
func mapUnary(_ x: Tensor, _ f: (Float) -> Float) -> TensorBuffer {
    let out = TensorBuffer(count: x.count)
    let src = x.buffer.pointer, dst = out.pointer
    Parallel.forEachChunk(x.count) { range in
        for i in range { dst[i] = f(src[i]) }
    }
    return out
}

/// The binary operations with a vectorised C kernel (CKernels' metaq_binary).
enum BinaryKernel: Int32 {
    case add = 0, subtract = 1, multiply = 2, divide = 3, greaterOrEqual = 4
}

/// `f` applied with NumPy broadcasting. The common layouts (same shape, a scalar operand,
/// a repeated trailing block such as a bias row) run `kernel` in C over contiguous runs,
/// split across threads; other layouts walk rows with `f`, which must compute the same thing.
@inline(__always)
func mapBinary(_ a: Tensor, _ b: Tensor, shape: [Int], kernel: BinaryKernel, _ f: (Float, Float) -> Float) -> TensorBuffer {
    let out = TensorBuffer(count: Tensor.elementCount(shape))
    let pa = a.buffer.pointer, pb = b.buffer.pointer, po = out.pointer
    let op = kernel.rawValue
    if a.shape == b.shape || b.count == 1 || a.count == 1 {
        let mode: Int32 = a.count == b.count ? 0 : (b.count == 1 ? 1 : 2)
        let aStep = mode == 2 ? 0 : 1, bStep = mode == 1 ? 0 : 1
        Parallel.forEachChunk(out.count) { range in
            metaq_binary(op, mode, range.count, pa + range.lowerBound * aStep, pb + range.lowerBound * bStep,
                         po + range.lowerBound)
        }
    } else if a.count == out.count, isTrailingBlock(b.shape, of: shape) {
        // b repeats along a's leading axes (a bias row): contiguous rows.
        let n = b.count
        Parallel.forEachChunk(out.count / n, cost: n) { rows in
            metaq_binary_rows(op, 1, rows.count, n, pa + rows.lowerBound * n, pb, po + rows.lowerBound * n)
        }
    } else if b.count == out.count, isTrailingBlock(a.shape, of: shape) {
        let n = a.count
        Parallel.forEachChunk(out.count / n, cost: n) { rows in
            metaq_binary_rows(op, 0, rows.count, n, pa, pb + rows.lowerBound * n, po + rows.lowerBound * n)
        }
    } else if a.count == out.count, let (lead, repeats, width) = middleRun(b.shape, of: shape) {
        // b is [lead, 1, width] against a's [lead, repeats, width] (a per-task bias).
        Parallel.forEachChunk(lead, cost: repeats * width) { blocks in
            for l in blocks {
                let at = l * repeats * width
                metaq_binary_rows(op, 1, repeats, width, pa + at, pb + l * width, po + at)
            }
        }
    } else if b.count == out.count, let (lead, repeats, width) = middleRun(a.shape, of: shape) {
        Parallel.forEachChunk(lead, cost: repeats * width) { blocks in
            for l in blocks {
                let at = l * repeats * width
                metaq_binary_rows(op, 0, repeats, width, pa + l * width, pb + at, po + at)
            }
        }
    } else {
        let sa = ShapeRules.broadcastStrides(a.shape, to: shape)
        let sb = ShapeRules.broadcastStrides(b.shape, to: shape)
        let so = ShapeRules.strides(shape)
        let ia = sa.last!, ib = sb.last!
        forEachRow(shape: shape, strides: [sa, sb, so]) { off, n in
            let ra = pa + off[0], rb = pb + off[1], ro = po + off[2]
            for j in 0..<n { ro[j] = f(ra[j * ia], rb[j * ib]) }
        }
    }
    return out
}

/// `x * scale + shift` elementwise, in C, split across threads.
func mapAffine(_ x: Tensor, scale: Float, shift: Float) -> TensorBuffer {
    let out = TensorBuffer(count: x.count)
    let src = x.buffer.pointer, dst = out.pointer
    Parallel.forEachChunk(x.count) { range in
        metaq_affine_scalar(range.count, src + range.lowerBound, scale, shift, dst + range.lowerBound)
    }
    return out
}

/// Whether `part` (ignoring leading 1s) equals the trailing axes of `whole`, so a tensor of
/// shape `part` repeats as contiguous blocks of `whole`.
@inline(__always)
func isTrailingBlock(_ part: [Int], of whole: [Int]) -> Bool {
    let trimmed = part.drop { $0 == 1 }
    return whole.suffix(trimmed.count).elementsEqual(trimmed)
}

@inline(__always)
func broadcastShape(_ a: Tensor, _ b: Tensor, _ op: String) -> [Int] {
    do { return try ShapeRules.broadcast(a.shape, b.shape) } catch { preconditionFailure("\(op): \(error)") }
}

extension Tensor {
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let shape = broadcastShape(a, b, "+")
        return result("add", shape: shape, buffer: mapBinary(a, b, shape: shape, kernel: .add) { $0 + $1 }, inputs: [a, b], saves: .shapes) { c in
            [c.needs(0) ? c.grad.sum(to: c.inputs[0].shape) : nil,
             c.needs(1) ? c.grad.sum(to: c.inputs[1].shape) : nil]
        }
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let shape = broadcastShape(a, b, "-")
        return result("sub", shape: shape, buffer: mapBinary(a, b, shape: shape, kernel: .subtract) { $0 - $1 }, inputs: [a, b], saves: .shapes) { c in
            [c.needs(0) ? c.grad.sum(to: c.inputs[0].shape) : nil,
             c.needs(1) ? (-c.grad).sum(to: c.inputs[1].shape) : nil]
        }
    }

    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let shape = broadcastShape(a, b, "*")
        return result("mul", shape: shape, buffer: mapBinary(a, b, shape: shape, kernel: .multiply) { $0 * $1 }, inputs: [a, b], saves: .inputs(0, 1)) { c in
            [c.needs(0) ? (c.grad * c.inputs[1]).sum(to: c.inputs[0].shape) : nil,
             c.needs(1) ? (c.grad * c.inputs[0]).sum(to: c.inputs[1].shape) : nil]
        }
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let shape = broadcastShape(a, b, "/")
        return result("div", shape: shape, buffer: mapBinary(a, b, shape: shape, kernel: .divide) { $0 / $1 }, inputs: [a, b], saves: .inputs(0, 1)) { c in
            let (x, y) = (c.inputs[0], c.inputs[1])
            return [c.needs(0) ? (c.grad / y).sum(to: x.shape) : nil,
                    c.needs(1) ? (-(c.grad * x) / (y * y)).sum(to: y.shape) : nil]
        }
    }

    public static prefix func - (x: Tensor) -> Tensor {
        result("neg", shape: x.shape, buffer: mapAffine(x, scale: -1, shift: -0.0), inputs: [x], saves: .shapes) { c in [-c.grad] }
    }

    public static func + (a: Tensor, s: Float) -> Tensor { a.adding(s) }
    public static func + (s: Float, a: Tensor) -> Tensor { a.adding(s) }
    public static func - (a: Tensor, s: Float) -> Tensor { a.adding(-s) }
    public static func - (s: Float, a: Tensor) -> Tensor { (-a).adding(s) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.scaled(by: s) }
    public static func * (s: Float, a: Tensor) -> Tensor { a.scaled(by: s) }
    public static func / (a: Tensor, s: Float) -> Tensor { a.scaled(by: 1 / s) }
    public static func / (s: Float, a: Tensor) -> Tensor { Tensor(s) / a }

    /// `self * s` without materialising a scalar tensor.
    public func scaled(by s: Float) -> Tensor {
        Tensor.result("scale", shape: shape, buffer: mapAffine(self, scale: s, shift: -0.0), inputs: [self], saves: .shapes) { c in
            [c.grad.scaled(by: s)]
        }
    }

    /// `self - s * other` for tensors of one shape, in one pass and one graph node: an SGD
    /// step, which as `self - other.scaled(by: s)` takes two of each, and two more in the
    /// backward pass. Other shapes fall back to that broadcasting pair.
    ///
    /// ```swift
    /// let updated = weights.subtracting(gradient, scaledBy: 0.01)
    /// ```
    public func subtracting(_ other: Tensor, scaledBy s: Float) -> Tensor {
        guard shape == other.shape else { return self - other.scaled(by: s) }
        let out = TensorBuffer(count: count)
        let (pa, pb, po) = (buffer.pointer, other.buffer.pointer, out.pointer)
        Parallel.forEachChunk(count) { range in
            metaq_sub_scaled(range.count, pa + range.lowerBound, pb + range.lowerBound, s, po + range.lowerBound)
        }
        return Tensor.result("sub_scaled", shape: shape, buffer: out, inputs: [self, other], saves: .shapes) { c in
            [c.needs(0) ? c.grad : nil, c.needs(1) ? c.grad.scaled(by: -s) : nil]
        }
    }

    /// `self + s` without materialising a scalar tensor.
    public func adding(_ s: Float) -> Tensor {
        Tensor.result("shift", shape: shape, buffer: mapAffine(self, scale: 1, shift: s), inputs: [self], saves: .shapes) { c in
            [c.grad]
        }
    }

    public func exp() -> Tensor {
        Tensor.result("exp", shape: shape, buffer: mapUnary(self) { Foundation.exp($0) }, inputs: [self], saves: .output) { c in
            [c.grad * c.output]
        }
    }

    public func log() -> Tensor {
        Tensor.result("log", shape: shape, buffer: mapUnary(self) { Foundation.log($0) }, inputs: [self], saves: .inputs(0)) { c in
            [c.grad / c.inputs[0]]
        }
    }

    public func tanh() -> Tensor {
        Tensor.result("tanh", shape: shape, buffer: mapUnary(self) { Foundation.tanh($0) }, inputs: [self], saves: .output) { c in
            [c.grad * (1 - c.output * c.output)]
        }
    }

    public func sigmoid() -> Tensor {
        let buffer = mapUnary(self) { v in v >= 0 ? 1 / (1 + Foundation.exp(-v)) : Foundation.exp(v) / (1 + Foundation.exp(v)) }
        return Tensor.result("sigmoid", shape: shape, buffer: buffer, inputs: [self], saves: .output) { c in
            [c.grad * c.output * (1 - c.output)]
        }
    }

    /// max(x, 0). Its derivative is a step, whose own derivative is zero almost everywhere,
    /// so the rule passes the gradient where x > 0 (``reluGradient(_:at:)``).
    public func relu() -> Tensor {
        let out = TensorBuffer(count: count)
        let src = buffer.pointer, dst = out.pointer
        Parallel.forEachChunk(count) { range in
            metaq_relu(range.count, src + range.lowerBound, dst + range.lowerBound)
        }
        // The rule reads the output (positive exactly where the input is), which the next
        // layer keeps anyway, so the graph can free the pre-activation, as PyTorch does.
        return Tensor.result("relu", shape: shape, buffer: out, inputs: [self], saves: .output) { c in
            [Tensor.reluGradient(c.grad, at: c.output)]
        }
    }

    /// `grad` where `x > 0`, 0 elsewhere: relu's backward pass, as an operation of its own so
    /// that second-order graphs hold only `x` (relu's output, which the graph keeps anyway)
    /// instead of a mask and the incoming gradient. Linear in `grad`; its derivative in `x`
    /// is zero.
    static func reluGradient(_ grad: Tensor, at x: Tensor) -> Tensor {
        precondition(grad.shape == x.shape, "reluGradient: shapes \(grad.shape) and \(x.shape) differ")
        let out = TensorBuffer(count: grad.count)
        let g = grad.buffer.pointer, xp = x.buffer.pointer, o = out.pointer
        Parallel.forEachChunk(out.count) { range in
            metaq_relu_backward(range.count, g + range.lowerBound, xp + range.lowerBound, o + range.lowerBound)
        }
        return result("relu_grad", shape: grad.shape, buffer: out, inputs: [grad, x], saves: .inputs(1)) { c in
            [c.needs(0) ? reluGradient(c.grad, at: c.inputs[1]) : nil, nil]
        }
    }

    /// x where x > 0, slope * x elsewhere. The rule is ``leakyReluGradient(_:at:slope:)``:
    /// one pass, where a mask and a product took two.
    public func leakyRelu(slope: Float = 0.01) -> Tensor {
        let out = TensorBuffer(count: count)
        let src = buffer.pointer, dst = out.pointer
        Parallel.forEachChunk(count) { range in
            metaq_leaky_relu(range.count, src + range.lowerBound, slope, dst + range.lowerBound)
        }
        return Tensor.result("leaky_relu", shape: shape, buffer: out, inputs: [self], saves: .inputs(0)) { c in
            [Tensor.leakyReluGradient(c.grad, at: c.inputs[0], slope: slope)]
        }
    }

    /// `grad` where `x > 0`, `slope * grad` elsewhere: leaky relu's backward pass. Linear in
    /// `grad`; its derivative in `x` is zero.
    static func leakyReluGradient(_ grad: Tensor, at x: Tensor, slope: Float) -> Tensor {
        precondition(grad.shape == x.shape, "leakyReluGradient: shapes \(grad.shape) and \(x.shape) differ")
        let out = TensorBuffer(count: grad.count)
        let g = grad.buffer.pointer, xp = x.buffer.pointer, o = out.pointer
        Parallel.forEachChunk(out.count) { range in
            metaq_leaky_relu_backward(range.count, g + range.lowerBound, xp + range.lowerBound, slope, o + range.lowerBound)
        }
        return result("leaky_relu_grad", shape: grad.shape, buffer: out, inputs: [grad, x], saves: .inputs(1)) { c in
            [c.needs(0) ? leakyReluGradient(c.grad, at: c.inputs[1], slope: slope) : nil, nil]
        }
    }

    public func sqrt() -> Tensor {
        Tensor.result("sqrt", shape: shape, buffer: mapUnary(self) { $0.squareRoot() }, inputs: [self], saves: .output) { c in
            [c.grad / c.output.scaled(by: 2)]
        }
    }

    /// Elementwise power with a constant exponent.
    public func pow(_ p: Float) -> Tensor {
        if p == 1 { return self }
        let buffer = p == 2 ? mapUnary(self) { $0 * $0 } : mapUnary(self) { Foundation.pow($0, p) }
        return Tensor.result("pow", shape: shape, buffer: buffer, inputs: [self], saves: .inputs(0)) { c in
            [c.grad * c.inputs[0].pow(p - 1).scaled(by: p)]
        }
    }

    public func squared() -> Tensor { pow(2) }

    public func abs() -> Tensor {
        Tensor.result("abs", shape: shape, buffer: mapUnary(self) { Swift.abs($0) }, inputs: [self], saves: .inputs(0)) { c in
            [c.grad * c.inputs[0].mask(ifTrue: 1, ifFalse: -1) { $0 >= 0 }]
        }
    }

    /// Elementwise sine (for task families written in the language).
    public func sin() -> Tensor {
        Tensor.result("sin", shape: shape, buffer: mapUnary(self) { Foundation.sin($0) }, inputs: [self], saves: .inputs(0)) { c in
            [c.grad * c.inputs[0].cos()]
        }
    }

    public func cos() -> Tensor {
        Tensor.result("cos", shape: shape, buffer: mapUnary(self) { Foundation.cos($0) }, inputs: [self], saves: .inputs(0)) { c in
            [-(c.grad * c.inputs[0].sin())]
        }
    }

    /// A constant (non-differentiable) tensor with `ifTrue` where `predicate` holds.
    public func mask(ifTrue: Float = 1, ifFalse: Float = 0, _ predicate: (Float) -> Bool) -> Tensor {
        Tensor(shape: shape, buffer: mapUnary(self) { predicate($0) ? ifTrue : ifFalse })
    }

    /// Elementwise maximum of two tensors (broadcasting); the gradient goes to the larger.
    public func maximum(_ other: Tensor) -> Tensor {
        let shape = broadcastShape(self, other, "maximum")
        let pick = Tensor(shape: shape, buffer: mapBinary(self, other, shape: shape, kernel: .greaterOrEqual) { $0 >= $1 ? 1 : 0 })
        return self * pick + other * (1 - pick)
    }
}
