import Testing
@testable import MetaQEngine

// The convolution primitive and its two adjoints run im2col + GEMM a block of images at a
// time, split across threads, and take the input gradient of a stride-1 convolution as a
// convolution with flipped filters. These tests check each path against the unblocked
// reference (one im2col of the whole batch, one product, one col2im), on shapes big enough
// to be cut into several blocks and shared between threads, and the per-group (per-task)
// filters against running each group alone.

private func random(_ shape: [Int], _ seed: UInt64) -> Tensor {
    GradientCheck.random(shape, seed: seed)
}

private func expectClose(_ a: Tensor, _ b: Tensor, tolerance: Float = 1e-4,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.shape == b.shape, sourceLocation: sourceLocation)
    let scale = max(1, b.scalars.map(abs).max() ?? 1)
    let worst = zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
    #expect(worst <= tolerance * scale, "largest difference \(worst) (scale \(scale))", sourceLocation: sourceLocation)
}

/// The unblocked reference: `[N*Ho*Wo, kkC] x [kkC, O]` over the whole batch.
private func referenceForward(_ x: Tensor, _ w: Tensor, _ g: WindowGeometry) -> Tensor {
    let ho = g.outputExtent(x.shape[1])!, wo = g.outputExtent(x.shape[2])!
    return x.imageToColumns(g).matmul(w).reshaped(to: [x.shape[0], ho, wo, w.shape[1]])
}

@Suite("Blocked convolution matches the unblocked im2col reference")
struct ConvolutionTests {
    /// 40 images of 24x24x32: 3x3 windows of 288 values, 3 images per block at most (12 with
    /// stride 2), so several blocks per thread.
    static let geometries: [WindowGeometry] = [
        WindowGeometry(kernel: 3, stride: 1, padding: 1),   // the conv4 layers; flipped input gradient
        WindowGeometry(kernel: 3, stride: 1, padding: 0),   // flipped, over a 2-wide padding
        WindowGeometry(kernel: 3, stride: 2, padding: 1),   // col2im input gradient
        WindowGeometry(kernel: 2, stride: 1, padding: 2),   // padding wider than k - 1: col2im
    ]

    @Test("forward, input gradient and weight gradient", arguments: geometries.indices)
    func matchesReference(_ index: Int) {
        let g = Self.geometries[index]
        let x = random([40, 24, 24, 32], 1), w = random([g.kernel * g.kernel * 32, 8], 2)
        let plan = ConvolutionPlan(imageShape: x.shape, weightShape: w.shape, geometry: g)
        #expect(plan.maximumBlockImages < 20, "the shape must need several blocks per share")
        let y = Tensor.convolution(x, w, bias: nil, geometry: g)
        expectClose(y, referenceForward(x, w, g))

        let dy = random(y.shape, 3)
        let dx = Tensor.convolutionInputGradient(dy, w, imageShape: x.shape, geometry: g)
        let referenceDx = dy.reshaped(to: [dy.count / 8, 8]).matmul(w.transposed()).columnsToImage(g, imageShape: x.shape)
        expectClose(dx, referenceDx)

        let dw = Tensor.convolutionWeightGradient(x, dy, geometry: g, weightShape: w.shape)
        let referenceDw = x.imageToColumns(g).transposed().matmul(dy.reshaped(to: [dy.count / 8, 8]))
        expectClose(dw, referenceDw, tolerance: 3e-4)
    }

    @Test func biasIsAddedToEveryPosition() {
        let g = WindowGeometry(kernel: 3, padding: 1)
        for channels in [1, 8] {   // one channel takes the direct small-product kernel
            let x = random([6, 9, 9, channels], 4), w = random([9 * channels, 5], 5), b = random([5], 6)
            let y = Tensor.convolution(x, w, bias: b, geometry: g)
            expectClose(y, referenceForward(x, w, g) + b)
        }
    }

    @Test func perGroupFiltersMatchEachGroupAlone() {
        let g = WindowGeometry(kernel: 3, padding: 1)
        let groups = 3, images = 14
        let x = random([groups * images, 12, 12, 16], 7)
        let w = random([groups, 144, 6], 8), b = random([groups, 6], 9)
        let y = Tensor.convolution(x, w, bias: b, geometry: g)
        let dy = random(y.shape, 10)
        let dx = Tensor.convolutionInputGradient(dy, w, imageShape: x.shape, geometry: g)
        let dw = Tensor.convolutionWeightGradient(x, dy, geometry: g, weightShape: w.shape)
        for t in 0..<groups {
            let xt = x.slice(axis: 0, t * images..<(t + 1) * images), dyt = dy.slice(axis: 0, t * images..<(t + 1) * images)
            let wt = w.slice(axis: 0, t..<t + 1).reshaped(to: [144, 6]), bt = b.slice(axis: 0, t..<t + 1).reshaped(to: [6])
            expectClose(y.slice(axis: 0, t * images..<(t + 1) * images), Tensor.convolution(xt, wt, bias: bt, geometry: g))
            expectClose(dx.slice(axis: 0, t * images..<(t + 1) * images),
                        Tensor.convolutionInputGradient(dyt, wt, imageShape: xt.shape, geometry: g))
            expectClose(dw.slice(axis: 0, t..<t + 1).reshaped(to: [144, 6]),
                        Tensor.convolutionWeightGradient(xt, dyt, geometry: g, weightShape: wt.shape))
        }
    }

