import CKernels
import COpenBLAS
import Foundation

// The convolution primitives' loops: im2col + GEMM done a block of images at a time, so the
// unfolded windows (9x the image for a 3x3 kernel) live in a cache-sized scratch buffer and
// are never written to memory as a whole. For the Omniglot conv4's second layer with 75
// images that is 34 MB of windows per task, written, read by the product, and read again for
// the weight gradient; blocked, the same layer's forward and backward run about 20% faster
// (one thread, 14x14x64 images, with a second thread doing the same).

/// The sizes of a batch of convolutions: `groups` sets of `images` NHWC images, each set
/// convolved with its own filters `[k * k * C, O]` (one group when the filters are shared).
struct ConvolutionPlan {
    let groups: Int
    let images: Int
    let height: Int, width: Int, channels: Int
    let outHeight: Int, outWidth: Int, outChannels: Int
    let geometry: WindowGeometry

    /// The plan for `x [N, H, W, C]` and filters `[G, k * k * C, O]` or `[k * k * C, O]`.
    init(imageShape: [Int], weightShape: [Int], geometry g: WindowGeometry) {
        precondition(imageShape.count == 4, "convolution expects [N, H, W, C] images, got \(imageShape)")
        precondition(weightShape.count == 2 || weightShape.count == 3,
                     "convolution expects [k*k*C, O] or [G, k*k*C, O] filters, got \(weightShape)")
        let window = g.kernel * g.kernel * imageShape[3]
        precondition(weightShape[weightShape.count - 2] == window,
                     "convolution: \(g.kernel)x\(g.kernel) filters over \(imageShape[3]) channels need \(window) rows, got \(weightShape)")
        groups = weightShape.count == 3 ? weightShape[0] : 1
        precondition(groups > 0 && imageShape[0] % groups == 0,
                     "convolution: \(imageShape[0]) images do not split into \(groups) filter groups")
        images = imageShape[0] / groups
        (height, width, channels) = (imageShape[1], imageShape[2], imageShape[3])
        guard let ho = g.outputExtent(height), let wo = g.outputExtent(width) else {
            preconditionFailure("a \(g.kernel)x\(g.kernel) window does not fit a \(height)x\(width) image")
        }
        (outHeight, outWidth, outChannels) = (ho, wo, weightShape[weightShape.count - 1])
        geometry = g
    }

    private init(_ p: ConvolutionPlan, channels: Int, outChannels: Int, geometry: WindowGeometry) {
        (groups, images, height, width) = (p.groups, p.images, p.outHeight, p.outWidth)
        (self.channels, self.outChannels, self.geometry) = (channels, outChannels, geometry)
        (outHeight, outWidth) = (geometry.outputExtent(p.outHeight)!, geometry.outputExtent(p.outWidth)!)
    }

    var window: Int { geometry.kernel * geometry.kernel * channels }
    var inputSize: Int { height * width * channels }
    var outputSize: Int { outHeight * outWidth * outChannels }
    var outputShape: [Int] { [groups * images, outHeight, outWidth, outChannels] }

    /// Images per block at most: enough that a product is large, few enough that the block's
    /// windows (at most about 2 MB) stay in the cache while the product reads them.
    var maximumBlockImages: Int { max(1, (1 << 19) / max(1, outHeight * outWidth * window)) }

    /// How many shares each group's images are split into across threads: one when there
    /// are enough groups (or too little work) to keep every thread busy with whole groups.
    var shares: Int {
        let threads = Parallel.threads
        let work = groups * images * outHeight * outWidth * window * outChannels
        guard groups < threads, work >= 1 << 22 else { return 1 }
        return max(1, min(threads, images))
    }

    /// The images of share `s` of `shares`: contiguous and as equal as can be.
    func share(_ s: Int, of shares: Int) -> Range<Int> { images * s / shares..<images * (s + 1) / shares }

    /// `images` cut into blocks of at most ``maximumBlockImages``, as equal as can be.
    func forEachBlock(of images: Range<Int>, _ body: (Range<Int>) -> Void) {
        let blocks = (images.count + maximumBlockImages - 1) / maximumBlockImages
        for b in 0..<blocks {
            body(images.lowerBound + images.count * b / blocks..<images.lowerBound + images.count * (b + 1) / blocks)
        }
    }

    /// Runs `body(group, share, images)` for every share of every group, in parallel.
    func forEachShare(_ body: (Int, Int, Range<Int>) -> Void) {
        let shares = self.shares
        let cost = images / shares * outHeight * outWidth * window * outChannels
        Parallel.forEachChunk(groups * shares, cost: cost, minimumWork: 1 << 20) { items in
            for item in items { body(item / shares, item % shares, share(item % shares, of: shares)) }
        }
    }

    /// Scratch for one block's windows.
    func makeScratch() -> TensorBuffer { TensorBuffer(count: min(images, maximumBlockImages) * outHeight * outWidth * window) }

