import Foundation
import Testing

import MetaQEngine

/// Fixtures live beside this file (regenerate with `python3 Fixtures/make_fixtures.py`).
private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures").path

private func fixture(_ relativePath: String) -> String { fixtures + "/" + relativePath }

private func fixtureBytes(_ relativePath: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: fixture(relativePath))))
}

/// The description of the `DataError` that `body` throws, or a note that it threw none.
private func dataErrorMessage(_ body: () throws -> Any) -> String {
    do {
        _ = try body()
        return "no error"
    } catch let error as DataError {
        return error.description
    } catch {
        return "not a DataError: \(error)"
    }
}

/// Runs `body` on a fresh temporary folder, removed afterwards.
private func withTemporaryFolder<Result>(_ body: (String) throws -> Result) throws -> Result {
    let folder = FileManager.default.temporaryDirectory
        .appendingPathComponent("metaq-data-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    return try body(folder)
}

// MARK: - PNG decoding

@Suite struct PNGDecodingTests {
    @Test func decodesEightBitGrayExactly() throws {
        let image = try GrayImage.decodePNG(try fixtureBytes("grid/Digits/grid/0001_01.png"), source: "grid.png")
        #expect(image.width == 3 && image.height == 3)
        #expect(image.pixels == (1...9).map { Float($0 * 25) / 255 })
    }

    @Test func decodesOneBitGrayToBlackAndWhite() throws {
        let path = fixture("omniglot/Greek/character01/0001_01.png")
        let image = try GrayImage.decodePNG(try Data(contentsOf: URL(fileURLWithPath: path)), source: path)
        #expect(image.width == 20 && image.height == 20)
        #expect(Set(image.pixels) == [0, 1])
        let inkCount = image.pixels.filter { $0 == 0 }.count
        #expect((20...80).contains(inkCount), "a thick stroke plus noise, got \(inkCount) black pixels")
    }

    @Test func rejectsEmptyData() {
        #expect(dataErrorMessage { try GrayImage.decodePNG([UInt8](), source: "a/empty.png") }
            == "a/empty.png: empty file, not a PNG image")
    }

    @Test func rejectsDataWithoutThePNGSignature() {
        let text = Array("task,x,y\n".utf8)
        #expect(dataErrorMessage { try GrayImage.decodePNG(text, source: "Greek/character03/0394_01.png") }
            == "Greek/character03/0394_01.png: not a PNG file (bad signature)")
        #expect(dataErrorMessage { try GrayImage.decodePNG([0x89, 0x50], source: "short.png") }
            == "short.png: not a PNG file (bad signature)")
    }

    @Test(arguments: [8, 20, 33, 60])
    func rejectsTruncatedData(keptBytes: Int) throws {
        let bytes = try fixtureBytes("omniglot/Greek/character01/0001_01.png")
        let message = dataErrorMessage { try GrayImage.decodePNG(bytes.prefix(keptBytes), source: "cut.png") }
        #expect(message.hasPrefix("cut.png: corrupt PNG ("), "\(message)")
    }

    @Test func rejectsCorruptImageData() throws {
        var bytes = try fixtureBytes("omniglot/Greek/character01/0001_01.png")
        let idat = try #require(bytes.indices.first { bytes[$0...].starts(with: Array("IDAT".utf8)) })
        bytes[idat + 6] ^= 0xFF
        let message = dataErrorMessage { try GrayImage.decodePNG(bytes, source: "crc.png") }
        #expect(message.hasPrefix("crc.png: corrupt PNG ("), "\(message)")
    }
}

// MARK: - Area-averaging resize

@Suite struct AreaResizeTests {
    @Test(arguments: [Float(0), 1, 0.3])
    func keepsAConstantImageConstant(value: Float) {
        let image = GrayImage(width: 105, height: 105, pixels: Array(repeating: value, count: 105 * 105))
        let small = image.resized(width: 28, height: 28)
        #expect(small.width == 28 && small.height == 28)
        #expect(small.pixels.allSatisfy { abs($0 - value) <= 1e-6 })
        if value == 0 || value == 1 {
            #expect(small.pixels.allSatisfy { $0 == value }, "blank and full ink stay exact")
        }
    }

