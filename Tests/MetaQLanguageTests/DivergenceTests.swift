import Testing
import MetaQLanguage

/// Training and evaluation that diverge give an error naming where, instead of tables of NaN;
/// adaptation that explodes to finite but huge scores gives a warning above the report.
@Suite struct DivergenceTests {
    /// Runs `text`; its output lines and diagnostics as `line:column: message`.
    private func run(_ text: String) -> (lines: [String], errors: [String]) {
        let file = SourceFile(name: "diverge.mq", text: text)
        let output = BufferedOutput()
        let diagnostics = Interpreter(output: output).run(file)
        return (output.lines, located(diagnostics, in: file))
    }

    /// A sine regression learner whose inner learning rate of 1e30 sends every score to NaN.
    private static let setup = """
        seed 1
        tasks sine = sinusoid < support 5 query 5 >
        stream s = stream < tasks sine count 3 pool 10 support 5 query 5 >
        learner m = maml < model mlp < in 1 hidden [8] out 1 > inner < steps 1 lr 1e30 > outer < batch 2 > >

        """

    @Test func metaStepReportsANaNLoss() {
        let result = run(Self.setup + "for i in range(20) { meta_step(m, sine) }")
        #expect(result.errors == ["5:22: training diverged at iteration 1 (loss NaN); lower the learning rates"])
    }

    @Test func lifelongReportsNaNScores() {
        let result = run(Self.setup + """
            learner naive = finetune < model mlp < in 1 hidden [8] out 1 > steps 5 lr 1e30 batch 5 >
            let r = lifelong naive on s < eval_steps 1 >
            print r
            """)
        #expect(result.lines.isEmpty)
        #expect(result.errors == ["6:9: 'lifelong' diverged: the scores after learning task 0 (amplitude 2.91, phase 1.23) are not finite numbers (NaN or infinite); lower the learner's learning rate"])
    }

    @Test func onlineReportsNaNScores() {
        let result = run(Self.setup + "let r = online m on s < meta_steps 2 batch 2 eval_steps 1 max_steps 2 >")
        #expect(result.errors == ["5:9: 'online' diverged: the scores of task 1 are not finite numbers (NaN or infinite) after meta-training on the tasks before it; lower the learning rates"])
    }

    @Test func evaluationReportsNaNScores() {
        let result = run(Self.setup + "let r = eval m on sine < tasks 10 steps [0, 1] >")
        #expect(result.errors == ["5:9: evaluation diverged: the mse after 1 steps is not a finite number (NaN); lower the inner learning rate or evaluate with fewer steps"])
    }

    /// Finite but exploding scores (2.5e17 after 3 steps of lr 0.3) come with a warning.
    @Test func explodingEvaluationIsWarned() {
        let result = run("""
            seed 1
            tasks sine = sinusoid < support 5 query 5 >
            learner m = maml < model mlp < in 1 hidden [8] out 1 > inner < steps 1 lr 0.3 > >
            let r = eval m on sine < tasks 10 steps [0, 1, 3] >
            """)
        #expect(result.errors.isEmpty)
        #expect(result.lines.count == 1 && result.lines[0].hasPrefix("warning: adaptation diverges: the mse after 3 steps is 2.5"), "\(result.lines)")
        #expect(result.lines.first?.hasSuffix(" (after 0 steps: 5.28114); the inner learning rate is too large for that many steps (was the learner trained with fewer?)") == true, "\(result.lines)")
        let calm = run("""
            seed 1
            tasks sine = sinusoid < support 5 query 5 >
            learner m = maml < model mlp < in 1 hidden [8] out 1 > inner < steps 1 lr 0.01 > >
            let r = eval m on sine < tasks 10 steps [0, 1, 3] >
            """)
        #expect(calm.lines.isEmpty && calm.errors.isEmpty)
    }
}
