import Dispatch
import Foundation

/// A few-shot image dataset (miniImageNet, tieredImageNet, CUB and the like): classes of
/// PNG or JPEG images, decoded, resized to `imageSize` x `imageSize` with `channels`
/// channels (see `ColorImage`), optionally normalised per channel, and held in memory.
///
/// Two layouts are read:
/// - class folders, `FOLDER/<class>/<image>.{png,jpg,jpeg}` (classes and images in sorted
///   name order); an image's file name within its class folder is its `imageName`;
/// - a split CSV in the format of Ravi & Larochelle's miniImageNet split: a header
///   `filename,label`, then one row per image, the file found as `IMAGES/<filename>` or
///   `IMAGES/<label>/<filename>`; classes are the labels in sorted order, images of a class
///   in row order, and `filename` is the `imageName`.
///
/// ```swift
/// let test = try ImageDataset(splitCSV: "mini-imagenet/test.csv", images: "mini-imagenet/images",
///                             imageSize: 84, channels: 3)
/// try test.requireImages(shots: 1, queries: 15)
/// ```
public final class ImageDataset: Sendable {
    /// The folder or CSV file the dataset was loaded from.
    public let source: String
    public let imageSize: Int
    public let channels: Int
    /// Class names (folder names or labels), in class index order.
    public let classNames: [String]
    /// Each image's name within its class, class by class (see the layouts above).
    public let imageNames: [String]
    /// Per-channel values subtracted from, and divided into, every decoded pixel.
    public let mean: [Float]
    public let std: [Float]
    /// Where decoded images are cached between runs (see ``ImageCache``).
    public let cache: ImageCache
    /// What this load did with the cache: mapped a cache file, wrote one, or neither.
    public let cacheOutcome: ImageCacheOutcome
    /// Index of each class's first image, plus a final entry for the total.
    private let classStarts: [Int]
    private let storage: ImagePixels

    /// By default at most this many floats are held (8 GiB); a larger dataset is refused
    /// before any image is decoded.
    public static let maxStoredValues = 1 << 31

    /// The image file extensions read from class folders (compared lowercased).
    public static let imageExtensions = [".png", ".jpg", ".jpeg"]

    /// Loads class folders `folder/<class>/<image>`, through `cache` (see ``ImageCache``).
    ///
    /// - Throws: `DataError.missingFolder` when `folder` is not a folder, `DataError.noClassFolders`
    ///   when it holds no class folder with images, and decoding errors naming the file.
    public convenience init(classFolders folder: String, imageSize: Int, channels: Int,
                            mean: [Float]? = nil, std: [Float]? = nil, cache: ImageCache = .off,
                            maxStoredValues: Int = ImageDataset.maxStoredValues) throws {
        guard Self.isFolder(folder) else { throw DataError.missingFolder(folder) }
        var classes: [(name: String, files: [(name: String, path: String)])] = []
        for name in try Self.entries(of: folder) where Self.isFolder(Self.join(folder, name)) {
            let classPath = Self.join(folder, name)
            let files = try Self.entries(of: classPath).filter { file in
                Self.imageExtensions.contains { file.lowercased().hasSuffix($0) }
            }
            if !files.isEmpty { classes.append((name, files.map { ($0, Self.join(classPath, $0)) })) }
        }
        guard !classes.isEmpty else { throw DataError.noClassFolders(root: folder) }
        try self.init(source: folder, classes: classes, imageSize: imageSize, channels: channels, mean: mean, std: std,
                      cache: cache, cacheBeside: folder, maxStoredValues: maxStoredValues)
    }

