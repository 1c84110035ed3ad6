import Foundation
import Testing
@testable import MetaQLanguage
import MetaQEngine

/// Learners written in the language: the script MAML of examples/algorithms/maml.mq against
/// the built-in, compilation of the script's functions, and errors inside them.
@Suite("Learners written in metaq")
struct ScriptLearnerTests {
    static let maml = """
    fn adapt(params, extras, support, steps) {
        var fast = per_task(params, support.tasks)
        for i in range(steps) {
            fast = fast + grad(fn(p) -> sum(task_mse(net(support.x, p), support.y)), fast, -0.01)
        }
        return fast
    }
    let meta_loss = fn(params, extras, batch) -> task_mse(net(batch.query.x, adapt(params, extras, batch.support, STEPS)), batch.query.y)
    """

    /// Runs `text`, returning the printed lines and the diagnostics' messages.
    static func run(_ text: String) -> (lines: [String], errors: [String], interpreter: Interpreter) {
        let output = BufferedOutput()
        let interpreter = Interpreter(output: output)
        let diagnostics = interpreter.run(SourceFile(name: "learner.mq", text: text))
        return (output.lines, diagnostics.map(\.message), interpreter)
    }

    static func comparison(steps: Int, iterations: Int) -> String {
        """
        seed 7
        model net = mlp < in 1 hidden [40, 40] out 1 >
        tasks sine = sinusoid < amplitude 0.1..5.0 phase 0..pi x -5..5 support 10 query 10 >
        \(maml.replacingOccurrences(of: "STEPS", with: "\(steps)"))
        learner mine = custom < model net loss meta_loss adapt adapt >
        let a = train mine on sine < iters \(iterations) log_every 1 >
        seed 7
        model net2 = mlp < in 1 hidden [40, 40] out 1 >
        tasks sine2 = sinusoid < amplitude 0.1..5.0 phase 0..pi x -5..5 support 10 query 10 >
        learner ref = maml < model net2 inner < steps \(steps) lr 0.01 > >
        let b = train ref on sine2 < iters \(iterations) log_every 1 >
        var same = 0
        for i in range(\(iterations)) {
            if a.losses[i] == b.losses[i] { same = same + 1 }
        }
        print same
        print a.losses[\(iterations - 1)]
        print b.losses[\(iterations - 1)]
        seed 5
        let ra = eval mine on sine < tasks 50 steps [0, 1, 3] >
        seed 5
        let rb = eval ref on sine2 < tasks 50 steps [0, 1, 3] >
        print ra.means == rb.means
        """
    }

    @Test("second-order MAML written with grad follows the built-in bit for bit", arguments: [1, 3])
    func scriptMAMLEqualsBuiltIn(steps: Int) throws {
        let (lines, errors, interpreter) = Self.run(Self.comparison(steps: steps, iterations: 40))
        #expect(errors.isEmpty, "\(errors)")
        #expect(lines.first == "40", "every meta-iteration's loss is identical: \(lines)")
        #expect(lines.count == 4 && lines[1] == lines[2])
        #expect(lines.last == "true", "evaluation after 0, 1 and 3 steps agrees")
        // After the first two calls the meta-loss replays its compiled form.
        guard case let .learner(l)? = interpreter.globals.lookup("mine"), case let .meta(s as ScriptLearner)? = l.learner else {
            Issue.record("no script learner")
            return
        }
        #expect(s.interpretedBecause == nil)
        #expect(s.lossCache.states.values.contains { if case .trusted = $0 { true } else { false } })
    }

    @Test("a script learner's model with dropout: masks in training, the compiled form trusted (both runs draw the same masks)")
    func scriptLearnerWithDropout() throws {
        func text(_ rate: String) -> String {
            """
            seed 7
            model net = sequential < in [1] layers [dense < out 32 >, relu, dropout < rate \(rate) >, dense < out 1 >] >
            tasks sine = sinusoid < support 10 query 10 >
            \(Self.maml.replacingOccurrences(of: "STEPS", with: "1"))
            learner mine = custom < model net loss meta_loss adapt adapt outer < batch 8 > >
            let a = train mine on sine < iters 12 log_every 1 >
            print a.losses[11]
            """
        }
        let (lines, errors, interpreter) = Self.run(text("0.5"))
        #expect(errors.isEmpty, "\(errors)")
        guard case let .learner(l)? = interpreter.globals.lookup("mine"), case let .meta(s as ScriptLearner)? = l.learner else {
            Issue.record("no script learner")
            return
        }
        #expect(s.interpretedBecause == nil)
        #expect(s.lossCache.states.values.contains { if case .trusted = $0 { true } else { false } })
        let again = Self.run(text("0.5"))
        #expect(again.lines == lines, "the same seed gives the same run")
        let plain = Self.run(text("0"))
        #expect(plain.errors.isEmpty && plain.lines != lines, "dropout changes training: \(plain.lines) vs \(lines)")
    }

