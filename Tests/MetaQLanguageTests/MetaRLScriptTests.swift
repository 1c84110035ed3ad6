import Foundation
import Testing
import MetaQLanguage
import MetaQEngine

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
        // An unknown family, a fractional horizon and a missing block are named too.
        let unknown = run("env nav = navigation3d < goal -1..1 >").errors
        #expect(unknown.count == 1 && unknown[0].contains("navigation3d") && unknown[0].contains("navigation2d"), "\(unknown)")
        let fractional = run("env nav = navigation2d < horizon 2.5 >").errors
        #expect(fractional.count == 1 && fractional[0].contains("horizon"), "\(fractional)")
        let negative = run("env nav = navigation2d < action_limit -1 >").errors
        #expect(negative.count == 1 && negative[0].contains("action_limit"), "\(negative)")
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
            train m on nav < iters 1 log "x" >
            """)
        #expect(options.errors.first?.contains("'log' is not supported when training or evaluating on an environment") == true)
        let save = run("""
            env nav = navigation2d < horizon 5 >
            learner m = maml_rl < model mlp < in 2 out 2 > episodes 2 >
            save m to "x.mqm"
            """)
        #expect(save.errors.first?.contains("has not met an environment yet") == true)
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

    /// A maml_rl run resumed from a checkpoint, or loaded from one and trained on, follows the
    /// run that never stopped bit for bit: the policy, its log standard deviation, Adam's
    /// state and the learner's generator are all saved.
    @Test func resumedAndLoadedTrainingIsBitIdentical() throws {
        let dir = NSTemporaryDirectory() + "metaq-rl-checkpoints-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let declarations = """
            seed 5
            env nav = navigation2d < horizon 8 >
            model policy = mlp < in 2 hidden [8] out 2 >
            learner m = maml_rl < model policy episodes 3 inner < steps 1 lr 0.1 > outer < lr 0.01 batch 3 epochs 2 > >

            """
        func bits(_ path: String) throws -> [[UInt32]] {
            let c = try Checkpoint.read(from: path)
            return (c.parameters + [c.learner?.tensors["log_std"] ?? Tensor(0)]).map { $0.scalars.map(\.bitPattern) }
        }
        let straight = run(declarations + "train m on nav < iters 6 >\nsave m to \"\(dir)/straight.mqm\"\n")
        #expect(straight.errors == [])
        let first = run(declarations + "train m on nav < iters 3 checkpoint \"\(dir)/run.mqm\" every 2 >\n")
        #expect(first.errors == [])
        #expect(try Checkpoint.read(from: dir + "/run.mqm").step == 3)
        let resumed = run(declarations + "train m on nav < iters 6 checkpoint \"\(dir)/run.mqm\" resume true >\nprint m.iterations\n")
        #expect(resumed.errors == [])
        #expect(resumed.lines == ["resuming from \(dir)/run.mqm at iteration 3", "6"])
        #expect(try bits(dir + "/run.mqm") == bits(dir + "/straight.mqm"))
        // The trained policy differs from the untrained one (the test would pass vacuously otherwise).
        let untrained = run(declarations + "eval m on nav < tasks 1 steps [0] >\nsave m to \"\(dir)/untrained.mqm\"\n")
        #expect(untrained.errors == [])
        #expect(try bits(dir + "/untrained.mqm") != bits(dir + "/straight.mqm"))
        // load: the half-way checkpoint, trained 3 more iterations, gives the same bits, and
        // evaluates like the learner it was saved from.
        let half = run(declarations + "train m on nav < iters 3 >\nsave m to \"\(dir)/half.mqm\"\n")
        #expect(half.errors == [])
        let loaded = run("""
            env nav = navigation2d < horizon 8 >
            let m = load("\(dir)/half.mqm")
            print m.kind
            train m on nav < iters 3 >
            save m to "\(dir)/loaded.mqm"
            """)
        #expect(loaded.errors == [])
        #expect(loaded.lines == ["maml_rl"])
        #expect(try bits(dir + "/loaded.mqm") == bits(dir + "/straight.mqm"))
        let saved = try Checkpoint.read(from: dir + "/loaded.mqm")
        #expect(saved.step == 6 && saved.learner?.optimizer.step == 12)   // 2 PPO epochs per iteration
        // A checkpoint of a policy for other actions is refused, with the reason.
        let wrong = run("""
            env poles = cartpole < horizon 8 >
            let m = load("\(dir)/half.mqm")
            train m on poles < iters 1 >
            """)
        #expect(wrong.errors == ["3:7: the policy network does not take cartpole's observations of size 4: layer 0: linear layer expects 2 features, got shape [4]"])
    }

    /// REINFORCE written in the language with rollout, advantages, gaussian_log_prob and
    /// pg_loss: a few policy-gradient steps on fixed goals raise the return.
    @Test func reinforceWrittenInAScriptImprovesTheReturn() {
        let r = run("""
            seed 1
            env nav = navigation2d < horizon 20 >
            model net = mlp < in 2 hidden [16] out 2 >
            let g = generator(4)
            let goals = env_tasks(nav, 4, g)
            var params = per_task(net.params, 4)
            var log_std = zeros([4, 2])
            fn policy_loss(p, s, tr, adv) {
                return sum(pg_loss(gaussian_log_prob(net(tr.observations, p), s, tr.actions), adv, tr.mask))
            }
            let first = rollout(nav, fn(o) -> net(o, params), goals, 10, g, log_std)
            var last = first
            for i in range(15) {
                let tr = rollout(nav, fn(o) -> net(o, params), goals, 10, g, log_std)
                let adv = advantages(tr)
                let gp = grad(fn(p) -> policy_loss(p, log_std, tr, adv), params)
                let gs = grad(fn(s) -> policy_loss(params, s, tr, adv), log_std)
                params = params - 0.5 * gp
                log_std = log_std - 0.5 * gs
                last = tr
            }
            let after = rollout(nav, fn(o) -> net(o, params), goals, 10, g, log_std)
            print first.observations.shape
            print first.mask.shape
            print float(mean(first.returns))
            print float(mean(after.returns))
            print float(mean(after.returns)) > float(mean(first.returns)) + 1
            """)
        #expect(r.errors == [])
        #expect(r.lines.count == 5)
        #expect(r.lines.first == "[4, 200, 2]")
        #expect(r.lines.dropFirst().first == "[4, 200]")
        #expect(r.lines.last == "true", "\(r.lines)")
    }

    /// dice_loss is 0 in value, and its gradient is pg_loss's (the policy gradient); its
    /// second derivative (checked against the closed form in the engine's tests) is not.
    @Test func diceLossHasTheValueZeroAndThePolicyGradient() {
        let r = run("""
            let logp0 = tensor([[-0.5, -1.0, -0.2, -0.7, -0.3, -0.9], [-0.1, -0.4, -0.8, -0.6, -0.2, -0.5]])
            let adv = tensor([[1.0, -0.5, 0.3, 2.0, -1.0, 0.5], [0.2, 0.4, -0.6, 1.0, -0.3, 0.7]])
            let m = tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]])
            print float(sum(abs(dice_loss(logp0, adv, m, 3))))
            let gd = grad(fn(l) -> sum(dice_loss(l, adv, m, 3)), logp0)
            let gp = grad(fn(l) -> sum(pg_loss(l, adv, m)), logp0)
            print float(max_along(reshape(abs(gd - gp), [12]))) < 0.000001
            let hd = grad(fn(l) -> sum(grad(fn(k) -> sum(dice_loss(k, adv, m, 3)), l)), logp0)
            print float(sum(abs(hd))) > 0.01
            """)
        #expect(r.errors == [])
        #expect(r.lines == ["0.0", "true", "true"])
    }

    @Test func reinforcementFunctionsRejectBadArguments() {
        func error(_ body: String) -> String? {
            run("env nav = navigation2d < horizon 5 >\nenv poles = cartpole < horizon 5 >\nmodel net = mlp < in 2 out 2 >\nlet g = generator(1)\nlet goals = env_tasks(nav, 2, g)\n" + body).errors.first
        }
        #expect(error("let t = rollout(nav, fn(o) -> net(o), goals, 3, g)")?.contains("needs a log standard deviation [2] or [2, 2]") == true)
        #expect(error("let t = rollout(nav, fn(o) -> o * 0 + 1, goals, 3, g, zeros([3]))")?.contains("log standard deviation") == true)
        #expect(error("let t = rollout(nav, fn(o) -> sum(o), goals, 3, g, zeros([2]))")?.contains("the policy must give a tensor [2, 3, 2]") == true)
        #expect(error("let t = rollout(nav, fn(o) -> net(o), zeros([2, 3]), 3, g, zeros([2]))")?.contains("needs the tasks as a tensor [tasks, 2]") == true)
        #expect(error("let t = rollout(nav, fn(o) -> net(o), goals, 0, g, zeros([2]))")?.contains("episode count") == true)
        #expect(error("let t = rollout(nav, fn(o) -> net(o) / 0, goals, 3, g, zeros([2]))")?.contains("not a finite number") == true)
        #expect(error("let t = rollout(net, fn(o) -> net(o), goals, 3, g, zeros([2]))")?.contains("needs an environment") == true)
        #expect(error("let t = rollout(nav, fn(o) -> net(o), goals, 3, 7, zeros([2]))")?.contains("needs a generator") == true)
        #expect(error("let a = advantages(< tasks 1 >)")?.contains("needs episodes as 'rollout' returns them") == true)
        #expect(error("let a = advantages(rollout(nav, fn(o) -> net(o), goals, 2, g, zeros([2])), 2)")?.contains("gamma in 0...1") == true)
        #expect(error("let a = pg_loss(zeros([2, 3]), zeros([2, 4]), ones([2, 3]))")?.contains("pg_loss: advantages [2, 4] must have the shape of logp [2, 3]") == true)
        #expect(error("let a = dice_loss(zeros([2, 6]), zeros([2, 6]), ones([2, 6]), 4)")?.contains("not whole episodes of horizon 4") == true)
        #expect(error("let a = dice_loss(zeros([2, 6]), 1, ones([2, 6]), 3)")?.contains("needs advantages as a tensor") == true)
        #expect(error("let a = gaussian_log_prob(zeros([2, 3, 2]), zeros([3]), zeros([2, 3, 2]))")?.contains("log_std must be [2] or [tasks, 2]") == true)
        #expect(error("let a = categorical_log_prob(zeros([2, 3]), tensor([0, 5]))")?.contains("whole numbers in 0..<3") == true)
        #expect(error("let c = env_tasks(poles, 2, g)\nlet t = rollout(poles, fn(o) -> zeros([2, 3, 2]), c, 3, g, zeros([2]))")?.contains("takes no log standard deviation") == true)
    }
}
