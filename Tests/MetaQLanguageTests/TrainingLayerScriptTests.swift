import Foundation
import Testing
import MetaQEngine
import MetaQLanguage

/// Runs `text` in a fresh interpreter, DIR replaced by `directory`; its output and diagnostics.
private func runScript(_ text: String, in directory: String) -> (lines: [String], errors: [String]) {
    let output = BufferedOutput()
    let source = SourceFile(name: directory + "/script.mq", text: text.replacingOccurrences(of: "DIR", with: directory))
    let diagnostics = Interpreter(output: output).run(source)
    return (output.lines, diagnostics.map(\.message))
}

private func scratch() -> String {
    let path = NSTemporaryDirectory() + "metaq-training-layers-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

private let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../MetaQEngineTests/Fixtures/omniglot").standardizedFileURL.path

/// Dropout, MAML++'s per-step batch norm and the LSTM layer in scripts; the Omniglot cache.
@Suite("Training-time layers in the language")
struct TrainingLayerScriptTests {
    @Test("a model with dropout trains with MAML and with ProtoNet")
    func dropoutTrainsWithMAMLAndProtoNet() throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = runScript("""
            seed 4
            model net = sequential < in [1] layers [dense < out 32 >, relu, dropout < rate 0.2 >, dense < out 32 >, relu, dense < out 1 >] >
            print net
            tasks sine = sinusoid < support 10 query 10 >
            learner m = maml < model net inner < steps 1 lr 0.01 > outer < lr 0.003 batch 8 > >
            let before = eval m on sine < tasks 100 steps [1] >
            train m on sine < iters 400 >
            let after = eval m on sine < tasks 100 steps [1] >
            print after.means[0] < before.means[0]
            # Dropout is the identity outside training: the same input gives the same output.
            let x = tensor([[0.5], [1.0], [-2.0]])
            print float(sum(abs(net(x) - net(x))))
            model embed = sequential < in [12, 12, 1] layers [flatten < >, dense < out 32 >, relu, dropout < rate 0.2 >, dense < out 16 >] >
            tasks chars = omniglot < root "\(fixture)" ways 2 size 12 support 1 query 1 cache false >
            learner p = protonet < model embed >
            train p on chars < iters 30 >
            let r = eval p on chars < tasks 20 >
            print r.means[0] >= 0 and r.means[0] <= 1
            """, in: dir)
        #expect(result.errors.isEmpty, "\(result.errors)")
        #expect(result.lines.first == "model sequential: linear(1->32) -> relu -> dropout(0.2) -> linear(32->32) -> relu -> linear(32->1) (1153 parameters)")
        #expect(result.lines.filter { $0 == "true" }.count == 2, "\(result.lines)")
        #expect(result.lines.contains("0.0"), "\(result.lines)")
    }

    @Test("training with dropout resumes bit for bit (the masks follow the learner's generator)")
    func dropoutResumesExactly() throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let declarations = """
            seed 12
            model net = sequential < in [1] layers [dense < out 24 >, relu, dropout < rate 0.3 >, dense < out 1 >] >
            tasks sine = sinusoid < support 5 query 5 >
            learner m = maml < model net inner < steps 1 lr 0.01 > outer < lr 0.003 batch 4 > >
            """
        let straight = runScript(declarations + "\ntrain m on sine < iters 30 >\nsave m to \"DIR/straight.mqm\"\n", in: dir)
        #expect(straight.errors.isEmpty, "\(straight.errors)")
        let first = runScript(declarations + "\ntrain m on sine < iters 15 checkpoint \"DIR/run.mqm\" >\n", in: dir)
        #expect(first.errors.isEmpty, "\(first.errors)")
        let resumed = runScript(declarations + "\ntrain m on sine < iters 30 checkpoint \"DIR/run.mqm\" resume true >\n", in: dir)
        #expect(resumed.errors.isEmpty, "\(resumed.errors)")
        func bits(_ path: String) throws -> [[UInt32]] { try Checkpoint.read(from: path).parameters.map { $0.scalars.map(\.bitPattern) } }
        #expect(try bits(dir + "/run.mqm") == bits(dir + "/straight.mqm"))
        // The same run without dropout ends elsewhere: the masks were applied.
        let plain = runScript(declarations.replacingOccurrences(of: "rate 0.3", with: "rate 0") + "\ntrain m on sine < iters 30 >\nsave m to \"DIR/plain.mqm\"\n", in: dir)
        #expect(plain.errors.isEmpty, "\(plain.errors)")
        #expect(try bits(dir + "/plain.mqm") != bits(dir + "/straight.mqm"))
    }

    @Test("a learner with dropout and per-step batch norm saves, loads and evaluates as before")
    func saveAndLoad() throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = runScript("""
            seed 2
            model net = sequential < in [1] layers [dense < out 16 >, batchnorm < per_step 2 >, relu, dropout < rate 0.2 >, dense < out 1 >] >
            tasks sine = sinusoid < support 5 query 5 >
            learner m = maml < model net inner < steps 2 lr 0.01 > outer < batch 4 > >
            train m on sine < iters 10 >
            save m to "DIR/m.mqm"
            seed 9
            let r = eval m on sine < tasks 20 steps [0, 2] >
            print r
            """, in: dir)
        #expect(first.errors.isEmpty, "\(first.errors)")
        let second = runScript("""
            tasks sine = sinusoid < support 5 query 5 >
            let m = load("DIR/m.mqm")
            print m.model
            seed 9
            let r = eval m on sine < tasks 20 steps [0, 2] >
            print r
            """, in: dir)
        #expect(second.errors.isEmpty, "\(second.errors)")
        #expect(second.lines.first == "model sequential: linear(1->16) -> batchnorm(16, per step 2) -> relu -> dropout(0.2) -> linear(16->1) (113 parameters)", "\(second.lines)")
        #expect(Array(second.lines.dropFirst()) == Array(first.lines.suffix(second.lines.count - 1)), "\(first.lines) vs \(second.lines)")
    }

    @Test("resnet12's dropout key adds dropout after each stage")
    func resnet12Dropout() {
        let result = runScript("""
            model r = resnet12 < size 16 channels 1 widths [4, 4, 4, 4] dropout 0.1 >
            print r.layers[0]
            model s = resnet12 < size 16 channels 1 widths [4, 4, 4, 4] >
            print len(r.params) == len(s.params)
            model bad = resnet12 < size 16 channels 1 widths [4, 4, 4, 4] dropout 1 >
            """, in: NSTemporaryDirectory())
        #expect(result.lines.first?.hasSuffix("-> leaky_relu -> maxpool(2) -> dropout(0.1)]") == true, "\(result.lines)")
        #expect(result.lines.dropFirst().first == "true")
        #expect(result.errors.count == 1 && result.errors[0].contains("dropout"), "\(result.errors)")
    }

    @Test("bad dropout and per-step settings are errors, not crashes")
    func badSettings() {
        for (block, word) in [("dropout < rate 1 >", "rate"), ("dropout < rate -0.1 >", "rate"), ("dropout < p 0.1 >", "p"),
                              ("batchnorm < per_step 0 >", "per_step"), ("batchnorm < per_step 2.5 >", "per_step")] {
            let result = runScript("model net = sequential < in [4] layers [dense < out 4 >, \(block)] >\n", in: NSTemporaryDirectory())
            #expect(result.errors.count == 1 && result.errors[0].contains(word), "\(block): \(result.errors)")
        }
    }

    @Test("MAML++'s per-step batch norm in a script: per-step rows, trained with MAML")
    func perStepBatchNorm() {
        let result = runScript("""
            seed 5
            model net = sequential < in [1] layers [dense < out 16 >, batchnorm < per_step 3 >, relu, dense < out 1 >] >
            print net
            print net.params["1.scale"].shape
            tasks sine = sinusoid < support 10 query 10 >
            learner m = maml < model net inner < steps 3 lr 0.01 > outer < lr 0.003 batch 4 > >
            let before = eval m on sine < tasks 50 steps [3] >
            train m on sine < iters 200 >
            let after = eval m on sine < tasks 50 steps [3] >
            print after.means[0] < before.means[0]
            """, in: NSTemporaryDirectory())
        #expect(result.errors.isEmpty, "\(result.errors)")
        #expect(result.lines.first == "model sequential: linear(1->16) -> batchnorm(16, per step 3) -> relu -> linear(16->1) (145 parameters)")
        #expect(result.lines.dropFirst().first == "[3, 16]")
        #expect(result.lines.last == "true")
    }

    @Test("net(x, params, step: i) picks per-step batch norm's row i; bad steps are errors")
    func modelCallsAtAStep() {
        let result = runScript("""
            model net = sequential < in [3] layers [dense < out 4 >, batchnorm < per_step 2 >, tanh] >
            let g = generator(1)
            let x = randn(g, [5, 3])
            let at0 = grad(fn(p) -> sum(net(x, p, step: 0) * net(x, p, step: 0)), net.params)
            print float(sum(abs(slice(at0["1.scale"], 0, 0, 1)))) > 0
            print float(sum(abs(slice(at0["1.scale"], 0, 1, 2))))
            let last = grad(fn(p) -> sum(net(x, p) * net(x, p)), net.params)
            print float(sum(abs(slice(last["1.scale"], 0, 0, 1))))
            print net(x, step: -1)
            """, in: NSTemporaryDirectory())
        #expect(result.lines == ["true", "0.0", "0.0"], "\(result.lines)")
        #expect(result.errors.count == 1 && result.errors[0].contains("'step'"), "\(result.errors)")
        let other = runScript("model net = mlp < in 1 hidden [4] out 1 >\nprint net(zeros([2, 1]), stage: 1)\n", in: NSTemporaryDirectory())
        #expect(other.errors == ["a model takes no argument named 'stage' (only 'step')"], "\(other.errors)")
    }

    @Test("an LSTM learns a generated sequence task with grad and net(x, params) over a task axis")
    func lstmLearnsASequenceTask() {
        // Each task: sequences of 6 numbers; the target is the task's weight times their sum.
        let result = runScript("""
            seed 3
            model rnn = sequential < in [6, 1] layers [lstm < hidden 12 >, dense < out 1 >] >
            print rnn
            let g = generator(5)
            let x = randn(g, [3, 16, 6, 1]) * 0.5
            let w = reshape(tensor([0.5, -0.5, 1.0]), [3, 1, 1])
            let y = sum(x, [2]) * w
            fn loss(p) { return sum(task_mse(rnn(x, p), y)) }
            var p = per_task(rnn.params, 3)
            let before = loss(p)
            for i in range(300) { p = tree_map(fn(a, b) -> a - 0.1 * b, p, grad(loss, p)) }
            print float(loss(p)) < float(before) * 0.2
            print rnn(x, p).shape
            model seq = sequential < in [6, 1] layers [lstm < hidden 4 sequence true >] >
            print seq(x[0]).shape
            """, in: NSTemporaryDirectory())
        #expect(result.errors.isEmpty, "\(result.errors)")
        #expect(result.lines == ["model sequential: lstm(1->12) -> linear(12->1) (685 parameters)", "true", "[3, 16, 1]", "[16, 6, 4]"])
    }

    @Test("omniglot tasks cache their decoded images: written, then mapped")
    func omniglotCache() throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = """
            tasks chars = omniglot < root "\(fixture)" ways 2 size 12 support 1 query 1 cache_dir "DIR/cache" >
            print chars
            """
        let first = runScript(script, in: dir)
        #expect(first.errors.isEmpty, "\(first.errors)")
        #expect(first.lines.first?.contains("; decoded and cached in \(dir)/cache/omniglot-omniglot-12x1-") == true, "\(first.lines)")
        let second = runScript(script, in: dir)
        #expect(second.lines.first?.contains("; mapped from the cache \(dir)/cache/omniglot-omniglot-12x1-") == true, "\(second.lines)")
        let bad = runScript("tasks chars = omniglot < root \"\(fixture)\" cache false cache_dir \"DIR/cache\" >\n", in: dir)
        #expect(bad.errors == ["'cache_dir' cannot be given with 'cache false'"])
    }
}
