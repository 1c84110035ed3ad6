#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
private let systemRead = Glibc.read
#elseif canImport(Darwin)
import Darwin
private let systemWrite = Darwin.write
private let systemRead = Darwin.read
#endif

/// File writes that are all-or-nothing: the bytes go to a temporary file beside the target,
/// which is flushed to disk and then renamed over the target, and the directory is flushed
/// so that the rename itself survives a crash. A process killed at any moment leaves either
/// the previous file or the new one, never a mixture; at worst a stray `NAME.tmp-PID` file
/// remains, which nothing reads, and which the next write to `NAME` removes once process PID
/// has ended. The target must be a regular file or absent: a rename would replace a symbolic
/// link or a device instead of writing to it, so those are refused.
///
/// ```swift
/// try AtomicFile.write(bytes, to: "run.mqm")
/// ```
public enum AtomicFile {
    public static func write(_ bytes: [UInt8], to path: String) throws(CheckpointError) {
        try requireReplaceable(path)
        // Across processes (mpirun) only the first writes files.
        guard DataParallel.isLeader else { return }
        removeStaleTemporaries(of: path)
        let temporary = "\(path).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure("cannot create \(temporary)", path) }
        var written = 0
        let result: CheckpointError? = bytes.withUnsafeBytes { raw in
            while written < raw.count {
                let n = systemWrite(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return failure("cannot write \(temporary)", path)
                }
                written += n
            }
            return fsync(fd) == 0 ? nil : failure("cannot flush \(temporary) to disk", path)
        }
        close(fd)
        if let result {
            unlink(temporary)
            throw result
        }
        guard rename(temporary, path) == 0 else {
            let error = failure("cannot rename \(temporary) to \(path)", path)
            unlink(temporary)
            throw error
        }
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let dirfd = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 {
            fsync(dirfd)
            close(dirfd)
        }
    }

    /// Throws unless `path` is absent or a regular file (not a symbolic link, a directory,
    /// a device, a pipe or a socket), which renaming a new file over it would replace.
    private static func requireReplaceable(_ path: String) throws(CheckpointError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }  // absent (or unreachable: the write says why)
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            return
        case S_IFLNK:
            var target = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let count = readlink(path, &target, target.count - 1)
            let to = count > 0 ? " to \(String(decoding: target[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self))" : ""
            throw CheckpointError(.unreadable, "it is a symbolic link\(to); saving would replace the link, not the file it points to: save to that file, or remove the link first", path: path)
        case S_IFDIR:
            throw CheckpointError(.unreadable, "it is a folder", path: path)
        default:
            throw CheckpointError(.unreadable, "it is not a regular file (a device, pipe or socket), which saving would replace", path: path)
        }
    }

    /// Removes `PATH.tmp-PID` files left beside `path` by writes whose process PID was killed
    /// before it could rename or remove them (a running process's are kept).
    static func removeStaleTemporaries(of path: String) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let prefix = (slash.map { String(path[path.index(after: $0)...]) } ?? path) + ".tmp-"
        guard let dir = opendir(directory.isEmpty ? "/" : directory) else { return }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.hasPrefix(prefix), let pid = pid_t(name.dropFirst(prefix.count)), pid > 0, pid != getpid() else { continue }
            guard kill(pid, 0) != 0, errno == ESRCH else { continue }  // the process still runs
            let stale = directory + "/" + name
            var info = stat()
            if lstat(stale, &info) == 0, info.st_mode & S_IFMT == S_IFREG { unlink(stale) }
        }
    }

    /// The whole file at `path`.
    public static func read(_ path: String) throws(CheckpointError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("cannot open the file", path) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure("cannot read the file's size", path) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw CheckpointError(.unreadable, "not a regular file", path: path)
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var done = 0
        let failed: Bool = bytes.withUnsafeMutableBytes { raw in
            while done < raw.count {
                let n = systemRead(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return n < 0 }
                done += n
            }
            return false
        }
        guard !failed else { throw failure("cannot read the file", path) }
        return Array(bytes.prefix(done))
    }

    private static func failure(_ what: String, _ path: String) -> CheckpointError {
        CheckpointError(.unreadable, "\(what): \(String(cString: strerror(errno)))", path: path)
    }
}
