import Foundation
import Testing
import MetaQLanguage
import MetaQEngine

/// Runs a script; its printed lines and its diagnostics as `LINE:COL: MESSAGE`.
private func run(_ text: String) -> (lines: [String], errors: [String]) {
    let file = SourceFile(name: "env.mq", text: text)
    let output = BufferedOutput()
    let diagnostics = Interpreter(output: output).run(file)
    return (output.lines, located(diagnostics, in: file))
}

/// 2D navigation written in the language, the engine's navigation2d rule for rule.
private let walk = """
    fn goals(n, g) { return rand(g, [n, 2], -0.5, 0.5) }
    fn start(tasks, episodes, g) { return zeros([len(tasks), episodes, 2]) }
    fn move(state, action, tasks) {
      let next = state + action
      let d = norm(next - reshape(tasks, [len(tasks), 1, 2]), [2])
      return < state next reward -d done (d < 0.01) >
    }
    env walk = custom_env < tasks goals reset start step move actions 2 action_limit 0.1 horizon 100 name "walk" >

    """

@Suite struct ScriptEnvironmentTests {
    /// The same family written in metaq and built into the engine draws the same tasks and,
    /// given the same policy and generator, the same episodes: the script's step sees the
    /// clipped actions and its rewards and ends are the engine's.
    @Test func navigationWrittenInTheLanguageMatchesTheEngines() {
        let r = run(walk + """
            env nav = navigation2d < goal -0.5..0.5 action_limit 0.1 horizon 100 >
            let g1 = generator(5)
            let g2 = generator(5)
            let a = env_tasks(walk, 6, g1)
            let b = env_tasks(nav, 6, g2)
            print a.values == b.values
            model net = mlp < in 2 hidden [16] out 2 >
            let t1 = rollout(walk, fn(o) -> net(o) * 3, a, 5, g1, full([2], -2))
            let t2 = rollout(nav, fn(o) -> net(o) * 3, b, 5, g2, full([2], -2))
            print float(sum(abs(t1.returns - t2.returns))) < 0.0001
            print float(sum(t1.mask)) == float(sum(t2.mask))
            print float(sum(abs(t1.observations - t2.observations))) < 0.0001
            print walk
            """)
        #expect(r.errors == [])
        #expect(r.lines.prefix(4) == ["true", "true", "true", "true"])
        #expect(r.lines.last == "environment walk: written in the script: 2 task parameters, states 2, observations 2, 2 continuous actions in +-0.1, horizon 100")
    }

