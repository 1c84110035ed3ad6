import Dispatch
import Foundation

/// Handwritten-character images in the Omniglot layout `ROOT/<alphabet>/<character>/<image>.png`,
/// decoded, resized and held in memory; each character folder is one class.
///
/// Alphabets, characters and images are taken in sorted name order, so class and image
/// indices are the same on every machine. Hidden entries (names starting with ".") and files
/// other than `*.png` are ignored. Every image is decoded once, in parallel, resized to
/// `imageSize` x `imageSize` by area averaging (see `GrayImage.resized(width:height:)`), and
/// stored in one contiguous buffer; with a `cache` (see ``ImageCache``, shared with
/// ``ImageDataset``) that buffer is written to a cache file on the first load and mapped from
/// it on later loads, rebuilt when an image is added, removed, renamed or changed.
///
/// ```swift
/// let omniglot = try ImageFolderDataset(root: "omniglot/images_background")
/// let training = omniglot.classes(inAlphabets: ["Greek", "Latin"])
/// try omniglot.requireImages(shots: 5, queries: 15, classes: training)
/// omniglot.copyImage(ofClass: training[0], image: 3, quarterTurns: 1, into: destination)
/// ```
public final class ImageFolderDataset: Sendable {
    /// The folder the dataset was loaded from.
    public let root: String
    /// The side of every stored image, in pixels.
    public let imageSize: Int
    /// Names of the alphabet folders, sorted.
    public let alphabets: [String]

    private let classNames: [(alphabet: String, character: String)]
    /// Index of each class's first image among all images, plus a final entry for the total.
    private let classStarts: [Int]
    /// All images, each `pixelsPerImage` floats, class by class: decoded, or mapped from a cache file.
    private let storage: ImagePixels
    /// Where decoded images are cached between runs (see ``ImageCache``).
    public let cache: ImageCache
    /// What this load did with the cache: mapped a cache file, wrote one, or neither.
    public let cacheOutcome: ImageCacheOutcome

    /// Loads every image under `root`.
    ///
    /// With `invert` (the default) ink is 1 and background 0, which suits Omniglot's black
    /// strokes on white; without it pixels keep the PNG's intensities (white is 1).
    ///
    /// ```swift
    /// let omniglot = try ImageFolderDataset(root: "images_background", imageSize: 28)
    /// ```
    ///
    /// The automatic cache folder is `ROOT/.metaq-cache` (or the user's, when ROOT cannot be
    /// written); a cache that cannot be written is not an error (`cacheOutcome` says why).
    ///
    /// - Throws: `DataError.missingFolder` if `root` is not a folder, `DataError.noImages` if
    ///   it holds no PNG images in the layout, `DataError.invalidPNG` or
    ///   `DataError.unreadableFile` naming the first image (in sorted order) that fails.
    public init(root: String, imageSize: Int = 28, invert: Bool = true, cache: ImageCache = .off) throws {
        precondition(imageSize > 0, "imageSize must be positive, got \(imageSize)")
        guard Self.isFolder(root) else { throw DataError.missingFolder(root) }

        let alphabets = try Self.entries(of: root).filter { Self.isFolder(Self.join(root, $0)) }
        var classNames: [(alphabet: String, character: String)] = []
        var classStarts = [0]
        var files: [String] = []
        var listed: [(className: String, name: String, path: String)] = []
        for alphabet in alphabets {
            let alphabetPath = Self.join(root, alphabet)
            let characters = try Self.entries(of: alphabetPath)
                .filter { Self.isFolder(Self.join(alphabetPath, $0)) }
            for character in characters {
                let characterPath = Self.join(alphabetPath, character)
                let images = try Self.entries(of: characterPath).filter { $0.lowercased().hasSuffix(".png") }
                classNames.append((alphabet, character))
                files += images.map { Self.join(characterPath, $0) }
                listed += images.map { (className: alphabet + "/" + character, name: $0, path: Self.join(characterPath, $0)) }
                classStarts.append(files.count)
            }
        }
        guard !files.isEmpty else { throw DataError.noImages(root: root) }

        self.root = root
        self.imageSize = imageSize
        self.alphabets = alphabets
        self.classNames = classNames
        self.classStarts = classStarts
        self.cache = cache
        let perImage = imageSize * imageSize
        let load = {
            try ImagePixels(count: files.count * perImage) { try Self.loadImages(files, size: imageSize, invert: invert, into: $0) }
        }
        if case .off = cache {
            self.storage = try load()
            self.cacheOutcome = .off
            return
        }
        // The Omniglot layout and its inversion make their own cache file: a class-folders
        // load of the same folder (`images`) never reads this one.
        let variant = "omniglot" + (invert ? "" : " raw")
        let name = ImageCacheFile.name(source: root, imageSize: imageSize, channels: 1, mean: [0], std: [1], variant: variant)
        let digest = ImageCacheFile.digest(source: ImageCacheFile.absolute(root), files: listed,
                                           imageSize: imageSize, channels: 1, mean: [0], std: [1], variant: variant)
        (storage, cacheOutcome) = try cache.pixels(named: name, digest: digest, datasetFolder: root, images: files.count,
                                                   valuesPerImage: perImage, load: load)
    }

