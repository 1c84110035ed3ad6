import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a long command is: `done` of `total` units (iterations, tasks) after `elapsed`
/// seconds, with the recent loss when there is one.
public struct ProgressState: Sendable, Equatable {
    public var label: String
    public var done: Int
    public var total: Int
    /// What is counted: "it" (iterations) or "tasks".
    public var unit: String
    public var loss: Float?
    public var elapsed: Double

    public init(label: String, done: Int, total: Int, unit: String = "it", loss: Float? = nil, elapsed: Double) {
        self.label = label
        self.done = done
        self.total = total
        self.unit = unit
        self.loss = loss
        self.elapsed = elapsed
    }

    /// Units per second so far.
    public var rate: Double { elapsed > 0 ? Double(done) / elapsed : 0 }

    /// Seconds left at the rate so far (nil before any unit is done).
    public var remaining: Double? {
        guard done > 0, elapsed > 0, total >= done else { return nil }
        return Double(total - done) / rate
    }

    /// `0:07`, `12:03`, `1:02:03`.
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }

    private var rateText: String {
        let r = rate
        return r >= 10 ? String(format: "%.0f %@/s", r, unit) : String(format: "%.2g %@/s", r, unit)
    }

    private var lossText: String? { loss.map { String(format: "loss %.4f", $0) } }

    private var timeText: String {
        done >= total ? "in \(Self.duration(elapsed))" : "ETA \(remaining.map(Self.duration) ?? "?")"
    }

    /// The line drawn over itself on a terminal, at most `width - 1` columns (the last column
    /// is left free, so the terminal never wraps it): the bar shrinks, then goes, then the
    /// rate, then the line is cut.
    public func bar(width: Int) -> String {
        let limit = max(width - 1, 1)
        let count = "\(done)/\(total)"
        var tail = [count]
        if let lossText { tail.append(lossText) }
        tail.append(rateText)
        tail.append(timeText)
        func line(_ parts: [String], bar: Int) -> String {
            guard bar > 0 else { return ([label] + parts).joined(separator: " ") }
            let filled = total > 0 ? min(bar, bar * done / total) : bar
            return label + " [" + String(repeating: "=", count: filled) + String(repeating: " ", count: bar - filled) + "] " + parts.joined(separator: " ")
        }
        let fixed = line(tail, bar: 0).count + 3
        let room = limit - fixed
        if room >= 8 { return line(tail, bar: min(30, room)) }
        var parts = tail
        var text = line(parts, bar: 0)
        // Then the rate goes, then the loss: the count and the time left stay longest.
        if text.count > limit, parts.count > 2 { parts.remove(at: parts.count - 2); text = line(parts, bar: 0) }
        if text.count > limit, parts.count > 2 { parts.remove(at: 1); text = line(parts, bar: 0) }
        return text.count > limit ? String(text.prefix(limit)) : text
    }

    /// One plain line for a log: `train maml: 361/20000 (1.8%), loss 2.6915, 92 it/s, ETA 3:33`.
    public var plain: String {
        var parts = [String(format: "%d/%d (%.1f%%)", done, total, total > 0 ? 100 * Double(done) / Double(total) : 100)]
        if let lossText { parts.append(lossText) }
        parts.append(rateText)
        parts.append(timeText)
        return "\(label): " + parts.joined(separator: ", ")
    }
}

/// Shows progress on standard error: on a terminal, a bar redrawn in place, fitted to the
/// terminal's current width (read at every redraw, so a resize is followed); otherwise one
/// plain line every `interval` seconds (and a last one when such a run ends), so a piped or
/// scheduled job shows it is alive. `quiet` shows nothing.
public final class ProgressDisplay {
    public let isTerminal: Bool
    public let quiet: Bool
    public let interval: Double
    private let write: (String) -> Void
    private let width: () -> Int
    private let now: () -> Date
    private var shown = false
    private var lastLine: Date?
    private var linesPrinted = 0
    private var last: ProgressState?
    private var lastPrinted: ProgressState?

    public init(isTerminal: Bool = isatty(STDERR_FILENO) != 0, quiet: Bool = false, interval: Double? = nil,
                width: @escaping () -> Int = ProgressDisplay.terminalWidth,
                now: @escaping () -> Date = Date.init,
                write: @escaping (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.isTerminal = isTerminal
        self.quiet = quiet
        self.interval = interval ?? ProcessInfo.processInfo.environment["METAQ_PROGRESS_SECONDS"].flatMap(Double.init) ?? 5
        self.width = width
        self.now = now
        self.write = write
    }

    public func show(_ p: ProgressState) {
        guard !quiet else { return }
        if isTerminal {
            // \r, the line, then erase what a longer previous line left.
            write("\r" + p.bar(width: width()) + "\u{1B}[K")
            shown = true
            return
        }
        let t = now()
        if lastLine == nil || last?.label != p.label { lastLine = t; linesPrinted = 0 }
        last = p
        if let l = lastLine, t.timeIntervalSince(l) >= interval {
            write(p.plain + "\n")
            lastLine = t
            lastPrinted = p
            linesPrinted += 1
        }
    }

    public func finish() {
        if shown { write("\n"); shown = false }
        // A run that printed lines ends with its final state.
        if let p = last, linesPrinted > 0, !isTerminal, p != lastPrinted { write(p.plain + "\n") }
        last = nil
        lastPrinted = nil
        lastLine = nil
        linesPrinted = 0
    }

    /// Standard error's width in columns (TIOCGWINSZ), else $COLUMNS, else 80.
    public static func terminalWidth() -> Int {
        var size = winsize()
        if ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        if let c = ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init), c > 0 { return c }
        return 80
    }
}

extension Interpreter {
    /// A progress callback for a long command: `(done, total)` goes to the output sink at
    /// most every 0.1 s, and always at the end.
    func progressReporter(_ label: String, unit: String = "tasks") -> (Int, Int) -> Void {
        let start = Date()
        var last = Date.distantPast
        let output = self.output
        return { done, total in
            let t = Date()
            guard t.timeIntervalSince(last) > 0.1 || done >= total else { return }
            last = t
            output.progress(ProgressState(label: label, done: done, total: total, unit: unit, elapsed: t.timeIntervalSince(start)))
        }
    }
}
