import Foundation
import Testing

import MetaQEngine

/// Writes `episodes` (names) of fixed episodes under `folder`: each `ways` classes named
/// c0, c1, ..., with `support` images `support_<i>.png` and `query` images `query_<i>.png`;
/// class c of episode e is a solid colour set by (e, c), image i a shade of blue.
func writeEpisodeFolder(in folder: String, episodes: [String] = ["1", "2", "10"], ways: Int = 3, support: Int = 1, query: Int = 2) throws {
    for (e, episode) in episodes.enumerated() {
        for c in 0..<ways {
            let path = "\(folder)/\(episode)/c\(c)"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            for (role, count) in [("support", support), ("query", query)] {
                for i in 0..<count {
                    let image = ColorImage(width: 6, height: 6, channels: 3,
                                           pixels: (0..<36).flatMap { _ in [Float(c) / Float(ways), Float(e) / 16, Float(i) / 8] })
                    try Data(image.pngData()).write(to: URL(fileURLWithPath: "\(path)/\(role)_\(i).png"))
                }
            }
        }
    }
}

private func temporaryFolder() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("metaq-cache-\(UUID().uuidString)").path
}

private func allPixels(_ data: ImageDataset) -> [Float] {
    (0..<data.classCount).flatMap { c in (0..<data.imageCount(ofClass: c)).flatMap { data.pixels(ofClass: c, image: $0) } }
}

/// Sets a file's modification time explicitly: a rewrite within the file system's clock
/// tick could otherwise keep the old time.
private func touch(_ path: String, secondsAgo: Double) throws {
    try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -secondsAgo)], ofItemAtPath: path)
}