    @Test func averagesTwoByTwoBlocksExactly() {
        let image = GrayImage(width: 4, height: 4, pixels: [
            0, 1, 0.5, 0.5,
            1, 0, 0.25, 0.75,
            1, 1, 0, 0,
            1, 0, 0, 0.125,
        ])
        #expect(image.resized(width: 2, height: 2).pixels == [0.5, 0.5, 0.75, 0.03125])
    }

    @Test func weighsStraddlingPixelsByTheirCoveredFraction() {
        // 3 -> 2: each output covers 1.5 inputs; the middle input is split in half.
        let row = GrayImage(width: 3, height: 1, pixels: [0.3, 0.6, 0.9])
        let resized = row.resized(width: 2, height: 1).pixels
        #expect(abs(resized[0] - 0.4) < 1e-6 && abs(resized[1] - 0.8) < 1e-6)
    }

    @Test func preservesTheMeanAtTheOmniglotRatio() {
        var generator = SystemRandomNumberGenerator()
        let pixels = (0..<105 * 105).map { _ in Float.random(in: 0...1, using: &generator) }
        let small = GrayImage(width: 105, height: 105, pixels: pixels).resized(width: 28, height: 28)
        let mean = { (values: [Float]) in values.reduce(0, +) / Float(values.count) }
        #expect(abs(mean(small.pixels) - mean(pixels)) < 1e-4)
        // A one-pixel line in column 0 covers 1/3.75 of output column 0 and nothing else.
        let line = GrayImage(width: 105, height: 105, pixels: (0..<105 * 105).map { $0 % 105 == 0 ? 1 : 0 })
        let shrunk = line.resized(width: 28, height: 28).pixels
        #expect(shrunk.enumerated().allSatisfy { index, value in
            index % 28 == 0 ? abs(value - 1 / 3.75) < 1e-6 : value == 0
        })
    }

    @Test func enlargesByRepeatingPixels() {
        let image = GrayImage(width: 2, height: 1, pixels: [0.25, 0.75])
        #expect(image.resized(width: 4, height: 2).pixels == [0.25, 0.25, 0.75, 0.75, 0.25, 0.25, 0.75, 0.75])
    }
}

// MARK: - Image folders

@Suite struct ImageFolderDatasetTests {
    @Test func scansAlphabetsCharactersAndImagesInSortedOrder() throws {
        let dataset = try ImageFolderDataset(root: fixture("omniglot"), imageSize: 20)
        #expect(dataset.alphabets == ["Greek", "Latin"])
        #expect(dataset.classCount == 6)
        #expect(dataset.totalImageCount == 24)
        #expect((0..<6).map(dataset.alphabet(ofClass:)) == ["Greek", "Greek", "Greek", "Latin", "Latin", "Latin"])
        #expect((0..<6).map(dataset.character(ofClass:))
            == ["character01", "character02", "character03", "character01", "character02", "character03"])
        #expect((0..<6).allSatisfy { dataset.imageCount(ofClass: $0) == 4 })
        #expect(dataset.classes(inAlphabets: ["Latin"]) == [3, 4, 5])
        #expect(dataset.classes(inAlphabets: ["Greek", "Latin"]) == Array(0..<6))
        #expect(dataset.classes(inAlphabets: ["Korean"]).isEmpty)

