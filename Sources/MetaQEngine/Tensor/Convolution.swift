import CKernels

// Convolution and pooling on NHWC images (batch, height, width, channels): the layout in
// which im2col rows are contiguous channel runs and a convolution is one GEMM.

/// The geometry of a square-kernel convolution or pooling window.
public struct WindowGeometry: Hashable, Sendable, Codable {
    public var kernel: Int
    public var stride: Int
    public var padding: Int

    public init(kernel: Int, stride: Int = 1, padding: Int = 0) {
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
    }

    /// The output extent for an input extent, or nil when the window does not fit.
    public func outputExtent(_ input: Int) -> Int? {
        let span = input + 2 * padding - kernel
        guard kernel > 0, stride > 0, span >= 0 else { return nil }
        return span / stride + 1
    }
}

extension Tensor {
    /// Unfolds every kernel window of an NHWC image batch into a row:
    /// `[N, H, W, C] -> [N * Ho * Wo, k * k * C]`, entries ordered (row, column, channel);
    /// positions in the zero padding read as zero.
    public func imageToColumns(_ g: WindowGeometry) -> Tensor {
        precondition(rank == 4, "imageToColumns expects [N, H, W, C], got \(shape)")
        let (n, h, w, ch) = (shape[0], shape[1], shape[2], shape[3])
        guard let ho = g.outputExtent(h), let wo = g.outputExtent(w) else {
            preconditionFailure("a \(g.kernel)x\(g.kernel) window does not fit a \(h)x\(w) image")
        }
        let width = g.kernel * g.kernel * ch
        let out = TensorBuffer(count: n * ho * wo * width)
        let src = buffer.pointer, dst = out.pointer
        Parallel.forEachChunk(n, cost: ho * wo * width) { images in
            metaq_im2col(images.lowerBound, images.upperBound, h, w, ch, g.kernel, g.stride, g.padding, ho, wo, src, dst)
        }
        let imageShape = shape
        return Tensor.result("im2col", shape: [n * ho * wo, width], buffer: out, inputs: [self], saves: .shapes) { c in
            [c.grad.columnsToImage(g, imageShape: imageShape)]
        }
    }

    /// Folds window rows back into an image, adding overlapping contributions: the adjoint
    /// of ``imageToColumns(_:)``.
    public func columnsToImage(_ g: WindowGeometry, imageShape: [Int]) -> Tensor {
        let (n, h, w, ch) = (imageShape[0], imageShape[1], imageShape[2], imageShape[3])
        let ho = g.outputExtent(h)!, wo = g.outputExtent(w)!
        let width = g.kernel * g.kernel * ch
        precondition(shape == [n * ho * wo, width], "columnsToImage: shape \(shape) does not match \(imageShape)")
        let out = TensorBuffer(count: n * h * w * ch)
        let src = buffer.pointer, dst = out.pointer
        Parallel.forEachChunk(n, cost: ho * wo * width) { images in
            metaq_col2im(images.lowerBound, images.upperBound, h, w, ch, g.kernel, g.stride, g.padding, ho, wo, src, dst)
        }
        let columnShape = shape
        return Tensor.result("col2im", shape: imageShape, buffer: out, inputs: [self], saves: .shapes) { c in
            let cols = c.grad.imageToColumns(g)
            assert(cols.shape == columnShape)
            return [cols]
        }
    }

    /// 2-D convolution of an NHWC batch with `weight [k * k * C, O]` (rows ordered as
    /// ``imageToColumns(_:)`` orders a window) and an optional `bias [O]`.
    public func convolved(with weight: Tensor, bias: Tensor?, geometry g: WindowGeometry) -> Tensor {
        let cols = imageToColumns(g)
        let ho = g.outputExtent(shape[1])!, wo = g.outputExtent(shape[2])!
        var y = cols.matmul(weight)
        if let bias { y = y + bias }
        return y.reshaped(to: [shape[0], ho, wo, weight.shape[1]])
    }

    /// Max-pooling of an NHWC batch over `size x size` windows with stride `size`
    /// (trailing rows/columns that do not fill a window are dropped, as in PyTorch).
    public func maxPooled(size: Int) -> Tensor {
        precondition(rank == 4 && size > 0, "maxPooled expects [N, H, W, C], got \(shape)")
        let (n, h, w, ch) = (shape[0], shape[1], shape[2], shape[3])
        let ho = h / size, wo = w / size
        var indices = [Int32](repeating: 0, count: n * ho * wo * ch)
        let out = TensorBuffer(count: n * ho * wo * ch)
        let src = buffer.pointer, dst = out.pointer
        indices.withUnsafeMutableBufferPointer { idx in
            let flat = idx.baseAddress!
            Parallel.forEachChunk(n, cost: h * w * ch) { images in
                metaq_max_pool(images.lowerBound, images.upperBound, h, w, ch, size, ho, wo, src, dst, flat)
            }
        }
        return gathering(flatIndices: IndexList(indices), shape: [n, ho, wo, ch], values: out)
    }
}
