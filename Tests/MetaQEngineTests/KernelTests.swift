import Testing
@testable import MetaQEngine

// The C kernels (CKernels/elementwise.c) and the paths that pick them, checked against plain
// Swift references written index by index, on shapes large enough to be split across threads.

private func random(_ shape: [Int], _ seed: UInt64, low: Float = -1, high: Float = 1) -> Tensor {
    GradientCheck.random(shape, low: low, high: high, seed: seed)
}

/// a op b with NumPy broadcasting, element by element.
private func reference(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> [Float] {
    let shape = try! ShapeRules.broadcast(a.shape, b.shape)
    let sa = ShapeRules.broadcastStrides(a.shape, to: shape), sb = ShapeRules.broadcastStrides(b.shape, to: shape)
    let n = Tensor.elementCount(shape)
    let (va, vb) = (a.scalars, b.scalars)
    return (0..<n).map { flat in
        var rest = flat, ia = 0, ib = 0
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            let i = rest % shape[axis]
            rest /= shape[axis]
            ia += i * sa[axis]
            ib += i * sb[axis]
        }
        return f(va[ia], vb[ib])
    }
}

@Suite("Elementwise kernels match a plain reference")
struct KernelTests {
    static let layouts: [([Int], [Int])] = [
        ([300, 257], [300, 257]),   // same shape
        ([300, 257], []),           // b scalar
        ([1], [300, 257]),          // a scalar
        ([40, 30, 64], [64]),       // bias row (trailing block of b)
        ([64], [40, 30, 64]),       // trailing block of a
        ([40, 1, 64], [30, 1]),     // general broadcast
        ([25, 10, 40], [25, 1, 40]), // per-task bias (a middle run of b broadcast)
        ([6, 1, 1, 9], [6, 5, 7, 9]), // the same with a as the smaller one
    ]

    @Test("binary operations", arguments: layouts.indices)
    func binary(_ which: Int) {
        let (sa, sb) = Self.layouts[which]
        let a = random(sa, UInt64(10 + which)), b = random(sb, UInt64(20 + which), low: 0.5, high: 2)
        #expect((a + b).scalars == reference(a, b, +))
        #expect((a - b).scalars == reference(a, b, -))
        #expect((a * b).scalars == reference(a, b, *))
        #expect((a / b).scalars == reference(a, b, /))
        #expect(a.maximum(b).scalars == reference(a, b) { $0 >= $1 ? $0 : $1 })
    }

    @Test("sums over a middle run of axes and the broadcast back", arguments: [[5, 7, 40], [3, 4, 6, 8], [6, 300, 1]])
    func middleAxes(_ dims: [Int]) {
        let x = random(dims, 14)
        var target = dims
        for axis in 1..<(dims.count - 1) { target[axis] = 1 }   // keep the first and last axes
        let summed = x.sum(to: target)
        let v = x.scalars
        let inner = dims.dropFirst().dropLast().reduce(1, *), trail = dims.last!
        var want = [Float](repeating: 0, count: dims[0] * trail)
        for l in 0..<dims[0] { for r in 0..<inner { for j in 0..<trail { want[l * trail + j] += v[(l * inner + r) * trail + j] } } }
        #expect(summed.shape == target)
        #expect(zip(summed.scalars, want).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })
        let back = summed.broadcast(to: dims).scalars, sums = summed.scalars
        var repeated = [Float]()
        for l in 0..<dims[0] { for _ in 0..<inner { repeated += sums[(l * trail)..<((l + 1) * trail)] } }
        #expect(back == repeated)
    }

    @Test func scaleShiftNegateAndRelu() {
        let x = random([1000, 77], 3)
        #expect(x.scaled(by: -2.5).scalars == x.scalars.map { $0 * -2.5 })
        #expect(x.adding(0.75).scalars == x.scalars.map { $0 + 0.75 })
        #expect((-x).scalars == x.scalars.map { -$0 })
        #expect(x.relu().scalars == x.scalars.map { max($0, 0) })
        // Zero stays +0 under scaling (a negative zero would print as -0 in tables).
        #expect(Tensor([0, 1]).scaled(by: 3).scalars[0].sign == .plus)
        let w = x.requiringGradient()
        let g = random([1000, 77], 4)
        let dx = gradients(of: (w.relu() * g).sum(), with: [w])[0]
        #expect(dx.scalars == zip(x.scalars, g.scalars).map { $0 > 0 ? $1 : 0 })
    }

