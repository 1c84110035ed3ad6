import CEditLine
import Foundation

/// Reads input lines for the REPL: through libedit (line editing, history) when standard
/// input is a terminal, and plainly, with no prompt and no escape codes, when it is not
/// (pipes, `metaq < script.mq`) or when `TERM=dumb`.
public final class LineReader {
    public let isInteractive: Bool

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        isInteractive = isatty(STDIN_FILENO) != 0 && environment["TERM"] != "dumb"
    }

    /// The next line without its newline, or nil at end of input.
    public func readLine(prompt: String) -> String? {
        guard isInteractive else { return Swift.readLine(strippingNewline: true) }
        guard let raw = CEditLine.readline(prompt) else { return nil }
        defer { free(raw) }
        return String(cString: raw)
    }

    /// Adds a line to the in-memory history (recalled with the up arrow).
    public func remember(_ line: String) {
        guard isInteractive, !line.trimmingCharacters(in: .whitespaces).isEmpty else { return }
        _ = add_history(line)
    }
}
