import Foundation

/// A random affine distortion applied to every sampled image: a rotation of up to `angle`
/// degrees either way, a scaling by a factor in `1 - zoom ... 1 + zoom`, and a translation of
/// up to `shift` pixels along each axis, all about the image centre. Pixels are resampled
/// bilinearly; whatever comes from outside the image is 0 (the background of inverted
/// Omniglot images). With a small, fixed set of characters this is the usual remedy for
/// over-fitting the training classes: every episode sees slightly different drawings.
///
/// ```swift
/// var train = try ImageClassificationTasks(dataset: data, ways: 20, rotations: true)
/// train.augmentation = ImageAugmentation(shift: 2, angle: 10, zoom: 0.1)
/// ```
public struct ImageAugmentation: Sendable, Equatable {
    public var shift: Float
    public var angle: Float
    public var zoom: Float

    public init(shift: Float = 0, angle: Float = 0, zoom: Float = 0) {
        precondition(shift >= 0 && angle >= 0 && zoom >= 0 && zoom < 1,
                     "augmentation needs shift >= 0, angle >= 0 and 0 <= zoom < 1")
        self.shift = shift
        self.angle = angle
        self.zoom = zoom
    }

    /// Whether this distortion can change an image at all.
    public var isIdentity: Bool { shift == 0 && angle == 0 && zoom == 0 }

    /// Distorts the `side` x `side` image in `image` in place, drawing the rotation, scale
    /// and shift from `rng`; `scratch` is reused between calls.
    public func apply(to image: UnsafeMutableBufferPointer<Float>, side: Int, scratch: inout [Float],
                      using rng: inout RandomGenerator) {
        let count = side * side
        precondition(image.count >= count, "the image buffer holds \(image.count) floats, not \(count)")
        let theta = angle == 0 ? 0 : rng.nextFloat(in: -angle..<angle) * .pi / 180
        let scale = zoom == 0 ? 1 : rng.nextFloat(in: (1 - zoom)..<(1 + zoom))
        let dx = shift == 0 ? 0 : rng.nextFloat(in: -shift..<shift)
        let dy = shift == 0 ? 0 : rng.nextFloat(in: -shift..<shift)
        warp(image, side: side, theta: theta, scale: scale, dx: dx, dy: dy, scratch: &scratch)
    }

    /// Resamples `image` so that the output pixel p shows the input at
    /// R(-theta) (p - c - d) / scale + c, where c is the centre and d the shift.
    func warp(_ image: UnsafeMutableBufferPointer<Float>, side: Int, theta: Float, scale: Float, dx: Float, dy: Float,
              scratch: inout [Float]) {
        let count = side * side
        if scratch.count < count { scratch = [Float](repeating: 0, count: count) }
        let centre = Float(side - 1) / 2
        let cosine = Foundation.cos(theta) / scale, sine = Foundation.sin(theta) / scale
        scratch.withUnsafeMutableBufferPointer { source in
            source.baseAddress!.update(from: image.baseAddress!, count: count)
            func pixel(_ row: Int, _ column: Int) -> Float {
                row >= 0 && row < side && column >= 0 && column < side ? source[row * side + column] : 0
            }
            for row in 0..<side {
                let y = Float(row) - centre - dy
                for column in 0..<side {
                    let x = Float(column) - centre - dx
                    // Inverse rotation by theta, then inverse scaling.
                    let sourceX = cosine * x + sine * y + centre
                    let sourceY = -sine * x + cosine * y + centre
                    let x0 = Int(sourceX.rounded(.down)), y0 = Int(sourceY.rounded(.down))
                    let fx = sourceX - Float(x0), fy = sourceY - Float(y0)
                    let top = pixel(y0, x0) * (1 - fx) + pixel(y0, x0 + 1) * fx
                    let bottom = pixel(y0 + 1, x0) * (1 - fx) + pixel(y0 + 1, x0 + 1) * fx
                    image[row * side + column] = top * (1 - fy) + bottom * fy
                }
            }
        }
    }
}
