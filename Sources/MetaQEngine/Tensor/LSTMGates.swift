import Foundation

extension Tensor {
    /// The elementwise part of an LSTM step, fused: from the gate pre-activations `self`
    /// ([..., 4H], in the order input, forget, cell, output) and the cell state `cell`
    /// ([..., H]), the new hidden state and cell state side by side, [..., 2H]:
    /// `c' = sigmoid(f) * c + sigmoid(i) * tanh(g)`, `h' = sigmoid(o) * tanh(c')`.
    ///
    /// One pass forward and one pass back over the rows, where the same step written with
    /// slices and elementwise operations makes about fifteen passes and as many temporary
    /// tensors (the cost of a coordinate-wise LSTM such as Meta-LSTM's is almost all in
    /// them). When the backward pass builds a graph (second order), the derivative rule is
    /// written with differentiable operations, so it can be differentiated again.
    ///
    /// ```swift
    /// let z = x.matmul(wx) + h.matmul(wh) + b           // [N, 4H]
    /// let state = z.lstmGates(cell: c)                   // [N, 2H]: h', c'
    /// ```
    public func lstmGates(cell: Tensor) throws(ShapeError) -> Tensor {
        guard rank >= 1, let width = shape.last, width % 4 == 0, width > 0 else {
            throw ShapeError("lstm_gates: the gates need a last axis of 4 x hidden, got \(shape)")
        }
        let hidden = width / 4
        guard cell.shape == Array(shape.dropLast()) + [hidden] else {
            throw ShapeError("lstm_gates: the cell state must be \(Array(shape.dropLast()) + [hidden]) for gates \(shape), got \(cell.shape)")
        }
        let rows = count / width
        let out = TensorBuffer(count: rows * 2 * hidden)
        let zp = buffer.pointer, cp = cell.buffer.pointer, op = out.pointer
        RowBlocks(lead: 1, rows: rows, width: width).forEach { _, range in
            for r in range {
                let z = zp + r * width, c = cp + r * hidden, o = op + r * 2 * hidden
                for k in 0..<hidden {
                    let gate = LSTMGateValues(z, c, k, hidden)
                    o[k] = gate.o * gate.tanhCell
                    o[hidden + k] = gate.cell
                }
            }
        }
        return Tensor.result("lstm_gates", shape: Array(shape.dropLast()) + [2 * hidden], buffer: out,
                             inputs: [self, cell], saves: .inputs(0, 1)) { context in
            let (grad, z, c) = (context.grad, context.inputs[0], context.inputs[1])
            if context.recordsNothing(from: grad, z, c) {
                let dz = TensorBuffer(count: z.count), dc = TensorBuffer(count: c.count)
                let gp = grad.buffer.pointer, zp = z.buffer.pointer, cp = c.buffer.pointer
                let dzp = dz.pointer, dcp = dc.pointer
                RowBlocks(lead: 1, rows: rows, width: width).forEach { _, range in
                    for r in range {
                        let z = zp + r * width, c = cp + r * hidden, g = gp + r * 2 * hidden
                        let dzr = dzp + r * width, dcr = dcp + r * hidden
                        for k in 0..<hidden {
                            let (gate, dh) = (LSTMGateValues(z, c, k, hidden), g[k])
                            let (i, f, cg, og, t) = (gate.i, gate.f, gate.g, gate.o, gate.tanhCell)
                            let dc2 = g[hidden + k] + dh * og * (1 - t * t)
                            dzr[k] = dc2 * cg * i * (1 - i)
                            dzr[hidden + k] = dc2 * c[k] * f * (1 - f)
                            dzr[2 * hidden + k] = dc2 * i * (1 - cg * cg)
                            dzr[3 * hidden + k] = dh * t * og * (1 - og)
                            dcr[k] = dc2 * f
                        }
                    }
                }
                return [Tensor(shape: z.shape, buffer: dz), Tensor(shape: c.shape, buffer: dc)]
            }
            let axis = z.rank - 1
            let i = z.slice(axis: axis, 0..<hidden).sigmoid()
            let f = z.slice(axis: axis, hidden..<2 * hidden).sigmoid()
            let cg = z.slice(axis: axis, 2 * hidden..<3 * hidden).tanh()
            let og = z.slice(axis: axis, 3 * hidden..<4 * hidden).sigmoid()
            let t = (f * c + i * cg).tanh()
            let dh = grad.slice(axis: axis, 0..<hidden)
            let dc2 = grad.slice(axis: axis, hidden..<2 * hidden) + dh * og * (1 - t * t)
            let dz = Tensor.concatenate([dc2 * cg * i * (1 - i), dc2 * c * f * (1 - f), dc2 * i * (1 - cg * cg),
                                         dh * t * og * (1 - og)], axis: axis)
            return [dz, dc2 * f]
        }
    }
}

/// One cell's gate activations and new cell state, from its row of pre-activations `z`
/// (input, forget, cell, output blocks of `hidden`) and its old cell state `c[k]`.
private struct LSTMGateValues {
    let i: Float, f: Float, g: Float, o: Float, cell: Float, tanhCell: Float

    @inline(__always)
    init(_ z: UnsafeMutablePointer<Float>, _ c: UnsafeMutablePointer<Float>, _ k: Int, _ hidden: Int) {
        i = 1 / (1 + Foundation.exp(-z[k]))
        f = 1 / (1 + Foundation.exp(-z[hidden + k]))
        g = Foundation.tanh(z[2 * hidden + k])
        o = 1 / (1 + Foundation.exp(-z[3 * hidden + k]))
        cell = f * c[k] + i * g
        tanhCell = Foundation.tanh(cell)
    }
}
