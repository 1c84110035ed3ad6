/// Why a checkpoint could not be read or written. Every error names the file (when there is
/// one) and says what is wrong with it, so `description` can be shown to a user as is:
///
/// ```swift
/// do {
///     _ = try Checkpoint.read(from: "run.mqm")
/// } catch {
///     print(error)  // run.mqm: truncated: the header claims 1520 bytes but only 312 follow
/// }
/// ```
public struct CheckpointError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The kind of problem, for code that reacts to it.
    public enum Problem: String, Sendable, Equatable {
        /// The file cannot be opened, read or written.
        case unreadable
        /// The file ends before the data its header describes.
        case truncated
        /// The header is damaged: its length, its JSON, or a tensor entry is invalid.
        case corruptHeader
        /// A safetensors file that is not a metaq checkpoint, or not a safetensors file at all.
        case foreignFile
        /// A checkpoint written by a newer metaq, in a format version this one cannot read.
        case newerVersion
        /// The parts of the checkpoint do not fit together (a tensor's shape does not match
        /// the layers, a learner's state does not match its configuration).
        case inconsistent
        /// Something this metaq does not handle (a dtype other than F32, a learner whose
        /// state is not saved).
        case unsupported
    }

    public let problem: Problem
    /// The file concerned, when there is one.
    public let path: String?
    public let message: String

    public init(_ problem: Problem, _ message: String, path: String? = nil) {
        self.problem = problem
        self.message = message
        self.path = path
    }

    /// The same error, about `path`.
    func about(_ path: String) -> CheckpointError {
        CheckpointError(problem, message, path: path)
    }

    /// The error as a message about `file`, which it names if it does not already:
    /// `run.mqm: truncated: ...`.
    public func message(about file: String) -> String {
        path == nil ? "\(file): \(self)" : description
    }

    public var description: String {
        let text = "\(problem.label): \(message)"
        return path.map { "\($0): \(text)" } ?? text
    }
}

extension CheckpointError.Problem {
    /// How the problem is named in messages.
    var label: String {
        switch self {
        case .unreadable: "cannot access the file"
        case .truncated: "truncated"
        case .corruptHeader: "corrupt header"
        case .foreignFile: "not a metaq checkpoint"
        case .newerVersion: "newer format"
        case .inconsistent: "inconsistent checkpoint"
        case .unsupported: "unsupported"
        }
    }
}