    /// The number of classes (character folders).
    public var classCount: Int { classNames.count }

    /// The number of images over all classes.
    public var totalImageCount: Int { classStarts[classNames.count] }

    /// The number of floats in one image, `imageSize * imageSize`.
    public var pixelsPerImage: Int { imageSize * imageSize }

    /// The alphabet folder name of class `index`.
    public func alphabet(ofClass index: Int) -> String { classNames[index].alphabet }

    /// The character folder name of class `index`.
    public func character(ofClass index: Int) -> String { classNames[index].character }

    /// The number of images of class `index`.
    public func imageCount(ofClass index: Int) -> Int {
        classStarts[index + 1] - classStarts[index]
    }

    /// The indices of the classes whose alphabet is in `alphabets`, ascending.
    ///
    /// ```swift
    /// let heldOut = omniglot.classes(inAlphabets: ["Korean"])
    /// ```
    public func classes(inAlphabets alphabets: Set<String>) -> [Int] {
        classNames.indices.filter { alphabets.contains(classNames[$0].alphabet) }
    }

    /// Image `image` of class `classIndex`: `pixelsPerImage` floats, row by row.
    ///
    /// ```swift
    /// let first = omniglot.pixels(ofClass: 0, image: 0)  // 784 floats for 28 x 28
    /// ```
    public func pixels(ofClass classIndex: Int, image: Int) -> ArraySlice<Float> {
        let start = offset(ofClass: classIndex, image: image)
        return ArraySlice(storage.values[start..<start + pixelsPerImage])
    }

    /// Writes image `image` of class `classIndex`, rotated counterclockwise by
    /// `quarterTurns` * 90 degrees (as `numpy.rot90(image, quarterTurns)`), to the first
    /// `pixelsPerImage` elements of `destination`.
    ///
    /// Rotations by 90, 180 and 270 degrees are the usual way to make extra Omniglot classes.
    /// Negative turns rotate clockwise.
    ///
    /// ```swift
    /// var batch = [Float](repeating: 0, count: 32 * omniglot.pixelsPerImage)
    /// batch.withUnsafeMutableBufferPointer { buffer in
    ///     let slot = UnsafeMutableBufferPointer(rebasing: buffer[784...])
    ///     omniglot.copyImage(ofClass: 7, image: 2, quarterTurns: 2, into: slot)
    /// }
    /// ```
    public func copyImage(
        ofClass classIndex: Int, image: Int, quarterTurns: Int = 0,
        into destination: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(destination.count >= pixelsPerImage,
                     "destination holds \(destination.count) floats, an image needs \(pixelsPerImage)")
        let start = offset(ofClass: classIndex, image: image)
        let n = imageSize
        do {
            let source = storage.values.baseAddress! + start
            // Destination (row, column) reads source (sourceRow, sourceColumn).
            switch ((quarterTurns % 4) + 4) % 4 {
            case 0:
                destination.baseAddress!.update(from: source, count: n * n)
            case 1:
                for row in 0..<n {
                    for column in 0..<n {
                        destination[row * n + column] = source[column * n + (n - 1 - row)]
                    }
                }
            case 2:
                for row in 0..<n {
                    for column in 0..<n {
                        destination[row * n + column] = source[(n - 1 - row) * n + (n - 1 - column)]
                    }
                }
            default:
                for row in 0..<n {
                    for column in 0..<n {
                        destination[row * n + column] = source[(n - 1 - column) * n + row]
                    }
                }
            }
        }
    }