    @Test("products with a short inner dimension", arguments: [false, true])
    func shortInnerDimension(_ transposeB: Bool) {
        // 5000x9 by 9x64 (the shape of a first conv layer) takes the direct kernel.
        let a = random([5000, 9], 11), b = random(transposeB ? [64, 9] : [9, 64], 12)
        let y = Tensor.product(a, b, transposeA: false, transposeB: transposeB)
        let (va, vb, vy) = (a.scalars, b.scalars, y.scalars)
        var worst: Float = 0
        for r in 0..<5000 { for j in 0..<64 {
            var sum: Float = 0
            for p in 0..<9 { sum += va[r * 9 + p] * (transposeB ? vb[j * 9 + p] : vb[p * 64 + j]) }
            worst = max(worst, abs(sum - vy[r * 64 + j]))
        } }
        #expect(worst <= 1e-5)
    }

    @Test func maxPoolPicksTheFirstOfTies() {
        // Values on a coarse grid so that windows hold ties; channels beyond one vector.
        let (n, h, w, c) = (3, 9, 8, 21)
        let x = Tensor(shape: [n, h, w, c], values: random([n, h, w, c], 5).scalars.map { ($0 * 3).rounded() })
        let v = x.scalars
        var expected = [Float](), firstIndex = [Int]()
        for b in 0..<n { for oh in 0..<(h / 2) { for ow in 0..<(w / 2) { for k in 0..<c {
            var best = -Float.infinity, at = -1
            for di in 0..<2 { for dj in 0..<2 {
                let i = ((b * h + oh * 2 + di) * w + ow * 2 + dj) * c + k
                if v[i] > best { best = v[i]; at = i }
            } }
            expected.append(best); firstIndex.append(at)
        } } } }
        let p = x.requiringGradient()
        let y = p.maxPooled(size: 2)
        #expect(y.shape == [n, h / 2, w / 2, c])
        #expect(y.scalars == expected)
        // The gradient goes to exactly the first maximum of each window.
        let dx = gradients(of: y.sum(), with: [p])[0].scalars
        var expectedGradient = [Float](repeating: 0, count: v.count)
        for i in firstIndex { expectedGradient[i] += 1 }
        #expect(dx == expectedGradient)
    }

    @Test("im2col and col2im against the definition", arguments: [1, 5])
    func windows(_ channels: Int) {
        let (n, h, w) = (3, 7, 6)
        let x = random([n, h, w, channels], 6)
        let g = WindowGeometry(kernel: 3, stride: 2, padding: 1)
        let (ho, wo) = (g.outputExtent(h)!, g.outputExtent(w)!)
        let cols = x.imageToColumns(g)
        let v = x.scalars, cv = cols.scalars
        var folded = [Float](repeating: 0, count: v.count)
        for b in 0..<n { for oh in 0..<ho { for ow in 0..<wo { for ki in 0..<3 { for kj in 0..<3 { for k in 0..<channels {
            let ih = oh * 2 - 1 + ki, iw = ow * 2 - 1 + kj
            let col = (((b * ho + oh) * wo + ow) * 9 + ki * 3 + kj) * channels + k
            let inside = ih >= 0 && ih < h && iw >= 0 && iw < w
            let src = inside ? ((b * h + ih) * w + iw) * channels + k : -1
            #expect(cv[col] == (inside ? v[src] : 0))
            if inside { folded[src] += cv[col] }
        } } } } } }
        let back = cols.columnsToImage(g, imageShape: x.shape).scalars
        #expect(zip(back, folded).allSatisfy { abs($0 - $1) <= 1e-6 * max(1, abs($1)) })
    }

