#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
import Darwin
private let systemWrite = Darwin.write
#endif
import Foundation

/// Where an ``ImageDataset`` keeps its decoded images between runs.
///
/// The first load of a dataset decodes and resizes every image and writes them, as the
/// floats the dataset holds, to one cache file; later loads with the same settings map that
/// file into memory (`mmap`) instead of decoding, so a 60,000-image set loads in seconds.
///
/// - `automatic`: the folder `.metaq-cache` in the dataset's folder (the class-folders
///   folder, the split CSV's folder or the episodes folder) if it can be created and
///   written, else `$XDG_CACHE_HOME/metaq/images` (by default `~/.cache/metaq/images`);
/// - `folder(path)`: that folder (created if needed);
/// - `off`: every load decodes every image, and nothing is written.
///
/// A cache file is named by the dataset's source and settings (image size, channels,
/// per-channel mean and standard deviation) and records a digest of the image list: each
/// image's class, name, path, size and modification time. When an image is added, removed,
/// renamed or changed, the digest differs and the file is rebuilt in place. Files are
/// written to a temporary file beside the target and renamed over it, so a reader sees the
/// old file or the new one, never a partial one. A file that is truncated, has a bad header
/// (magic, version, counts, header checksum) or fails the payload's sampled checksum is
/// ignored and rebuilt. A cache that cannot be written is not an error: the dataset loads
/// from its images as without a cache.
public enum ImageCache: Sendable, Equatable {
    case automatic
    case folder(String)
    case off

    /// The user-wide cache folder: `$XDG_CACHE_HOME/metaq/images`, or `~/.cache/metaq/images`.
    public static var userFolder: String {
        let environment = ProcessInfo.processInfo.environment
        if let xdg = environment["XDG_CACHE_HOME"], xdg.hasPrefix("/") { return xdg + "/metaq/images" }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.cache/metaq/images"
    }

    /// The folders to try, in order, for a dataset whose own folder is `datasetFolder`.
    func candidateFolders(datasetFolder: String) -> [String] {
        switch self {
        case .off: []
        case .folder(let path): [path]
        case .automatic: [ImageDataset.join(datasetFolder, ".metaq-cache"), Self.userFolder]
        }
    }
}

/// What a dataset's load did with its cache.
public enum ImageCacheOutcome: Sendable, Equatable {
    /// The cache is off.
    case off
    /// The images were mapped from this cache file.
    case loaded(String)
    /// The images were decoded and written to this cache file.
    case written(String)
    /// The images were decoded; no cache file could be written (the reason says why).
    case unwritable(String)
}

/// The floats of a dataset's images: decoded into memory, or mapped from a cache file.
final class ImagePixels: @unchecked Sendable {
    // Immutable after init; the mapping lives as long as this object.
    let values: UnsafeBufferPointer<Float>
    private let owned: UnsafeMutableBufferPointer<Float>?
    private let mapping: (address: UnsafeMutableRawPointer, length: Int)?

    /// `count` floats in memory, zero until `fill` writes them (before the object is shared).
    init(count: Int, fill: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
        buffer.initialize(repeating: 0)
        do { try fill(buffer) } catch {
            buffer.deallocate()
            throw error
        }
        self.owned = buffer
        self.mapping = nil
        self.values = UnsafeBufferPointer(buffer)
    }

    init(mapping address: UnsafeMutableRawPointer, length: Int, offset: Int, count: Int) {
        self.owned = nil
        self.mapping = (address, length)
        self.values = UnsafeBufferPointer(start: (address + offset).assumingMemoryBound(to: Float.self), count: count)
    }

    deinit {
        owned?.deallocate()
        if let mapping { munmap(mapping.address, mapping.length) }
    }
}

/// One cache file: its path and the digest of what it must hold.
///
/// Layout (little-endian): 64 bytes of header, then the payload, `images * valuesPerImage`
/// floats. Header: the magic `MQIMGCH1`, a 32-bit format version and header size, then 64-bit
/// fields: the image list's digest, the image count, the values per image, a checksum of a
/// sample of the payload (every 65,536th float and the last), and a checksum of the header
/// bytes before it.
struct ImageCacheFile {
    static let magic = Array("MQIMGCH1".utf8)
    static let version: UInt32 = 1
    static let headerSize = 64

    let path: String
    let digest: UInt64