    /// Checks that every class in `classes` (all classes if `nil`) has at least
    /// `shots + queries` images, as an episode drawing `shots` support and `queries` query
    /// images per class needs.
    ///
    /// ```swift
    /// try omniglot.requireImages(shots: 5, queries: 15)
    /// ```
    ///
    /// - Throws: `DataError.tooFewImages` naming the first class that falls short.
    public func requireImages(shots: Int, queries: Int, classes: [Int]? = nil) throws {
        for index in classes ?? Array(classNames.indices) where imageCount(ofClass: index) < shots + queries {
            let (alphabet, character) = classNames[index]
            throw DataError.tooFewImages(
                className: "\(alphabet)/\(character)", count: imageCount(ofClass: index),
                shots: shots, queries: queries)
        }
    }

    private func offset(ofClass classIndex: Int, image: Int) -> Int {
        precondition(classNames.indices.contains(classIndex),
                     "class \(classIndex) is out of range 0..<\(classCount)")
        precondition((0..<imageCount(ofClass: classIndex)).contains(image),
                     "image \(image) is out of range 0..<\(imageCount(ofClass: classIndex)) for class \(classIndex)")
        return (classStarts[classIndex] + image) * pixelsPerImage
    }

    /// Decodes, inverts if asked and resizes `files` in parallel into `storage`, in order.
    private static func loadImages(_ files: [String], size: Int, invert: Bool, into storage: UnsafeMutableBufferPointer<Float>) throws {
        try decodeInParallel(files, floatsPerImage: size * size, into: storage) { index, destination in
            let image = try GrayImage.decodePNG(readFile(files[index]), source: files[index]).resized(width: size, height: size)
            image.pixels.withUnsafeBufferPointer { pixels in
                for offset in pixels.indices {
                    destination[offset] = invert ? 1 - pixels[offset] : pixels[offset]
                }
            }
        }
    }

    /// One buffer of `files.count` images of `floatsPerImage` floats, image `index` written by
    /// `decode(index, destination)` on the worker threads (each call writes only its own
    /// image); the first error, in file order, is thrown.
    static func decodeInParallel(_ files: [String], floatsPerImage: Int,
                                 _ decode: @Sendable (_ index: Int, _ destination: UnsafeMutablePointer<Float>) throws -> Void) throws -> [Float] {
        var storage = [Float](repeating: 0, count: files.count * floatsPerImage)
        try storage.withUnsafeMutableBufferPointer { try decodeInParallel(files, floatsPerImage: floatsPerImage, into: $0, decode) }
        return storage
    }

    /// `decodeInParallel` into `storage`, which holds at least `files.count * floatsPerImage` floats.
    static func decodeInParallel(_ files: [String], floatsPerImage: Int, into storage: UnsafeMutableBufferPointer<Float>,
                                 _ decode: @Sendable (_ index: Int, _ destination: UnsafeMutablePointer<Float>) throws -> Void) throws {
        precondition(storage.count >= files.count * floatsPerImage, "the buffer is too small for \(files.count) images")
        var failures = [(any Error)?](repeating: nil, count: files.count)
        failures.withUnsafeMutableBufferPointer { failureBuffer in
            // Iteration `index` writes only image `index` and failure `index`: no overlap.
            nonisolated(unsafe) let storage = storage
            nonisolated(unsafe) let failures = failureBuffer
            DispatchQueue.concurrentPerform(iterations: files.count) { index in
                do { try decode(index, storage.baseAddress! + index * floatsPerImage) } catch { failures[index] = error }
            }
        }
        if let failure = failures.lazy.compactMap({ $0 }).first { throw failure }
    }

    static func readFile(_ path: String) throws -> Data {
        do {
            return try Data(contentsOf: URL(filePath: path, directoryHint: .notDirectory))
        } catch {
            throw DataError.unreadableFile(path: path, reason: error.localizedDescription)
        }
    }

    /// The visible entries of a folder, sorted by name.
    private static func entries(of folder: String) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: folder)
                .filter { !$0.hasPrefix(".") }
                .sorted()
        } catch {
            throw DataError.unreadableFile(path: folder, reason: error.localizedDescription)
        }
    }

    private static func isFolder(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            && isDirectory.boolValue
    }

    private static func join(_ folder: String, _ name: String) -> String {
        folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }
}
