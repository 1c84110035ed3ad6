import Foundation

/// A problem found while loading task data: an image folder, a PNG file or a CSV table.
///
/// Every case names the file or folder it is about, and CSV problems also give the
/// 1-based line of the offending record, so `description` can be shown to a user as is:
///
/// ```swift
/// do {
///     let table = try CSVTaskTable(path: "data.csv", taskColumn: "task", targetColumn: "y")
/// } catch let error as DataError {
///     print(error)  // data.csv:7: row has 3 fields, header has 4
/// }
/// ```
public enum DataError: Error, Equatable, Sendable {
    /// The folder does not exist, or is not a folder.
    case missingFolder(String)
    /// A file or folder exists but could not be read.
    case unreadableFile(path: String, reason: String)
    /// A file is not a PNG image that can be decoded.
    case invalidPNG(path: String, reason: String)
    /// A file is not a PNG or JPEG image that can be decoded.
    case invalidImage(path: String, reason: String)
    /// An image folder holds no PNG images in the `ROOT/<alphabet>/<character>/` layout.
    case noImages(root: String)
    /// A folder holds no class folder with PNG or JPEG images (`ROOT/<class>/<image>`).
    case noClassFolders(root: String)
    /// A dataset's decoded images would take more than `limit` floats.
    case datasetTooLarge(path: String, images: Int, valuesPerImage: Int, limit: Int)
    /// A class has fewer images than a task needs.
    case tooFewImages(className: String, count: Int, shots: Int, queries: Int)
    /// A CSV file breaks the format, or has no data; `line` is 1-based when known.
    case malformedCSV(path: String, line: Int?, reason: String)
    /// A CSV header cannot be used as asked (duplicate or empty names, no feature columns).
    case invalidColumns(path: String, reason: String)
    /// A column asked for is not in the CSV header.
    case unknownColumn(path: String, name: String, columns: [String])
    /// A CSV record has a different number of fields than the header.
    case raggedRow(path: String, line: Int, fieldCount: Int, headerCount: Int)
    /// A numeric CSV field does not hold a decimal number.
    case notANumber(path: String, line: Int, column: String, text: String)
    /// A folder of fixed episodes (`EPISODES/<episode>/<class>/`) breaks the layout.
    case malformedEpisodes(path: String, reason: String)
}

extension DataError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .missingFolder(let path):
            "missing folder: \(path)"
        case .unreadableFile(let path, let reason):
            "\(path): cannot read (\(reason))"
        case .invalidPNG(let path, let reason), .invalidImage(let path, let reason):
            "\(path): \(reason)"
        case .noImages(let root):
            "no PNG images under \(root)"
        case .noClassFolders(let root):
            "no class folders with PNG or JPEG images under \(root)"
        case .datasetTooLarge(let path, let images, let valuesPerImage, let limit):
            "\(path): \(images) images of \(valuesPerImage) values each need "
                + "\(Self.bytes(Double(images) * Double(valuesPerImage) * 4)) of memory; at most \(Self.bytes(Double(limit) * 4)) are allowed"
        case .tooFewImages(let className, let count, let shots, let queries):
            "class \(className) has \(count) image\(count == 1 ? "" : "s"); "
                + "a \(shots)-shot task with \(queries) queries needs \(shots + queries)"
        case .malformedCSV(let path, let line?, let reason):
            "\(path):\(line): \(reason)"
        case .malformedCSV(let path, nil, let reason):
            "\(path): \(reason)"
        case .invalidColumns(let path, let reason), .malformedEpisodes(let path, let reason):
            "\(path): \(reason)"
        case .unknownColumn(let path, let name, let columns):
            "unknown column '\(name)' in \(path) (columns: \(columns.joined(separator: ", ")))"
        case .raggedRow(let path, let line, let fieldCount, let headerCount):
            "\(path):\(line): row has \(fieldCount) field\(fieldCount == 1 ? "" : "s"), "
                + "header has \(headerCount)"
        case .notANumber(let path, let line, let column, let text):
            "\(path):\(line): column '\(column)': '\(text)' is not a number"
        }
    }
}

extension DataError {
    /// `bytes` in B, KB, MB or GB (powers of 1000), one decimal past bytes.
    static func bytes(_ bytes: Double) -> String {
        for (unit, size) in [("GB", 1e9), ("MB", 1e6), ("KB", 1e3)] where bytes >= size {
            return String(format: "%.1f ", bytes / size) + unit
        }
        return "\(Int(bytes)) bytes"
    }
}

extension DataError: LocalizedError {
    /// The same text as `description`, so `localizedDescription` is informative too.
    public var errorDescription: String? { description }
}