    @Test("batch-norm statistics: whole blocks and blocks split across threads", arguments: [[1, 300, 64], [6, 50, 8], [2, 4096, 16]])
    func normalization(_ dims: [Int]) {
        let (lead, rows, width) = (dims[0], dims[1], dims[2])
        let x = random([lead, rows, width], 7, low: -2, high: 3)
        let g = random([lead, rows, width], 8)
        let v = x.scalars, gv = g.scalars
        var y = [Float](repeating: 0, count: v.count), dx = y
        for l in 0..<lead { for j in 0..<width {
            let idx = (0..<rows).map { (l * rows + $0) * width + j }
            let mean = idx.map { Double(v[$0]) }.reduce(0, +) / Double(rows)
            let variance = idx.map { (Double(v[$0]) - mean) * (Double(v[$0]) - mean) }.reduce(0, +) / Double(rows)
            let inv = 1 / (variance + 1e-5).squareRoot()
            for i in idx { y[i] = Float((Double(v[i]) - mean) * inv) }
            let mg = idx.map { Double(gv[$0]) }.reduce(0, +) / Double(rows)
            let mgh = idx.map { Double(gv[$0]) * Double(y[$0]) }.reduce(0, +) / Double(rows)
            for i in idx { dx[i] = Float(inv * (Double(gv[i]) - mg - Double(y[i]) * mgh)) }
        } }
        let p = x.requiringGradient()
        let out = p.normalized(overAxes: [1])
        #expect(zip(out.scalars, y).allSatisfy { abs($0 - $1) <= 1e-4 })
        let grad = gradients(of: (out * g).sum(), with: [p])[0].scalars
        #expect(zip(grad, dx).allSatisfy { abs($0 - $1) <= 1e-3 })
    }

    @Test func tensorMemoryCountsLiveAndPeakBytes() {
        // Other tests allocate and free in parallel, so only bounds that hold regardless.
        let bytes = 64 << 20
        do {
            let buffer = TensorBuffer(count: bytes / 4)
            #expect(TensorMemory.liveBytes >= bytes)
            #expect(TensorMemory.peakBytes >= bytes)
            withExtendedLifetime(buffer) {}
        }
        #expect(TensorMemory.peakBytes >= TensorMemory.liveBytes)
    }

    @Test func blockCacheKeepsABoundedNumberOfSizes() {
        let cache = BlockCache()
        let base = BlockCache.minimumBytes
        var blocks: [UnsafeMutableRawPointer] = []
        defer { for b in blocks { b.deallocate() } }
        func block() -> UnsafeMutableRawPointer {
            let b = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)   // never written
            blocks.append(b)
            return b
        }
        for i in 0..<BlockCache.maximumSizes { #expect(cache.keep(block(), bytes: base + 64 * i)) }
        let extra = base + 64 * BlockCache.maximumSizes
        #expect(!cache.keep(block(), bytes: extra))              // every shelf holds a block
        let first = cache.take(base)                               // empties the first shelf
        #expect(first != nil)
        let late = block()
        #expect(cache.keep(late, bytes: extra))                   // which the new size takes over
        #expect(cache.take(extra) == late)
        #expect(cache.take(base) == nil)
        for i in 1..<BlockCache.maximumSizes { #expect(cache.take(base + 64 * i) != nil) }
    }

    @Test func blockCacheHandsBackBlocksOfTheSameSize() {
        let cache = BlockCache()   // its own instance: other tests allocate in parallel
        let bytes = BlockCache.minimumBytes
        let block = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        #expect(!cache.keep(block, bytes: 1024))          // small blocks are malloc's business
        #expect(cache.keep(block, bytes: bytes))
        #expect(cache.take(bytes + 4) == nil)             // only the same size is reused
        #expect(cache.take(bytes) == block)
        #expect(cache.take(bytes) == nil)
        // Past its capacity the cache declines blocks rather than growing.
        let huge = BlockCache.capacityBytes + 4
        let big = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
        #expect(!cache.keep(big, bytes: huge))
        big.deallocate()
        block.deallocate()
        // Buffers from recycled blocks are filled as asked.
        let count = bytes / 4 + 1000
        for value: Float in [7, 2] {
            let b = TensorBuffer(repeating: value, count: count)
            #expect(b.pointer[0] == value && b.pointer[count - 1] == value)
        }
    }

    /// A block that would take the cache past its capacity makes room by freeing the blocks
    /// of other sizes (the cache owns them once kept), but never those of its own size.
    @Test func blockCachePastItsCapacityFreesOtherSizes() {
        let cache = BlockCache()
        let minimum = BlockCache.minimumBytes
        // Blocks stand in for larger sizes: the cache never reads or writes them.
        func block() -> UnsafeMutableRawPointer { UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64) }
        let large = BlockCache.capacityBytes - 2 * minimum
        #expect(cache.keep(block(), bytes: large))                  // the cache frees it below
        let kept = block()
        #expect(cache.keep(kept, bytes: minimum))
        let mine = block()
        #expect(cache.keep(mine, bytes: minimum))                   // exactly at capacity
        let newcomer = block()
        #expect(cache.keep(newcomer, bytes: 3 * minimum))           // over it: the large block goes
        #expect(cache.take(large) == nil)
        #expect(Set([cache.take(minimum), cache.take(minimum)]) == Set([kept, mine]))
        #expect(cache.take(3 * minimum) == newcomer)
        for b in [kept, mine, newcomer] { b.deallocate() }
    }
}

