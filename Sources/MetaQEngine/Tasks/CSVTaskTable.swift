import Foundation

/// A CSV table of regression or classification rows grouped into tasks by a task-id column.
///
/// The file needs a header row naming its columns. Fields follow RFC 4180: separated by
/// commas, optionally in double quotes (which may then hold commas, line breaks and `""` for
/// a quote), records ending in LF, CRLF or CR. Spaces and tabs around every field are
/// trimmed, a UTF-8 byte-order mark is skipped, and blank lines are ignored. Feature and
/// target fields must be plain decimal numbers (`-1.5`, `2e-3`; no `nan`, `inf` or hex) that
/// fit in a `Float`. Tasks keep the order in which their ids first appear.
///
/// ```swift
/// // task,x,y
/// // sine-1,0.5,0.48
/// // sine-2,0.5,-0.1
/// // sine-1,1.0,0.84
/// let table = try CSVTaskTable(path: "sines.csv", taskColumn: "task", targetColumn: "y")
/// table.tasks[0].id        // "sine-1"
/// table.tasks[0].features  // [0.5, 1.0]: rowCount x featureCount, row-major
/// table.tasks[0].targets   // [0.48, 0.84]
/// ```
public struct CSVTaskTable: Sendable {
    /// The rows of one task.
    public struct TaskData: Equatable, Sendable {
        /// The task-id field shared by these rows.
        public let id: String
        /// `rowCount * featureCount` values, row by row, columns in `featureColumns` order.
        public let features: [Float]
        /// One target value per row.
        public let targets: [Float]
        /// The number of rows.
        public var rowCount: Int { targets.count }
    }

    /// The file the table was read from.
    public let path: String
    /// The column holding task ids.
    public let taskColumn: String
    /// The columns read as features, in the order their values appear in `TaskData.features`.
    public let featureColumns: [String]
    /// The column read as the target.
    public let targetColumn: String
    /// The tasks, in order of first appearance in the file.
    public let tasks: [TaskData]

    /// The number of features per row.
    public var featureCount: Int { featureColumns.count }

    /// Reads and groups the table at `path`.
    ///
    /// `featureColumns` of `nil` takes every column except `taskColumn` and `targetColumn`,
    /// in header order.
    ///
    /// ```swift
    /// let table = try CSVTaskTable(
    ///     path: "data.csv", taskColumn: "task", featureColumns: ["x1", "x2"], targetColumn: "y")
    /// ```
    ///
    /// - Throws: `DataError` naming the file, and the line where there is one, if the file
    ///   cannot be read, breaks the CSV format, is empty or has only a header, has a row
    ///   with the wrong number of fields, names an unknown column, or holds a field that is
    ///   not a number in a feature or target column.
    public init(
        path: String, taskColumn: String, featureColumns: [String]? = nil, targetColumn: String
    ) throws {
        let (header, records, columns) = try CSVParser.table(at: path)
        func index(of name: String) throws -> Int {
            try CSVParser.index(of: name, in: columns, header: header, path: path)
        }
        let taskIndex = try index(of: taskColumn)
        let targetIndex = try index(of: targetColumn)
        guard taskIndex != targetIndex else {
            throw DataError.invalidColumns(
                path: path, reason: "column '\(taskColumn)' cannot be both the task id and the target")
        }
        let featureColumns = featureColumns
            ?? header.fields.filter { $0 != taskColumn && $0 != targetColumn }
        guard !featureColumns.isEmpty else {
            throw DataError.invalidColumns(
                path: path,
                reason: "no feature columns besides task '\(taskColumn)' and target '\(targetColumn)'")
        }
        let featureIndices = try featureColumns.map(index(of:))

        var taskOrder: [String: Int] = [:]
        var grouped: [(id: String, features: [Float], targets: [Float])] = []
        for record in records {
            guard record.fields.count == header.fields.count else {
                throw DataError.raggedRow(
                    path: path, line: record.line,
                    fieldCount: record.fields.count, headerCount: header.fields.count)
            }
            func number(at index: Int) throws -> Float {
                try Self.number(record.fields[index], column: header.fields[index], line: record.line, path: path)
            }
            let id = record.fields[taskIndex]
            let task: Int
            if let existing = taskOrder[id] {
                task = existing
            } else {
                task = grouped.count
                taskOrder[id] = task
                grouped.append((id, [], []))
            }
            for featureIndex in featureIndices {
                grouped[task].features.append(try number(at: featureIndex))
            }
            grouped[task].targets.append(try number(at: targetIndex))
        }

        self.path = path
        self.taskColumn = taskColumn
        self.featureColumns = featureColumns
        self.targetColumn = targetColumn
        self.tasks = grouped.map { TaskData(id: $0.id, features: $0.features, targets: $0.targets) }
    }