    /// Loads the images a split CSV (`filename,label` rows) lists from `images`, through
    /// `cache` (see ``ImageCache``; its automatic folder is beside the CSV file).
    ///
    /// - Throws: `DataError.malformedCSV` naming the line for a bad header, a row without
    ///   two fields, an empty field, a repeated file or a file found in neither place;
    ///   `DataError.unreadableFile` when the CSV cannot be read; decoding errors naming the
    ///   image file.
    public convenience init(splitCSV csvPath: String, images: String, imageSize: Int, channels: Int,
                            mean: [Float]? = nil, std: [Float]? = nil, cache: ImageCache = .off,
                            maxStoredValues: Int = ImageDataset.maxStoredValues) throws {
        let text: String
        do {
            let data = try Data(contentsOf: URL(filePath: csvPath, directoryHint: .notDirectory))
            guard let decoded = String(data: data, encoding: .utf8) else {
                throw DataError.malformedCSV(path: csvPath, line: nil, reason: "not UTF-8 text")
            }
            text = decoded
        } catch let error as DataError { throw error } catch {
            throw DataError.unreadableFile(path: csvPath, reason: error.localizedDescription)
        }
        guard Self.isFolder(images) else { throw DataError.missingFolder(images) }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        guard let header = lines.first, header.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) == ["filename", "label"] else {
            throw DataError.malformedCSV(path: csvPath, line: 1, reason: "the header must be 'filename,label'")
        }
        var byClass: [String: [(name: String, path: String)]] = [:]
        var seen = Set<String>()
        for (index, line) in lines.enumerated().dropFirst() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count == 2 else {
                throw DataError.raggedRow(path: csvPath, line: index + 1, fieldCount: fields.count, headerCount: 2)
            }
            let (file, label) = (fields[0], fields[1])
            guard !file.isEmpty, !label.isEmpty else {
                throw DataError.malformedCSV(path: csvPath, line: index + 1, reason: "empty filename or label")
            }
            guard seen.insert(file).inserted else {
                throw DataError.malformedCSV(path: csvPath, line: index + 1, reason: "'\(file)' is listed twice")
            }
            let flat = Self.join(images, file), nested = Self.join(Self.join(images, label), file)
            guard let path = [flat, nested].first(where: { FileManager.default.fileExists(atPath: $0) }) else {
                throw DataError.malformedCSV(path: csvPath, line: index + 1,
                                             reason: "image '\(file)' is in neither \(flat) nor \(nested)")
            }
            byClass[label, default: []].append((file, path))
        }
        guard !byClass.isEmpty else {
            throw DataError.malformedCSV(path: csvPath, line: nil, reason: "no images listed")
        }
        try self.init(source: csvPath, classes: byClass.keys.sorted().map { ($0, byClass[$0]!) },
                      imageSize: imageSize, channels: channels, mean: mean, std: std,
                      cache: cache, cacheBeside: (csvPath as NSString).deletingLastPathComponent, maxStoredValues: maxStoredValues)
    }

    /// Loads `classes` (each a name and its image files, in order); `cacheBeside` is the
    /// folder whose `.metaq-cache` an automatic cache uses.
    init(source: String, classes: [(name: String, files: [(name: String, path: String)])],
         imageSize: Int, channels: Int, mean: [Float]?, std: [Float]?,
         cache: ImageCache, cacheBeside: String, maxStoredValues: Int) throws {
        precondition(imageSize > 0 && (channels == 1 || channels == 3), "bad image size \(imageSize) or channels \(channels)")
        precondition(mean.map { $0.count == channels } ?? true && std.map { $0.count == channels && $0.allSatisfy { $0 > 0 } } ?? true,
                     "mean and std need one value per channel, std positive")
        let files = classes.flatMap { $0.files }
        let perImage = imageSize * imageSize * channels
        let (total, overflow) = files.count.multipliedReportingOverflow(by: perImage)
        guard !overflow, total <= maxStoredValues else {
            throw DataError.datasetTooLarge(path: source, images: files.count, valuesPerImage: perImage, limit: maxStoredValues)
        }
        var starts = [0]
        for c in classes { starts.append(starts.last! + c.files.count) }
        self.source = source
        self.imageSize = imageSize
        self.channels = channels
        self.classNames = classes.map(\.name)
        self.imageNames = files.map(\.name)
        self.classStarts = starts
        let mean = mean ?? [Float](repeating: 0, count: channels), std = std ?? [Float](repeating: 1, count: channels)
        self.mean = mean
        self.std = std
        self.cache = cache
        let load = {
            try ImagePixels(count: total) { try Self.load(files.map(\.path), size: imageSize, channels: channels, mean: mean, std: std, into: $0) }
        }
        if case .off = cache {
            self.storage = try load()
            self.cacheOutcome = .off
            return
        }
        let name = ImageCacheFile.name(source: source, imageSize: imageSize, channels: channels, mean: mean, std: std)
        let listed = classes.flatMap { c in c.files.map { (className: c.name, name: $0.name, path: $0.path) } }
        let digest = ImageCacheFile.digest(source: ImageCacheFile.absolute(source), files: listed,
                                           imageSize: imageSize, channels: channels, mean: mean, std: std)
        (storage, cacheOutcome) = try cache.pixels(named: name, digest: digest, datasetFolder: cacheBeside, images: files.count,
                                                   valuesPerImage: perImage, load: load)
    }

    public var classCount: Int { classNames.count }
    public var totalImageCount: Int { classStarts[classNames.count] }
    /// Floats per image: `imageSize * imageSize * channels`.
    public var valuesPerImage: Int { imageSize * imageSize * channels }

    public func imageCount(ofClass index: Int) -> Int { classStarts[index + 1] - classStarts[index] }

    /// The index within class `classIndex` of the image named `name`, if it has one.
    public func image(named name: String, inClass classIndex: Int) -> Int? {
        (classStarts[classIndex]..<classStarts[classIndex + 1]).first { imageNames[$0] == name }
            .map { $0 - classStarts[classIndex] }
    }

    /// The name of image `image` of class `classIndex`.
    public func imageName(ofClass classIndex: Int, image: Int) -> String {
        imageNames[classStarts[classIndex] + image]
    }

    /// Image `image` of class `classIndex`, `valuesPerImage` floats in HWC order.
    public func pixels(ofClass classIndex: Int, image: Int) -> [Float] {
        var values: [Float] = []
        appendPixels(ofClass: classIndex, image: image, to: &values)
        return values
    }

    /// Appends image `image` of class `classIndex` (`valuesPerImage` floats) to `values`.
    public func appendPixels(ofClass classIndex: Int, image: Int, to values: inout [Float]) {
        precondition(classNames.indices.contains(classIndex) && (0..<imageCount(ofClass: classIndex)).contains(image),
                     "image \(image) of class \(classIndex) is out of range")
        let start = (classStarts[classIndex] + image) * valuesPerImage
        values.append(contentsOf: UnsafeBufferPointer(rebasing: storage.values[start..<start + valuesPerImage]))
    }

    /// Checks that every class has at least `shots + queries` images.
    ///
    /// - Throws: `DataError.tooFewImages` naming the first class that falls short.
    public func requireImages(shots: Int, queries: Int) throws {
        for index in classNames.indices where imageCount(ofClass: index) < shots + queries {
            throw DataError.tooFewImages(className: classNames[index], count: imageCount(ofClass: index),
                                         shots: shots, queries: queries)
        }
    }

    private static func load(_ files: [String], size: Int, channels: Int, mean: [Float], std: [Float],
                             into storage: UnsafeMutableBufferPointer<Float>) throws {
        let perImage = size * size * channels
        try ImageFolderDataset.decodeInParallel(files, floatsPerImage: perImage, into: storage) { index, destination in
            let image = try ColorImage.decode(ImageFolderDataset.readFile(files[index]), source: files[index], channels: channels)
                .resized(width: size, height: size)
            for offset in 0..<perImage {
                let c = offset % channels
                destination[offset] = (image.pixels[offset] - mean[c]) / std[c]
            }
        }
    }

    static func entries(of folder: String) throws -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: folder).filter { !$0.hasPrefix(".") }.sorted()
        } catch {
            throw DataError.unreadableFile(path: folder, reason: error.localizedDescription)
        }
    }

    static func isFolder(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    static func join(_ folder: String, _ name: String) -> String {
        folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }
}
