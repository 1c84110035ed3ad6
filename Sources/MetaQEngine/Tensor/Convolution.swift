import CKernels

// Convolution and pooling on NHWC images (batch, height, width, channels): the layout in
// which im2col rows are contiguous channel runs and a block of images' convolution is one
// GEMM (ConvolutionKernels.swift runs the blocks).

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
    ///
    /// ```swift
    /// let y = images.convolved(with: w, bias: b, geometry: WindowGeometry(kernel: 3, padding: 1))
    /// ```
    public func convolved(with weight: Tensor, bias: Tensor?, geometry g: WindowGeometry) -> Tensor {
        Tensor.convolution(self, weight, bias: bias, geometry: g)
    }

    /// The convolution primitive: `x [N, H, W, C]` with filters `w [k * k * C, O]`, or with
    /// `w [G, k * k * C, O]` a separate filter set for each of G consecutive groups of N / G
    /// images (per-task filters); `bias` is `[O]`, `[G, O]` or nil. Its derivative rules are
    /// this primitive and its two adjoints, ``convolutionInputGradient(_:_:imageShape:geometry:)``
    /// and ``convolutionWeightGradient(_:_:geometry:weightShape:)``, whose rules are the same
    /// three: so a convolution differentiates to any order.
    public static func convolution(_ x: Tensor, _ w: Tensor, bias: Tensor?, geometry g: WindowGeometry) -> Tensor {
        let plan = ConvolutionPlan(imageShape: x.shape, weightShape: w.shape, geometry: g)
        let o = plan.outChannels
        if let bias {
            precondition(bias.shape == [o] || bias.shape == [plan.groups, o],
                         "convolution: bias \(bias.shape) fits neither [\(o)] nor [\(plan.groups), \(o)]")
        }
        let out = TensorBuffer(count: plan.groups * plan.images * plan.outputSize)
        ConvolutionKernels.forward(plan, x: x.buffer.pointer, w: w.buffer.pointer, bias: bias?.buffer.pointer,
                                   biasStride: bias?.rank == 2 ? o : 0, y: out.pointer)
        let inputs = bias.map { [x, w, $0] } ?? [x, w]
        return result("conv2d", shape: plan.outputShape, buffer: out, inputs: inputs, saves: .inputs(0, 1)) { c in
            let (x, w, gy) = (c.inputs[0], c.inputs[1], c.grad)
            var grads: [Tensor?] = [
                c.needs(0) ? convolutionInputGradient(gy, w, imageShape: x.shape, geometry: g) : nil,
                c.needs(1) ? convolutionWeightGradient(x, gy, geometry: g, weightShape: w.shape) : nil,
            ]
            if c.inputs.count == 3 {
                let bias = c.inputs[2]
                grads.append(c.needs(2)
                    ? (bias.rank == 2 ? gy.reshaped(to: [plan.groups, gy.count / (plan.groups * o), o]).sum(axis: 1)
                                      : gy.sum(to: [o]))
                    : nil)
            }
            return grads
        }
    }

    /// The adjoint of ``convolution(_:_:bias:geometry:)`` in its images: the gradient with
    /// respect to `x [imageShape]` of `<conv(x, w), grad>`, for `grad [N, Ho, Wo, O]`.
    public static func convolutionInputGradient(
        _ grad: Tensor, _ w: Tensor, imageShape: [Int], geometry g: WindowGeometry
    ) -> Tensor {
        let plan = ConvolutionPlan(imageShape: imageShape, weightShape: w.shape, geometry: g)
        precondition(grad.shape == plan.outputShape,
                     "convolutionInputGradient: gradient \(grad.shape) does not match output \(plan.outputShape)")
        let out = TensorBuffer(count: plan.groups * plan.images * plan.inputSize)
        ConvolutionKernels.inputGradient(plan, dy: grad.buffer.pointer, w: w.buffer.pointer, dx: out.pointer)
        return result("conv2d_input_grad", shape: imageShape, buffer: out, inputs: [grad, w], saves: .inputs(0, 1)) { c in
            // z = A_w^T dy is linear in both: <z', z> = <conv(z', w), dy>.
            let (gy, w, gz) = (c.inputs[0], c.inputs[1], c.grad)
            return [
                c.needs(0) ? convolution(gz, w, bias: nil, geometry: g) : nil,
                c.needs(1) ? convolutionWeightGradient(gz, gy, geometry: g, weightShape: w.shape) : nil,
            ]
        }
    }

    /// The adjoint of ``convolution(_:_:bias:geometry:)`` in its filters: the gradient with
    /// respect to `w [weightShape]` of `<conv(x, w), grad>`.
    public static func convolutionWeightGradient(
        _ x: Tensor, _ grad: Tensor, geometry g: WindowGeometry, weightShape: [Int]
    ) -> Tensor {
        let plan = ConvolutionPlan(imageShape: x.shape, weightShape: weightShape, geometry: g)
        precondition(grad.shape == plan.outputShape,
                     "convolutionWeightGradient: gradient \(grad.shape) does not match output \(plan.outputShape)")
        let out = TensorBuffer(count: weightShape.reduce(1, *))
        ConvolutionKernels.weightGradient(plan, x: x.buffer.pointer, dy: grad.buffer.pointer, dw: out.pointer)
        return result("conv2d_weight_grad", shape: weightShape, buffer: out, inputs: [x, grad], saves: .inputs(0, 1)) { c in
            // dw is bilinear in (x, dy): <w', dw> = <conv(x, w'), dy>.
            let (x, gy, gw) = (c.inputs[0], c.inputs[1], c.grad)
            return [
                c.needs(0) ? convolutionInputGradient(gy, gw, imageShape: x.shape, geometry: g) : nil,
                c.needs(1) ? convolution(x, gw, bias: nil, geometry: g) : nil,
            ]
        }
    }

    /// Max-pooling of an NHWC batch over `size x size` windows with stride `size`
    /// (trailing rows/columns that do not fill a window are dropped, as in PyTorch).
    public func maxPooled(size: Int) -> Tensor {
        precondition(rank == 4 && size > 0, "maxPooled expects [N, H, W, C], got \(shape)")
        let (n, h, w, ch) = (shape[0], shape[1], shape[2], shape[3])
        let ho = h / size, wo = w / size
        let out = TensorBuffer(count: n * ho * wo * ch)
        let src = buffer.pointer, dst = out.pointer
        let indices = IndexList(count: n * ho * wo * ch, segments: n) { flat in
            Parallel.forEachChunk(n, cost: h * w * ch) { images in
                metaq_max_pool(images.lowerBound, images.upperBound, h, w, ch, size, ho, wo, src, dst, flat)
            }
        }
        return gathering(flatIndices: indices, shape: [n, ho, wo, ch], values: out)
    }
}
