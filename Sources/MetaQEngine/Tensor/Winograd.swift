import CKernels

// Winograd convolution F(m x m, 3 x 3) for 3x3 stride-1 convolutions (Lavin and Gray 2016):
// y = A^T [(G g G^T) . (B^T d B)] A per m x m output tile. With the transforms batched, the
// element-wise stage is t * t (t = m + 2) independent products [tiles x C] x [C x O], which
// BLAS runs; F(4x4, 3x3) does 36 multiplications per tile and channel pair where direct
// convolution does 144. The transforms themselves (CKernels/winograd.c) are additions over
// whole channel vectors of the NHWC layout.
//
// The filter gradient is the same algorithm's adjoint: <y, dy> = <G g G^T, sum over tiles
// of (B^T d B) . (A dy A^T)>, so dw = G^T [sum over tiles V . (A dy A^T)] G, whose sum over
// tiles is again t * t products [C x tiles] x [tiles x O]. The input gradient of a stride-1
// convolution is a forward convolution with flipped filters (ConvolutionKernels), so it runs
// here too.

struct Winograd {
    let plan: ConvolutionPlan
    /// Output tile size: 2 or 4.
    let m: Int
    var t: Int { m + 2 }
    var positions: Int { t * t }
    var tileRows: Int { (plan.outHeight + m - 1) / m }
    var tileColumns: Int { (plan.outWidth + m - 1) / m }
    /// Tiles per group (over all of the group's images).
    var tiles: Int { plan.images * tileRows * tileColumns }

    /// Tiles per block: the block's transformed inputs and products (t * t * (C + O) floats
    /// per tile) are a few MB, and a block's products are large enough for BLAS.
    var blockTiles: Int { 256 }

    /// Tiles of share `s` of `shares` of a group: contiguous, as equal as can be.
    func share(_ s: Int, of shares: Int) -> Range<Int> { tiles * s / shares..<tiles * (s + 1) / shares }

    /// `range` cut into blocks of at most ``blockTiles``.
    func forEachBlock(of range: Range<Int>, _ body: (Range<Int>) -> Void) {
        var start = range.lowerBound
        while start < range.upperBound {
            let end = min(start + blockTiles, range.upperBound)
            body(start..<end)
            start = end
        }
    }

    /// Runs `body(group, share, tiles)` for every share of every group, in parallel.
    func forEachShare(_ body: (Int, Int, Range<Int>) -> Void) {
        let shares = plan.shares
        let cost = tiles / shares * positions * plan.channels * plan.outChannels
        Parallel.forEachChunk(plan.groups * shares, cost: cost, minimumWork: 1 << 20) { items in
            for item in items { body(item / shares, item % shares, share(item % shares, of: shares)) }
        }
    }

    /// `y = conv(x, w) + bias` (bias `[O]` or `[G, O]` as for ``ConvolutionKernels/forward``).
    func forward(x: UnsafePointer<Float>, w: UnsafePointer<Float>, bias: UnsafePointer<Float>?, biasStride: Int,
                 y: UnsafeMutablePointer<Float>) {
        let p = plan, c = p.channels, o = p.outChannels, tt = positions
        let filterSize = tt * c * o
        let u = TensorBuffer(count: p.groups * filterSize)
        Parallel.forEachChunk(p.groups, cost: filterSize * 9) { groups in
            for g in groups { metaq_winograd_filter(m, c, o, w + g * 9 * c * o, u.pointer + g * filterSize) }
        }
        let (th, tw) = (tileRows, tileColumns)
        forEachShare { group, _, range in
            let tb = min(blockTiles, range.count)
            guard tb > 0 else { return }
            let v = TensorBuffer(count: tt * tb * c), products = TensorBuffer(count: tt * tb * o)
            let images = x + group * p.images * p.inputSize, out = y + group * p.images * p.outputSize
            let filters = u.pointer + group * filterSize
            forEachBlock(of: range) { block in
                let n = block.count
                metaq_winograd_input(m, block.lowerBound, block.upperBound, p.height, p.width, c, p.geometry.padding,
                                     th, tw, images, v.pointer, tb * c)
                for q in 0..<tt {
                    gemm(n, o, c, v.pointer + q * tb * c, transposeA: false, lda: c,
                         filters + q * c * o, transposeB: false, ldb: o, products.pointer + q * tb * o, beta: 0)
                }
                metaq_winograd_output(m, block.lowerBound, block.upperBound, p.outHeight, p.outWidth, o, th, tw,
                                      products.pointer, tb * o, bias.map { $0 + group * biasStride }, out)
            }
        }
    }

    /// `dw`, the gradient of `<conv(x, w), dy>` with respect to `w [G?, 9 * C, O]`.
    func weightGradient(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>) {
        let p = plan, c = p.channels, o = p.outChannels, tt = positions
        let filterSize = tt * c * o, shares = p.shares
        // Per group and share, the transformed gradient sum_tiles V . (A dy A^T); the shares
        // are added in share order afterwards (so the result does not depend on timing).
        let sums = TensorBuffer(count: p.groups * shares * filterSize)
        let (th, tw) = (tileRows, tileColumns)
        forEachShare { group, share, range in
            let sum = sums.pointer + (group * shares + share) * filterSize
            let tb = min(blockTiles, range.count)
            guard tb > 0 else {
                sum.update(repeating: 0, count: filterSize)
                return
            }
            let v = TensorBuffer(count: tt * tb * c), gradients = TensorBuffer(count: tt * tb * o)
            let images = x + group * p.images * p.inputSize, outGrad = dy + group * p.images * p.outputSize
            var first = true
            forEachBlock(of: range) { block in
                let n = block.count
                metaq_winograd_input(m, block.lowerBound, block.upperBound, p.height, p.width, c, p.geometry.padding,
                                     th, tw, images, v.pointer, tb * c)
                metaq_winograd_output_adjoint(m, block.lowerBound, block.upperBound, p.outHeight, p.outWidth, o, th, tw,
                                              outGrad, gradients.pointer, tb * o)
                for q in 0..<tt {
                    gemm(c, o, n, v.pointer + q * tb * c, transposeA: true, lda: c,
                         gradients.pointer + q * tb * o, transposeB: false, ldb: o, sum + q * c * o, beta: first ? 0 : 1)
                }
                first = false
            }
        }
        Parallel.forEachChunk(p.groups, cost: filterSize * (shares + 9)) { groups in
            for g in groups {
                let sum = sums.pointer + g * shares * filterSize
                for s in 1..<max(1, shares) { metaq_accumulate(filterSize, sum, sum + s * filterSize) }
                metaq_winograd_filter_adjoint(m, c, o, sum, dw + g * 9 * c * o)
            }
        }
    }
}
