import Foundation
import Testing
import MetaQEngine
import MetaQLanguage

/// Runs `text` as a script in a fresh interpreter in `directory`; returns its output lines
/// and diagnostics.
private func run(_ text: String, in directory: String) -> (lines: [String], errors: [String]) {
    let output = BufferedOutput()
    let source = SourceFile(name: directory + "/script.mq", text: text.replacingOccurrences(of: "DIR", with: directory))
    let diagnostics = Interpreter(output: output).run(source)
    return (output.lines, diagnostics.map(\.message))
}

private func scratch() -> String {
    let path = NSTemporaryDirectory() + "metaq-language-checkpoints-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

private func parameterBits(_ path: String) throws -> [[UInt32]] {
    try Checkpoint.read(from: path).parameters.map { $0.scalars.map(\.bitPattern) }
}

/// Trains `declared` for `first` iterations and saves it to DIR/half.mqm, then in a fresh
/// interpreter loads that file, trains `second` more, saves DIR/loaded.mqm and runs `then`.
/// Returns both runs.
private func saveLoadAndTrainOn(
    _ declared: String, first: Int, second: Int, then extra: String = "", in dir: String
) -> (half: (lines: [String], errors: [String]), loaded: (lines: [String], errors: [String])) {
    let half = run(declared + "\ntrain m on sine < iters \(first) >\nsave m to \"DIR/half.mqm\"\n", in: dir)
    let loaded = run("""
        tasks sine = sinusoid < support 5 query 5 >
        let m = load("DIR/half.mqm")
        train m on sine < iters \(second) >
        save m to "DIR/loaded.mqm"
        """ + extra, in: dir)
    return (half, loaded)
}

/// The declarations every run of the resume tests shares.
private func declarations(_ learner: String) -> String {
    """
    seed 11
    model net = mlp < in 1 hidden [24, 24] out 1 >
    tasks sine = sinusoid < support 5 query 5 >
    learner m = \(learner) < model net inner < steps 1 lr 0.01 > outer < lr 0.003 batch 4 > >
    """
}

@Suite("Checkpoints in the language")
struct CheckpointScriptTests {
    @Test(arguments: ["maml", "metasgd"])
    func resumedTrainingIsBitIdentical(learner: String) throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // (a) 40 iterations straight.
        let straight = run(declarations(learner) + "\ntrain m on sine < iters 40 >\nsave m to \"DIR/straight.mqm\"\n", in: dir)
        #expect(straight.errors.isEmpty, "\(straight.errors)")
        // (b) 20 iterations with a checkpoint every 10, then a fresh interpreter resumes the
        // same run to 40.
        let first = run(declarations(learner) + "\ntrain m on sine < iters 20 checkpoint \"DIR/run.mqm\" every 10 >\n", in: dir)
        #expect(first.errors.isEmpty, "\(first.errors)")
        #expect(try Checkpoint.read(from: dir + "/run.mqm").step == 20)
        let resumed = run(declarations(learner) + "\ntrain m on sine < iters 40 checkpoint \"DIR/run.mqm\" resume true >\nprint m.iterations\n", in: dir)
        #expect(resumed.errors.isEmpty, "\(resumed.errors)")
        #expect(resumed.lines == ["resuming from \(dir)/run.mqm at iteration 20", "40"])
        #expect(try parameterBits(dir + "/run.mqm") == parameterBits(dir + "/straight.mqm"))
        // (c) Loading the half-way checkpoint and training 20 more gives the same bits too.
        let (half, loaded) = saveLoadAndTrainOn(declarations(learner), first: 20, second: 20, then: "\nprint m.kind", in: dir)
        #expect(half.errors.isEmpty)
        #expect(loaded.errors.isEmpty, "\(loaded.errors)")
        #expect(loaded.lines == [learner])
        #expect(try parameterBits(dir + "/loaded.mqm") == parameterBits(dir + "/straight.mqm"))
        let saved = try Checkpoint.read(from: dir + "/loaded.mqm")
        #expect(saved.step == 40 && saved.learner?.optimizer.step == 40)
    }

    @Test func learningRateDecayReachesTheOptimizerAndSurvivesASave() throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func declare(_ outer: String) -> String {
            declarations("maml").replacingOccurrences(of: "outer < lr 0.003 batch 4 >", with: "outer < \(outer) >")
        }
        let decayed = declare("lr 0.003 batch 4 decay 0.5 every 5")
        let straight = run(decayed + "\ntrain m on sine < iters 20 >\nsave m to \"DIR/straight.mqm\"\n", in: dir)
        #expect(straight.errors.isEmpty, "\(straight.errors)")
        let saved = try #require(try Checkpoint.read(from: dir + "/straight.mqm").learner)
        #expect(saved.optimizer.hyperparameters["decay_factor"] == 0.5)
        #expect(saved.optimizer.hyperparameters["decay_every"] == 5)
        // The schedule changes training: a constant rate ends elsewhere.
        let constant = run(declare("lr 0.003 batch 4") + "\ntrain m on sine < iters 20 >\nsave m to \"DIR/constant.mqm\"\n", in: dir)
        #expect(constant.errors.isEmpty)
        #expect(try parameterBits(dir + "/constant.mqm") != parameterBits(dir + "/straight.mqm"))
        // A loaded learner continues the schedule where it was: 10 + 10 equals 20 straight.
        let (half, loaded) = saveLoadAndTrainOn(decayed, first: 10, second: 10, in: dir)
        #expect(half.errors.isEmpty)
        #expect(loaded.errors.isEmpty, "\(loaded.errors)")
        #expect(try parameterBits(dir + "/loaded.mqm") == parameterBits(dir + "/straight.mqm"))
    }

    @Test func modelsSaveAndLoad() throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = run("""
            model net = mlp < in 2 hidden [8] out 3 act tanh >
            save net to "DIR/net.mqm"
            let back = load("DIR/net.mqm")
            print back
            print back.parameters == net.parameters
            """, in: dir)
        #expect(result.errors.isEmpty, "\(result.errors)")
        #expect(result.lines == ["model mlp: linear(2->8) -> tanh -> linear(8->3) (51 parameters)", "true"])
    }

    @Test func problemsAreReportedNotCrashed() throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("not a checkpoint at all".utf8).write(to: URL(fileURLWithPath: dir + "/junk.mqm"))
        let junk = run("let m = load(\"DIR/junk.mqm\")", in: dir)
        #expect(junk.errors.count == 1 && junk.errors[0].contains("not a metaq checkpoint"), "\(junk.errors)")
        let missing = run("let m = load(\"DIR/absent.mqm\")", in: dir)
        #expect(missing.errors.count == 1 && missing.errors[0].contains("absent.mqm"), "\(missing.errors)")
        let untrained = run(declarations("maml") + "\nsave m to \"DIR/m.mqm\"\n", in: dir)
        #expect(untrained.errors.count == 1 && untrained.errors[0].contains("train or evaluate it first"), "\(untrained.errors)")
        let noPath = run(declarations("maml") + "\ntrain m on sine < iters 1 resume true >\n", in: dir)
        #expect(noPath.errors == ["'resume' needs 'checkpoint', the file to resume from"])
        // A checkpoint of another kind of learner is not resumed into this one.
        _ = run(declarations("maml") + "\ntrain m on sine < iters 2 checkpoint \"DIR/maml.mqm\" >\n", in: dir)
        let other = run(declarations("metasgd") + "\ntrain m on sine < iters 4 checkpoint \"DIR/maml.mqm\" resume true >\n", in: dir)
        #expect(other.errors.count == 1 && other.errors[0].contains("holds a maml learner, not a metasgd learner"), "\(other.errors)")
    }
}