    /// With stride 1 the input gradient is itself a convolution: of the output gradient, with
    /// the filters flipped in space and their channel axes swapped, over `k - 1 - p` padding.
    /// This is its plan, or nil when the padding is wider than that allows.
    var transposedPlan: ConvolutionPlan? {
        let g = geometry
        guard g.stride == 1, g.padding <= g.kernel - 1 else { return nil }
        let flipped = WindowGeometry(kernel: g.kernel, stride: 1, padding: g.kernel - 1 - g.padding)
        let plan = ConvolutionPlan(self, channels: outChannels, outChannels: channels, geometry: flipped)
        assert(plan.outHeight == height && plan.outWidth == width)
        return plan
    }

    /// The Winograd tile size m (output tiles of m x m, F(m x m, 3 x 3)) this convolution runs
    /// with, or nil for im2col + GEMM. Only 3x3 stride-1 convolutions qualify. Automatically
    /// (measured on the ResNet-12 and conv4 shapes, benchmarks/RESULTS.md): F(4x4, 3x3) when
    /// both channel counts are at least 16 and the output at least 6 wide; narrower outputs
    /// waste most of a 4x4 tile, and a first layer's 1-3 channels make too small a product.
    func winogradTile(_ algorithm: ConvolutionAlgorithm) -> Int? {
        guard geometry.kernel == 3, geometry.stride == 1 else { return nil }
        switch algorithm {
        case .im2col: return nil
        case .winograd2: return 2
        case .winograd4: return 4
        case .automatic:
            return channels >= 16 && outChannels >= 16 && min(outHeight, outWidth) >= 6 ? 4 : nil
        }
    }

    /// Unfolds the windows of images `range` of group `group` into `rows`.
    func unfold(_ x: UnsafePointer<Float>, group: Int, range: Range<Int>, into rows: UnsafeMutablePointer<Float>) {
        let g = geometry
        metaq_im2col(0, range.count, height, width, channels, g.kernel, g.stride, g.padding, outHeight, outWidth,
                     x + (group * images + range.lowerBound) * inputSize, rows)
    }
}

/// `C = op(A) op(B) + beta C` for row-major matrices with leading dimensions given. Callers
/// run inside `forEachShare`, which has read `Parallel.threads` (setting OpenBLAS to one
/// thread) first.
@inline(__always)
func gemm(
    _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, transposeA: Bool, lda: Int,
    _ b: UnsafePointer<Float>, transposeB: Bool, ldb: Int, _ c: UnsafeMutablePointer<Float>, beta: Float
) {
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(n))
}

/// How a 3x3 stride-1 convolution is computed: chosen by shape (`automatic`), or forced for
/// tests and measurements with the environment variable `METAQ_CONVOLUTION` (`im2col`,
/// `winograd2`, `winograd4`, `automatic`) or, within a task, ``ConvolutionKernels/forced``.
/// Other convolutions always run im2col + GEMM.
public enum ConvolutionAlgorithm: String, Sendable, CaseIterable {
    case automatic
    /// Unfolded windows times the filters: one GEMM per block of images.
    case im2col
    /// Winograd F(2x2, 3x3): 4x4 tiles, 2.25x fewer multiplications.
    case winograd2
    /// Winograd F(4x4, 3x3): 6x6 tiles, 4x fewer multiplications (float32 error about ten
    /// times F(2x2, 3x3)'s, still near 1e-6 relative).
    case winograd4
}

enum ConvolutionKernels {
    /// The algorithm the environment asks for (`METAQ_CONVOLUTION`), automatic when unset.
    static let configured: ConvolutionAlgorithm = {
        guard let name = ProcessInfo.processInfo.environment["METAQ_CONVOLUTION"], !name.isEmpty else { return .automatic }
        guard let algorithm = ConvolutionAlgorithm(rawValue: name) else {
            preconditionFailure("METAQ_CONVOLUTION=\(name): expected one of \(ConvolutionAlgorithm.allCases.map(\.rawValue))")
        }
        return algorithm
    }()

    /// Overrides ``configured`` within a task (tests run the same model both ways).
    @TaskLocal static var forced: ConvolutionAlgorithm?

    static var algorithm: ConvolutionAlgorithm { forced ?? configured }

