import Testing
@testable import MetaQEngine

/// Finite-difference references for the autodiff tests. Values are computed in Float32 by
/// the engine, so differences use a step that balances truncation against rounding, sums are
/// taken in Double, and tolerances are relative to the gradient's scale.
enum GradientCheck {
    /// A scalar made from an op's output with fixed random weights, so every output element
    /// contributes with a different weight (a plain sum would hide transposition bugs).
    static func project(_ y: Tensor, seed: UInt64 = 99) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return (y * Tensor.uniform(y.shape, low: 0.5, high: 1.5, using: &rng)).sum()
    }

    /// `f(inputs)` as a Double, for differencing.
    static func value(_ f: ([Tensor]) -> Tensor, _ inputs: [Tensor]) -> Double {
        project(f(inputs.map { $0.detached() })).scalars.reduce(0) { $0 + Double($1) }
    }

    static func perturbed(_ inputs: [Tensor], input: Int, element: Int, by delta: Float) -> [Tensor] {
        var values = inputs[input].scalars
        values[element] += delta
        var copy = inputs
        copy[input] = Tensor(shape: inputs[input].shape, values: values)
        return copy
    }

    /// Checks the analytic gradient of `project(f(inputs))` against central differences.
    static func firstOrder(
        _ f: ([Tensor]) -> Tensor, _ inputs: [Tensor], step: Float = 1e-2, tolerance: Double = 2e-2,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let leaves = inputs.map { $0.requiringGradient() }
        let analytic = gradients(of: project(f(leaves)), with: leaves)
        for (i, input) in inputs.enumerated() {
            let a = analytic[i].scalars
            let scale = max(1, a.map { abs(Double($0)) }.max() ?? 1)
            for e in 0..<input.count {
                let plus = value(f, perturbed(inputs, input: i, element: e, by: step))
                let minus = value(f, perturbed(inputs, input: i, element: e, by: -step))
                let numeric = (plus - minus) / (2 * Double(step))
                #expect(abs(numeric - Double(a[e])) <= tolerance * scale,
                        "input \(i) element \(e): analytic \(a[e]) vs numeric \(numeric)",
                        sourceLocation: sourceLocation)
            }
        }
    }

    /// Checks Hessian-vector products: the gradient of `<grad(L), v>` (built with
    /// `createGraph`) against central differences of the gradient along `v`.
    static func hessianVector(
        _ f: ([Tensor]) -> Tensor, _ inputs: [Tensor], step: Float = 1e-2, tolerance: Double = 3e-2,
        seed: UInt64 = 5, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        var rng = RandomGenerator(seed: seed)
        let directions = inputs.map { Tensor.uniform($0.shape, low: -1, high: 1, using: &rng) }
        func gradient(_ xs: [Tensor], createGraph: Bool) -> [Tensor] {
            gradients(of: project(f(xs)), with: xs, createGraph: createGraph)
        }
        let leaves = inputs.map { $0.requiringGradient() }
        let g = gradient(leaves, createGraph: true)
        var inner = Tensor(0)
        for (gi, vi) in zip(g, directions) { inner = inner + (gi * vi).sum() }
        let hv = gradients(of: inner, with: leaves)

        let plus = gradient(zip(inputs, directions).map { ($0 + $1.scaled(by: step)).requiringGradient() }, createGraph: false)
        let minus = gradient(zip(inputs, directions).map { ($0 - $1.scaled(by: step)).requiringGradient() }, createGraph: false)
        for i in inputs.indices {
            let a = hv[i].scalars
            let p = plus[i].scalars, m = minus[i].scalars
            let numeric = zip(p, m).map { (Double($0) - Double($1)) / (2 * Double(step)) }
            let scale = max(1, numeric.map(abs).max() ?? 1)
            for e in a.indices {
                #expect(abs(numeric[e] - Double(a[e])) <= tolerance * scale,
                        "input \(i) element \(e): Hv \(a[e]) vs numeric \(numeric[e])",
                        sourceLocation: sourceLocation)
            }
        }
    }

    static func random(_ shape: [Int], low: Float = -1, high: Float = 1, seed: UInt64) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return Tensor.uniform(shape, low: low, high: high, using: &rng)
    }
}