    @Test("a function that decides from tensor values is interpreted on every call, with the same results")
    func dataDependentFunctionsAreInterpreted() throws {
        let text = """
        seed 3
        model net = mlp < in 1 hidden [8] out 1 >
        tasks sine = sinusoid < support 5 query 5 >
        fn adapt(params, extras, support, steps) {
            return per_task(params, support.tasks)
        }
        fn meta_loss(params, extras, batch) {
            let l = mean(task_mse(net(batch.query.x, params), batch.query.y))
            if l.values[0] > 1000000 { return l * 0 }
            return l
        }
        learner m = custom < model net loss meta_loss adapt adapt outer < batch 8 > >
        let log = train m on sine < iters 5 >
        print log.iterations
        """
        let (lines, errors, interpreter) = Self.run(text)
        #expect(errors.isEmpty, "\(errors)")
        #expect(lines == ["5"])
        guard case let .learner(l)? = interpreter.globals.lookup("m"), case let .meta(s as ScriptLearner)? = l.learner else {
            Issue.record("no script learner")
            return
        }
        #expect(s.interpretedBecause?.contains("reads tensor values") == true)
    }

    @Test("a var of an enclosing scope read by the loss keeps it interpreted")
    func mutableCapturesAreInterpreted() throws {
        let text = """
        seed 3
        model net = mlp < in 1 hidden [8] out 1 >
        tasks sine = sinusoid < support 5 query 5 >
        var weight = 1.0
        fn adapt(params, extras, support, steps) { return per_task(params, support.tasks) }
        fn meta_loss(params, extras, batch) { return weight * mean(task_mse(net(batch.query.x, params), batch.query.y)) }
        learner m = custom < model net loss meta_loss adapt adapt outer < batch 8 > >
        for i in range(4) {
            weight = 0.0
            print meta_step(m, sine)
        }
        """
        let (lines, errors, _) = Self.run(text)
        #expect(errors.isEmpty, "\(errors)")
        #expect(lines == ["0.0", "0.0", "0.0", "0.0"])
    }

