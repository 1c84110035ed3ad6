/// A problem found in metaq source, as a value: the library never prints.
///
///     let (_, diagnostics) = Parser.parse(SourceFile(name: "a.mq", text: "let x ="))
///     diagnostics[0].message  // "expected expression after '='"
public struct Diagnostic: Sendable, Hashable {
    /// How serious a diagnostic is; the raw value is the word the renderer prints.
    public enum Severity: String, Sendable, Hashable {
        case error, warning, note
    }

    /// Extra information attached to a diagnostic, such as where a bracket was opened.
    public struct Note: Sendable, Hashable {
        public var message: String
        public var range: SourceRange?

        public init(_ message: String, at range: SourceRange? = nil) {
            self.message = message
            self.range = range
        }
    }

    /// When a problem is found: before the program runs (its syntax; the static checker or
    /// the check of `--set` keys) or while it runs. `metaq` exits with 65 for the first
    /// two, 70 for the last.
    public enum Stage: String, Sendable, Hashable {
        case syntax, check, run
    }

    public var severity: Severity
    public var stage: Stage
    public var message: String
    /// The source the diagnostic is about; it may be empty, pointing between two characters.
    public var range: SourceRange
    public var notes: [Note]
    /// A suggested change in words, such as `(a < b) < c`.
    public var fixIt: String?

    public init(
        severity: Severity = .error,
        stage: Stage = .syntax,
        message: String,
        range: SourceRange,
        notes: [Note] = [],
        fixIt: String? = nil
    ) {
        self.severity = severity
        self.stage = stage
        self.message = message
        self.range = range
        self.notes = notes
        self.fixIt = fixIt
    }

    /// Creates an error diagnostic.
    public static func error(
        _ message: String,
        at range: SourceRange,
        stage: Stage = .syntax,
        notes: [Note] = [],
        fixIt: String? = nil
    ) -> Diagnostic {
        Diagnostic(severity: .error, stage: stage, message: message, range: range, notes: notes, fixIt: fixIt)
    }
}

/// Renders diagnostics as text in the `file:line:col: error: message` style, each
/// followed by the source line and a caret line under the diagnostic's range.
///
///     let file = SourceFile(name: "a.mq", text: "let x = (1 + 2")
///     let (_, diagnostics) = Parser.parse(file)
///     print(DiagnosticRenderer(file: file).render(diagnostics))
///     // a.mq:1:9: error: expected ')' to close '(' opened here
///     // let x = (1 + 2
///     //         ^
///     // a.mq:1:15: note: file ends here
///     // let x = (1 + 2
///     //               ^
public struct DiagnosticRenderer: Sendable {
    private let files: [String: SourceFile]

    /// Creates a renderer that can show lines from the given files, found by name.
    public init(files: [SourceFile]) {
        self.files = Dictionary(files.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Creates a renderer for diagnostics about one file.
    public init(file: SourceFile) {
        self.init(files: [file])
    }

    /// Renders diagnostics one after another, separated by line breaks.
    public func render(_ diagnostics: [Diagnostic]) -> String {
        diagnostics.map(render).joined(separator: "\n")
    }

    /// Renders one diagnostic with its notes and fix-it; the text has no final line break.
    public func render(_ diagnostic: Diagnostic) -> String {
        var lines = excerpt(diagnostic.severity.rawValue, diagnostic.message, at: diagnostic.range)
        for note in diagnostic.notes {
            if let range = note.range {
                lines += excerpt(Diagnostic.Severity.note.rawValue, note.message, at: range)
            } else {
                lines.append("note: \(note.message)")
            }
        }
        if let fixIt = diagnostic.fixIt {
            lines.append("fix-it: \(fixIt)")
        }
        return lines.joined(separator: "\n")
    }

    /// The header line, source line and caret line for one located message.
    private func excerpt(_ severity: String, _ message: String, at range: SourceRange) -> [String] {
        guard let file = files[range.fileName] else {
            return ["\(range.fileName): \(severity): \(message)"]
        }
        let location = file.location(of: range.start)
        let lineBytes = file.lineByteRange(location.line)
        let start = min(max(range.start, lineBytes.lowerBound), lineBytes.upperBound)
        let end = min(max(range.end, start), lineBytes.upperBound)
        let before = String(decoding: file.bytes[lineBytes.lowerBound..<start], as: UTF8.self)
        let spanned = String(decoding: file.bytes[start..<end], as: UTF8.self)
        let indent = String(before.map { $0 == "\t" ? "\t" : " " })
        let caret = "^" + String(repeating: "~", count: max(spanned.count - 1, 0))
        return [
            "\(file.name):\(location): \(severity): \(message)",
            file.lineText(location.line),
            indent + caret,
        ]
    }
}
