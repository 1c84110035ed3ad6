import Foundation
import Testing
import MetaQEngine
import MetaQLanguage

/// The seed articles' methods that ship with metaq as modules written in the language
/// (`import "metaq/matching"`, `"metaq/meta_lstm"`, `"metaq/metagan"`): saved, resumed exactly
/// and loaded like a built-in learner, short, documented, with clear errors. That each learns
/// (on a generated image dataset, through the release binary) is checked by
/// scripts/test-seed-methods.sh.
@Suite(.serialized) struct SeedMethodTests {
    /// Gray 12 x 12 images, 8 per class, in class folders: 12 training classes under
    /// DIR/train, 8 others under DIR/test. A class is a random binary pattern in the top half
    /// (drawn faintly, with a little noise); the bottom half is loud noise that differs in
    /// every image, so an untrained network's features mix the two and training has to learn
    /// to look at the top.
    private static let dataset: String = {
        let dir = NSTemporaryDirectory() + "metaq-seed-methods-\(UUID().uuidString)"
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func uniform() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24)
        }
        for (split, classes) in [("train", 12), ("test", 8)] {
            for c in 0..<classes {
                let folder = "\(dir)/\(split)/c\(c)"
                try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                let pattern = (0..<72).map { _ in uniform() < 0.5 ? Float(0.65) : Float(0.35) }
                for i in 0..<8 {
                    let pixels = (0..<144).map { p in p < 72 ? pattern[p] + 0.1 * (uniform() - 0.5) : uniform() }
                    let image = ColorImage(width: 12, height: 12, channels: 1, pixels: pixels)
                    try! Data(image.pngData()).write(to: URL(fileURLWithPath: "\(folder)/\(i).png"))
                }
            }
        }
        return dir
    }()

    private func run(_ text: String) -> (output: [String], errors: [String]) {
        let output = BufferedOutput()
        let dir = Self.dataset
        let source = SourceFile(name: dir + "/main.mq", text: text.replacingOccurrences(of: "DIR", with: dir))
        let diagnostics = Interpreter(output: output).run(source)
        return (output.lines, diagnostics.map(\.message))
    }

    /// A module's learner is checkpointed and resumed exactly, and `load` rebuilds it in a
    /// fresh session (from the script saved in its checkpoint, which imports the module).
    @Test func aModuleLearnerResumesExactlyAndLoads() throws {
        let path = Self.dataset + "/mn-\(UUID().uuidString).mqm"
        func script(iters: Int, resume: Bool) -> String {
            """
            import "metaq/matching"
            seed 4
            tasks train = images < root "DIR" split "train" size 12 channels 1 ways 3 support 1 query 2 >
            tasks test = images < root "DIR" split "test" size 12 channels 1 ways 3 support 1 query 2 >
            model embed = sequential < in [12, 12, 1] layers [flatten < >, dense < out 16 >, relu, dense < out 8 >] >
            learner l = matching < model embed ways 3 fce true fce_steps 1 >
            let log = train l on train < iters \(iters) checkpoint "\(path)" every 3 resume \(resume) >
            print log.loss
            print l.extras.att.wx.values
            seed 8
            let r = eval l on test < tasks 10 steps [0] >
            print r.means
            """
        }
        let whole = run(script(iters: 6, resume: false))
        #expect(whole.errors == [], "\(whole.errors)")
        try FileManager.default.removeItem(atPath: path)
        let first = run(script(iters: 3, resume: false))
        let resumed = run(script(iters: 6, resume: true))
        #expect(first.errors == [] && resumed.errors == [], "\(first.errors) \(resumed.errors)")
        #expect(resumed.output.first == "resuming from \(path) at iteration 3")
        #expect(Array(resumed.output.dropFirst()) == whole.output, "the loss, the LSTM weights and the scores, resumed or not")
        let loaded = run("""
            let l = load("\(path)")
            print l
            tasks test = images < root "DIR" split "test" size 12 channels 1 ways 3 support 1 query 2 >
            seed 8
            let r = eval l on test < tasks 10 steps [0] >
            print r.means
            """)
        #expect(loaded.errors == [], "\(loaded.errors)")
        #expect(loaded.output.first?.contains("matching") == true, "\(loaded.output)")
        #expect(loaded.output.last == whole.output.last)
    }

    /// Each module is under 150 lines, and the table of docs/LANGUAGE.md gives its length.
    @Test func modulesAreShortAndTheDocsSayHowShort() throws {
        let docs = try String(contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("docs/LANGUAGE.md").path, encoding: .utf8)
        for module in ShippedModule.all {
            let lines = module.source.split(separator: "\n", omittingEmptySubsequences: false).count - (module.source.hasSuffix("\n") ? 1 : 0)
            #expect(lines < 150, "\(module.path): \(lines) lines")
            let row = docs.split(separator: "\n").first { $0.hasPrefix("| `\(module.path)` |") }
            #expect(row?.hasSuffix("| \(lines) |") == true, "\(module.path) has \(lines) lines; docs/LANGUAGE.md says: \(row ?? "nothing")")
        }
    }

    /// A module's functions call the builtins, whatever names the importing script defines:
    /// `unit_rows` (metaq/nn) calls sqrt, which the script has bound to a number.
    @Test func aScriptsNamesDoNotChangeWhatAModuleCalls() {
        let result = run("""
            import "metaq/nn"
            let sqrt = 3
            let log = "not a function"
            print unit_rows(ones([1, 4])).values
            print sqrt
            """)
        #expect(result.errors == [], "\(result.errors)")
        #expect(result.output == ["[0.5, 0.5, 0.5, 0.5]", "3"], "\(result.output)")
    }

    /// `meta_lstm < loss "mse" >` learns a regression: the error on new sinusoids after its
    /// updates falls with meta-training.
    @Test func metaLSTMLearnsARegression() throws {
        let result = run("""
            import "metaq/meta_lstm"
            seed 2
            tasks sine = sinusoid < support 5 query 10 >
            model net = mlp < in 1 hidden [32] out 1 >
            learner l = meta_lstm < model net steps 3 hidden 4 init_lr 0.05 loss "mse" outer < lr 0.01 batch 4 > >
            seed 5
            let before = eval l on sine < tasks 40 steps [3] >
            print before.means[0]
            train l on sine < iters 400 >
            seed 5
            let after = eval l on sine < tasks 40 steps [3] >
            print after.means[0]
            """)
        #expect(result.errors == [], "\(result.errors)")
        let values = result.output.compactMap(Double.init)
        try #require(values.count == 2, "\(result.output)")
        #expect(values[1] < 0.8 * values[0], "MSE before and after meta-training: \(values)")
    }

    @Test func clearErrors() {
        func error(_ text: String) -> String { run(text).errors.first ?? "no error" }
        let model = "model embed = sequential < in [12, 12, 1] layers [flatten < >, dense < out 16 >, relu, dense < out 8 >] >\n"
        #expect(error(#"import "metaq/matchin""#).contains("no module named 'metaq/matchin'; did you mean 'metaq/matching'?"))
        #expect(error(#"import "metaq/matching""# + "\n" + model + "learner l = matching < model embed ways 3 fce_stpes 2 >")
            .contains("unknown key 'fce_stpes'"))
        #expect(error(#"import "metaq/matching""# + "\n" + model + "learner l = matching < model embed >").contains("'ways'"))
        #expect(error(#"import "metaq/meta_lstm""# + "\n" + model + #"learner l = meta_lstm < model embed loss "l1" >"#)
            .contains("key 'loss' of 'meta_lstm' must be cross_entropy or mse, got l1"))
        #expect(error("print lstm_gates(zeros([2, 8]), zeros([2, 3]))")
            .contains("lstm_gates: the cell state must be [2, 2] for gates [2, 8], got [2, 3]"))
        #expect(error("print lstm_gates(zeros([2, 7]), zeros([2, 2]))").contains("lstm_gates: the gates need a last axis of 4 x hidden, got [2, 7]"))
        #expect(error(#"import "metaq/metagan""# + "\n" + model + #"learner l = metagan < model embed ways 3 base "reptile" >"#)
            .contains("key 'base' of 'metagan' must be maml or protonet, got reptile"))
    }
}
