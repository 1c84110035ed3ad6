import Foundation
import Testing
import MetaQLanguage

/// The progress line: an ETA, never wider than the terminal, plain lines when not on a
/// terminal, and progress from every long command.
@Suite struct ProgressTests {
    @Test func theBarHasAnETAAndFitsEveryWidth() {
        let p = ProgressState(label: "train maml", done: 250, total: 1000, loss: 1.5, elapsed: 10)
        #expect(p.remaining == 30)
        let wide = p.bar(width: 120)
        #expect(wide.hasPrefix("train maml [=======") && wide.hasSuffix("250/1000 loss 1.5000 25 it/s ETA 0:30"))
        for width in 1...200 {
            let line = p.bar(width: width)
            // The last column stays free: the terminal never wraps the line.
            #expect(line.count <= max(width - 1, 1), "width \(width): \(line)")
        }
        // Narrow: no bar, the count and ETA kept before the rate.
        #expect(p.bar(width: 45) == "train maml 250/1000 loss 1.5000 ETA 0:30")
        #expect(p.bar(width: 30) == "train maml 250/1000 ETA 0:30")
        let done = ProgressState(label: "eval maml", done: 100, total: 100, unit: "tasks", elapsed: 3725)
        #expect(done.plain == "eval maml: 100/100 (100.0%), 0.027 tasks/s, in 1:02:05")
        #expect(ProgressState.duration(59.6) == "1:00")
    }

    @Test func withoutATerminalALineEveryInterval() {
        var clock = Date(timeIntervalSince1970: 0)
        var written: [String] = []
        let display = ProgressDisplay(isTerminal: false, interval: 5, width: { 80 }, now: { clock }, write: { written.append($0) })
        for second in 0...12 {
            clock = Date(timeIntervalSince1970: Double(second))
            display.show(ProgressState(label: "train maml", done: second, total: 12, loss: 0.5, elapsed: Double(second)))
        }
        display.finish()
        #expect(written == [
            "train maml: 5/12 (41.7%), loss 0.5000, 1 it/s, ETA 0:07\n",
            "train maml: 10/12 (83.3%), loss 0.5000, 1 it/s, ETA 0:02\n",
            "train maml: 12/12 (100.0%), loss 0.5000, 1 it/s, in 0:12\n",
        ])
        // A short run prints nothing; quiet prints nothing at all.
        written = []
        display.show(ProgressState(label: "eval maml", done: 1, total: 2, elapsed: 1))
        display.finish()
        let quiet = ProgressDisplay(isTerminal: true, quiet: true, write: { written.append($0) })
        quiet.show(ProgressState(label: "x", done: 1, total: 2, elapsed: 1))
        quiet.finish()
        #expect(written == [])
    }

    @Test func onATerminalTheLineIsRedrawnToTheCurrentWidth() {
        var width = 100
        var written: [String] = []
        let display = ProgressDisplay(isTerminal: true, width: { width }, write: { written.append($0) })
        display.show(ProgressState(label: "train maml", done: 1, total: 4, loss: 2, elapsed: 1))
        width = 30
        display.show(ProgressState(label: "train maml", done: 2, total: 4, loss: 2, elapsed: 2))
        display.finish()
        #expect(written.count == 3 && written[2] == "\n")
        #expect(written[0].hasPrefix("\rtrain maml [") && written[0].hasSuffix("\u{1B}[K"))
        #expect(written[1] == "\rtrain maml 2/4 ETA 0:02\u{1B}[K")
    }

    final class Recorder: OutputSink {
        var states: [ProgressState] = []
        var lines: [String] = []
        func write(_ line: String) { lines.append(line) }
        func progress(_ state: ProgressState) { states.append(state) }
    }

    @Test func trainEvalLifelongAndOnlineReportProgress() {
        let recorder = Recorder()
        let diagnostics = Interpreter(output: recorder).run(SourceFile(name: "p.mq", text: """
            seed 1
            tasks sine = sinusoid < support 4 query 4 >
            learner m = maml < model mlp < in 1 hidden [8] out 1 > >
            train m on sine < iters 3 >
            let r = eval m on sine < tasks 6 batch 2 steps [0, 1] >
            stream s = stream < tasks sine count 2 pool 8 support 4 query 4 >
            learner c = finetune < model mlp < in 1 hidden [8] out 1 > steps 1 >
            let l = lifelong c on s
            let o = online m on s < meta_steps 1 max_steps 2 >
            """))
        #expect(diagnostics.map(\.message) == [])
        let last = Dictionary(recorder.states.map { ($0.label, $0) }, uniquingKeysWith: { $1 })
        #expect(last["train maml"].map { ($0.done, $0.total, $0.unit, $0.loss != nil) } ?? (0, 0, "", false) == (3, 3, "it", true))
        #expect(last["eval maml"].map { ($0.done, $0.total, $0.unit) } ?? (0, 0, "") == (6, 6, "tasks"))
        #expect(last["lifelong finetune"].map { ($0.done, $0.total) } ?? (0, 0) == (2, 2))
        #expect(last["online maml"].map { ($0.done, $0.total) } ?? (0, 0) == (2, 2))
    }
}