    /// `y = conv(x, w) + bias` for every group; `bias` is `[O]` or `[G, O]` (`biasStride`
    /// 0 or O), or nil.
    static func forward(
        _ p: ConvolutionPlan, x: UnsafePointer<Float>, w: UnsafePointer<Float>,
        bias: UnsafePointer<Float>?, biasStride: Int, y: UnsafeMutablePointer<Float>,
        algorithm: ConvolutionAlgorithm = ConvolutionKernels.algorithm
    ) {
        if let m = p.winogradTile(algorithm) {
            Winograd(plan: p, m: m).forward(x: x, w: w, bias: bias, biasStride: biasStride, y: y)
            return
        }
        let window = p.window, o = p.outChannels, pixels = p.outHeight * p.outWidth
        p.forEachShare { group, _, images in
            let scratch = p.makeScratch()
            p.forEachBlock(of: images) { range in
                let rows = range.count * pixels
                let out = y + (group * p.images + range.lowerBound) * p.outputSize
                let filters = w + group * window * o
                p.unfold(x, group: group, range: range, into: scratch.pointer)
                if window <= 16 {
                    // One input channel (a first layer): BLAS would spend its time packing.
                    metaq_small_gemm(0, 1, rows, o, window, scratch.pointer, 0, 0, filters, 0, 0, out)
                    if let bias { metaq_add_row(rows, o, out, bias + group * biasStride) }
                } else if let bias {
                    // The bias as the product's starting value (beta = 1): no separate pass.
                    let b = bias + group * biasStride
                    for r in 0..<rows { (out + r * o).update(from: b, count: o) }
                    gemm(rows, o, window, scratch.pointer, transposeA: false, lda: window,
                         filters, transposeB: false, ldb: o, out, beta: 1)
                } else {
                    gemm(rows, o, window, scratch.pointer, transposeA: false, lda: window,
                         filters, transposeB: false, ldb: o, out, beta: 0)
                }
            }
        }
    }

    /// `dx`, the gradient of `<conv(x, w), dy>` with respect to `x` (the adjoint of the
    /// convolution applied to `dy`).
    static func inputGradient(
        _ p: ConvolutionPlan, dy: UnsafePointer<Float>, w: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
        algorithm: ConvolutionAlgorithm = ConvolutionKernels.algorithm
    ) {
        let k = p.geometry.kernel, c = p.channels, o = p.outChannels, window = p.window
        if let t = p.transposedPlan {
            // flipped[g][(i, j, o), c] = w[g][(k-1-i, k-1-j, c), o]
            let flipped = TensorBuffer(count: p.groups * window * o)
            let f = flipped.pointer
            for g in 0..<p.groups {
                let wg = w + g * window * o, fg = f + g * window * o
                for i in 0..<k {
                    for j in 0..<k {
                        let from = wg + ((k - 1 - i) * k + (k - 1 - j)) * c * o, to = fg + (i * k + j) * o * c
                        for ci in 0..<c {
                            for oi in 0..<o { to[oi * c + ci] = from[ci * o + oi] }
                        }
                    }
                }
            }
            forward(t, x: dy, w: f, bias: nil, biasStride: 0, y: dx, algorithm: algorithm)
            return
        }
        let pixels = p.outHeight * p.outWidth, gm = p.geometry
        p.forEachShare { group, _, images in
            let scratch = p.makeScratch()
            p.forEachBlock(of: images) { range in
                let first = group * p.images + range.lowerBound
                gemm(range.count * pixels, window, o, dy + first * p.outputSize, transposeA: false, lda: o,
                     w + group * window * o, transposeB: true, ldb: o, scratch.pointer, beta: 0)
                metaq_col2im(0, range.count, p.height, p.width, c, gm.kernel, gm.stride, gm.padding,
                             p.outHeight, p.outWidth, scratch.pointer, dx + first * p.inputSize)
            }
        }
    }

    /// `dw`, the gradient of `<conv(x, w), dy>` with respect to `w`: per group, the sum over
    /// its images of `windows^T dy`.
    static func weightGradient(
        _ p: ConvolutionPlan, x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>,
        algorithm: ConvolutionAlgorithm = ConvolutionKernels.algorithm
    ) {
        if let m = p.winogradTile(algorithm) {
            Winograd(plan: p, m: m).weightGradient(x: x, dy: dy, dw: dw)
            return
        }
        let window = p.window, o = p.outChannels, pixels = p.outHeight * p.outWidth
        let shares = p.shares
        // Share 0 of a group writes into dw; the others into partial sums, added afterwards
        // in share order (so the result does not depend on timing).
        let partials = TensorBuffer(count: p.groups * (shares - 1) * window * o)
        p.forEachShare { group, share, images in
            let out = share == 0 ? dw + group * window * o : partials.pointer + (group * (shares - 1) + share - 1) * window * o
            let scratch = p.makeScratch()
            var first = true
            p.forEachBlock(of: images) { range in
                p.unfold(x, group: group, range: range, into: scratch.pointer)
                gemm(window, o, range.count * pixels, scratch.pointer, transposeA: true, lda: window,
                     dy + (group * p.images + range.lowerBound) * p.outputSize, transposeB: false, ldb: o,
                     out, beta: first ? 0 : 1)
                first = false
            }
            if images.isEmpty { out.update(repeating: 0, count: window * o) }
        }
        for group in 0..<p.groups {
            for share in 1..<shares {
                metaq_accumulate(window * o, dw + group * window * o,
                                 partials.pointer + (group * (shares - 1) + share - 1) * window * o)
            }
        }
    }
}