        // Image 2 of class 4 is the third file of Latin/character02; 20 x 20 needs no resizing.
        let path = fixture("omniglot/Latin/character02/0005_03.png")
        let decoded = try GrayImage.decodePNG(try fixtureBytes("omniglot/Latin/character02/0005_03.png"), source: path)
        #expect(Array(dataset.pixels(ofClass: 4, image: 2)) == decoded.pixels.map { 1 - $0 })
    }

    @Test func invertsSoInkIsOneAndBackgroundZero() throws {
        let inverted = try ImageFolderDataset(root: fixture("omniglot"), imageSize: 20)
        let plain = try ImageFolderDataset(root: fixture("omniglot"), imageSize: 20, invert: false)
        for image in 0..<4 {
            let ink = Array(inverted.pixels(ofClass: 1, image: image))
            let gray = Array(plain.pixels(ofClass: 1, image: image))
            #expect(Set(ink) == [0, 1])
            #expect(ink.filter { $0 == 0 }.count > ink.count / 2, "most of a drawing is background")
            #expect(zip(ink, gray).allSatisfy { $0 + $1 == 1 })
        }
    }

    @Test func resizesToTwentyEightByDefault() throws {
        let dataset = try ImageFolderDataset(root: fixture("omniglot"))
        #expect(dataset.imageSize == 28 && dataset.pixelsPerImage == 784)
        let pixels = dataset.pixels(ofClass: 5, image: 3)
        #expect(pixels.count == 784)
        #expect(pixels.allSatisfy { (0...1).contains($0) })
        #expect(pixels.contains(1) && pixels.contains(0))
    }

    @Test func keepsCharactersApartForANearestCentroidClassifier() throws {
        let dataset = try ImageFolderDataset(root: fixture("omniglot"), imageSize: 10)
        let images = (0..<dataset.classCount).map { label in
            (0..<4).map { Array(dataset.pixels(ofClass: label, image: $0)) }
        }
        func distance(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) }
        var correct = 0
        for label in images.indices {
            for heldOut in 0..<4 {
                let centroids = images.enumerated().map { other, drawings in
                    let kept = drawings.indices.filter { other != label || $0 != heldOut }.map { drawings[$0] }
                    return (0..<dataset.pixelsPerImage).map { pixel in
                        kept.map { $0[pixel] }.reduce(0, +) / Float(kept.count)
                    }
                }
                let guess = centroids.indices.min { distance(images[label][heldOut], centroids[$0])
                    < distance(images[label][heldOut], centroids[$1]) }
                correct += guess == label ? 1 : 0
            }
        }
        #expect(correct >= 22, "leave-one-out nearest centroid got \(correct) of 24")
    }

    @Test func copiesImagesRotatedCounterclockwise() throws {
        // The grid fixture reads 1 2 3 / 4 5 6 / 7 8 9 (in units of 25/255).
        let dataset = try ImageFolderDataset(root: fixture("grid"), imageSize: 3, invert: false)
        func rotated(_ quarterTurns: Int) -> [Int] {
            var destination = [Float](repeating: -1, count: 9)
            destination.withUnsafeMutableBufferPointer {
                dataset.copyImage(ofClass: 0, image: 0, quarterTurns: quarterTurns, into: $0)
            }
            return destination.map { Int(($0 * 255 / 25).rounded()) }
        }
        #expect(rotated(0) == [1, 2, 3, 4, 5, 6, 7, 8, 9])
        #expect(rotated(1) == [3, 6, 9, 2, 5, 8, 1, 4, 7])
        #expect(rotated(2) == [9, 8, 7, 6, 5, 4, 3, 2, 1])
        #expect(rotated(3) == [7, 4, 1, 8, 5, 2, 9, 6, 3])
        #expect(rotated(-1) == rotated(3))
        #expect(rotated(4) == rotated(0))
    }

    @Test func copiesIntoTheStartOfALargerBuffer() throws {
        let dataset = try ImageFolderDataset(root: fixture("omniglot"))
        var batch = [Float](repeating: -1, count: 3 * dataset.pixelsPerImage)
        batch.withUnsafeMutableBufferPointer { buffer in
            let slot = UnsafeMutableBufferPointer(rebasing: buffer[dataset.pixelsPerImage...])
            dataset.copyImage(ofClass: 2, image: 1, into: slot)
        }
        #expect(batch[..<784].allSatisfy { $0 == -1 } && batch[1568...].allSatisfy { $0 == -1 })
        #expect(Array(batch[784..<1568]) == Array(dataset.pixels(ofClass: 2, image: 1)))
    }

    @Test func requiresEnoughImagesPerClass() throws {
        let dataset = try ImageFolderDataset(root: fixture("omniglot"))
        #expect(dataErrorMessage { try dataset.requireImages(shots: 5, queries: 15) }
            == "class Greek/character01 has 4 images; a 5-shot task with 15 queries needs 20")
        #expect(dataErrorMessage { try dataset.requireImages(shots: 1, queries: 4, classes: [1, 4]) }
            == "class Greek/character02 has 4 images; a 1-shot task with 4 queries needs 5")
        #expect(throws: Never.self) { try dataset.requireImages(shots: 1, queries: 3) }
    }

    @Test func reportsAMissingFolder() {
        let root = fixture("no-such-folder")
        #expect(dataErrorMessage { try ImageFolderDataset(root: root) } == "missing folder: \(root)")
        let file = fixture("omniglot/README.txt")
        #expect(dataErrorMessage { try ImageFolderDataset(root: file) } == "missing folder: \(file)")
    }

    @Test func reportsAFolderWithoutImages() throws {
        try withTemporaryFolder { root in
            try FileManager.default.createDirectory(
                atPath: root + "/Greek/character01", withIntermediateDirectories: true)
            try Data("not an image".utf8).write(to: URL(fileURLWithPath: root + "/Greek/character01/notes.txt"))
            #expect(dataErrorMessage { try ImageFolderDataset(root: root) } == "no PNG images under \(root)")
        }
    }

    @Test func namesTheCorruptImage() {
        let root = fixture("corrupt")
        let message = dataErrorMessage { try ImageFolderDataset(root: root) }
        #expect(message.hasPrefix("\(root)/Greek/character01/0001_02.png: corrupt PNG ("), "\(message)")
    }

    @Test func namesAnEmptyImageFile() throws {
        try withTemporaryFolder { root in
            let character = root + "/Greek/character01"
            try FileManager.default.createDirectory(atPath: character, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                atPath: fixture("omniglot/Greek/character01/0001_01.png"), toPath: character + "/0001_01.png")
            try Data().write(to: URL(fileURLWithPath: character + "/0001_02.png"))
            #expect(dataErrorMessage { try ImageFolderDataset(root: root) }
                == "\(character)/0001_02.png: empty file, not a PNG image")
        }
    }
}

