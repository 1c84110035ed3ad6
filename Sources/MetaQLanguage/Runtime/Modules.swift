import Foundation

/// A metaq module that ships with metaq: a method written in the language, embedded in the
/// binary from `Sources/MetaQLanguage/Modules/NAME.mq` and imported by name
/// (`import "metaq/NAME"`). Its documentation is its leading comment; `:help NAME`, the
/// language reference and completion read it from there.
public struct ShippedModule: Sendable {
    public let name: String
    public let source: String

    init(_ name: String, _ bytes: [UInt8]) {
        self.name = name
        source = String(decoding: bytes, as: UTF8.self)
    }

    /// The import path: `metaq/NAME`.
    public var path: String { ShippedModule.prefix + name }

    /// The leading comment, without its `# ` markers.
    public var documentation: String {
        var lines: [String] = []
        for line in source.split(separator: "\n", omittingEmptySubsequences: false) {
            guard line.hasPrefix("#") else { break }
            lines.append(String(line.dropFirst(line.hasPrefix("# ") ? 2 : 1)))
        }
        return lines.joined(separator: "\n")
    }

    /// The first sentence of the documentation.
    public var summary: String {
        let text = documentation.replacingOccurrences(of: "\n", with: " ")
        guard let end = text.range(of: ". ") else { return text }
        return String(text[..<end.lowerBound]) + "."
    }

    /// Lines of metaq code, not counting comments and blank lines.
    public var codeLines: Int {
        source.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }.count
    }

    static let prefix = "metaq/"

    /// The modules that ship with metaq: one row each.
    public static let all: [ShippedModule] = [
        ShippedModule("envs", PackageResources.envs_mq),
        ShippedModule("matching", PackageResources.matching_mq),
        ShippedModule("meta_lstm", PackageResources.meta_lstm_mq),
        ShippedModule("metagan", PackageResources.metagan_mq),
        ShippedModule("nn", PackageResources.nn_mq),
    ]

    public static func named(_ name: String) -> ShippedModule? { all.first { $0.name == name } }

    /// The error for `import "metaq/NAME"` when no module NAME ships: the nearest name, and
    /// the list of those that do (the checker and the interpreter both report it).
    static func unknownModuleMessage(_ path: String, name: String) -> String {
        let names = all.map(\.name)
        let hint = nearest(name, in: names).map { "; did you mean '\(prefix)\($0)'?" } ?? ""
        return "no module named '\(path)'\(hint) (metaq ships: \(names.map { prefix + $0 }.joined(separator: ", ")))"
    }

    /// The module an import path names, if it starts with `metaq/`.
    static func forImport(_ path: String) -> (name: String, module: ShippedModule?)? {
        guard path.hasPrefix(prefix) else { return nil }
        let name = String(path.dropFirst(prefix.count))
        return (name, named(name))
    }
}
