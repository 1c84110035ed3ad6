import Foundation
import Testing
import MetaQLanguage

/// Runs a script; its printed lines and its diagnostics as `LINE:COL: MESSAGE`.
private func run(_ text: String) -> (lines: [String], errors: [String]) {
    let file = SourceFile(name: "rl.mq", text: text)
    let output = BufferedOutput()
    let diagnostics = Interpreter(output: output).run(file)
    return (output.lines, located(diagnostics, in: file))
}

@Suite struct MetaRLScriptTests {
    @Test func malformedEnvironmentDefinitionsGetClearErrors() {
        #expect(run("env nav = navigation2d < goal 0.5..-0.5 >").errors
                == ["1:26: navigation2d: 'goal' is an empty range 0.5..-0.5 (low above high)"])
        #expect(run("env nav = navigation2d < goal -1000..1 >").errors
                == ["1:26: navigation2d: 'goal' must lie within -100.0...100.0, got -1000.0..1.0"])
        #expect(run("env nav = navigation2d < horizon 0 >").errors.first?.contains("horizon") == true)
        #expect(run("env nav = navigation2d < goals -1..1 >").errors == ["1:26: unknown key 'goals' in 'navigation2d'; did you mean 'goal'?"])
        #expect(run("env nav = navigation2d < goal \"x\" >").errors == ["1:31: key 'goal' of 'navigation2d' expects range a..b, got string \"x\""])
        #expect(run("env poles = cartpole < pole_length 0..1 >").errors.first?.contains("'pole_length' must lie within 0.01...100.0") == true)
        #expect(run("env nav = mlp < in 2 out 2 >").errors == ["1:11: 'env' declaration needs an environment, but the value is a model"])
        let checked = Checker.check(SourceFile(name: "rl.mq", text: "env nav = mlp < in 2 out 2 >\nenvs x = navigation2d < >"))
        #expect(checked.diagnostics.count == 2)
    }

    @Test func policyAndLearnerMismatchesAreReported() {
        let wrongOut = run("""
            env nav = navigation2d < horizon 5 >
            learner m = maml_rl < model mlp < in 2 out 3 > episodes 2 >
            train m on nav < iters 1 >
            """)
        #expect(wrongOut.errors == ["3:7: the policy network outputs [3], but navigation2d needs 2 outputs (the mean of each action dimension)"])
        let wrongIn = run("""
            env poles = cartpole < horizon 5 >
            learner m = maml_rl < model mlp < in 2 out 2 > episodes 2 >
            train m on poles < iters 1 >
            """)
        #expect(wrongIn.errors.first?.contains("does not take cartpole's observations of size 4") == true)
        let taskLearner = run("""
            env nav = navigation2d < horizon 5 >
            learner m = maml < model mlp < in 2 out 2 > >
            train m on nav < iters 1 >
            """)
        #expect(taskLearner.errors == ["3:7: 'train ... on' an environment needs a reinforcement learner (maml_rl); 'maml' learns task batches"])
        let onTasks = run("""
            learner m = maml_rl < model mlp < in 1 out 1 > >
            tasks sine = sinusoid < >
            train m on sine < iters 1 >
            """)
        #expect(onTasks.errors.first?.contains("'maml_rl' learns environments") == true)
        let options = run("""
            env nav = navigation2d < horizon 5 >
            learner m = maml_rl < model mlp < in 2 out 2 > episodes 2 >
            train m on nav < iters 1 checkpoint "x.mqm" >
            """)
        #expect(options.errors.first?.contains("'checkpoint' is not supported when training or evaluating on an environment") == true)
        let save = run("""
            env nav = navigation2d < horizon 5 >
            learner m = maml_rl < model mlp < in 2 out 2 > episodes 2 >
            save m to "x.mqm"
            """)
        #expect(save.errors.first?.contains("not part of checkpoints yet") == true)
    }

    @Test func trainAndEvaluateOnBothFamilies() {
        let r = run("""
            seed 1
            env nav = navigation2d < horizon 20 >
            learner m = maml_rl < model mlp < in 2 hidden [16] out 2 > episodes 4 outer < batch 4 epochs 2 > >
            let log = train m on nav < iters 3 >
            print log.iterations
            print len(log.returns_after)
            let r = eval m on nav < tasks 6 batch 3 >
            print r.steps
            print r.metric
            print r.rows[0].tasks
            env poles = cartpole < horizon 30 >
            learner c = maml_rl < model mlp < in 4 hidden [8] out 2 > episodes 3 order 1 estimator reinforce outer < batch 3 epochs 1 > >
            train c on poles < iters 2 >
            let cr = eval c on poles < tasks 3 steps [0, 1] >
            print cr.means[0] >= 1 and cr.means[0] <= 30
            print nav
            """)
        #expect(r.errors == [])
        #expect(r.lines == ["3", "3", "[0, 1, 2, 3]", "return", "6", "true",
                            "environment navigation2d: goal -0.5..0.5, action_limit 0.1, horizon 20"])
    }
}