    /// maml_rl meta-trains on an environment written in the language, and a run resumed
    /// from its checkpoint continues exactly (the script's random starts and noisy steps
    /// draw from the learner's generator).
    @Test func mamlRLTrainsAndResumesOnAScriptEnvironment() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("metaq-env-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let noisy = """
            fn goals(n, g) { return rand(g, [n, 2], -0.5, 0.5) }
            fn start(tasks, episodes, g) { return rand(g, [len(tasks), episodes, 2], -0.05, 0.05) }
            fn move(state, action, tasks, g) {
              let next = state + action + randn(g, [len(state), len(state[0]), 2], 0, 0.01)
              let d = norm(next - reshape(tasks, [len(tasks), 1, 2]), [2])
              return < state next reward -d >
            }
            env walk = custom_env < tasks goals reset start step move actions 2 action_limit 0.1 horizon 20 >
            seed 4

            """
        func train(_ iters: Int, checkpoint: String, resume: Bool) -> (lines: [String], errors: [String]) {
            run(noisy + """
                model policy = mlp < in 2 hidden [16] out 2 >
                learner m = maml_rl < model policy episodes 4 inner < steps 1 lr 0.1 > outer < lr 0.01 batch 4 epochs 2 > >
                let log = train m on walk < iters \(iters) checkpoint "\(dir.path)/\(checkpoint)" every 2 resume \(resume) >
                print log.std
                print log.return_after
                print log.loss
                """)
        }
        let straight = train(6, checkpoint: "a.mqm", resume: false)
        #expect(straight.errors == [])
        _ = train(4, checkpoint: "b.mqm", resume: false)
        let resumed = train(6, checkpoint: "b.mqm", resume: true)
        #expect(resumed.errors == [])
        #expect(resumed.lines.contains { $0.hasPrefix("resuming from") })
        #expect(resumed.lines.suffix(2) == straight.lines.suffix(2))
        // The same run again gives the same numbers: nothing draws from a hidden source.
        #expect(train(6, checkpoint: "c.mqm", resume: false).lines == straight.lines)
        // A fresh session loads the learner (its environment is not in the checkpoint: the
        // script declares it again) and evaluates it there; an environment whose actions
        // differ is refused.
        let loaded = run(noisy + """
            let m = load("\(dir.path)/a.mqm")
            let e = eval m on walk < tasks 4 steps [0, 1] batch 4 >
            print len(e.means)
            env other = cartpole < >
            eval m on other < tasks 4 >
            """)
        #expect(loaded.lines == ["2"], "\(loaded.lines)")
        #expect(loaded.errors.count == 1 && loaded.errors[0].contains("does not take cartpole's observations of size 4"), "\(loaded.errors)")
    }

    /// Adaptation pays on a script environment: a few meta-iterations on navigation written
    /// in the language, then one policy-gradient step raises the return on new goals.
    @Test func adaptationImprovesReturnOnAScriptEnvironment() {
        let r = run(walk + """
            seed 7
            learner m = maml_rl < model mlp < in 2 hidden [32, 32] out 2 > episodes 10 inner < steps 1 lr 0.1 > outer < lr 0.01 batch 10 epochs 3 > >
            let log = train m on walk < iters 30 >
            let e = eval m on walk < tasks 20 steps [0, 1] batch 10 >
            print e.means[1] - e.means[0]
            """)
        #expect(r.errors == [])
        let gain = Double(r.lines.last ?? "") ?? -1
        #expect(gain > 2, "return gain after one step: \(r.lines)")
    }

    /// Discrete actions reach the script as indices [T, E, 1]; a categorical policy learns
    /// which way each task wants (here: the task's sign says which action pays).
    @Test func discreteActionsAndObservationsFromAScript() {
        let r = run("""
            seed 2
            fn signs(n, g) { return where(rand(g, [n, 1]) < 0.5, -1, 1) }
            fn start(tasks, episodes, g) { return zeros([len(tasks), episodes, 1]) }
            fn push(state, action, tasks) {
              let dir = action * 2 - 1
              return < state state + dir reward sum(dir * reshape(tasks, [len(tasks), 1, 1]), [2]) >
            }
            fn see(state, tasks) { return concat([state, state * 0 + 1], 2) }
            env lever = custom_env < tasks signs reset start step push observe see action discrete actions 2 horizon 5 >
            print lever
            let g = generator(1)
            let t = rollout(lever, fn(o) -> zeros([len(o), len(o[0]), 2]), env_tasks(lever, 3, g), 4, g)
            print t.observations.shape
            print t.actions.shape
            """)
        #expect(r.errors == [])
        #expect(r.lines == ["environment custom_env: written in the script: 1 task parameters, states 1, observations 2, 2 discrete actions, horizon 5",
                            "[3, 20, 2]", "[3, 20, 1]"])
    }

    /// metaq/envs' turned_navigation turns and scales each task's commands: a push along x
    /// with a quarter turn and gain 2 moves along y by twice the (clipped) push.
    @Test func turnedNavigationTurnsAndScalesTheControls() {
        let r = run("""
            import "metaq/envs"
            let turned = turned_navigation < max_turn 1.5 min_gain 0.5 max_gain 2 horizon 1 >
            let g = generator(3)
            let tasks = env_tasks(turned, 200, g)
            print tasks.shape
            print float(max_along(abs(slice(tasks, 1, 2, 3)), 0)) <= 1.5 and float(max_along(slice(tasks, 1, 3, 4), 0)) <= 2
            let fixed = tensor([[0.0, 0.3, 1.5707963, 2.0]])
            let tr = rollout(turned, fn(o) -> zeros([1, 1, 2]) + tensor([5.0, 0.0]), fixed, 1, g, full([2], -20))
            print round(float(tr.returns), 3)
            let bad = turned_navigation < min_gain 2 max_gain 1 >
            """)
        #expect(r.lines.prefix(3) == ["[200, 4]", "true", "-0.1"], "\(r.lines)")
        #expect(r.errors.count == 1 && r.errors[0].contains("0 < min_gain <= max_gain"), "\(r.errors)")
    }

    /// What a malformed environment gets: the function and what it returned, at the key that
    /// gave the function, when the environment is declared.
    @Test func malformedScriptEnvironmentsGetClearErrors() {
        let base = """
            fn goals(n, g) { return rand(g, [n, 2], -0.5, 0.5) }
            fn start(tasks, episodes, g) { return zeros([len(tasks), episodes, 2]) }
            fn ok(state, action, tasks) { return < state state + action reward sum(state, [2]) > }

            """
        func error(_ body: String) -> String {
            run(base + body).errors.first ?? "no error"
        }
        #expect(error("env w = custom_env < tasks goals reset start step goals >")
            .hasSuffix("custom_env: 'step' must be fn(state, action, tasks) or fn(state, action, tasks, g): one step of every episode, < state reward done > (states [T, E, S], rewards [T, E], done [T, E], 1 where an episode ends), but 'goals' takes 2 parameters"))
        #expect(error("env w = custom_env < tasks goals reset start >").contains("step"))
        #expect(error("env w = custom_env < tasks 3 reset start step ok >").contains("key 'tasks' of 'custom_env' expects function"))
        #expect(error("fn t(n, g) { return rand(g, [n]) }\nenv w = custom_env < tasks t reset start step ok >")
            .contains("custom_env: 'tasks' must return the parameters [2, P] of 2 new tasks, got"))
        #expect(error("fn s(t, e, g) { return zeros([e, 2]) }\nenv w = custom_env < tasks goals reset s step ok >")
            .contains("custom_env: 'reset' must return the initial states [2, 3, S] of 2 tasks and 3 episodes"))
        #expect(error("fn s(x, a, t) { return x }\nenv w = custom_env < tasks goals reset start step s >")
            .contains("custom_env: 'step' must return a record < state reward done >"))
        #expect(error("fn s(x, a, t) { return < state x > }\nenv w = custom_env < tasks goals reset start step s >")
            .contains("must return the rewards as 'reward' [2, 3], got none"))
        #expect(error("fn s(x, a, t) { return < state x reward sum(x, [2]) goal 1 > }\nenv w = custom_env < tasks goals reset start step s >")
            .contains("unknown field 'goal'"))
        #expect(error("fn s(x, a, t) { return < state sum(x, [2]) reward sum(x, [2]) > }\nenv w = custom_env < tasks goals reset start step s >")
            .contains("must return the next states as 'state' [2, 3, 2]"))
        #expect(error("fn s(x, a, t) { return < state x reward sum(x, [2]) / 0 > }\nenv w = custom_env < tasks goals reset start step s >")
            .contains("'step' gave a reward that is not a finite number"))
        #expect(error("fn s(x, a, t) { return < state x reward sum(x, [2]) done 3 > }\nenv w = custom_env < tasks goals reset start step s >")
            .contains("'done' as [2, 3]"))
        #expect(error("fn o(x, t) { return x[0] }\nenv w = custom_env < tasks goals reset start step ok observe o >")
            .contains("custom_env: 'observe' must return the observations [tasks, episodes, O]"))
        #expect(error("env w = custom_env < tasks goals reset start step ok action discrete action_limit 2 >")
            .contains("'action_limit' applies to continuous actions"))
        #expect(error("fn s(x, a, t) { return < state x reward nothing_here(x) > }\nenv w = custom_env < tasks goals reset start step s >")
            .contains("nothing_here"))
        // An error that arises later, in the middle of training, stops the command with the
        // script's message: this step fails on a task count other than the probe's 2.
        let late = run(base + """
            fn fragile(state, action, tasks) {
              if len(tasks) > 2 { fail("the step met " + str(len(tasks)) + " tasks") }
              return < state state + action reward sum(state, [2]) >
            }
            env w = custom_env < tasks goals reset start step fragile actions 2 horizon 3 >
            learner m = maml_rl < model mlp < in 2 out 2 > episodes 2 outer < batch 4 > >
            train m on w < iters 1 >
            print "after"
            """)
        #expect(late.errors.count == 1 && late.errors[0].contains("the step met 4 tasks"), "\(late.errors)")
        #expect(!late.lines.contains("after"))
    }
}