@Suite("Batch norm and ReLU fused in a network")
struct FusedLayerTests {
    /// The forward pass layer by layer, without the batch-norm + ReLU fusion.
    static func unfused(_ net: Sequential, _ x: Tensor, _ p: [Tensor], tasks: Int?) -> Tensor {
        var y = x, at = 0
        for layer in net.layers {
            let n = layer.parameterSpecs(weightInit: .fanInUniform).count
            y = layer.apply(y, parameters: p[at..<(at + n)], tasks: tasks)
            at += n
        }
        return y
    }

    @Test("same values, gradients and second-order gradients", arguments: [0, 1, 3])
    func sameAsLayerByLayer(_ tasks: Int) {
        var rng = RandomGenerator(seed: 13)
        let net = Sequential.conv4(imageSize: 16, filters: 3, classes: 2, using: &rng)
        let t: Int? = tasks == 0 ? nil : tasks
        let x = Tensor.uniform(t.map { [$0, 4, 16, 16, 1] } ?? [4, 16, 16, 1], using: &rng)
        let p = (t.map { net.perTask(net.parameters, tasks: $0) } ?? net.parameters).map { $0.requiringGradient() }
        func loss(_ y: Tensor) -> Tensor { (y * y).sum() }
        let a = net.forward(x, parameters: p, tasks: t), b = Self.unfused(net, x, p, tasks: t)
        #expect(zip(a.scalars, b.scalars).allSatisfy { abs($0 - $1) <= 1e-5 * max(1, abs($1)) })
        let ga = gradients(of: loss(a), with: p, createGraph: true)
        let gb = gradients(of: loss(b), with: p, createGraph: true)
        for (u, v) in zip(ga, gb) {
            #expect(zip(u.scalars, v.scalars).allSatisfy { abs($0 - $1) <= 1e-3 * max(1, abs($1)) })
        }
        // Differentiate the gradients again (what second-order MAML does).
        let ha = gradients(of: ga.map { ($0 * $0).sum() }.reduce(Tensor(0), +), with: p)
        let hb = gradients(of: gb.map { ($0 * $0).sum() }.reduce(Tensor(0), +), with: p)
        // The conv biases feed batch norm, which removes them: their derivatives are zero in
        // exact arithmetic, and the computed ones are rounding noise (about 1e-7 of the
        // largest second derivative here) that the fused and unfused chains round
        // differently. So each tensor's scale is at least 1e-3 of the largest one.
        let largest = hb.map { $0.scalars.map { abs($0) }.max()! }.max()!
        for (u, v) in zip(ha, hb) {
            let scale = max(v.scalars.map { abs($0) }.max()!, 1e-3 * largest) + 1e-3
            #expect(zip(u.scalars, v.scalars).allSatisfy { abs($0 - $1) <= 1e-3 * scale })
        }
    }
}

