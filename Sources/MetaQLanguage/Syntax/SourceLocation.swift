/// A half-open range `start..<end` of UTF-8 byte offsets in a named source file.
///
/// Every token, AST node and diagnostic carries one.
///
///     let file = SourceFile(name: "a.mq", text: "let x = 1")
///     let range = SourceRange(fileName: file.name, start: 4, end: 5)
///     file.text(in: range)  // "x"
public struct SourceRange: Sendable, Hashable {
    /// The name of the ``SourceFile`` the offsets refer to.
    public var fileName: String
    /// The offset of the first byte in the range.
    public var start: Int
    /// The offset one past the last byte in the range; never less than `start`.
    public var end: Int

    /// Creates a range; an `end` before `start` is raised to `start`.
    public init(fileName: String, start: Int, end: Int) {
        self.fileName = fileName
        self.start = start
        self.end = max(start, end)
    }

    /// The number of bytes the range covers.
    public var length: Int { end - start }

    /// The empty range at this range's end.
    public var endPoint: SourceRange {
        SourceRange(fileName: fileName, start: end, end: end)
    }

    /// The smallest range that covers both `self` and `other`.
    public func union(_ other: SourceRange) -> SourceRange {
        SourceRange(fileName: fileName, start: min(start, other.start), end: max(end, other.end))
    }
}

/// A 1-based line and column; columns count characters, not bytes.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    /// The 1-based line number.
    public var line: Int
    /// The 1-based column, counted in characters of the line.
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    /// `line:column`, for example `3:14`.
    public var description: String { "\(line):\(column)" }
}

/// The text of one metaq source, with the line table needed to turn byte offsets
/// into line and column numbers.
///
///     let file = SourceFile(name: "sine.mq", text: "seed 7\nprint r")
///     file.location(of: 7)  // 2:1
///     file.lineText(2)      // "print r"
public struct SourceFile: Sendable {
    /// The name shown in diagnostics, usually the path the text was read from.
    public let name: String
    /// The source text.
    public let text: String
    /// The offset of the first byte of each line; `lineStarts[0] == 0`.
    public let lineStarts: [Int]
    /// The UTF-8 encoding of `text`.
    let bytes: [UInt8]

    /// Creates a source file. To read bytes that may not be valid UTF-8, decode them
    /// first with `String(decoding: bytes, as: UTF8.self)`.
    public init(name: String, text: String) {
        self.name = name
        self.text = text
        bytes = Array(text.utf8)
        var starts = [0]
        for offset in bytes.indices where bytes[offset] == UInt8(ascii: "\n") {
            starts.append(offset + 1)
        }
        lineStarts = starts
    }

    /// The length of the text in UTF-8 bytes.
    public var byteCount: Int { bytes.count }

    /// The number of lines; a text ending in a line feed has an empty last line.
    public var lineCount: Int { lineStarts.count }

    /// The empty range at the end of the text.
    public var endRange: SourceRange {
        SourceRange(fileName: name, start: bytes.count, end: bytes.count)
    }

    /// The line and column of a byte offset; offsets outside the text are clamped to it.
    public func location(of offset: Int) -> SourceLocation {
        let offset = min(max(offset, 0), bytes.count)
        let line = lineIndex(containing: offset)
        let prefix = bytes[lineStarts[line]..<offset]
        return SourceLocation(line: line + 1, column: String(decoding: prefix, as: UTF8.self).count + 1)
    }

    /// The text of a 1-based line without its line terminator, or `""` if there is no such line.
    public func lineText(_ line: Int) -> String {
        String(decoding: bytes[lineByteRange(line)], as: UTF8.self)
    }

    /// The source text a range covers, clamped to the text.
    public func text(in range: SourceRange) -> String {
        let start = min(max(range.start, 0), bytes.count)
        let end = min(max(range.end, start), bytes.count)
        return String(decoding: bytes[start..<end], as: UTF8.self)
    }

    /// The byte offsets of a 1-based line's content, without `\n` or `\r\n`.
    func lineByteRange(_ line: Int) -> Range<Int> {
        guard line >= 1, line <= lineStarts.count else { return bytes.count..<bytes.count }
        let start = lineStarts[line - 1]
        var end = line < lineStarts.count ? lineStarts[line] - 1 : bytes.count
        if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return start..<end
    }

    /// The 0-based index of the line containing `offset`, by binary search.
    private func lineIndex(containing offset: Int) -> Int {
        var low = 0
        var high = lineStarts.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if lineStarts[middle] <= offset { low = middle } else { high = middle - 1 }
        }
        return low
    }
}
