import CPNG
import CTurboJPEG
import Foundation

/// An image of 1 (gray) or 3 (RGB) channels: `pixels` holds `height * width * channels`
/// values in `0...1`, row by row from the top, channels interleaved (HWC, as the models take).
///
/// ```swift
/// let bytes = try Data(contentsOf: URL(fileURLWithPath: "n01532829/0001.jpg"))
/// let image = try ColorImage.decode(bytes, source: "n01532829/0001.jpg", channels: 3)
/// let small = image.resized(width: 84, height: 84)  // the miniImageNet input
/// ```
public struct ColorImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// 1 (gray) or 3 (RGB).
    public let channels: Int
    /// `pixels[(y * width + x) * channels + c]`.
    public let pixels: [Float]

    /// Creates an image from HWC values; `pixels.count` must be `height * width * channels`.
    public init(width: Int, height: Int, channels: Int, pixels: [Float]) {
        precondition(width > 0 && height > 0, "image must be at least 1 x 1, got \(width) x \(height)")
        precondition(channels == 1 || channels == 3, "an image has 1 or 3 channels, got \(channels)")
        precondition(pixels.count == width * height * channels,
                     "\(width) x \(height) x \(channels) image needs \(width * height * channels) values, got \(pixels.count)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// Images with more pixels than this are rejected, from their header, before anything
    /// is allocated.
    public static let maxPixelCount = GrayImage.maxPixelCount

    private static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    private static let jpegSignature: [UInt8] = [0xFF, 0xD8, 0xFF]

    /// Decodes a PNG or JPEG file's bytes (told apart by their signature, not the file name)
    /// into `channels` channels (1: gray, 3: RGB) in `0...1`.
    ///
    /// PNG: any bit depth, palette, gray or color, with alpha composited onto white. JPEG:
    /// baseline or progressive, gray or YCbCr (CMYK is refused), decoded with libjpeg-turbo; a warning
    /// (such as a truncated file) counts as an error. Gray images given 3 channels repeat
    /// their intensity; color images given 1 channel become their luminance.
    ///
    /// - Throws: `DataError.invalidImage` naming `source` for empty, truncated, corrupt or
    ///   unknown data and for images larger than `maxPixelCount` (checked from the header).
    public static func decode(_ data: some ContiguousBytes, source: String, channels: Int) throws -> ColorImage {
        precondition(channels == 1 || channels == 3, "an image has 1 or 3 channels, got \(channels)")
        return try data.withUnsafeBytes { bytes in
            guard !bytes.isEmpty else { throw DataError.invalidImage(path: source, reason: "empty file, not an image") }
            if bytes.starts(with: pngSignature) { return try decodePNG(bytes, source: source, channels: channels) }
            if bytes.starts(with: jpegSignature) { return try decodeJPEG(bytes, source: source, channels: channels) }
            throw DataError.invalidImage(path: source, reason: "not a PNG or JPEG image (unknown signature)")
        }
    }

    private static func checkSize(width: Int, height: Int, source: String, format: String) throws {
        guard width > 0, height > 0 else {
            throw DataError.invalidImage(path: source, reason: "corrupt \(format) header (size \(width) x \(height))")
        }
        let (count, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, count <= maxPixelCount else {
            throw DataError.invalidImage(path: source, reason: "image is \(width) x \(height), more than \(maxPixelCount) pixels")
        }
    }

    private static func decodePNG(_ bytes: UnsafeRawBufferPointer, source: String, channels: Int) throws -> ColorImage {
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        guard png_image_begin_read_from_memory(&image, bytes.baseAddress, bytes.count) != 0 else {
            throw DataError.invalidImage(path: source, reason: "corrupt PNG (\(pngMessage(image)))")
        }
        let width = Int(image.width), height = Int(image.height)
        try checkSize(width: width, height: height, source: source, format: "PNG")
        image.format = channels == 1 ? png_uint_32(PNG_FORMAT_GRAY) : png_uint_32(PNG_FORMAT_RGB)
        var levels = [UInt8](repeating: 0, count: width * height * channels)
        var white = png_color(red: 255, green: 255, blue: 255)
        let finished = levels.withUnsafeMutableBytes { buffer in
            png_image_finish_read(&image, &white, buffer.baseAddress, png_int_32(width * channels), nil)
        }
        guard finished != 0 else {
            throw DataError.invalidImage(path: source, reason: "corrupt PNG (\(pngMessage(image)))")
        }
        return ColorImage(width: width, height: height, channels: channels, pixels: levels.map { Float($0) / 255 })
    }

    private static func pngMessage(_ image: png_image) -> String {
        withUnsafeBytes(of: image.message) { raw in String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self) }
    }

    private static func decodeJPEG(_ bytes: UnsafeRawBufferPointer, source: String, channels: Int) throws -> ColorImage {
        guard let handle = tjInitDecompress() else {
            throw DataError.invalidImage(path: source, reason: "cannot start the JPEG decoder")
        }
        defer { tjDestroy(handle) }
        let input = bytes.bindMemory(to: UInt8.self)
        func failure(_ what: String) -> DataError {
            .invalidImage(path: source, reason: "\(what) (\(String(cString: tjGetErrorStr2(handle))))")
        }
        var width: Int32 = 0, height: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        guard tjDecompressHeader3(handle, input.baseAddress, UInt(input.count), &width, &height, &subsampling, &colorspace) == 0 else {
            throw failure("corrupt JPEG header")
        }
        try checkSize(width: Int(width), height: Int(height), source: source, format: "JPEG")
        var levels = [UInt8](repeating: 0, count: Int(width) * Int(height) * channels)
        let format = channels == 1 ? TJPF_GRAY : TJPF_RGB
        let status = levels.withUnsafeMutableBufferPointer { output in
            tjDecompress2(handle, input.baseAddress, UInt(input.count), output.baseAddress,
                          width, 0, height, Int32(format.rawValue), TJFLAG_STOPONWARNING)
        }
        guard status == 0 else { throw failure("corrupt JPEG") }
        return ColorImage(width: Int(width), height: Int(height), channels: channels, pixels: levels.map { Float($0) / 255 })
    }

    /// The image's values rounded to 8-bit levels.
    private var levels: [UInt8] { pixels.map { UInt8((min(max($0, 0), 1) * 255).rounded()) } }

    /// The image as a PNG file (8 bits per channel), for fixtures and exported samples.
    ///
    /// ```swift
    /// try Data(image.pngData()).write(to: URL(fileURLWithPath: "sample.png"))
    /// ```
    public func pngData() throws -> [UInt8] {
        var image = png_image()
        image.version = png_uint_32(PNG_IMAGE_VERSION)
        image.width = png_uint_32(width)
        image.height = png_uint_32(height)
        image.format = channels == 1 ? png_uint_32(PNG_FORMAT_GRAY) : png_uint_32(PNG_FORMAT_RGB)
        defer { png_image_free(&image) }
        let levels = levels
        var size = 0
        // Ask for the size first, then write into a buffer of that size.
        guard levels.withUnsafeBytes({ png_image_write_to_memory(&image, nil, &size, 0, $0.baseAddress, 0, nil) }) != 0 else {
            throw DataError.invalidImage(path: "(PNG encoder)", reason: Self.pngMessage(image))
        }
        var output = [UInt8](repeating: 0, count: size)
        let written = output.withUnsafeMutableBytes { out in
            levels.withUnsafeBytes { png_image_write_to_memory(&image, out.baseAddress, &size, 0, $0.baseAddress, 0, nil) }
        }
        guard written != 0 else { throw DataError.invalidImage(path: "(PNG encoder)", reason: Self.pngMessage(image)) }
        return Array(output.prefix(size))
    }

    /// The image as a JPEG file of `quality` 1...100 (4:4:4 color, or gray).
    public func jpegData(quality: Int = 95) throws -> [UInt8] {
        guard let handle = tjInitCompress() else {
            throw DataError.invalidImage(path: "(JPEG encoder)", reason: "cannot start the JPEG encoder")
        }
        defer { tjDestroy(handle) }
        var buffer: UnsafeMutablePointer<UInt8>? = nil
        var size: UInt = 0
        let format = channels == 1 ? TJPF_GRAY : TJPF_RGB
        let subsampling = channels == 1 ? TJSAMP_GRAY : TJSAMP_444
        let status = levels.withUnsafeBufferPointer { input in
            tjCompress2(handle, input.baseAddress, Int32(width), 0, Int32(height), Int32(format.rawValue),
                        &buffer, &size, Int32(subsampling.rawValue), Int32(min(max(quality, 1), 100)), 0)
        }
        defer { if let buffer { tjFree(buffer) } }
        guard status == 0, let buffer else {
            throw DataError.invalidImage(path: "(JPEG encoder)", reason: String(cString: tjGetErrorStr2(handle)))
        }
        return Array(UnsafeBufferPointer(start: buffer, count: Int(size)))
    }

    /// Returns the image scaled to `width` x `height`, each axis on its own: by area
    /// averaging where it shrinks (a box filter, as OpenCV's `INTER_AREA`), bilinearly
    /// where it grows or keeps its size (half-pixel centres, edges clamped, as OpenCV's
    /// `INTER_LINEAR` and PyTorch's `align_corners=False`). A same-size resize is exact.
    ///
    /// ```swift
    /// let input = image.resized(width: 84, height: 84)
    /// ```
    public func resized(width newWidth: Int, height newHeight: Int) -> ColorImage {
        precondition(newWidth > 0 && newHeight > 0, "cannot resize to \(newWidth) x \(newHeight)")
        if newWidth == width && newHeight == height { return self }
        let c = channels
        let columns = ResampleAxis(from: width, to: newWidth)
        let rows = ResampleAxis(from: height, to: newHeight)
        var horizontal = [Float](repeating: 0, count: height * newWidth * c)
        pixels.withUnsafeBufferPointer { input in
            horizontal.withUnsafeMutableBufferPointer { horizontal in
                for y in 0..<height {
                    let inRow = input.baseAddress! + y * width * c, outRow = horizontal.baseAddress! + y * newWidth * c
                    for x in 0..<newWidth {
                        columns.forEachTap(of: x) { column, weight in
                            for k in 0..<c { outRow[x * c + k] += weight * inRow[column * c + k] }
                        }
                    }
                }
            }
        }
        var output = [Float](repeating: 0, count: newHeight * newWidth * c)
        let rowLength = newWidth * c
        horizontal.withUnsafeBufferPointer { horizontal in
            output.withUnsafeMutableBufferPointer { output in
                for y in 0..<newHeight {
                    let outRow = output.baseAddress! + y * rowLength
                    rows.forEachTap(of: y) { row, weight in
                        let inRow = horizontal.baseAddress! + row * rowLength
                        for i in 0..<rowLength { outRow[i] += weight * inRow[i] }
                    }
                }
            }
        }
        return ColorImage(width: newWidth, height: newHeight, channels: c, pixels: output)
    }
}

/// One axis of a resize: for each output sample, the inputs it reads and their weights
/// (summing to 1): area averaging when shrinking, linear interpolation otherwise.
struct ResampleAxis {
    private var firstInputs: [Int] = []
    private var weightStarts = [0]
    private var weights: [Float] = []

    init(from inputCount: Int, to outputCount: Int) {
        for i in 0..<outputCount {
            if outputCount < inputCount {
                // Output i covers [i * n, (i + 1) * n) in units of 1/m input pixel.
                let start = i * inputCount, end = start + inputCount
                let first = start / outputCount, last = (end - 1) / outputCount
                firstInputs.append(first)
                for j in first...last {
                    let overlap = min(end, (j + 1) * outputCount) - max(start, j * outputCount)
                    weights.append(Float(overlap) / Float(inputCount))
                }
            } else {
                let source = max(0, min(Double(inputCount - 1), (Double(i) + 0.5) * Double(inputCount) / Double(outputCount) - 0.5))
                let first = Int(source.rounded(.down))
                let fraction = Float(source - Double(first))
                firstInputs.append(first)
                weights.append(1 - fraction)
                if first + 1 < inputCount { weights.append(fraction) }
            }
            weightStarts.append(weights.count)
        }
    }

    func forEachTap(of index: Int, _ body: (_ input: Int, _ weight: Float) -> Void) {
        for tap in weightStarts[index]..<weightStarts[index + 1] {
            body(firstInputs[index] + tap - weightStarts[index], weights[tap])
        }
    }
}