    /// Maps each header name to its field index, rejecting empty and repeated names.
    fileprivate static func columnIndices(_ header: CSVParser.Record, path: String) throws -> [String: Int] {
        var indices: [String: Int] = [:]
        for (index, name) in header.fields.enumerated() {
            guard !name.isEmpty else {
                throw DataError.invalidColumns(path: path, reason: "header field \(index + 1) has no name")
            }
            guard indices.updateValue(index, forKey: name) == nil else {
                throw DataError.invalidColumns(path: path, reason: "duplicate column '\(name)' in the header")
            }
        }
        return indices
    }

    /// Parses `text` as a finite `Float` written as a plain decimal number.
    fileprivate static func number(_ text: String, column: String, line: Int, path: String) throws -> Float {
        guard isDecimalNumber(text.utf8), let value = Float(text) else {
            throw DataError.notANumber(path: path, line: line, column: column, text: text)
        }
        guard value.isFinite else {
            throw DataError.malformedCSV(
                path: path, line: line,
                reason: "column '\(column)': '\(text)' is out of range for a 32-bit float")
        }
        return value
    }

    /// Whether `text` matches `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`.
    private static func isDecimalNumber(_ text: String.UTF8View) -> Bool {
        var rest = text[...]
        func skipDigits() -> Int {
            let count = rest.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }.count
            rest = rest.dropFirst(count)
            return count
        }
        if let sign = rest.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            rest = rest.dropFirst()
        }
        var mantissaDigits = skipDigits()
        if rest.first == UInt8(ascii: ".") {
            rest = rest.dropFirst()
            mantissaDigits += skipDigits()
        }
        guard mantissaDigits > 0 else { return false }
        if let e = rest.first, e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            rest = rest.dropFirst()
            if let sign = rest.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
                rest = rest.dropFirst()
            }
            guard skipDigits() > 0 else { return false }
        }
        return rest.isEmpty
    }
}

/// Examples from a CSV file without task ids: one example per row, feature columns and an
/// optional target column, read with the same rules as ``CSVTaskTable`` (a header row,
/// RFC 4180 fields, plain decimal numbers). `metaq adapt` reads its support and query sets
/// this way.
///
/// ```swift
/// // x,y
/// // 0.5,0.48
/// // 1.0,0.84
/// let support = try CSVExamples(path: "support.csv", targetColumn: "y")
/// support.features   // [[0.5], [1.0]]
/// support.targets    // [0.48, 0.84]
/// ```
public struct CSVExamples: Sendable {
    /// The feature columns, in the order of each row of `features`.
    public let featureColumns: [String]
    /// One row of feature values per example.
    public let features: [[Float]]
    /// The target of each example, when the file has the target column.
    public let targets: [Float]?

    /// Reads the file at `path`. `featureColumns` of nil takes every column except
    /// `targetColumn`, in header order. The target column is read when the file has it, and
    /// must be there when `requireTarget` is set.
    ///
    /// - Throws: `DataError` naming the file and line, as ``CSVTaskTable`` does.
    public init(path: String, targetColumn: String, featureColumns: [String]? = nil, requireTarget: Bool = true) throws {
        let (header, records, columns) = try CSVParser.table(at: path)
        func index(of name: String) throws -> Int {
            try CSVParser.index(of: name, in: columns, header: header, path: path)
        }
        let targetIndex = requireTarget ? try index(of: targetColumn) : columns[targetColumn]
        let featureColumns = featureColumns ?? header.fields.filter { $0 != targetColumn }
        guard !featureColumns.isEmpty else {
            throw DataError.invalidColumns(path: path, reason: "no feature columns besides the target '\(targetColumn)'")
        }
        let featureIndices = try featureColumns.map(index(of:))
        var features: [[Float]] = []
        var targets: [Float] = []
        for record in records {
            guard record.fields.count == header.fields.count else {
                throw DataError.raggedRow(path: path, line: record.line, fieldCount: record.fields.count, headerCount: header.fields.count)
            }
            func number(at index: Int) throws -> Float {
                try CSVTaskTable.number(record.fields[index], column: header.fields[index], line: record.line, path: path)
            }
            features.append(try featureIndices.map(number(at:)))
            if let targetIndex { targets.append(try number(at: targetIndex)) }
        }
        self.featureColumns = featureColumns
        self.features = features
        self.targets = targetIndex == nil ? nil : targets
    }
}

