import CEditLine
import CInterrupt
import Foundation

// Every call into the CEditLine shim lives in this file. The SIGINT flag and wake-up pipe are
// in the CInterrupt C target, one copy for the whole process.

/// How the REPL reads its input.
enum InputMode: Equatable {
    /// libedit: line editing, history, Ctrl-R search and tab completion.
    case editing
    /// Prompts and plain lines, no escape codes (`TERM=dumb`, or output that is not a terminal).
    case plain
    /// No prompts: the whole input is one script, as with `metaq run -`.
    case script

    /// The mode for a session: editing needs standard input and output to be terminals and a
    /// terminal type other than `dumb`.
    static func choose(inputIsTerminal: Bool, outputIsTerminal: Bool, terminalType: String?) -> InputMode {
        guard inputIsTerminal else { return .script }
        guard outputIsTerminal, let terminalType, !terminalType.isEmpty, terminalType != "dumb" else { return .plain }
        return .editing
    }

    /// The mode for this process's standard input and output.
    static func current(environment: [String: String]) -> InputMode {
        choose(inputIsTerminal: isatty(STDIN_FILENO) != 0, outputIsTerminal: isatty(STDOUT_FILENO) != 0,
               terminalType: environment["TERM"])
    }
}

/// Ctrl-C: a SIGINT handler sets a flag that the REPL and the interpreter poll.
enum Interrupt {
    /// Installs the handler (interactive sessions only: a script piped in stops at Ctrl-C).
    /// Should that fail (no file descriptor left for its pipe), Ctrl-C keeps its default
    /// effect and ends the process.
    static func install() {
        _ = metaq_install_interrupt_handler()
    }

    /// Whether Ctrl-C was pressed since the flag was last cleared.
    static var isRequested: Bool { metaq_interrupt_requested() != 0 }

    static func clear() { metaq_clear_interrupt() }

    /// Whether Ctrl-C was pressed, clearing the flag.
    static func take() -> Bool {
        defer { clear() }
        return isRequested
    }
}

/// One read from the terminal.
enum LineInput: Equatable {
    case line(String)
    /// Ctrl-C: the line being typed is dropped.
    case interrupted
    /// Ctrl-D on an empty line, or the end of the input.
    case end
}

/// Reads lines from the terminal: through libedit (emacs key bindings, arrow keys, history
/// with Ctrl-R search, tab completion) in `.editing` mode, plainly in `.plain` mode.
final class LineReader {
    let mode: InputMode
    /// The lines of the current entry before the one being typed, for completion.
    var earlierLines: [String] = []
    /// The names bound in the session, for completion.
    let names: () -> [String]
    private var lastRemembered: String?
    /// Bytes read in `.plain` mode after the last line returned.
    private var unread: [UInt8] = []

    /// Sets up libedit in `.editing` mode, with `history` (oldest first) to recall.
    init(mode: InputMode, history: [String], historyLimit: Int, names: @escaping () -> [String]) {
        self.mode = mode
        self.names = names
        guard mode == .editing else { return }
        useUTF8Characters()
        metaq_editline_setup("metaq", completeWord, readCharacter, Int32(historyLimit))
        for entry in history { remember(entry) }
        activeReader = self
    }

    /// Makes libedit show UTF-8 text (`"±"`, `é`): it follows the C library's character
    /// type, which is ASCII until a program sets it. Takes the user's locale, or C.UTF-8
    /// when that is not UTF-8.
    private func useUTF8Characters() {
        setlocale(LC_CTYPE, "")
        if String(cString: nl_langinfo(nl_item(CODESET))) != "UTF-8" { setlocale(LC_CTYPE, "C.UTF-8") }
    }

    /// The next line, without its line break.
    func readLine(prompt: String) -> LineInput {
        Interrupt.clear()
        if mode == .editing {
            // The terminal goes raw before readline prints the prompt (libedit itself would
            // only switch after), so keys typed as soon as the prompt shows are not taken
            // by the terminal's own line editing.
            rl_prep_terminal(1)
            let raw = CEditLine.readline(prompt)
            defer { free(raw) }
            if Interrupt.take() { return .interrupted }
            return raw.map { .line(String(cString: $0)) } ?? .end
        }
        print(prompt, terminator: "")
        fflush(nil)
        return readPlainLine()
    }

