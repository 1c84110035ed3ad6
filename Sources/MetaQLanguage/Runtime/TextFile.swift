import Foundation
import MetaQEngine

/// Reading scripts and writing outputs, with errors that say what is wrong with the path
/// (a missing folder, a folder where a file is expected, text that is not UTF-8) instead
/// of Foundation's raw NSCocoaErrorDomain errors.
public enum TextFile {
    /// The UTF-8 text of the file at `path`.
    public static func read(_ path: String) throws(TextFileError) -> String {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw TextFileError("no such file")
        }
        guard !isFolder.boolValue else { throw TextFileError("it is a folder, not a file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TextFileError(FileManager.default.isReadableFile(atPath: path) ? "it cannot be read" : "permission denied")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw TextFileError("it is not UTF-8 text") }
        return text
    }

    /// Writes `text` to the file at `path`, atomically.
    public static func write(_ text: String, to path: String) throws(TextFileError) {
        try requireFolder(of: path)
        // Across processes (mpirun) only the first writes files.
        guard DataParallel.isLeader else { return }
        do {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw TextFileError(describing: error)
        }
    }

    /// Throws unless a file can be made at `path`: the folder it goes in exists, and `path`
    /// is not itself a folder.
    public static func requireFolder(of path: String) throws(TextFileError) {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            throw TextFileError("it is a folder, not a file")
        }
        let folder = (path as NSString).deletingLastPathComponent
        guard !folder.isEmpty else { return }
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) else {
            throw TextFileError("the folder '\(folder)' does not exist")
        }
        guard isFolder.boolValue else { throw TextFileError("'\(folder)' is a file, not a folder") }
    }
}

/// Why a file could not be read or written, in words ("no such file").
public struct TextFileError: Error, CustomStringConvertible, Equatable {
    public let description: String

    public init(_ description: String) { self.description = description }

    /// The operating system's reason behind a Foundation error ("Permission denied"), or
    /// Foundation's own words when it gives none.
    init(describing error: Error) {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            description = String(cString: strerror(Int32(underlying.code)))
        } else if nsError.domain == NSPOSIXErrorDomain {
            description = String(cString: strerror(Int32(nsError.code)))
        } else {
            description = nsError.localizedDescription
        }
    }
}