// MARK: - CSV task tables

@Suite struct CSVTaskTableTests {
    @Test func groupsRowsByTaskInFirstAppearanceOrder() throws {
        let table = try CSVTaskTable(path: fixture("csv/tasks.csv"), taskColumn: "task", targetColumn: "y")
        #expect(table.featureColumns == ["x1", "x2"] && table.featureCount == 2)
        #expect(table.tasks.map(\.id) == ["sine, A", "sine B", "say \"hi\""])
        #expect(table.tasks.map(\.rowCount) == [3, 1, 1])
        #expect(table.tasks[0].features == [0.5, 1, 1, 0.5, 7, 8])
        #expect(table.tasks[0].targets == [0.25, -0.75, 9])
        #expect(table.tasks[1].features == [-1.5, 2] && table.tasks[1].targets == [3])
        #expect(table.tasks[2].features == [2, 30] && table.tasks[2].targets == [4])
    }

    @Test func readsChosenFeatureColumnsInTheGivenOrder() throws {
        let table = try CSVTaskTable(
            path: fixture("csv/tasks.csv"), taskColumn: "task", featureColumns: ["x2", "x1"], targetColumn: "y")
        #expect(table.featureCount == 2)
        #expect(table.tasks[0].features == [1, 0.5, 0.5, 1, 8, 7])
    }