    @Test func convLayerWithSharedFiltersAndPerTaskBias() {
        // A layer whose filters are shared but whose bias has a task axis (one adapted, the
        // other not): each task's images get the shared filters and that task's bias.
        let layer = Layer.conv2d(inChannels: 2, outChannels: 4, kernel: 3, stride: 1, padding: 1)
        let g = WindowGeometry(kernel: 3, padding: 1)
        let x = random([2, 3, 6, 6, 2], 40), w = random([18, 4], 41), b = random([2, 4], 42)
        let y = layer.apply(x, parameters: [w, b][...], tasks: 2)
        #expect(y.shape == [2, 3, 6, 6, 4])
        for t in 0..<2 {
            let xt = x.slice(axis: 0, t..<t + 1).reshaped(to: [3, 6, 6, 2])
            let bt = b.slice(axis: 0, t..<t + 1).reshaped(to: [4])
            expectClose(y.slice(axis: 0, t..<t + 1).reshaped(to: [3, 6, 6, 4]), Tensor.convolution(xt, w, bias: bt, geometry: g))
        }
    }

    @Test func repeatedRunsAreBitIdentical() {
        // The weight gradient adds per-thread partial sums; in a fixed order, so timing
        // cannot change the result.
        let g = WindowGeometry(kernel: 3, padding: 1)
        let x = random([40, 16, 16, 32], 11), w = random([288, 8], 12)
        func run() -> [Float] {
            let y = Tensor.convolution(x, w, bias: nil, geometry: g)
            return Tensor.convolutionWeightGradient(x, y, geometry: g, weightShape: w.shape).scalars
        }
        let first = run()
        for _ in 0..<3 { #expect(run() == first) }
    }
}

@Suite("Gathers and scatters over segmented indices")
struct SegmentedIndexTests {
    @Test func segmentedMatchesUnsegmented() {
        // 12 segments of 6,400 values with 1,600 picks each (repeats included): enough work
        // to be split across threads.
        let segments = 12, size = 6_400, picks = 1_600
        var rng = RandomGenerator(seed: 31)
        let positions = Tensor.uniform([segments * picks], low: 0, high: Float(size) - 0.01, using: &rng).scalars
        let flat = positions.enumerated().map { Int32($0.offset / picks * size + Int($0.element)) }
        let source = random([segments * size], 32), values = random([segments * picks], 33)
        let serial = IndexList(flat), split = IndexList(flat, segments: segments)
        #expect(source.gathering(flatIndices: split, shape: [segments * picks]).scalars
                == source.gathering(flatIndices: serial, shape: [segments * picks]).scalars)
        #expect(values.scatteringAdd(flatIndices: split, shape: [segments * size]).scalars
                == values.scatteringAdd(flatIndices: serial, shape: [segments * size]).scalars)
    }

    @Test func maxPoolGradientGoesToEachWindowsMaximum() {
        let x = random([20, 16, 16, 8], 34).requiringGradient()
        let y = x.maxPooled(size: 2)
        let g = gradients(of: (y * y).sum(), with: [x])[0].scalars
        let xs = x.scalars, ys = y.scalars
        var expected = [Float](repeating: 0, count: x.count)
        for b in 0..<20 { for i in 0..<8 { for j in 0..<8 { for c in 0..<8 {
            let out = ((b * 8 + i) * 8 + j) * 8 + c
            var best = -1
            for di in 0..<2 { for dj in 0..<2 {
                let k = ((b * 16 + 2 * i + di) * 16 + 2 * j + dj) * 8 + c
                if best < 0 || xs[k] > xs[best] { best = k }
            } }
            #expect(ys[out] == xs[best])
            expected[best] = 2 * ys[out]
        } } } }
        #expect(g == expected)
    }
}

