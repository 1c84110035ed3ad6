import Foundation

/// A parameter sweep: `--grid 'lr=[0.001, 0.01]' --grid 'steps=[1, 5]'` expands to every
/// combination of the listed values (the first grid varies slowest), each run as
/// `metaq run --set lr=0.001 --set steps=1 ...`. The keys are those of `--set`: a top-level
/// `let`/`var` name or a `declaration.key[.key]` path; each value is a metaq expression, kept
/// as its source text so the run parses exactly what was written.
///
/// ```swift
/// let grid = try SweepGrid(parsing: ["lr=[0.001, 0.01]", "steps=[1, 5]"])
/// grid.configurations.count            // 4
/// grid.configurations[1].overrides     // [("lr", "0.001"), ("steps", "5")]
/// ```
public struct SweepGrid: Sendable, Equatable {
    /// The swept keys, in the order given.
    public let keys: [String]
    /// For each key, its values' source texts.
    public let values: [[String]]
    /// More configurations than this is refused (a typo such as a huge range is not run).
    public static let maximumConfigurations = 100_000

    public init(parsing specs: [String]) throws(SweepError) {
        guard !specs.isEmpty else { throw SweepError("a sweep needs at least one --grid 'key=[value, ...]'") }
        var keys: [String] = [], values: [[String]] = []
        var count = 1
        for spec in specs {
            guard let eq = spec.firstIndex(of: "=") else {
                throw SweepError("--grid expects key=[value, ...], got '\(spec)'")
            }
            let key = spec[..<eq].trimmingCharacters(in: .whitespaces)
            guard SweepGrid.isKey(key) else {
                throw SweepError("--grid '\(spec)': '\(key)' is not a name or a declaration.key path")
            }
            guard !keys.contains(key) else { throw SweepError("--grid: '\(key)' is swept twice") }
            let list = try SweepGrid.elements(of: String(spec[spec.index(after: eq)...]), key: key)
            guard !list.isEmpty else { throw SweepError("--grid \(key): the list of values is empty") }
            guard Set(list).count == list.count else { throw SweepError("--grid \(key): a value is listed twice") }
            count *= list.count
            guard count <= SweepGrid.maximumConfigurations else {
                throw SweepError("the grid has more than \(SweepGrid.maximumConfigurations) configurations")
            }
            keys.append(key)
            values.append(list)
        }
        self.keys = keys
        self.values = values
    }

    /// `name` or `name.key.key`, each part an identifier.
    static func isKey(_ key: String) -> Bool {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        return !parts.isEmpty && parts.allSatisfy { part in
            guard let first = part.first, first == "_" || first.isLetter else { return false }
            return part.allSatisfy { $0 == "_" || $0.isLetter || $0.isNumber }
        }
    }

    /// The source texts of the elements of the metaq list `text` ("[0.1, 0.2]").
    static func elements(of text: String, key: String) throws(SweepError) -> [String] {
        let prefix = "let __grid = "
        let source = SourceFile(name: "--grid \(key)", text: prefix + text)
        let (program, diagnostics) = Parser.parse(source)
        if let first = diagnostics.first {
            throw SweepError("--grid \(key): '\(text.trimmingCharacters(in: .whitespaces))' is not a metaq list: \(first.message)")
        }
        guard program.statements.count == 1, case let .let(_, value) = program.statements[0].kind,
              case let .list(items) = value.kind else {
            throw SweepError("--grid \(key): expected a list of values in brackets, such as [1, 2, 3], got '\(text.trimmingCharacters(in: .whitespaces))'")
        }
        let bytes = Array(source.text.utf8)
        return items.map { item in
            String(decoding: bytes[item.range.start..<item.range.end], as: UTF8.self)
        }
    }

    /// Every combination, the first key varying slowest.
    public var configurations: [SweepConfiguration] {
        var result: [[(String, String)]] = [[]]
        for (key, list) in zip(keys, values) {
            result = result.flatMap { prefix in list.map { prefix + [(key, $0)] } }
        }
        return result.enumerated().map { SweepConfiguration(index: $0.offset, overrides: $0.element) }
    }
}

/// One configuration of a sweep: its overrides, in the grid's key order.
public struct SweepConfiguration: Sendable {
    public let index: Int
    public let overrides: [(key: String, value: String)]

    public init(index: Int, overrides: [(String, String)]) {
        self.index = index
        self.overrides = overrides.map { (key: $0.0, value: $0.1) }
    }

    /// A folder name: the index (so that names are unique and sort in grid order), then
    /// the overrides with characters other than letters, digits, '.', '-' and '_' replaced
    /// by '_', shortened to stay a usable file name ("003_lr=0.01_steps=5").
    public var id: String {
        let index = String(repeating: "0", count: max(0, 3 - String(self.index).count)) + String(self.index)
        let body = overrides.map { "\($0.key)=\($0.value)" }.joined(separator: "_")
        let safe = String(body.unicodeScalars.map { s -> Character in
            let c = Character(s)
            return s.isASCII && (c.isLetter || c.isNumber || c == "." || c == "-" || c == "_" || c == "=") ? c : "_"
        })
        return index + "_" + String(safe.prefix(100))
    }

    /// The `--set` arguments of this configuration.
    public var setArguments: [String] { overrides.flatMap { ["--set", "\($0.key)=\($0.value)"] } }