    @Test func reportsARaggedRowByItsLine() {
        let path = fixture("csv/ragged.csv")
        #expect(dataErrorMessage { try CSVTaskTable(path: path, taskColumn: "task", targetColumn: "y") }
            == "\(path):5: row has 3 fields, header has 4")
    }

    @Test func reportsANonNumericField() {
        let path = fixture("csv/non-numeric.csv")
        #expect(dataErrorMessage { try CSVTaskTable(path: path, taskColumn: "task", targetColumn: "y") }
            == "\(path):3: column 'y': 'abc' is not a number")
    }

    @Test func reportsAnEmptyFileAndAHeaderOnlyFile() {
        let empty = fixture("csv/empty.csv")
        #expect(dataErrorMessage { try CSVTaskTable(path: empty, taskColumn: "task", targetColumn: "y") }
            == "\(empty): empty file, expected a header row")
        let headerOnly = fixture("csv/header-only.csv")
        #expect(dataErrorMessage { try CSVTaskTable(path: headerOnly, taskColumn: "task", targetColumn: "y") }
            == "\(headerOnly): no data rows after the header")
    }

    @Test func reportsUnknownColumns() {
        let path = fixture("csv/tasks.csv")
        #expect(dataErrorMessage { try CSVTaskTable(path: path, taskColumn: "task", targetColumn: "z") }
            == "unknown column 'z' in \(path) (columns: task, x1, x2, y)")
        #expect(dataErrorMessage {
            try CSVTaskTable(path: path, taskColumn: "task", featureColumns: ["x1", "x3"], targetColumn: "y")
        } == "unknown column 'x3' in \(path) (columns: task, x1, x2, y)")
    }

    @Test func reportsAMissingFile() {
        let path = fixture("csv/no-such-file.csv")
        let message = dataErrorMessage { try CSVTaskTable(path: path, taskColumn: "task", targetColumn: "y") }
        #expect(message.hasPrefix("\(path): cannot read ("), "\(message)")
    }

    /// The message for parsing `csv` written to a temporary `data.csv`, with `PATH` for its path.
    private func message(parsing csv: String, featureColumns: [String]? = nil, target: String = "y") throws -> String {
        try withTemporaryFolder { folder in
            let path = folder + "/data.csv"
            try Data(csv.utf8).write(to: URL(fileURLWithPath: path))
            return dataErrorMessage {
                try CSVTaskTable(path: path, taskColumn: "task", featureColumns: featureColumns, targetColumn: target)
            }.replacingOccurrences(of: path, with: "PATH")
        }
    }

    @Test(arguments: ["nan", "inf", "-Infinity", "0x1p3", "1e", "e5", ".", "+", "1.2.3", "1,5", "", "1 2", "١"])
    func rejectsAnythingButPlainDecimals(text: String) throws {
        let quoted = "\"" + text + "\""
        #expect(try message(parsing: "task,x,y\nt,1,\(quoted)\n") == "PATH:2: column 'y': '\(text)' is not a number")
    }

    @Test func rejectsNumbersOutsideFloatRange() throws {
        #expect(try message(parsing: "task,x,y\nt,1e39,0\n")
            == "PATH:2: column 'x': '1e39' is out of range for a 32-bit float")
    }

    @Test func acceptsPlainDecimalsWithSurroundingSpaces() throws {
        try withTemporaryFolder { folder in
            let path = folder + "/data.csv"
            try Data("task,x,y\nt, -0.5 ,\t+1e-3\nt,\" 2. \",.25\n".utf8).write(to: URL(fileURLWithPath: path))
            let table = try CSVTaskTable(path: path, taskColumn: "task", targetColumn: "y")
            #expect(table.tasks.count == 1)
            #expect(table.tasks[0].features == [-0.5, 2] && table.tasks[0].targets == [0.001, 0.25])
        }
    }

    @Test func reportsMalformedQuotingByLine() throws {
        #expect(try message(parsing: "task,x,y\nt,1,2\nt,\"1,2\n") == "PATH:3: quoted field is never closed")
        #expect(try message(parsing: "task,x,y\nt,\"1\"2,3\n") == "PATH:2: unexpected text after a closing quote")
        #expect(try message(parsing: "task,x,y\nt,1\"2,3\n")
            == "PATH:2: quote inside an unquoted field (quote the whole field and double the quote)")
    }

    @Test func reportsUnusableHeaders() throws {
        #expect(try message(parsing: "task,x,x,y\nt,1,2,3\n") == "PATH: duplicate column 'x' in the header")
        #expect(try message(parsing: "task,,y\nt,1,2\n") == "PATH: header field 2 has no name")
        #expect(try message(parsing: "task,y\nt,1\n") == "PATH: no feature columns besides task 'task' and target 'y'")
        #expect(try message(parsing: "task,x,y\nt,1,2\n", target: "task")
            == "PATH: column 'task' cannot be both the task id and the target")
    }

    @Test func rejectsTextThatIsNotUTF8() throws {
        try withTemporaryFolder { folder in
            let path = folder + "/data.csv"
            try Data([0xFF, 0xFE, 0x74, 0x00]).write(to: URL(fileURLWithPath: path))
            #expect(dataErrorMessage { try CSVTaskTable(path: path, taskColumn: "task", targetColumn: "y") }
                == "\(path): not UTF-8 text")
        }
    }
}