    /// Reads a line with poll(2) and read(2), which Ctrl-C interrupts, rather than the C
    /// library's getline, which does not give up when it is interrupted.
    private func readPlainLine() -> LineInput {
        while true {
            if let newline = unread.firstIndex(of: UInt8(ascii: "\n")) {
                let line = unread[..<newline]
                unread.removeSubrange(...newline)
                return .line(String(decoding: line.last == UInt8(ascii: "\r") ? line.dropLast() : line, as: UTF8.self))
            }
            guard waitForInput() else {
                Interrupt.clear()
                unread = []
                return .interrupted
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = read(STDIN_FILENO, &chunk, chunk.count)
            if count > 0 {
                unread += chunk[..<count]
            } else if count == 0 || errno != EINTR {
                // The end of the input: a last line without a line break, then the end.
                guard !unread.isEmpty else { return .end }
                defer { unread = [] }
                return .line(String(decoding: unread, as: UTF8.self))
            }
        }
    }

    /// Adds an entry to the history the up arrow recalls, unless it repeats the last one.
    func remember(_ entry: String) {
        guard mode == .editing, entry != lastRemembered else { return }
        _ = add_history(entry)
        lastRemembered = entry
    }
}

/// Waits until standard input can be read; false when Ctrl-C comes first. The SIGINT handler
/// also writes to a pipe polled here, so a Ctrl-C just before the wait still ends it.
private func waitForInput() -> Bool {
    var descriptors = [
        pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0),
        pollfd(fd: metaq_interrupt_descriptor(), events: Int16(POLLIN), revents: 0),
    ]
    while !Interrupt.isRequested {
        let ready = poll(&descriptors, nfds_t(descriptors.count), -1)
        if ready < 0, errno != EINTR { return true }  // the read that follows reports it
        if descriptors[1].revents != 0 { metaq_drain_interrupt_pipe() }
        if descriptors[0].revents != 0 { return true }
    }
    return false
}

/// libedit's source of characters (readline's `rl_getc_function`, used instead of libedit's
/// own read, which retries a read interrupted by Ctrl-C): the next character typed, decoded
/// from UTF-8, or -1 when Ctrl-C is pressed or the input ends, which ends `readline`.
private func readCharacter(_: UnsafeMutablePointer<FILE>?) -> Int32 {
    guard waitForInput(), let lead = readByte() else { return -1 }
    var (scalar, length): (UInt32, Int)
    switch lead {
    case 0..<0x80: (scalar, length) = (UInt32(lead), 1)
    case 0xC0..<0xE0: (scalar, length) = (UInt32(lead & 0x1F), 2)
    case 0xE0..<0xF0: (scalar, length) = (UInt32(lead & 0x0F), 3)
    case 0xF0..<0xF8: (scalar, length) = (UInt32(lead & 0x07), 4)
    default: return 0xFFFD  // not the first byte of a UTF-8 sequence
    }
    for _ in 1..<length {
        guard let next = readByte(), next & 0xC0 == 0x80 else { return 0xFFFD }
        scalar = scalar << 6 | UInt32(next & 0x3F)
    }
    return Int32(bitPattern: scalar)
}

/// One byte of standard input; nil at its end.
private func readByte() -> UInt8? {
    var byte: UInt8 = 0
    while true {
        let count = read(STDIN_FILENO, &byte, 1)
        if count == 1 { return byte }
        if count == 0 || errno != EINTR { return nil }
    }
}

/// The reader libedit's completion callback serves. libedit calls the callback from inside
/// `readline`, on the thread that called it, which is the only thread that sets this.
nonisolated(unsafe) private var activeReader: LineReader?

/// libedit's completion callback: completes the word before the cursor with
/// ``Completion/complete(_:names:)``, given every line of the entry so far.
///
/// libedit replaces the characters `start..<end` of the line with the first returned match
/// (then lists the others). Its idea of a word comes from its word-break characters and may
/// differ from ``Completion``'s (a path inside a string, `m.it`), so each candidate is
/// rewritten to replace libedit's span instead.
private func completeWord(_ text: UnsafePointer<CChar>?, _ start: Int32, _ end: Int32) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
    metaq_completion_settings(0)
    guard let reader = activeReader, let buffer = metaq_line_buffer() else { return nil }
    // libedit counts characters (wide characters), not bytes.
    let line = Array(String(cString: buffer).unicodeScalars)
    let end = min(Int(end), line.count), start = min(Int(start), end)
    let beforeCursor = String(String.UnicodeScalarView(line[..<end]))
    let completion = Completion.complete((reader.earlierLines + [beforeCursor]).joined(separator: "\n"), names: reader.names())
    let ours = Array(completion.word.unicodeScalars), theirs = Array(line[start..<end])
    let matches: [(candidate: String, replacement: [Unicode.Scalar])] = completion.candidates.compactMap { candidate in
        let scalars = Array(candidate.unicodeScalars)
        if theirs.count >= ours.count { return (candidate, theirs.dropLast(ours.count) + scalars) }
        let dropped = ours.count - theirs.count
        return scalars.starts(with: ours[..<dropped]) ? (candidate, Array(scalars.dropFirst(dropped))) : nil
    }
    guard let first = matches.first?.replacement else { return nil }
    var common = first
    for match in matches.dropFirst() {
        common = Array(zip(common, match.replacement).prefix { $0 == $1 }.map(\.0))
    }
    if matches.count == 1, let append = completion.terminator(after: matches[0].candidate).utf8.first {
        metaq_completion_settings(Int32(append))
    }
    // The array readline's rl_completion_matches makes: the text to insert, then the
    // matches, then NULL; libedit reads the third slot even for a sole match, and frees
    // the array and its strings with free().
    let entries = matches.count == 1 ? [first] : [common] + matches.map(\.replacement)
    let slots = entries.count + 2
    let array = calloc(slots, MemoryLayout<UnsafeMutablePointer<CChar>?>.stride)!
        .bindMemory(to: UnsafeMutablePointer<CChar>?.self, capacity: slots)
    for (index, entry) in entries.enumerated() {
        array[index] = strdup(String(String.UnicodeScalarView(entry)))
    }
    return array
}
