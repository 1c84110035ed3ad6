import Foundation

/// The REPL's history on disk (`~/.metaq_history`, or `METAQ_HISTORY`): one entry per line,
/// oldest first, with backslashes and line breaks escaped so that multi-line entries
/// round-trip.
///
/// Every ``append(_:)`` rewrites the whole file: it takes an exclusive `flock` on the file,
/// re-reads it (another session may have added entries), drops earlier copies of the new
/// entry, keeps the newest ``limit`` entries, writes them to a temporary file in the same
/// directory and renames that over the history. Two sessions appending at once therefore
/// both keep their entries, and a crash leaves the old file or the new one, never a torn one.
public struct HistoryFile: Sendable {
    public let path: String
    /// The most entries the file keeps.
    public let limit: Int

    public init(path: String, limit: Int = 1000) {
        self.path = path
        self.limit = limit
    }

    /// The history file for an environment: `METAQ_HISTORY` when set (an empty value turns
    /// persistent history off, giving nil), else `.metaq_history` in the home directory.
    public static func defaultPath(environment: [String: String]) -> String? {
        if let path = environment["METAQ_HISTORY"] { return path.isEmpty ? nil : path }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return (home as NSString).appendingPathComponent(".metaq_history")
    }

    /// The entries, oldest first; none when the file does not exist or cannot be read.
    public func load() -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return Array(text.split(separator: "\n").map(HistoryFile.decode).suffix(limit))
    }

    /// Adds an entry as the newest, removing earlier copies of it.
    public func append(_ entry: String) throws {
        try withExclusiveLock {
            var entries = load().filter { $0 != entry }
            entries.append(entry)
            try replaceContents(with: entries.suffix(limit))
        }
    }

    /// An entry as one line: `\` becomes `\\`, a line feed `\n` and a carriage return `\r`.
    static func encode(_ entry: String) -> String {
        var line = ""
        for character in entry {
            switch character {
            case "\\": line += "\\\\"
            case "\n": line += "\\n"
            case "\r": line += "\\r"
            case "\r\n": line += "\\r\\n"
            default: line.append(character)
            }
        }
        return line
    }

    /// The entry a line of the file stands for (the inverse of ``encode(_:)``); a backslash
    /// before anything else is kept as it is.
    static func decode(_ line: Substring) -> String {
        var entry = ""
        var escaped = false
        for character in line {
            if escaped {
                switch character {
                case "n": entry += "\n"
                case "r": entry += "\r"
                case "\\": entry += "\\"
                default: entry += "\\" + String(character)
                }
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                entry.append(character)
            }
        }
        if escaped { entry += "\\" }
        return entry
    }

    /// Runs `body` holding an exclusive lock on the history file, creating it if needed.
    /// The lock is on the file currently at `path`: when another session renamed a new file
    /// over it while this one waited, it locks again, the new file this time.
    private func withExclusiveLock(_ body: () throws -> Void) throws {
        while true {
            let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard descriptor >= 0 else { throw HistoryError("cannot open \(path)") }
            defer { close(descriptor) }
            guard flock(descriptor, LOCK_EX) == 0 else { throw HistoryError("cannot lock \(path)") }
            var locked = stat(), current = stat()
            if fstat(descriptor, &locked) == 0, stat(path, &current) == 0,
               locked.st_ino == current.st_ino, locked.st_dev == current.st_dev {
                return try body()
            }
        }
    }

    /// Writes the entries to a temporary file beside the history, flushes it to disk and
    /// renames it over the history, so readers see the old file or the new one.
    private func replaceContents(with entries: ArraySlice<String>) throws {
        let bytes = Array((entries.map(HistoryFile.encode).joined(separator: "\n") + "\n").utf8)
        var template = Array((path + ".XXXXXX").utf8CString)
        let descriptor = mkstemp(&template)
        guard descriptor >= 0 else { throw HistoryError("cannot create a temporary file beside \(path)") }
        let temporary = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer { close(descriptor) }
        do {
            var offset = 0
            while offset < bytes.count {
                let count = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
                guard count >= 0 || errno == EINTR else { throw HistoryError("cannot write \(temporary)") }
                offset += max(count, 0)
            }
            guard fsync(descriptor) == 0 else { throw HistoryError("cannot write \(temporary)") }
            guard rename(temporary, path) == 0 else { throw HistoryError("cannot replace \(path)") }
        } catch {
            unlink(temporary)
            throw error
        }
    }
}

/// A history file that cannot be read or written, with the system's reason.
struct HistoryError: Error, CustomStringConvertible {
    let description: String

    /// An error for a failed system call; reads `errno`, so create it right after the call.
    init(_ what: String) {
        description = "\(what): \(String(cString: strerror(errno)))"
    }
}
