// The per-task mean squared error as two primitives, the loss and its gradient, each the
// other's derivative rule. Composed from elementwise operations, the loss of a regression
// batch took five graph nodes and its gradient five more, each over a few hundred floats:
// a third of the operations of a sinusoid MAML step, all of them overhead.

extension Tensor {
    /// The mean squared error of each task: `predictions` and `targets` of one shape
    /// `[tasks, ...]` give `[tasks]`, the mean over each task's elements of
    /// `(prediction - target)^2`. One operation, differentiable to any order.
    ///
    /// ```swift
    /// let predictions = model.forward(x, parameters: model.parameters, tasks: nil)   // [T, N, 1]
    /// let perTask = Tensor.meanSquaredErrorPerTask(predictions, y)                    // [T]
    /// ```
    public static func meanSquaredErrorPerTask(_ predictions: Tensor, _ targets: Tensor) -> Tensor {
        precondition(predictions.shape == targets.shape && predictions.rank >= 1,
                     "meanSquaredErrorPerTask: shapes \(predictions.shape) and \(targets.shape) differ")
        let tasks = predictions.shape[0]
        let n = predictions.count / Swift.max(tasks, 1)
        let scale = 1 / Float(Swift.max(n, 1))
        let out = TensorBuffer(count: tasks)
        let p = predictions.buffer.pointer, y = targets.buffer.pointer, o = out.pointer
        for t in 0..<tasks {
            var s: Float = 0
            for i in t * n..<(t + 1) * n {
                let d = p[i] - y[i]
                s += d * d
            }
            o[t] = s * scale
        }
        return result("mse_per_task", shape: [tasks], buffer: out, inputs: [predictions, targets], saves: .inputs(0, 1)) { c in
            let dp = squaredErrorGradient(c.grad, c.inputs[0], c.inputs[1], scale: scale)
            return [c.needs(0) ? dp : nil, c.needs(1) ? -dp : nil]
        }
    }

    /// `(2 * scale * g[t]) * (p - y)` with `g [tasks]` and `p`, `y [tasks, ...]`: the
    /// gradient of `scale * sum((p - y)^2)` per task, seeded with `g`. Linear in `g` and in
    /// `p - y`; its rule gives both derivatives.
    static func squaredErrorGradient(_ g: Tensor, _ p: Tensor, _ y: Tensor, scale: Float) -> Tensor {
        let tasks = p.shape[0]
        let n = p.count / Swift.max(tasks, 1)
        let out = TensorBuffer(count: p.count)
        let gp = g.buffer.pointer, pp = p.buffer.pointer, yp = y.buffer.pointer, o = out.pointer
        for t in 0..<tasks {
            // The rounding of the composed operations: (g * scale) * (2 * (p - y)).
            let w = gp[t] * scale
            for i in t * n..<(t + 1) * n { o[i] = w * (2 * (pp[i] - yp[i])) }
        }
        return result("mse_gradient", shape: p.shape, buffer: out, inputs: [g, p, y], saves: .inputs(0, 1, 2)) { c in
            let (g, p, y, upstream) = (c.inputs[0], c.inputs[1], c.inputs[2], c.grad)
            let perTask = [tasks] + Array(repeating: 1, count: p.rank - 1)
            if c.createsGraph {
                // Differentiable compositions (third and higher orders).
                let dg = c.needs(0)
                    ? (upstream * (p - y)).sum(to: perTask).reshaped(to: [tasks]).scaled(by: 2 * scale) : nil
                let dp = c.needs(1) || c.needs(2)
                    ? upstream * g.reshaped(to: perTask).scaled(by: 2 * scale) : nil
                return [dg, c.needs(1) ? dp : nil, c.needs(2) ? dp.map { -$0 } : nil]
            }
            let u = upstream.buffer.pointer, gp = g.buffer.pointer, pp = p.buffer.pointer, yp = y.buffer.pointer
            var dg: Tensor?
            if c.needs(0) {
                let b = TensorBuffer(count: tasks)
                for t in 0..<tasks {
                    var s: Float = 0
                    for i in t * n..<(t + 1) * n { s += u[i] * (pp[i] - yp[i]) }
                    b.pointer[t] = s * (2 * scale)
                }
                dg = Tensor(shape: [tasks], buffer: b)
            }
            var dp: Tensor?, dy: Tensor?
            if c.needs(1) || c.needs(2) {
                let b = TensorBuffer(count: upstream.count)
                for t in 0..<tasks {
                    let w = gp[t] * (2 * scale)
                    for i in t * n..<(t + 1) * n { b.pointer[i] = u[i] * w }
                }
                dp = Tensor(shape: p.shape, buffer: b)
                if c.needs(2) { dy = -dp! }
            }
            return [dg, c.needs(1) ? dp : nil, dy]
        }
    }
}
