import CPNG
import Foundation

/// A grayscale image: `pixels` holds `width * height` intensities row by row, top row
/// first, with 0 for black and 1 for white.
///
/// ```swift
/// let bytes = try Data(contentsOf: URL(fileURLWithPath: "0394_01.png"))
/// let image = try GrayImage.decodePNG(bytes, source: "0394_01.png")  // 105 x 105
/// let small = image.resized(width: 28, height: 28)
/// ```
public struct GrayImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// Row-major intensities, `pixels[y * width + x]`.
    public let pixels: [Float]

    /// Creates an image from row-major intensities; `pixels.count` must be `width * height`.
    public init(width: Int, height: Int, pixels: [Float]) {
        precondition(width > 0 && height > 0, "image must be at least 1 x 1, got \(width) x \(height)")
        precondition(pixels.count == width * height,
                     "\(width) x \(height) image needs \(width * height) pixels, got \(pixels.count)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Images with more pixels than this are rejected rather than allocated.
    public static let maxPixelCount = 1 << 26

    /// Decodes a PNG file's bytes into gray intensities in `0...1`.
    ///
    /// Any PNG is accepted (any bit depth, palette, color, alpha, interlacing): libpng's
    /// simplified API converts it to 8-bit sRGB gray, compositing transparency onto white.
    /// `source` names the data in error messages, typically its file path.
    ///
    /// ```swift
    /// let image = try GrayImage.decodePNG(pngBytes, source: "Greek/character03/0394_01.png")
    /// ```
    ///
    /// - Throws: `DataError.invalidPNG` for empty, truncated, corrupt or non-PNG data and for
    ///   images larger than `maxPixelCount`.
    public static func decodePNG(_ data: some ContiguousBytes, source: String) throws -> GrayImage {
        try data.withUnsafeBytes { bytes in
            try decodePNG(bytes: bytes, source: source)
        }
    }

    private static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    private static func decodePNG(bytes: UnsafeRawBufferPointer, source: String) throws -> GrayImage {
        guard !bytes.isEmpty else {
            throw DataError.invalidPNG(path: source, reason: "empty file, not a PNG image")
        }
        guard bytes.starts(with: pngSignature) else {
            throw DataError.invalidPNG(path: source, reason: "not a PNG file (bad signature)")
        }
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }  // A no-op once libpng has released the image itself.

        guard png_image_begin_read_from_memory(&image, bytes.baseAddress, bytes.count) != 0 else {
            throw DataError.invalidPNG(path: source, reason: "corrupt PNG (\(libpngMessage(image)))")
        }
        let width = Int(image.width)
        let height = Int(image.height)
        guard width * height <= maxPixelCount else {
            throw DataError.invalidPNG(
                path: source,
                reason: "image is \(width) x \(height), more than \(maxPixelCount) pixels")
        }
        image.format = png_uint_32(PNG_FORMAT_GRAY)  // 1 byte per pixel, so a row is `width` bytes.
        var gray = [UInt8](repeating: 0, count: width * height)
        var white = png_color(red: 255, green: 255, blue: 255)
        let finished = gray.withUnsafeMutableBytes { buffer in
            png_image_finish_read(&image, &white, buffer.baseAddress, png_int_32(width), nil)
        }
        guard finished != 0 else {
            throw DataError.invalidPNG(path: source, reason: "corrupt PNG (\(libpngMessage(image)))")
        }
        let pixels = [Float](unsafeUninitializedCapacity: gray.count) { pixels, count in
            gray.withUnsafeBufferPointer { levels in
                for index in levels.indices {
                    pixels[index] = Float(levels[index]) / 255
                }
            }
            count = gray.count
        }
        return GrayImage(width: width, height: height, pixels: pixels)
    }

    /// The NUL-terminated text libpng leaves in `image.message` after a failure.
    private static func libpngMessage(_ image: png_image) -> String {
        withUnsafeBytes(of: image.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Returns the image scaled to `width` x `height` by area averaging.
    ///
    /// Each output pixel is the mean of the input area it covers, input pixels that straddle
    /// its border counting by the fraction inside (a box filter, as PIL's `Image.BOX` and
    /// OpenCV's `INTER_AREA`). This handles non-integer ratios such as 105 -> 28 exactly and,
    /// unlike point sampling, keeps thin strokes when shrinking. Width and height are scaled
    /// independently, so a non-square image is stretched to the new aspect ratio.
    ///
    /// ```swift
    /// let thumbnail = image.resized(width: 28, height: 28)
    /// ```
    public func resized(width newWidth: Int, height newHeight: Int) -> GrayImage {
        precondition(newWidth > 0 && newHeight > 0, "cannot resize to \(newWidth) x \(newHeight)")
        let columns = AreaWeights(from: width, to: newWidth)
        let rows = AreaWeights(from: height, to: newHeight)
        // Weights are overlap lengths in units of 1/newWidth (1/newHeight) of an input pixel,
        // small integers, so sums of 0s and 1s stay exact until the single final division.
        let area = Float(columns.weightSum * rows.weightSum)

        var horizontal = [Float](repeating: 0, count: height * newWidth)
        pixels.withUnsafeBufferPointer { input in
            horizontal.withUnsafeMutableBufferPointer { horizontal in
                for y in 0..<height {
                    let inputRow = input.baseAddress! + y * width
                    let outputRow = horizontal.baseAddress! + y * newWidth
                    for x in 0..<newWidth {
                        var sum: Float = 0
                        columns.forEachTap(of: x) { column, weight in
                            sum += weight * inputRow[column]
                        }
                        outputRow[x] = sum
                    }
                }
            }
        }
        var output = [Float](repeating: 0, count: newHeight * newWidth)
        horizontal.withUnsafeBufferPointer { horizontal in
            output.withUnsafeMutableBufferPointer { output in
                for y in 0..<newHeight {
                    let outputRow = output.baseAddress! + y * newWidth
                    rows.forEachTap(of: y) { row, weight in
                        let inputRow = horizontal.baseAddress! + row * newWidth
                        for x in 0..<newWidth {
                            outputRow[x] += weight * inputRow[x]
                        }
                    }
                    for x in 0..<newWidth {
                        outputRow[x] /= area
                    }
                }
            }
        }
        return GrayImage(width: newWidth, height: newHeight, pixels: output)
    }
}

/// The one-dimensional area-averaging filter from `inputCount` to `outputCount` samples.
///
/// Measured in units of 1/`outputCount` of an input pixel, input pixel `j` covers
/// `[j * outputCount, (j + 1) * outputCount)` and output pixel `i` covers
/// `[i * inputCount, (i + 1) * inputCount)`; a tap's weight is the length of their overlap,
/// so every output pixel's weights sum to `weightSum == inputCount`.
private struct AreaWeights {
    let weightSum: Int
    /// The first input each output reads.
    private let firstInputs: [Int]
    /// Where each output's weights start in `weights`, plus a final entry for the end.
    private let weightStarts: [Int]
    private let weights: [Float]

    init(from inputCount: Int, to outputCount: Int) {
        weightSum = inputCount
        var firstInputs: [Int] = []
        var weightStarts = [0]
        var weights: [Float] = []
        for i in 0..<outputCount {
            let start = i * inputCount
            let end = start + inputCount
            let first = start / outputCount
            let last = (end - 1) / outputCount
            firstInputs.append(first)
            for j in first...last {
                weights.append(Float(min(end, (j + 1) * outputCount) - max(start, j * outputCount)))
            }
            weightStarts.append(weights.count)
        }
        self.firstInputs = firstInputs
        self.weightStarts = weightStarts
        self.weights = weights
    }

    /// Calls `body` with each input index that output `index` reads and its weight.
    func forEachTap(of index: Int, _ body: (_ input: Int, _ weight: Float) -> Void) {
        for tap in weightStarts[index]..<weightStarts[index + 1] {
            body(firstInputs[index] + tap - weightStarts[index], weights[tap])
        }
    }
}