@Suite("Meta-batch gradients in groups of tasks")
struct GroupedGradientTests {
    @Test func groupedEvaluationScoresEqualOneCall() throws {
        var rng = RandomGenerator(seed: 10)
        let net = Sequential.conv4(filters: 4, classes: 3, using: &rng)
        let maml = MAML(model: net, loss: .crossEntropy, inner: InnerLoop(steps: 1, learningRate: 0.4), optimizer: SGD(learningRate: 0))
        let batch = TaskBatch(
            support: Split(inputs: Tensor.uniform([5, 3, 28, 28, 1], using: &rng), targets: .labels(Array(repeating: [0, 1, 2], count: 5).flatMap { $0 })),
            query: Split(inputs: Tensor.uniform([5, 6, 28, 28, 1], using: &rng), targets: .labels(Array(repeating: [0, 1, 2, 0, 1, 2], count: 5).flatMap { $0 })))
        let whole = maml.evaluate(batch, steps: [0, 2])
        #expect(Set(whole[0] + whole[1]).count > 1)  // tasks differ, so a mix-up would show
        for threads in [1, 2] {
            let grouped = maml.groupedScores(batch, steps: [0, 2], threads: threads, groupElements: 2 * 9 * 784)
            #expect(grouped.map(\.count) == [5, 5])
            for (a, b) in zip(whole, grouped) { #expect(zip(a, b).allSatisfy { abs($0 - $1) < 1e-5 }) }
        }
    }


    @Test func groupsGiveTheSameGradientAsOneGraph() throws {
        var rng = RandomGenerator(seed: 9)
        let net = Sequential.conv4(filters: 4, classes: 3, using: &rng)
        let maml = MAML(model: net, loss: .crossEntropy, inner: InnerLoop(steps: 1, learningRate: 0.4),
                        optimizer: SGD(learningRate: 0))
        let batch = TaskBatch(
            support: Split(inputs: Tensor.uniform([6, 3, 28, 28, 1], using: &rng), targets: .labels(Array(repeating: [0, 1, 2], count: 6).flatMap { $0 })),
            query: Split(inputs: Tensor.uniform([6, 6, 28, 28, 1], using: &rng), targets: .labels(Array(repeating: [0, 1, 2, 0, 1, 2], count: 6).flatMap { $0 })))
        let whole = summedLossGradients(batch, parameters: net.parameters, threads: 1, groupElements: 1 << 30, objective: maml.summedMetaLoss)
        let grouped = summedLossGradients(batch, parameters: net.parameters, threads: 1, groupElements: 9 * 784, objective: maml.summedMetaLoss)
        let split = summedLossGradients(batch, parameters: net.parameters, minimumTasksPerWorker: 1, threads: 2,
                                        groupElements: 9 * 784, objective: maml.summedMetaLoss)
        #expect(abs(whole.loss - grouped.loss) <= 1e-4 * abs(whole.loss))
        // One scale for all parameters: the conv biases feed batch norm, which removes them,
        // so their gradients are zero in exact arithmetic and what is computed is rounding
        // noise (1e-7 to 1e-5 against weights' 1 to 8), which differs between the fused
        // (one task per group) and unfused (per-task parameters) paths.
        let scale = whole.gradients.map { $0.scalars.map { abs($0) }.max()! }.max()!
        for other in [grouped, split] {
            for (a, b) in zip(whole.gradients, other.gradients) {
                #expect(zip(a.scalars, b.scalars).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
            }
        }
    }
}

@Suite("Batched products match a plain reference")
struct ProductKernelTests {
    /// op(A_t) op(B_t) for every task t, index by index in Double.
    static func reference(_ a: Tensor, _ b: Tensor, _ ta: Bool, _ tb: Bool, m: Int, n: Int, k: Int, batch: Int) -> [Float] {
        let (va, vb) = (a.scalars, b.scalars)
        var out = [Float]()
        for t in 0..<batch { for r in 0..<m { for j in 0..<n {
            var s = 0.0
            for p in 0..<k {
                let x = ta ? va[t * m * k + p * m + r] : va[t * m * k + r * k + p]
                let y = tb ? vb[t * k * n + j * k + p] : vb[t * k * n + p * n + j]
                s += Double(x) * Double(y)
            }
            out.append(Float(s))
        } } }
        return out
    }

    // Edges of every tile: 1, the register blocks (2, 3, 4, 6, 8, 16) and one past them, and the
    // sinusoid MLP's 10 x 40 x 40; each with all four transpose layouts, for three tasks.
    static let sizes: [(Int, Int, Int)] = [
        (1, 1, 1), (1, 40, 10), (10, 1, 40), (40, 1, 10), (10, 40, 1), (10, 40, 40), (40, 40, 10),
        (7, 17, 9), (6, 16, 8), (13, 24, 5), (5, 3, 33), (9, 8, 16), (2, 7, 3), (12, 33, 20),
    ]

    @Test("op(A) op(B) for all transposes", arguments: sizes.indices)
    func batchedProduct(_ which: Int) {
        let (m, n, k) = Self.sizes[which]
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let a = random(ta ? [3, k, m] : [3, m, k], UInt64(30 + which))
            let b = random(tb ? [3, n, k] : [3, k, n], UInt64(60 + which))
            let c = Tensor.product(a, b, transposeA: ta, transposeB: tb)
            let want = Self.reference(a, b, ta, tb, m: m, n: n, k: k, batch: 3)
            #expect(c.shape == [3, m, n])
            #expect(zip(c.scalars, want).allSatisfy { abs($0 - $1) <= 1e-5 * Float(k) },
                    "m \(m) n \(n) k \(k) transposeA \(ta) transposeB \(tb)")
        }
    }
}