    /// Digest of everything the cached floats depend on.
    /// `variant` names a loader whose pixels differ for the same files (Omniglot's inverted
    /// strokes); empty for ``ImageDataset``.
    static func digest(source: String, files: [(className: String, name: String, path: String)],
                       imageSize: Int, channels: Int, mean: [Float], std: [Float], variant: String = "") -> UInt64 {
        var hash = Hash()
        hash.add("metaq image cache \(version)\n\(source)\n\(imageSize) \(channels) \(mean.map(\.bitPattern)) \(std.map(\.bitPattern))\n")
        if !variant.isEmpty { hash.add("variant \(variant)\n") }
        for file in files {
            var info = stat()
            let found = stat(file.path, &info) == 0
            hash.add("\(file.className)\u{0}\(file.name)\u{0}\(file.path)\u{0}")
            if found {
                #if canImport(Darwin)
                let modified = (info.st_mtimespec.tv_sec, info.st_mtimespec.tv_nsec)
                #else
                let modified = (info.st_mtim.tv_sec, info.st_mtim.tv_nsec)
                #endif
                hash.add("\(info.st_size) \(modified.0).\(modified.1)\n")
            } else {
                hash.add("missing\n")
            }
        }
        return hash.value
    }

    /// The file name for a dataset read from `source` with these settings.
    static func name(source: String, imageSize: Int, channels: Int, mean: [Float], std: [Float], variant: String = "") -> String {
        var hash = Hash()
        hash.add("\(absolute(source))\n\(imageSize) \(channels) \(mean.map(\.bitPattern)) \(std.map(\.bitPattern))")
        if !variant.isEmpty { hash.add("\nvariant \(variant)") }
        let base = (source as NSString).lastPathComponent.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }
        let tag = variant.isEmpty ? "" : "-" + variant.filter { $0.isLetter || $0.isNumber }
        return "\(base.prefix(40))\(tag)-\(imageSize)x\(channels)-\(String(hash.value, radix: 16)).cache"
    }

    static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// The payload, mapped, if the file exists and is whole and current; nil otherwise.
    func map(images: Int, valuesPerImage: Int) -> ImagePixels? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
        let count = images * valuesPerImage
        let length = Self.headerSize + count * MemoryLayout<Float>.size
        guard Int(info.st_size) == length, count > 0 else { return nil }
        guard let address = mmap(nil, length, PROT_READ, MAP_PRIVATE, fd, 0), address != MAP_FAILED else { return nil }
        let header = UnsafeRawBufferPointer(start: address, count: Self.headerSize)
        let payload = UnsafeBufferPointer(start: (address + Self.headerSize).assumingMemoryBound(to: Float.self), count: count)
        guard header.starts(with: Self.magic),
              header.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian == Self.version,
              header.loadUnaligned(fromByteOffset: 12, as: UInt32.self).littleEndian == UInt32(Self.headerSize),
              header.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian == digest,
              header.loadUnaligned(fromByteOffset: 24, as: UInt64.self).littleEndian == UInt64(images),
              header.loadUnaligned(fromByteOffset: 32, as: UInt64.self).littleEndian == UInt64(valuesPerImage),
              header.loadUnaligned(fromByteOffset: 40, as: UInt64.self).littleEndian == Self.sampleChecksum(payload),
              header.loadUnaligned(fromByteOffset: 48, as: UInt64.self).littleEndian == Self.headerChecksum(UnsafeRawBufferPointer(rebasing: header[..<48]))
        else {
            munmap(address, length)
            return nil
        }
        return ImagePixels(mapping: address, length: length, offset: Self.headerSize, count: count)
    }

    /// Writes `values` (`images * valuesPerImage` floats) atomically: to `PATH.tmp-PID`,
    /// flushed, then renamed over `path`. Returns nil, or why it could not.
    func write(_ values: UnsafeBufferPointer<Float>, images: Int, valuesPerImage: Int) -> String? {
        var header = [UInt8](repeating: 0, count: Self.headerSize)
        header.replaceSubrange(0..<8, with: Self.magic)
        header.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: Self.version.littleEndian, toByteOffset: 8, as: UInt32.self)
            raw.storeBytes(of: UInt32(Self.headerSize).littleEndian, toByteOffset: 12, as: UInt32.self)
            raw.storeBytes(of: digest.littleEndian, toByteOffset: 16, as: UInt64.self)
            raw.storeBytes(of: UInt64(images).littleEndian, toByteOffset: 24, as: UInt64.self)
            raw.storeBytes(of: UInt64(valuesPerImage).littleEndian, toByteOffset: 32, as: UInt64.self)
            raw.storeBytes(of: Self.sampleChecksum(values).littleEndian, toByteOffset: 40, as: UInt64.self)
            let check = Self.headerChecksum(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(raw)[..<48]))
            raw.storeBytes(of: check.littleEndian, toByteOffset: 48, as: UInt64.self)
        }
        AtomicFile.removeStaleTemporaries(of: path)
        let temporary = "\(path).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return "cannot create \(temporary): \(String(cString: strerror(errno)))" }
        func writeAll(_ raw: UnsafeRawBufferPointer) -> Bool {
            var done = 0
            while done < raw.count {
                let n = systemWrite(fd, raw.baseAddress! + done, min(raw.count - done, 1 << 30))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                done += n
            }
            return true
        }
        let ok = header.withUnsafeBytes(writeAll) && writeAll(UnsafeRawBufferPointer(values)) && fsync(fd) == 0
        let reason = ok ? nil : "cannot write \(temporary): \(String(cString: strerror(errno)))"
        close(fd)
        if let reason {
            unlink(temporary)
            return reason
        }
        guard rename(temporary, path) == 0 else {
            let reason = "cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))"
            unlink(temporary)
            return reason
        }
        return nil
    }

    /// A checksum of every 65,536th value and the last one, by bit pattern: cheap on a
    /// mapped file (one page in 64), and it catches a payload zeroed or cut short.
    static func sampleChecksum(_ values: UnsafeBufferPointer<Float>) -> UInt64 {
        var hash = Hash()
        var index = 0
        while index < values.count {
            hash.add(values[index].bitPattern)
            index += 65_536
        }
        if let last = values.last { hash.add(last.bitPattern) }
        hash.add(UInt32(truncatingIfNeeded: values.count))
        return hash.value
    }

    static func headerChecksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hash = Hash()
        for byte in bytes { hash.add(byte) }
        return hash.value
    }

    /// 64-bit FNV-1a.
    struct Hash {
        private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

        mutating func add(_ byte: UInt8) {
            value = (value ^ UInt64(byte)) &* 0x100_0000_01b3
        }

        mutating func add(_ word: UInt32) {
            for shift in stride(from: 0, to: 32, by: 8) { add(UInt8(truncatingIfNeeded: word >> UInt32(shift))) }
        }

        mutating func add(_ text: String) {
            for byte in text.utf8 { add(byte) }
        }
    }
}