@Suite("Convolution derivatives to second order")
struct ConvolutionDerivativeTests {
    typealias F = @Sendable ([Tensor]) -> Tensor
    static let cases: [(String, F, [Tensor])] = [
        ("per-group filters and bias", {
            Tensor.convolution($0[0], $0[1], bias: $0[2], geometry: WindowGeometry(kernel: 3, padding: 1)).squared()
        }, [random([4, 4, 4, 2], 20), random([2, 18, 3], 21), random([2, 3], 22)]),
        ("input gradient", {
            Tensor.convolutionInputGradient($0[0], $0[1], imageShape: [2, 4, 4, 2], geometry: WindowGeometry(kernel: 3, padding: 1)).squared()
        }, [random([2, 4, 4, 3], 23), random([18, 3], 24)]),
        ("input gradient, strided", {
            Tensor.convolutionInputGradient($0[0], $0[1], imageShape: [1, 5, 5, 2], geometry: WindowGeometry(kernel: 3, stride: 2, padding: 1)).squared()
        }, [random([1, 3, 3, 3], 25), random([18, 3], 26)]),
        ("weight gradient", {
            Tensor.convolutionWeightGradient($0[0], $0[1], geometry: WindowGeometry(kernel: 3, padding: 1), weightShape: [18, 3]).squared()
        }, [random([2, 4, 4, 2], 27), random([2, 4, 4, 3], 28)]),
    ]

    @Test("gradient", arguments: cases.indices)
    func gradient(_ index: Int) {
        let (_, f, inputs) = Self.cases[index]
        GradientCheck.firstOrder(f, inputs)
    }

    @Test("Hessian-vector product", arguments: cases.indices)
    func hessianVector(_ index: Int) {
        let (_, f, inputs) = Self.cases[index]
        GradientCheck.hessianVector(f, inputs)
    }
}

@Suite("Winograd convolution matches im2col + GEMM")
struct WinogradConvolutionTests {
    /// Shapes: (images, height, width, in channels, out channels, padding, groups). Odd sizes,
    /// 1-3 wide images (with padding; 3x3 without), tiles that overhang the output, one to 24
    /// channels, per-group filters.
    static let shapes: [(Int, Int, Int, Int, Int, Int, Int)] = [
        (2, 5, 7, 3, 4, 1, 1), (1, 1, 1, 5, 3, 1, 1), (3, 2, 3, 8, 5, 1, 1), (2, 3, 3, 16, 7, 0, 1),
        (2, 9, 4, 16, 7, 0, 1), (3, 11, 13, 24, 16, 1, 1), (4, 7, 7, 1, 9, 1, 2), (5, 10, 9, 17, 16, 2, 1),
        (6, 6, 5, 16, 24, 1, 3), (40, 13, 13, 16, 16, 1, 1),
    ]

    /// Bounds on the largest difference relative to the reference's largest magnitude (inputs
    /// uniform in [-1, 1]). Measured on these shapes (x86-64, AVX-512 transforms, 2026-12-06):
    /// forward, input and filter gradient at most 6.3e-7 for F(2x2, 3x3) and 4.4e-6 for
    /// F(4x4, 3x3), growing with the channel count (sums of more rounded terms; im2col's own
    /// float32 error against a double reference is about 1e-7). F(4x4, 3x3)'s transforms have
    /// entries up to 8 (A) and 5 (B), hence its larger rounding. The bounds leave about five
    /// times the measured error, and a wrong tile, transform or padding differs by order 1.
    static let tolerance: [ConvolutionAlgorithm: Float] = [.winograd2: 3e-6, .winograd4: 2e-5]

    private static func relativeError(_ a: UnsafeMutablePointer<Float>, _ b: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        var worst: Float = 0, scale: Float = 1e-30
        for i in 0..<n {
            worst = max(worst, abs(a[i] - b[i]))
            scale = max(scale, abs(b[i]))
        }
        return worst / scale
    }

