import Foundation
import Testing
import MetaQLanguage

/// A script choosing a size near the largest int: its output, and the start of its one
/// diagnostic as `line:column: message` (nil: it runs without one).
struct LimitCase: Sendable, CustomTestStringConvertible {
    var source: String
    var output: [String]
    var diagnostic: String?
    var testDescription: String { source.debugDescription }

    init(_ source: String, output: [String] = [], _ diagnostic: String? = nil) {
        self.source = source
        self.output = output
        self.diagnostic = diagnostic
    }
}

/// Sizes near the largest int give errors naming the limit, never an overflow trap, and
/// plans too large for memory are refused before anything is allocated.
@Suite struct LimitTests {
    static let big = "9223372036854775807"

    static let cases: [LimitCase] = [
        // range: the count hi - lo overflows.
        LimitCase("print len(range(5, -\(big)))", output: ["0"]),
        LimitCase("print len(range(-\(big), \(big)))", "1:11: range(-\(big), \(big)) is too large: a range holds at most 10000000 items"),
        LimitCase("print len(range(-2, \(big)))", "1:11: range(-2, \(big)) is too large"),
        // for over a range ending at (or, as a float, rounded past) the largest int.
        LimitCase("for i in 9223372036854775806..\(big) { print i }", "1:10: 'for' over a range needs bounds that fit in an int (got 9.22337e+18..9.22337e+18)"),
        LimitCase("for i in 9223372036854774784..9223372036854774784 { print i }", output: ["9223372036854774784"]),
        // Block keys that are sizes.
        LimitCase("tasks t = sinusoid < support \(big) >", "1:30: key 'support' of 'sinusoid' expects int in 1...16777216, got \(big)"),
        LimitCase("tasks t = linear < query \(big) >", "1:26: key 'query' of 'linear' expects int in 1...16777216, got \(big)"),
        LimitCase("model n = mlp < in \(big) out 1 >", "1:20: key 'in' of 'mlp' expects int in 1...16777216, got \(big)"),
        LimitCase("model n = mlp < in 1 hidden [\(big)] out 1 >", "1:22: layer size \(big) is too large (at most 16777216)"),
        LimitCase("model n = mlp < in 1 hidden [4, -1] out 1 >", "1:22: layer sizes must be positive"),
        LimitCase("model n = conv4 < filters \(big) out 5 >", "1:27: key 'filters' of 'conv4' expects int in 1...16777216, got \(big)"),
        LimitCase("learner m = maml < model mlp < in 1 out 1 > outer < batch \(big) > >", "1:59: key 'batch' of 'outer' expects int in 1...16777216"),
        // Sizes each within the limit whose product is too large for memory.
        LimitCase("model n = mlp < in 16777216 hidden [16777216] out 1 >", "1:11: this mlp is too large: it needs 281475010265089 floats (1125900.0 GB), and at most "),
        LimitCase("model n = conv4 < size 512 filters 16777216 out 5 >", "1:11: this conv4 is too large"),
        LimitCase("""
            tasks t = sinusoid < support 16777216 query 16777216 >
            learner m = maml < model mlp < in 1 out 1 > outer < batch 16777216 > >
            train m on t < iters 1 >
            """, "3:1: a batch of 16777216 tasks with 16777216 support and 16777216 query examples is too large: it needs"),
        LimitCase("""
            tasks t = sinusoid < support 10 >
            learner m = maml < model mlp < in 1 out 1 > >
            eval m on t < tasks 16777216 batch 16777216 support 16777216 >
            """, "3:1: a batch of 16777216 tasks with 16777216 support and 10 query examples is too large"),
    ]

    @Test(arguments: cases)
    func limit(_ c: LimitCase) {
        let file = SourceFile(name: "limit.mq", text: c.source)
        let output = BufferedOutput()
        let diagnostics = located(Interpreter(output: output).run(file), in: file)
        #expect(output.lines == c.output)
        if let expected = c.diagnostic {
            #expect(diagnostics.count == 1 && diagnostics[0].hasPrefix(expected), "\(diagnostics)")
        } else {
            #expect(diagnostics.isEmpty, "\(diagnostics)")
        }
    }

    /// A `for` over a range makes its integers one at a time, so a long one starts at once,
    /// and stops at an interrupt (Ctrl-C in the REPL) like `while`.
    @Test func longForLoopsStopAtAnInterrupt() {
        let file = SourceFile(name: "loop.mq", text: "var n = 0\nfor i in 0..1000000000000000 { n = n + 1 }")
        let interpreter = Interpreter(output: BufferedOutput())
        interpreter.shouldInterrupt = { true }
        #expect(located(interpreter.run(file), in: file) == ["2:1: interrupted"])
    }

    /// `eval` asks for an interrupt before each batch of tasks: Ctrl-C in the REPL stops a
    /// long evaluation with an error instead of a report on fewer tasks.
    @Test func longEvaluationsStopAtAnInterrupt() {
        let file = SourceFile(name: "eval.mq", text: """
            model net = mlp < in 1 hidden [4] out 1 >
            tasks sine = sinusoid < support 5 query 5 >
            learner m = maml < model net inner < steps 1 lr 0.01 > outer < batch 2 > >
            let r = eval m on sine < tasks 2000 batch 25 steps [1] >
            """)
        let polls = PollCounter(answeringTrueFrom: 3)
        let interpreter = Interpreter(output: BufferedOutput())
        interpreter.shouldInterrupt = { polls.next() }
        #expect(located(interpreter.run(file), in: file) == ["4:9: interrupted after 50 of 2000 tasks"])
    }
}

/// Runaway recursion reports the call chain with its repetitions counted, not one note per call.
@Suite struct CallChainTests {
    /// The notes of the first diagnostic of `text`, run on a thread with a large stack: the
    /// 400 nested calls of runaway recursion need more than a test thread's in a debug build.
    private func notes(_ text: String) -> [String] {
        final class Result: @unchecked Sendable { var notes: [String] = [] }
        let result = Result(), done = DispatchSemaphore(value: 0)
        let thread = Thread {
            let diagnostics = Interpreter(output: BufferedOutput()).run(SourceFile(name: "calls.mq", text: text))
            result.notes = diagnostics.first?.notes.map(\.message) ?? []
            done.signal()
        }
        thread.stackSize = 512 << 20
        thread.start()
        done.wait()
        return result.notes
    }

    @Test func recursionNotesAreCollapsed() {
        #expect(notes("fn f(n) { return f(n + 1) }\nprint f(0)")
                == ["in call to 'f'", "... 398 more calls to 'f' from the same place", "in call to 'f'"])
        let mutual = notes("fn f(n) { return g(n) }\nfn g(n) { return f(n) }\nprint f(0)")
        #expect(mutual.count <= 6, "\(mutual)")
        #expect(mutual.contains { $0.hasPrefix("... the 2 calls above repeated ") && $0.hasSuffix(" more times ('g', 'f') from the same places") }, "\(mutual)")
        // A short chain is shown whole.
        #expect(notes("fn inner(x) { return x / [1] }\nfn outer(y) { return inner(y) }\nprint outer(2)")
                == ["in call to 'inner'", "in call to 'outer'"])
    }
}

/// An interrupt check that answers false until its `count`th call.
final class PollCounter: @unchecked Sendable {
    private var calls = 0
    private let count: Int

    init(answeringTrueFrom count: Int) { self.count = count }

    func next() -> Bool {
        calls += 1
        return calls >= count
    }
}
