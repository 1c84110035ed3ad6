/// The REPL's own commands, typed after a colon (`:help maml`). They are not part of the
/// language: the REPL runs them itself, and completion offers them at the start of an entry.
enum SessionCommand: String, CaseIterable, Sendable {
    case help, vars, type, time, load, reset, history, quit

    /// Other spellings accepted for a command.
    static let aliases: [String: SessionCommand] = ["q": .quit, "exit": .quit]

    /// The command a word such as `:help` or `:q` names, if any.
    init?(word: String) {
        guard word.hasPrefix(":") else { return nil }
        let name = String(word.dropFirst())
        guard let command = SessionCommand(rawValue: name) ?? SessionCommand.aliases[name] else { return nil }
        self = command
    }

    /// How the command is typed, for messages.
    var usage: String {
        switch self {
        case .help: ":help [NAME]"
        case .type: ":type EXPR"
        case .time: ":time EXPR"
        case .load: ":load FILE"
        case .history: ":history [N]"
        case .vars, .reset, .quit: ":" + rawValue
        }
    }

    /// What completion offers for the command's argument.
    enum Argument {
        case none
        /// The name of a builtin block, command or function.
        case builtinName
        /// A file path.
        case path
        /// A metaq expression or statement, evaluated in the session.
        case code
    }

    var argument: Argument {
        switch self {
        case .help: .builtinName
        case .load: .path
        case .type, .time: .code
        case .vars, .reset, .history, .quit: .none
        }
    }
}