@Suite struct ImageCacheTests {
    @Test func writesTheCacheThenMapsItWithTheSameImages() throws {
        let root = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try writeTinyImageDataset(in: root)
        let cacheFolder = root + "/cache"
        let first = try ImageDataset(classFolders: root + "/train", imageSize: 5, channels: 3, mean: [0.5, 0.4, 0.3], cache: .folder(cacheFolder))
        guard case let .written(path) = first.cacheOutcome else { Issue.record("written expected, got \(first.cacheOutcome)"); return }
        #expect(path.hasPrefix(cacheFolder + "/train-5x3-") && path.hasSuffix(".cache"))
        // 64 bytes of header, then 12 images of 5 x 5 x 3 floats.
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue == 64 + 12 * 75 * 4)
        #expect(try FileManager.default.contentsOfDirectory(atPath: cacheFolder) == [(path as NSString).lastPathComponent])
        let second = try ImageDataset(classFolders: root + "/train", imageSize: 5, channels: 3, mean: [0.5, 0.4, 0.3], cache: .folder(cacheFolder))
        #expect(second.cacheOutcome == .loaded(path))
        #expect(second.classNames == first.classNames && second.imageNames == first.imageNames)
        #expect(allPixels(second) == allPixels(first))
        let uncached = try ImageDataset(classFolders: root + "/train", imageSize: 5, channels: 3, mean: [0.5, 0.4, 0.3])
        #expect(uncached.cacheOutcome == .off && allPixels(uncached) == allPixels(first))
        // Other settings are another file: the first is kept.
        let gray = try ImageDataset(classFolders: root + "/train", imageSize: 5, channels: 1, cache: .folder(cacheFolder))
        guard case .written = gray.cacheOutcome else { Issue.record("written expected, got \(gray.cacheOutcome)"); return }
        #expect(try FileManager.default.contentsOfDirectory(atPath: cacheFolder).count == 2)
    }

    @Test func automaticCacheLivesInTheDatasetFolderAndIsNotAClass() throws {
        let root = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try writeTinyImageDataset(in: root)
        let first = try ImageDataset(classFolders: root + "/train", imageSize: 4, channels: 3, cache: .automatic)
        guard case let .written(path) = first.cacheOutcome else { Issue.record("written expected, got \(first.cacheOutcome)"); return }
        #expect(path.hasPrefix(root + "/train/.metaq-cache/"))
        let second = try ImageDataset(classFolders: root + "/train", imageSize: 4, channels: 3, cache: .automatic)
        #expect(second.cacheOutcome == .loaded(path) && second.classNames == ["n01", "n02", "n03"])
        // A split CSV's cache is beside the CSV file.
        let csv = try ImageDataset(splitCSV: root + "/test.csv", images: root + "/images", imageSize: 4, channels: 3, cache: .automatic)
        guard case let .written(csvPath) = csv.cacheOutcome else { Issue.record("written expected, got \(csv.cacheOutcome)"); return }
        #expect(csvPath.hasPrefix(root + "/.metaq-cache/test.csv-4x3-"))
    }

    @Test func rebuildsWhenImagesChange() throws {
        let root = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try writeTinyImageDataset(in: root)
        let cache = ImageCache.folder(root + "/cache")
        func load() throws -> ImageDataset { try ImageDataset(classFolders: root + "/train", imageSize: 3, channels: 3, cache: cache) }
        let first = try load()
        #expect(try load().cacheOutcome == .loaded(first.cacheOutcome.path!))
        // A changed image (new content, new modification time): decoded again, new pixels.
        let white = ColorImage(width: 10, height: 6, channels: 3, pixels: [Float](repeating: 1, count: 180))
        try Data(white.jpegData(quality: 100)).write(to: URL(fileURLWithPath: root + "/train/n02/1.jpg"))
        try touch(root + "/train/n02/1.jpg", secondsAgo: 100)
        let changed = try load()
        #expect(changed.cacheOutcome == .written(first.cacheOutcome.path!))
        #expect(changed.pixels(ofClass: 1, image: 1).allSatisfy { $0 > 0.97 })
        #expect(try load().cacheOutcome == .loaded(first.cacheOutcome.path!))
        // The same bytes with another modification time count as a change too.
        try touch(root + "/train/n02/1.jpg", secondsAgo: 50)
        #expect(try load().cacheOutcome == .written(first.cacheOutcome.path!))
        // A renamed image and a removed one.
        try FileManager.default.moveItem(atPath: root + "/train/n03/0.jpg", toPath: root + "/train/n03/9.jpg")
        let renamed = try load()
        #expect(renamed.cacheOutcome == .written(first.cacheOutcome.path!) && renamed.imageName(ofClass: 2, image: 3) == "9.jpg")
        try FileManager.default.removeItem(atPath: root + "/train/n03/9.jpg")
        let removed = try load()
        #expect(removed.cacheOutcome == .written(first.cacheOutcome.path!) && removed.totalImageCount == 11)
        #expect(try load().cacheOutcome == .loaded(first.cacheOutcome.path!))
        // An image that no longer decodes is named, cache or not.
        try Data("not an image".utf8).write(to: URL(fileURLWithPath: root + "/train/n01/0.jpg"))
        #expect(imageErrorMessage { try load() } == "\(root)/train/n01/0.jpg: not a PNG or JPEG image (unknown signature)")
    }

    @Test func rebuildsADamagedCacheFile() throws {
        let root = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try writeTinyImageDataset(in: root)
        let cache = ImageCache.folder(root + "/cache")
        func load() throws -> ImageDataset { try ImageDataset(classFolders: root + "/train", imageSize: 4, channels: 3, cache: cache) }
        let reference = try load()
        let path = reference.cacheOutcome.path!
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        func damaged(_ bytes: Data) throws -> ImageDataset {
            try bytes.write(to: URL(fileURLWithPath: path))
            let data = try load()
            #expect(data.cacheOutcome == .written(path), "\(data.cacheOutcome)")
            #expect(allPixels(data) == allPixels(reference))
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == whole)
            return data
        }
        _ = try damaged(whole.prefix(whole.count - 4))                    // truncated
        _ = try damaged(whole.prefix(40))                                 // cut inside the header
        _ = try damaged(Data())                                           // empty
        _ = try damaged(whole + Data([0, 0, 0, 0]))                       // too long
        var header = whole
        header[3] ^= 0xFF
        _ = try damaged(header)                                           // bad magic
        var count = whole
        count[24] ^= 1
        _ = try damaged(count)                                            // image count (header checksum)
        var payload = whole
        for i in 64..<(64 + 16) { payload[i] = 0xFF }
        _ = try damaged(payload)                                          // first floats overwritten (sampled checksum)
        // A folder where the cache file should be: the dataset loads without a cache.
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let blocked = try load()
        guard case .unwritable = blocked.cacheOutcome else { Issue.record("unwritable expected, got \(blocked.cacheOutcome)"); return }
        #expect(allPixels(blocked) == allPixels(reference))
    }

    @Test func loadsWithoutACacheWhereNoneCanBeWritten() throws {
        let root = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try writeTinyImageDataset(in: root)
        try Data("a file".utf8).write(to: URL(fileURLWithPath: root + "/file"))
        let data = try ImageDataset(classFolders: root + "/train", imageSize: 4, channels: 3, cache: .folder(root + "/file/cache"))
        #expect(data.cacheOutcome == .unwritable("cannot create \(root)/file/cache"))
        #expect(data.totalImageCount == 12)
        // No temporary files are left beside a written cache.
        let written = try ImageDataset(classFolders: root + "/train", imageSize: 4, channels: 3, cache: .folder(root + "/c"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/c") == [(written.cacheOutcome.path! as NSString).lastPathComponent])
    }

    @Test func readsAFolderOfFixedEpisodes() throws {
        let root = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try writeTinyImageDataset(in: root)
        try writeEpisodeFolder(in: root + "/episodes")
        let dataset = try ImageDataset(classFolders: root + "/train", imageSize: 4, channels: 3, mean: [0.5, 0.5, 0.5])
        let listing = try EpisodeFolder.read(root + "/episodes", like: dataset)
        #expect(listing.names == ["1", "2", "10"])
        #expect(listing.episodes.count == 3 && listing.episodes.allSatisfy { $0.ways == 3 })
        #expect(listing.episodes[1] == ImageEpisode(classes: [3, 4, 5], support: [[0], [0], [0]], query: [[1, 2], [1, 2], [1, 2]]))
        #expect(listing.dataset.classNames[4] == "2/c1" && listing.dataset.imageName(ofClass: 4, image: 2) == "query_1.png")
        #expect(listing.dataset.valuesPerImage == 48)
        // Decoded with the dataset's settings: class c1 of episode 2 has red 1/3 and green 1/16, mean 0.5 taken off.
        let pixel = Array(listing.dataset.pixels(ofClass: 4, image: 2).prefix(3))
        let expected: [Float] = [(85.0 / 255) - 0.5, (16.0 / 255) - 0.5, (32.0 / 255) - 0.5]
        #expect(zip(pixel, expected).allSatisfy { abs($0 - $1) < 1e-5 }, "\(pixel)")
        let tasks = try ImageSetTasks(dataset: listing.dataset, ways: 3)
        let batch = tasks.batch(listing.episodes[...])
        #expect(batch.support.inputs.shape == [3, 3, 4, 4, 3] && batch.query.inputs.shape == [3, 6, 4, 4, 3])
        guard case let .labels(labels) = batch.query.targets else { Issue.record("labels expected"); return }
        #expect(labels.prefix(6) == [0, 0, 1, 1, 2, 2])
    }

    @Test func namesTheProblemInAnEpisodeFolder() throws {
        let root = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try writeTinyImageDataset(in: root)
        let dataset = try ImageDataset(classFolders: root + "/train", imageSize: 4, channels: 3)
        let e = root + "/episodes"
        func message() -> String { imageErrorMessage { try EpisodeFolder.read(e, like: dataset) } }
        #expect(message() == "missing folder: \(e)")
        try FileManager.default.createDirectory(atPath: e, withIntermediateDirectories: true)
        #expect(message() == "\(e): no episode folders (the layout is EPISODES/<episode>/<class>/ with images named support* and query*)")
        try writeEpisodeFolder(in: e)
        #expect(message() == "no error")
        try FileManager.default.removeItem(atPath: e + "/2/c1/query_0.png")
        try FileManager.default.removeItem(atPath: e + "/2/c1/query_1.png")
        #expect(message() == "\(e)/2/c1: no query images (PNG or JPEG files named query*)")
        try FileManager.default.removeItem(atPath: e + "/2/c1/support_0.png")
        #expect(message() == "\(e)/2/c1: no support images (PNG or JPEG files named support*)")
        try FileManager.default.removeItem(atPath: e + "/2/c1")
        #expect(message() == "\(e)/2: 2 classes; the first episode (\(e)/1) has 3")
        try writeEpisodeFolder(in: e, episodes: ["1", "2"], ways: 3, support: 1, query: 2)
        try FileManager.default.removeItem(atPath: e + "/10/c2/query_1.png")
        try Data("hello".utf8).write(to: URL(fileURLWithPath: e + "/10/c2/query_1.jpg"))
        #expect(message() == "\(e)/10/c2/query_1.jpg: not a PNG or JPEG image (unknown signature)")
        try FileManager.default.moveItem(atPath: e + "/10/c2/query_1.jpg", toPath: e + "/10/c2/extra.jpg")
        #expect(message() == "\(e)/10/c2/extra.jpg: an episode image's name must start with 'support' or 'query'")
        try FileManager.default.removeItem(atPath: e + "/10/c2/extra.jpg")
        try FileManager.default.copyItem(atPath: e + "/10/c1/query_1.png", toPath: e + "/10/c2/query_1.png")
        try Data("notes".utf8).write(to: URL(fileURLWithPath: e + "/10/c2/README.txt"))  // not an image file: ignored
        #expect(message() == "no error")
        try FileManager.default.copyItem(atPath: e + "/10/c2/query_0.png", toPath: e + "/10/c2/query_9.png")
        #expect(message() == "\(e)/10/c2: 1 support and 3 query images; every class needs 1 and 2, as in \(e)/1")
        try FileManager.default.copyItem(atPath: e + "/1/c0/query_0.png", toPath: e + "/1/c0/query_9.png")
        #expect(message() == "\(e)/1/c1: 1 support and 2 query images; every class needs as many as the episode's first class (1 and 3, in 1/c0)")
        try FileManager.default.createDirectory(atPath: e + "/3", withIntermediateDirectories: true)
        try FileManager.default.removeItem(atPath: e + "/1")
        #expect(message() == "\(e)/3: no class folders in this episode")
    }
}

extension ImageCacheOutcome {
    /// The cache file loaded or written, if any.
    var path: String? {
        switch self {
        case .loaded(let path), .written(let path): path
        case .off, .unwritable: nil
        }
    }
}

/// The Omniglot loader (``ImageFolderDataset``) through the same cache.
@Suite struct OmniglotCacheTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/omniglot").path

    /// A copy of the Omniglot fixture in a fresh folder (so the test can change images).
    static func copyOfFixture() throws -> String {
        let root = temporaryFolder() + "/omniglot"
        try FileManager.default.createDirectory(atPath: (root as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: fixture, toPath: root)
        try? FileManager.default.removeItem(atPath: root + "/.metaq-cache")
        return root
    }

    static func allPixels(_ data: ImageFolderDataset) -> [Float] {
        (0..<data.classCount).flatMap { c in (0..<data.imageCount(ofClass: c)).flatMap { Array(data.pixels(ofClass: c, image: $0)) } }
    }

    @Test func writesThenMapsTheSameImagesAndRebuildsWhenAnImageChanges() throws {
        let root = try Self.copyOfFixture()
        let parent = (root as NSString).deletingLastPathComponent
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let cacheFolder = parent + "/cache"
        let first = try ImageFolderDataset(root: root, imageSize: 12, cache: .folder(cacheFolder))
        guard case let .written(path) = first.cacheOutcome else { Issue.record("written expected, got \(first.cacheOutcome)"); return }
        #expect((path as NSString).lastPathComponent.hasPrefix("omniglot-omniglot-12x1-"))
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue == 64 + first.totalImageCount * 144 * 4)
        let second = try ImageFolderDataset(root: root, imageSize: 12, cache: .folder(cacheFolder))
        #expect(second.cacheOutcome == .loaded(path))
        #expect(second.alphabets == first.alphabets && second.classCount == first.classCount)
        let mappedEqualsDecoded = Self.allPixels(second) == Self.allPixels(first)
        #expect(mappedEqualsDecoded)
        let uncached = try ImageFolderDataset(root: root, imageSize: 12)
        let uncachedEqualsDecoded = uncached.cacheOutcome == .off && Self.allPixels(uncached) == Self.allPixels(first)
        #expect(uncachedEqualsDecoded)
        // Rotated copies read the mapped pixels as they read decoded ones.
        var a = [Float](repeating: 0, count: 144), b = [Float](repeating: 0, count: 144)
        a.withUnsafeMutableBufferPointer { uncached.copyImage(ofClass: 1, image: 0, quarterTurns: 1, into: $0) }
        b.withUnsafeMutableBufferPointer { second.copyImage(ofClass: 1, image: 0, quarterTurns: 1, into: $0) }
        #expect(a == b)
        // Without inversion, or at another size, the pixels differ: other files.
        let raw = try ImageFolderDataset(root: root, imageSize: 12, invert: false, cache: .folder(cacheFolder))
        guard case let .written(rawPath) = raw.cacheOutcome else { Issue.record("written expected, got \(raw.cacheOutcome)"); return }
        #expect(rawPath != path)
        let inverted = zip(Self.allPixels(raw), Self.allPixels(first)).allSatisfy { abs($0 + $1 - 1) < 1e-6 }
        #expect(inverted)
        // An image replaced by another: the cache is rebuilt with the new pixels.
        let alphabet = first.alphabet(ofClass: 0), character = first.character(ofClass: 0)
        let images = try FileManager.default.contentsOfDirectory(atPath: "\(root)/\(alphabet)/\(character)").sorted()
        let other = "\(root)/\(first.alphabet(ofClass: 1))/\(first.character(ofClass: 1))"
        let replacement = try FileManager.default.contentsOfDirectory(atPath: other).sorted()[0]
        let target = "\(root)/\(alphabet)/\(character)/\(images[0])"
        try FileManager.default.removeItem(atPath: target)
        try FileManager.default.copyItem(atPath: "\(other)/\(replacement)", toPath: target)
        try touch(target, secondsAgo: 5)
        let changed = try ImageFolderDataset(root: root, imageSize: 12, cache: .folder(cacheFolder))
        #expect(changed.cacheOutcome == .written(path))
        #expect(Array(changed.pixels(ofClass: 0, image: 0)) == Array(uncached.pixels(ofClass: 1, image: 0)))
        let changedDiffers = Self.allPixels(changed) != Self.allPixels(first)
        #expect(changedDiffers)
    }

    @Test func automaticCacheLivesInTheRootAndIsNotAnAlphabet() throws {
        let root = try Self.copyOfFixture()
        defer { try? FileManager.default.removeItem(atPath: (root as NSString).deletingLastPathComponent) }
        let first = try ImageFolderDataset(root: root, imageSize: 10, cache: .automatic)
        guard case let .written(path) = first.cacheOutcome else { Issue.record("written expected, got \(first.cacheOutcome)"); return }
        #expect(path.hasPrefix(root + "/.metaq-cache/"))
        let second = try ImageFolderDataset(root: root, imageSize: 10, cache: .automatic)
        #expect(second.cacheOutcome == .loaded(path))
        #expect(second.alphabets == first.alphabets)
        // A damaged file is rebuilt, not read.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: 100)
        try handle.close()
        let third = try ImageFolderDataset(root: root, imageSize: 10, cache: .automatic)
        #expect(third.cacheOutcome == .written(path))
        let rebuiltEqualsDecoded = Self.allPixels(third) == Self.allPixels(first)
        #expect(rebuiltEqualsDecoded)
    }
}
