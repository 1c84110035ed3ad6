import Testing
@testable import MetaQEngine

// The fused batch-norm + scale/shift + ReLU + max-pool against the three operations it
// replaces: values, first-order gradients (its fused backward), and second-order ones (its
// rule rebuilt from the unfused chain).

private func random(_ shape: [Int], _ seed: UInt64, low: Float = -1, high: Float = 1) -> Tensor {
    GradientCheck.random(shape, low: low, high: high, seed: seed)
}

private func unfused(_ x: Tensor, _ s: Tensor, _ b: Tensor, groups: Int) -> Tensor {
    let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let grouped = groups > 1 ? x.reshaped(to: [groups, n / groups, h, w, c]) : x
    return grouped.normalized(overAxes: groups > 1 ? [1, 2, 3] : [0, 1, 2]).scaledShiftedReLU(scale: s, shift: b)
        .reshaped(to: x.shape).maxPooled(size: 2)
}

private func expectClose(_ a: Tensor, _ b: Tensor, tolerance: Float = 1e-4, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.shape == b.shape, sourceLocation: sourceLocation)
    let scale = max(1, b.scalars.map(abs).max() ?? 1)
    let worst = zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
    #expect(worst <= tolerance * scale, "largest difference \(worst) (scale \(scale))", sourceLocation: sourceLocation)
}

@Suite("Fused batch norm, ReLU and max-pool")
struct NormalizedPoolingTests {
    /// Odd sizes (7x7 drops a row and a column of windows), one and several statistics
    /// groups, and a batch large enough to be split across threads.
    static let shapes: [([Int], Int)] = [([6, 7, 7, 3], 1), ([6, 8, 8, 5], 3), ([40, 14, 14, 16], 1), ([40, 14, 14, 16], 4)]

    @Test("values and first-order gradients match the unfused chain", arguments: shapes.indices)
    func matchesUnfused(_ index: Int) {
        let (shape, groups) = Self.shapes[index]
        let c = shape[3]
        let x = random(shape, 1).requiringGradient()
        let s = random([c], 2, low: 0.5, high: 1.5).requiringGradient()   // some channels flipped below
        let b = random([c], 3, low: -0.3, high: 0.3).requiringGradient()
        let flipped = s * Tensor(shape: [c], values: (0..<c).map { $0 % 2 == 0 ? 1 : -1 })
        let fused = x.normalizedReLUMaxPooled(scale: flipped, shift: b, poolSize: 2, groups: groups)
        let reference = unfused(x, flipped, b, groups: groups)
        expectClose(fused, reference)
        let weights = random(fused.shape, 4)
        let g1 = gradients(of: (fused * weights).sum(), with: [x, s, b])
        let g2 = gradients(of: (reference * weights).sum(), with: [x, s, b])
        for (a, r) in zip(g1, g2) { expectClose(a, r, tolerance: 2e-4) }
    }

    @Test func secondOrderMatchesFiniteDifferences() {
        GradientCheck.hessianVector({
            $0[0].normalizedReLUMaxPooled(scale: $0[1], shift: $0[2], poolSize: 2, groups: 2).squared()
        }, [random([4, 4, 4, 2], 5), random([2], 6, low: 0.5, high: 2), random([2], 7, low: -0.04, high: 0.04)])
    }

    @Test func firstOrderMatchesFiniteDifferences() {
        GradientCheck.firstOrder({
            $0[0].normalizedReLUMaxPooled(scale: $0[1], shift: $0[2], poolSize: 2, groups: 2)
        }, [random([4, 4, 4, 2], 8), random([2], 9, low: 0.5, high: 2), random([2], 10, low: -0.04, high: 0.04)])
    }

    @Test func conv4UsesItAndAgreesWithLayerByLayer() {
        // The network's forward (which fuses) against applying each layer on its own.
        var rng = RandomGenerator(seed: 11)
        let net = Sequential.conv4(imageSize: 28, filters: 8, classes: 5, using: &rng)
        let x = Tensor.uniform([2, 6, 28, 28, 1], using: &rng)
        let fused = net.forward(x, parameters: net.parameters, tasks: 2)
        var y = x, at = 0
        for layer in net.layers {
            let count = layer.parameterSpecs(weightInit: .zeros).count
            y = layer.apply(y, parameters: net.parameters[at..<at + count], tasks: 2)
            at += count
        }
        expectClose(fused, y)
    }
}