/// Splits RFC 4180 CSV bytes into records of trimmed fields, tracking line numbers.
private struct CSVParser {
    /// Reads a CSV file: its header, its data rows (at least one) and each column's index.
    static func table(at path: String) throws -> (header: Record, records: [Record], columns: [String: Int]) {
        let bytes: Data
        do {
            bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw DataError.unreadableFile(path: path, reason: error.localizedDescription)
        }
        var records = try records(in: Array(bytes), path: path)
        guard !records.isEmpty else {
            throw DataError.malformedCSV(path: path, line: nil, reason: "empty file, expected a header row")
        }
        let header = records.removeFirst()
        guard !records.isEmpty else {
            throw DataError.malformedCSV(path: path, line: nil, reason: "no data rows after the header")
        }
        return (header, records, try CSVTaskTable.columnIndices(header, path: path))
    }

    /// The index of a named column, or an error listing the columns there are.
    static func index(of name: String, in columns: [String: Int], header: Record, path: String) throws -> Int {
        guard let index = columns[name] else {
            throw DataError.unknownColumn(path: path, name: name, columns: header.fields)
        }
        return index
    }

    struct Record {
        /// The 1-based line on which the record starts.
        let line: Int
        let fields: [String]
    }

    private let bytes: [UInt8]
    private let path: String
    private var position = 0
    private var line = 1

    /// The non-blank records of `bytes`, in file order; `path` names the file in errors.
    static func records(in bytes: [UInt8], path: String) throws -> [Record] {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw DataError.malformedCSV(path: path, line: nil, reason: "not UTF-8 text")
        }
        let byteOrderMark: [UInt8] = [0xEF, 0xBB, 0xBF]
        var parser = CSVParser(
            bytes: bytes.starts(with: byteOrderMark) ? Array(bytes.dropFirst(3)) : bytes, path: path)
        return try parser.readRecords()
    }

    private init(bytes: [UInt8], path: String) {
        self.bytes = bytes
        self.path = path
    }

    private static let comma = UInt8(ascii: ",")
    private static let quote = UInt8(ascii: "\"")
    private static let lineFeed = UInt8(ascii: "\n")
    private static let carriageReturn = UInt8(ascii: "\r")

    private static func isBlank(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func readRecords() throws -> [Record] {
        var records: [Record] = []
        while position < bytes.count {
            let (startLine, startPosition) = (line, position)
            var fields = [try field()]
            while current == Self.comma {
                position += 1
                fields.append(try field())
            }
            let isBlankLine = fields == [""] && !bytes[startPosition..<position].contains(Self.quote)
            endRecord()
            if !isBlankLine {
                records.append(Record(line: startLine, fields: fields))
            }
        }
        return records
    }

    /// Reads one field, stopping before the comma or line break that ends it.
    private mutating func field() throws -> String {
        while let byte = current, Self.isBlank(byte) { position += 1 }
        var value: [UInt8] = []
        if current == Self.quote {
            let start = line
            position += 1
            while true {
                guard let byte = current else {
                    throw DataError.malformedCSV(
                        path: path, line: start, reason: "quoted field is never closed")
                }
                position += 1
                if byte == Self.quote {
                    guard current == Self.quote else { break }
                    position += 1
                } else if byte == Self.lineFeed {
                    line += 1
                }
                value.append(byte)
            }
            while let byte = current, Self.isBlank(byte) { position += 1 }
            if let byte = current, byte != Self.comma, byte != Self.lineFeed, byte != Self.carriageReturn {
                throw DataError.malformedCSV(
                    path: path, line: line, reason: "unexpected text after a closing quote")
            }
        } else {
            while let byte = current, byte != Self.comma, byte != Self.lineFeed, byte != Self.carriageReturn {
                guard byte != Self.quote else {
                    throw DataError.malformedCSV(
                        path: path, line: line,
                        reason: "quote inside an unquoted field (quote the whole field and double the quote)")
                }
                value.append(byte)
                position += 1
            }
        }
        while let last = value.last, Self.isBlank(last) { value.removeLast() }
        let leading = value.prefix(while: Self.isBlank).count
        return String(decoding: value[leading...], as: UTF8.self)
    }

    /// Consumes the line break ending a record (LF, CRLF or CR), if any.
    private mutating func endRecord() {
        if current == Self.carriageReturn {
            position += 1
            if current == Self.lineFeed { position += 1 }
            line += 1
        } else if current == Self.lineFeed {
            position += 1
            line += 1
        }
    }
}