    /// The marker's text: written (atomically) once the run has finished; a run whose marker
    /// holds the same overrides is skipped when the sweep runs again.
    public var markerText: String {
        overrides.map { "\($0.key)=\($0.value)" }.joined(separator: "\n") + "\n"
    }
}

public struct SweepError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The results a run printed, as named columns: read from `metaq run --json` output (one
/// `{"type": ..., "value": ...}` object per line).
///
/// - a number or bool printed alone: `value` (then `value_2`, ...);
/// - a string `name: number` (or `name = number`): `name`;
/// - a record: its number, bool and string fields by name, lists of numbers as `name[i]`;
/// - an evaluation report: `METRIC@STEPS` and `ci95@STEPS` for each row.
/// A string ending in ':' printed just before a record or report names it: "5-shot:" then a
/// report gives `5-shot.mse@0`. A name seen twice gets `_2`, `_3`, ... appended.
public enum SweepResults {
    public static func columns(fromJSONLines text: Substring) -> [(String, String)] {
        var result: [(String, String)] = []
        var used: [String: Int] = [:]
        var label: String?
        func add(_ name: String, _ value: String) {
            let n = (used[name] ?? 0) + 1
            used[name] = n
            result.append((n == 1 ? name : "\(name)_\(n)", value))
        }
        func scalar(_ v: SweepJSON) -> String? {
            switch v {
            case let .bool(b): return b ? "true" : "false"
            case let .number(d): return d == d.rounded() && abs(d) < 1e15 ? String(Int(d)) : Value.format(d)
            case let .string(s): return s
            default: return nil
            }
        }
        for line in text.split(separator: "\n") {
            guard case let .object(object)? = try? JSONDecoder().decode(SweepJSON.self, from: Data(line.utf8)),
                  case let .string(type)? = object["type"], let value = object["value"] else { continue }
            let prefix = label.map { $0 + "." } ?? ""
            var nextLabel: String?
            switch (type, value) {
            case let ("string", .string(s)):
                let trimmed = s.trimmingCharacters(in: .whitespaces)
                if trimmed.hasSuffix(":"), trimmed.count > 1 {
                    nextLabel = String(trimmed.dropLast()).trimmingCharacters(in: .whitespaces)
                } else if let sep = trimmed.firstIndex(where: { $0 == ":" || $0 == "=" }) {
                    let name = trimmed[..<sep].trimmingCharacters(in: .whitespaces)
                    let number = trimmed[trimmed.index(after: sep)...].trimmingCharacters(in: .whitespaces)
                    if !name.isEmpty, name.count <= 40, Double(number) != nil { add(name, number) }
                }
            case ("int", _), ("float", _), ("bool", _):
                if let s = scalar(value) { add(prefix + "value", s) }
            case let ("report", .object(report)):
                guard case let .string(metric)? = report["metric"], case let .array(rows)? = report["rows"] else { break }
                for case let .object(row) in rows {
                    guard let steps = row["steps"].flatMap(scalar) else { continue }
                    if let mean = row["mean"].flatMap(scalar) { add("\(prefix)\(metric)@\(steps)", mean) }
                    if let ci = row["ci95"].flatMap(scalar) { add("\(prefix)ci95@\(steps)", ci) }
                }
            case let ("record", .object(record)):
                for key in record.keys.sorted() {
                    let field = record[key]!
                    if let s = scalar(field) {
                        add(prefix + key, s)
                    } else if case let .array(list) = field, list.count <= 1000 {
                        for (i, item) in list.enumerated() { if case .number = item, let s = scalar(item) { add("\(prefix)\(key)[\(i)]", s) } }
                    }
                }
            default: break
            }
            label = nextLabel
        }
        return result
    }
}

/// A JSON value, as `metaq run --json` writes them.
enum SweepJSON: Decodable {
    case null, bool(Bool), number(Double), string(String), array([SweepJSON]), object([String: SweepJSON])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([SweepJSON].self) { self = .array(a) }
        else { self = .object(try c.decode([String: SweepJSON].self)) }
    }
}

/// Minimal CSV reading and writing for the sweep's tables (RFC 4180 quoting).
public enum SweepCSV {
    /// The rows of `text`; fields in double quotes may hold commas, quotes ("") and line breaks.
    public static func parse(_ text: String) -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = ""
        var quoted = false, atFieldStart = true
        var chars = text.makeIterator()
        var pending: Character?
        while let c = pending ?? chars.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    if let next = chars.next() {
                        if next == "\"" { field.append("\"") } else { quoted = false; pending = next }
                    } else { quoted = false }
                } else { field.append(c) }
                continue
            }
            switch c {
            case "\"" where atFieldStart: quoted = true; atFieldStart = false
            case ",": row.append(field); field = ""; atFieldStart = true
            case "\n", "\r\n":
                row.append(field); rows.append(row); row = []; field = ""; atFieldStart = true
            case "\r": break
            default: field.append(c); atFieldStart = false
            }
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }

    public static func field(_ s: String) -> String {
        s.contains(",") || s.contains("\"") || s.contains("\n") || s.contains("\r")
            ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    /// A header line and one line per row, each row's fields looked up by the header's names.
    public static func table(header: [String], rows: [[String: String]]) -> String {
        ([header.map(field).joined(separator: ",")]
            + rows.map { r in header.map { field(r[$0] ?? "") }.joined(separator: ",") })
            .joined(separator: "\n") + "\n"
    }
}