    @Test("errors in a learner's functions stop training with the script's call chain")
    func errorsInsideTheLoss() throws {
        let text = """
        model net = mlp < in 1 hidden [8] out 1 >
        tasks sine = sinusoid < support 5 query 5 >
        fn adapt(params, extras, support, steps) { return params }
        fn meta_loss(params, extras, batch) { return sum(net(batch.query.x, params) @ tensor([[1.0, 2.0], [3.0, 4.0]])) }
        learner m = custom < model net loss meta_loss adapt adapt >
        train m on sine < iters 3 >
        """
        let output = BufferedOutput()
        let diagnostics = Interpreter(output: output).run(SourceFile(name: "learner.mq", text: text))
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.message == "matmul: inner dimensions differ: [12, 5, 1] x [2, 2]")
        #expect(diagnostics.first?.notes.contains { $0.message == "in call to 'meta_loss'" } == true)
    }

    @Test("a NaN meta-loss is reported as divergence, and the parameters are kept")
    func nanMetaLoss() throws {
        let text = """
        model net = mlp < in 1 hidden [8] out 1 >
        tasks sine = sinusoid < support 5 query 5 >
        fn adapt(params, extras, support, steps) { return params }
        fn meta_loss(params, extras, batch) { return mean(task_mse(net(batch.query.x, params), batch.query.y)) * log(tensor(-1.0)) }
        learner m = custom < model net loss meta_loss adapt adapt >
        let before = net.params
        train m on sine < iters 3 >
        """
        let (_, errors, interpreter) = Self.run(text)
        #expect(errors.count == 1 && errors[0].hasPrefix("training diverged at iteration 1 (loss NaN); the parameters are those before this iteration"), "\(errors)")
        guard case let .record(before)? = interpreter.globals.lookup("before"), case let .model(net)? = interpreter.globals.lookup("net") else {
            Issue.record("missing names")
            return
        }
        for (field, now) in zip(before.fields, net.network.parameters) {
            guard case let .tensor(t) = field.value else { continue }
            #expect(t.scalars == now.scalars, "parameter \(field.key) unchanged")
        }
    }

    @Test("extras are optimised, saved and restored: a resumed run is bit-identical")
    func extrasAndResume() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("metaq-script-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("run.mqm").path
        func script(iters: Int, resume: Bool) -> String {
            """
            seed 11
            model net = mlp < in 1 hidden [16] out 1 >
            tasks sine = sinusoid < support 5 query 5 >
            fn adapt(params, extras, support, steps) {
                var fast = per_task(params, support.tasks)
                for i in range(steps) {
                    let g = grad(fn(p) -> sum(task_mse(net(support.x, p), support.y)), fast)
                    fast = tree_map(fn(w, d, r) -> w - exp(r) * d, fast, g, extras)
                }
                return fast
            }
            fn meta_loss(params, extras, batch) { return task_mse(net(batch.query.x, adapt(params, extras, batch.support, 1)), batch.query.y) }
            learner m = custom < model net loss meta_loss adapt adapt extras full_like(net.params, log(0.01)) outer < batch 8 > >
            let log = train m on sine < iters \(iters) checkpoint "\(path)" every 5 resume \(resume) >
            print m.extras["0.bias"].values
            print log.loss
            """
        }
        let whole = Self.run(script(iters: 20, resume: false))
        #expect(whole.errors.isEmpty, "\(whole.errors)")
        try FileManager.default.removeItem(atPath: path)
        let first = Self.run(script(iters: 10, resume: false))
        #expect(first.errors.isEmpty)
        let resumed = Self.run(script(iters: 20, resume: true))
        #expect(resumed.errors.isEmpty, "\(resumed.errors)")
        #expect(resumed.lines.first == "resuming from \(path) at iteration 10")
        #expect(Array(resumed.lines.dropFirst()) == whole.lines, "the extras and the loss after 20 iterations, resumed or not")
        #expect(whole.lines.first != "[" + Array(repeating: "-4.60517", count: 16).joined(separator: ", ") + "]", "the rates were learned")
    }

    @Test("net(x, params) checks shapes; sample gives task-axis tensors")
    func modelsAndBatches() {
        let (lines, errors, _) = Self.run("""
        seed 1
        model net = mlp < in 1 hidden [4] out 1 >
        tasks sine = sinusoid < support 5 query 7 >
        let b = sample(sine, 3)
        print b.support.x.shape
        print b.query.y.shape
        print net(b.query.x, per_task(net.params, 3)).shape
        print net(tensor([[1.0, 2.0]]))
        """)
        #expect(lines == ["[3, 5, 1]", "[3, 7, 1]", "[3, 7, 1]"])
        #expect(errors == ["the model takes examples of shape [1], got [2] (input [1, 2])"])
    }

    @Test("built-in learners' parameters, extras and fast weights are readable")
    func builtInLearnersAreReadable() {
        let (lines, errors, _) = Self.run("""
        seed 1
        model net = mlp < in 1 hidden [8] out 1 >
        tasks sine = sinusoid < support 5 query 5 >
        learner m = maml < model net inner < steps 1 lr 0.01 > outer < batch 4 > >
        learner s = metasgd < model mlp < in 1 hidden [8] out 1 > inner < lr 0.02 > outer < batch 4 > >
        train m on sine < iters 3 >
        train s on sine < iters 3 >
        let b = sample(sine, 2)
        print fast_weights(m, b.support, 2)["0.weight"].shape
        print m.params["0.weight"].shape
        print s.extras["0.bias"].shape
        print fast_weights(s, b.support, 1)["2.bias"].shape
        print fast_weights(m, b.support, 0)["2.bias"].values == m.params["2.bias"].values
        let manual = m.params - 0.01 * grad(fn(p) -> sum(task_mse(net(b.support.x, p), b.support.y)), per_task(m.params, 2))
        print float(sum(abs(manual["0.weight"] - fast_weights(m, b.support, 1)["0.weight"]))) < 1e-6
        """)
        #expect(errors.isEmpty, "\(errors)")
        #expect(lines == ["[2, 1, 8]", "[1, 8]", "[8]", "[2, 1]", "false", "true"])
    }

    @Test("load() rebuilds a script learner from its checkpoint, in an interpreter of its own")
    func loadAScriptLearner() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("metaq-load-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("mine.mqm").path
        let saved = Self.run("""
        seed 4
        model net = mlp < in 1 hidden [8] out 1 >
        tasks sine = sinusoid < support 5 query 5 >
        \(Self.maml.replacingOccurrences(of: "STEPS", with: "1"))
        learner mine = custom < model net loss meta_loss adapt adapt extras < scale tensor(2.0) > outer < batch 4 > >
        train mine on sine < iters 7 >
        save mine to "\(path)"
        seed 9
        let r = eval mine on sine < tasks 10 steps [0, 2] >
        print r.means
        """)
        #expect(saved.errors.isEmpty, "\(saved.errors)")
        let loaded = Self.run("""
        let m = load("\(path)")
        print m.iterations
        print m.extras.scale.values
        tasks sine = sinusoid < support 5 query 5 >
        seed 9
        let r = eval m on sine < tasks 10 steps [0, 2] >
        print r.means
        """)
        #expect(loaded.errors.isEmpty, "\(loaded.errors)")
        #expect(loaded.lines.count == 3 && loaded.lines[0] == "7" && loaded.lines[2] == saved.lines.last)
    }
}
