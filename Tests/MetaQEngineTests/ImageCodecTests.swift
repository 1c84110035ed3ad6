import Foundation
import Testing

import MetaQEngine

/// The description of the `DataError` that `body` throws, or a note that it threw none.
func imageErrorMessage(_ body: () throws -> Any) -> String {
    do {
        _ = try body()
        return "no error"
    } catch let error as DataError {
        return error.description
    } catch {
        return "not a DataError: \(error)"
    }
}

/// A `width` x `height` RGB image whose red rises left to right, green top to bottom and
/// blue is constant: smooth enough to survive JPEG closely.
func gradientImage(width: Int, height: Int, blue: Float = 0.25) -> ColorImage {
    var pixels: [Float] = []
    for y in 0..<height {
        for x in 0..<width {
            pixels += [Float(x) / Float(max(width - 1, 1)), Float(y) / Float(max(height - 1, 1)), blue]
        }
    }
    return ColorImage(width: width, height: height, channels: 3, pixels: pixels)
}

/// The PNG chunk CRC (ISO 3309), to forge headers that libpng accepts.
private func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

private func bigEndian(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
}

@Suite struct ImageCodecTests {
    @Test func pngRoundTripsRGBAndGrayExactly() throws {
        let rgb = ColorImage(width: 2, height: 1, channels: 3, pixels: [1, 0, 0, 0, 51.0 / 255, 1])
        #expect(try ColorImage.decode(rgb.pngData(), source: "rgb.png", channels: 3) == rgb)
        let gray = ColorImage(width: 3, height: 1, channels: 1, pixels: [0, 128.0 / 255, 1])
        #expect(try ColorImage.decode(gray.pngData(), source: "gray.png", channels: 1) == gray)
        // Gray read as RGB repeats the intensity in each channel.
        let spread = try ColorImage.decode(gray.pngData(), source: "gray.png", channels: 3)
        let half: Float = 128.0 / 255
        let expected: [Float] = [0, 0, 0, half, half, half, 1, 1, 1]
        #expect(spread.pixels == expected)
    }

    @Test func decodesJPEGCloseToTheEncodedPixels() throws {
        let image = gradientImage(width: 16, height: 8)
        let decoded = try ColorImage.decode(image.jpegData(quality: 100), source: "g.jpg", channels: 3)
        #expect(decoded.width == 16 && decoded.height == 8 && decoded.channels == 3)
        let worst = zip(decoded.pixels, image.pixels).map { abs($0 - $1) }.max()!
        #expect(worst < 0.04, "largest JPEG error \(worst)")
        let gray = try ColorImage.decode(image.jpegData(quality: 100), source: "g.jpg", channels: 1)
        #expect(gray.channels == 1 && gray.pixels.count == 16 * 8)
    }

    @Test func namesTheFileForUnknownEmptyAndTruncatedData() throws {
        #expect(imageErrorMessage { try ColorImage.decode([UInt8](), source: "a/empty.jpg", channels: 3) }
            == "a/empty.jpg: empty file, not an image")
        #expect(imageErrorMessage { try ColorImage.decode(Array("filename,label\n".utf8), source: "x.jpg", channels: 3) }
            == "x.jpg: not a PNG or JPEG image (unknown signature)")
        let jpeg = try gradientImage(width: 16, height: 16).jpegData()
        for kept in [3, 20, jpeg.count / 2] {
            let message = imageErrorMessage { try ColorImage.decode(jpeg.prefix(kept), source: "cut.jpg", channels: 3) }
            #expect(message.hasPrefix("cut.jpg: corrupt JPEG"), "\(message)")
            #expect(message != "no error")
        }
        let png = try gradientImage(width: 16, height: 16).pngData()
        let message = imageErrorMessage { try ColorImage.decode(png.prefix(40), source: "cut.png", channels: 3) }
        #expect(message.hasPrefix("cut.png: corrupt PNG"), "\(message)")
    }

    @Test func rejectsAHugeJPEGHeaderBeforeAllocating() throws {
        var jpeg = try gradientImage(width: 8, height: 8).jpegData()
        // SOF0: FF C0, length (2), precision (1), height (2), width (2).
        let sof = try #require(jpeg.indices.first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg.replaceSubrange(sof + 5..<sof + 9, with: [0x27, 0x10, 0x27, 0x10])
        #expect(imageErrorMessage { try ColorImage.decode(jpeg, source: "huge.jpg", channels: 3) }
            == "huge.jpg: image is 10000 x 10000, more than \(ColorImage.maxPixelCount) pixels")
    }

    @Test func rejectsAHugePNGHeaderBeforeAllocating() throws {
        var png = try gradientImage(width: 8, height: 8).pngData()
        // IHDR data starts at byte 16: width (4), height (4); its CRC covers bytes 12..<29.
        png.replaceSubrange(16..<24, with: bigEndian(1_000_000) + bigEndian(1_000_000))
        png.replaceSubrange(29..<33, with: bigEndian(crc32(png[12..<29])))
        #expect(imageErrorMessage { try ColorImage.decode(png, source: "huge.png", channels: 1) }
            == "huge.png: image is 1000000 x 1000000, more than \(ColorImage.maxPixelCount) pixels")
    }

    @Test func sameSizeResizeIsExact() {
        let image = gradientImage(width: 5, height: 3)
        #expect(image.resized(width: 5, height: 3) == image)
    }

    @Test func shrinksByAreaAveraging() {
        // 4 x 2 RGB, each 2 x 2 block averages to one pixel.
        let image = ColorImage(width: 4, height: 2, channels: 1, pixels: [0, 1, 0.5, 0.5, 1, 0, 0.25, 0.75])
        let small = image.resized(width: 2, height: 1)
        #expect(small.pixels == [0.5, 0.5])
        let constant = ColorImage(width: 105, height: 105, channels: 3, pixels: [Float](repeating: 0.3, count: 105 * 105 * 3))
        let resized = constant.resized(width: 84, height: 84)
        #expect(resized.pixels.allSatisfy { abs($0 - 0.3) < 1e-5 })
    }

    @Test func enlargesBilinearlyWithHalfPixelCentres() {
        // A 2-pixel row [0, 1] grown to 4: sources -0.25, 0.25, 0.75, 1.25 -> clamped, interpolated.
        let image = ColorImage(width: 2, height: 1, channels: 1, pixels: [0, 1])
        #expect(image.resized(width: 4, height: 1).pixels == [0, 0.25, 0.75, 1])
        // Channels stay apart.
        let rgb = ColorImage(width: 1, height: 1, channels: 3, pixels: [0.1, 0.5, 0.9])
        let repeated: [Float] = Array([[Float]](repeating: [0.1, 0.5, 0.9], count: 4).joined())
        #expect(rgb.resized(width: 2, height: 2).pixels == repeated)
    }
}
