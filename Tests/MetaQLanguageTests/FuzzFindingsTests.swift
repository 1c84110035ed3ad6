import Testing
@testable import MetaQLanguage

/// What scripts/fuzz-run.py found, as regression tests: each used to crash the process.
@Suite("Fuzzer findings")
struct FuzzFindingsTests {
    static func errors(_ text: String) -> [String] {
        Interpreter(output: BufferedOutput()).run(SourceFile(name: "f.mq", text: text)).map(\.message)
    }

    @Test("runaway recursion reaches the call-depth limit, not the end of the stack")
    func runawayRecursion() {
        #expect(Self.errors("fn f(n) { if n <= 0 { return 0 } else { return 1 + f(n - 0) } }\nprint f(30)\n")
                == ["call depth exceeded 400 (runaway recursion?)"])
    }

    @Test("a reshape whose size overflows is an error")
    func reshapeOverflow() {
        let e = Self.errors("print reshape(zeros([4, 3]), [9223372036854775807, 6])\n")
        #expect(e.count == 1 && e[0].contains("cannot reshape [4, 3]"))
    }

    @Test("a learner evaluated inside its own adaptation ends in an error, not a trap")
    func evalInsideAdaptation() {
        let e = Self.errors("""
        model net = mlp < in 1 hidden [4] out 1 >
        tasks sine = sinusoid < support 5 query 5 >
        fn adapt(params, extras, support, steps) {
            let inner = eval c on sine < tasks 2 steps [0, 1] >
            return per_task(params, support.tasks)
        }
        fn meta_loss(params, extras, batch) { return task_mse(net(batch.query.x, params), batch.query.y) }
        learner c = custom < model net loss meta_loss adapt adapt outer < batch 2 > >
        train c on sine < iters 1 >
        let e = eval c on sine < tasks 2 steps [0, 1] >
        """)
        #expect(e.count == 1)
    }

    @Test("a task family written in the language may sample tasks itself")
    func samplingInsideSampling() {
        let e = Self.errors("""
        tasks inner = sinusoid < support 2 query 2 >
        tasks outer = regression < f fn(x, a) -> a * x + 0 * len(sample(inner, 1).support.x.shape)  a -1..1  support 3 query 3 >
        print sample(outer, 2).support.x.shape
        """)
        #expect(e.count <= 1)
    }
}