extension ImageCache {
    /// Creates (if needed) and returns the first candidate folder that can be written, or
    /// the reason none can.
    func writableFolder(datasetFolder: String) -> Result<String, ImageCacheFailure> {
        var reasons: [String] = []
        for folder in candidateFolders(datasetFolder: datasetFolder) {
            do {
                try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            } catch {
                reasons.append("cannot create \(folder)")
                continue
            }
            guard access(folder, W_OK) == 0 else {
                reasons.append("\(folder) is not writable")
                continue
            }
            return .success(folder)
        }
        return .failure(ImageCacheFailure(reason: reasons.joined(separator: "; ")))
    }

    /// The pixels of a dataset through the cache: a current cache file named `name` (its
    /// digest matching) mapped from the first candidate folder that has one, or else the
    /// pixels `load` decodes, written to the first writable candidate folder.
    func pixels(named name: String, digest: UInt64, datasetFolder: String, images: Int, valuesPerImage: Int,
                load: () throws -> ImagePixels) rethrows -> (ImagePixels, ImageCacheOutcome) {
        // A stale file in the dataset's folder must not hide a current one in the user's folder.
        for existing in existingFiles(named: name, datasetFolder: datasetFolder) {
            if let mapped = ImageCacheFile(path: existing, digest: digest).map(images: images, valuesPerImage: valuesPerImage) {
                return (mapped, .loaded(existing))
            }
        }
        let pixels = try load()
        switch writableFolder(datasetFolder: datasetFolder) {
        case .failure(let failure):
            return (pixels, .unwritable(failure.reason))
        case .success(let folder):
            let path = ImageDataset.join(folder, name)
            if let reason = ImageCacheFile(path: path, digest: digest).write(pixels.values, images: images, valuesPerImage: valuesPerImage) {
                return (pixels, .unwritable(reason))
            }
            return (pixels, .written(path))
        }
    }

    /// The existing cache files named `name` in the candidate folders, in their order.
    func existingFiles(named name: String, datasetFolder: String) -> [String] {
        candidateFolders(datasetFolder: datasetFolder)
            .map { ImageDataset.join($0, name) }
            .filter { FileManager.default.fileExists(atPath: $0) }
    }
}

struct ImageCacheFailure: Error {
    let reason: String
}