    @Test("forward, input gradient and filter gradient", arguments: shapes.indices)
    func matchesIm2col(_ index: Int) {
        let (n, h, w, c, o, padding, groups) = Self.shapes[index]
        let g = WindowGeometry(kernel: 3, stride: 1, padding: padding)
        let x = random([n * groups, h, w, c], UInt64(100 + index))
        let weights = random(groups > 1 ? [groups, 9 * c, o] : [9 * c, o], UInt64(200 + index))
        let bias = random(groups > 1 ? [groups, o] : [o], UInt64(300 + index))
        let plan = ConvolutionPlan(imageShape: x.shape, weightShape: weights.shape, geometry: g)
        let dy = random(plan.outputShape, UInt64(400 + index))
        let outCount = dy.count, inCount = x.count, weightCount = weights.count
        for algorithm in [ConvolutionAlgorithm.winograd2, .winograd4] {
            let results = [ConvolutionAlgorithm.im2col, algorithm].map { a -> (TensorBuffer, TensorBuffer, TensorBuffer) in
                let y = TensorBuffer(count: outCount), dx = TensorBuffer(count: inCount), dw = TensorBuffer(count: weightCount)
                ConvolutionKernels.forward(plan, x: x.buffer.pointer, w: weights.buffer.pointer, bias: bias.buffer.pointer,
                                           biasStride: groups > 1 ? o : 0, y: y.pointer, algorithm: a)
                ConvolutionKernels.inputGradient(plan, dy: dy.buffer.pointer, w: weights.buffer.pointer, dx: dx.pointer, algorithm: a)
                ConvolutionKernels.weightGradient(plan, x: x.buffer.pointer, dy: dy.buffer.pointer, dw: dw.pointer, algorithm: a)
                return (y, dx, dw)
            }
            let (reference, winograd) = (results[0], results[1])
            let bound = Self.tolerance[algorithm]!
            let errors = [Self.relativeError(winograd.0.pointer, reference.0.pointer, outCount),
                          Self.relativeError(winograd.1.pointer, reference.1.pointer, inCount),
                          Self.relativeError(winograd.2.pointer, reference.2.pointer, weightCount)]
            #expect(errors.allSatisfy { $0 <= bound }, "\(algorithm) on \(Self.shapes[index]): relative errors \(errors)")
        }
    }

    @Test func automaticChoice() {
        let g = WindowGeometry(kernel: 3, padding: 1)
        func tile(_ image: [Int], _ o: Int, _ geometry: WindowGeometry = WindowGeometry(kernel: 3, padding: 1)) -> Int? {
            ConvolutionPlan(imageShape: image, weightShape: [geometry.kernel * geometry.kernel * image[3], o], geometry: geometry)
                .winogradTile(.automatic)
        }
        #expect(tile([80, 84, 84, 64], 64) == 4)
        #expect(tile([80, 10, 10, 320], 640) == 4)
        #expect(tile([75, 28, 28, 1], 64) == nil, "a first layer's single channel stays im2col")
        #expect(tile([75, 3, 3, 64], 64) == nil, "3x3 outputs waste most of a tile")
        #expect(tile([80, 84, 84, 64], 64, WindowGeometry(kernel: 1)) == nil)
        #expect(tile([80, 84, 84, 64], 64, WindowGeometry(kernel: 3, stride: 2, padding: 1)) == nil)
        #expect(ConvolutionPlan(imageShape: [1, 8, 8, 2], weightShape: [18, 2], geometry: g).winogradTile(.winograd2) == 2)
        #expect(ConvolutionPlan(imageShape: [1, 8, 8, 64], weightShape: [576, 64], geometry: g).winogradTile(.im2col) == nil)
    }

    /// The same derivative checks as ConvolutionDerivativeTests with Winograd forced, so the
    /// rules' compositions (convolutions of convolutions' adjoints) run through it.
    @Test("gradient and Hessian-vector product", arguments: ConvolutionDerivativeTests.cases.indices)
    func derivatives(_ index: Int) {
        let (_, f, inputs) = ConvolutionDerivativeTests.cases[index]
        for algorithm in [ConvolutionAlgorithm.winograd2, .winograd4] {
            ConvolutionKernels.$forced.withValue(algorithm) {
                GradientCheck.firstOrder(f, inputs)
                GradientCheck.hessianVector(f, inputs)
            }
        }
    }

    /// A conv layer's loss, gradient and Hessian-vector product through the public API agree
    /// between the two paths (measured: 1.8e-6 of the largest entry with F(4x4, 3x3)).
    @Test func secondOrderThroughTheTensorAPI() {
        let g = WindowGeometry(kernel: 3, padding: 1)
        let x = random([6, 9, 9, 16], 50), w0 = random([144, 16], 51), v = random([144, 16], 52)
        func hessianVector() -> [Float] {
            let w = w0.requiringGradient()
            let y = Tensor.convolution(x, w, bias: nil, geometry: g).leakyRelu(slope: 0.1)
            let gw = gradients(of: (y * y).sum(), with: [w], createGraph: true)[0]
            return gradients(of: (gw * v).sum(), with: [w])[0].scalars
        }
        let reference = ConvolutionKernels.$forced.withValue(.im2col) { hessianVector() }
        let winograd = ConvolutionKernels.$forced.withValue(.winograd4) { hessianVector() }
        let scale = reference.map(abs).max()!
        let worst = zip(reference, winograd).map { abs($0 - $1) }.max()!
        #expect(worst <= 2e-5 * scale, "largest difference \(worst) (scale \(scale))")
    }
}
