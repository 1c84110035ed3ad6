import Foundation
import MetaQEngine

// Reinforcement learning in the language: one environment block per row of the engine's
// EnvironmentRegistry (keys, defaults and docs derived from the row), the `maml_rl` learner,
// and `train` / `eval` on an environment.

extension Builtins {
    /// The block of an environment family: its settings become keys.
    static func environmentBlock(_ kind: EnvironmentKind) -> BlockBuiltin {
        func format(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : "\(x)" }
        let keys = kind.settings.map { s -> KeySpec in
            switch s.kind {
            case let .range(lo, hi): KeySpec(s.name, .range, default: "\(format(lo))..\(format(hi))", "\(s.summary) (within \(format(s.bounds.lowerBound))..\(format(s.bounds.upperBound)))")
            case let .number(x): KeySpec(s.name, .number(min: s.bounds.lowerBound, max: s.bounds.upperBound), default: format(x), s.summary)
            case let .int(n): KeySpec(s.name, .int(min: Int(s.bounds.lowerBound), max: Int(s.bounds.upperBound)), default: "\(n)", s.summary)
            }
        }
        return BlockBuiltin(schema: BlockSchema(kind.name, .environment, summary: kind.summary, keys: keys, example: kind.example)) { b, _ in
            var given: [String: EnvironmentSettingValue] = [:]
            for s in kind.settings {
                switch b.record[s.name] {
                case let .range(lo, hi)?: given[s.name] = .range(lo, hi)
                case let v? where v.number != nil: given[s.name] = .number(v.number!)
                default: break
                }
            }
            do {
                let env = try kind.make(given)
                let summary = kind.settings.map { "\($0.name) \(b.record[$0.name]?.displayText ?? "")" }.joined(separator: ", ")
                return .environment(EnvironmentValue(environment: env, summary: summary))
            } catch let error as EnvironmentError {
                throw b.error(error.message, key: error.setting)
            }
        }
    }

    static let environmentBlocks: [BlockBuiltin] = EnvironmentRegistry.kinds.map(environmentBlock)

    static let mamlRLBlock = BlockBuiltin(schema: BlockSchema(
        "maml_rl", .learner,
        summary: "MAML for reinforcement learning (Finn et al. 2017, section 5.3), trained and evaluated on an environment (`train m on nav`, `eval m on nav`). The model is the policy network: observations in, the action dimensions out (the mean of a Gaussian policy with a learned state-independent log standard deviation) for continuous actions, one logit per action (a categorical policy) for discrete ones. The inner loop takes `steps` policy-gradient steps on each task, each on `episodes` fresh episodes of the policy being adapted (advantages: GAE with rllab's linear feature baseline fitted per task); the outer loop is PPO's clipped objective over the post-adaptation episodes (`epochs` optimiser steps per meta-iteration; the paper used TRPO, which is not implemented). order 2 differentiates through the inner step; the dice estimator makes that meta-gradient include the inner episodes' dependence on the parameters. `inner < steps 0 >` trains one policy on all tasks: the paper's pretrained baseline. `eval` reports the average return per episode after each number of adaptation steps (default [0, 1, 2, 3]).",
        keys: [modelKey, orderKey,
               KeySpec("estimator", .choice(PolicyGradientEstimator.allCases.map(\.rawValue)), default: "dice", "inner policy-gradient loss: dice (loaded DiCE, unbiased second-order meta-gradient) or reinforce (the surrogate log pi * A)"),
               KeySpec("inner", .record(BlockSchema("inner", .option, summary: "The inner loop: policy-gradient steps on each task.", keys: [
                   KeySpec("steps", .int(min: 0, max: 100), default: "1", "inner policy-gradient steps during meta-training (0: no adaptation, the pretrained baseline)"),
                   KeySpec("lr", .positive, default: "0.1", "inner SGD learning rate"),
               ], example: "inner < steps 1 lr 0.1 >")), default: "<>", "inner loop"),
               KeySpec("outer", .record(BlockSchema("outer", .option, summary: "The outer loop: PPO on the post-adaptation episodes.", keys: [
                   KeySpec("opt", .choice(["adam", "sgd"]), default: "adam", "meta-optimiser"),
                   KeySpec("lr", .positive, default: "0.001", "meta learning rate (Adam; 0.01 made 2D navigation unstable, see benchmarks/RESULTS.md)"),
                   KeySpec("batch", .size, default: "20", "tasks per meta-batch"),
                   KeySpec("epochs", .int(min: 1, max: 1000), default: "5", "optimiser steps per meta-iteration on the same episodes"),
                   KeySpec("clip", .number(min: 0.001, max: 10), default: "0.2", "PPO's clipping of the probability ratio to 1 +- clip"),
               ], example: "outer < lr 0.01 batch 20 epochs 5 >")), default: "<>", "outer loop"),
               KeySpec("episodes", .int(min: 1, max: 10_000), default: "20", "episodes per task for each adaptation step and for the outer update"),
               KeySpec("gamma", .number(min: 0, max: 1), default: "0.99", "discount"),
               KeySpec("lambda", .number(min: 0, max: 1), default: "1", "GAE lambda (1: discounted return minus the baseline)"),
               KeySpec("normalize", .bool, default: "true", "standardise each task's advantages"),
               KeySpec("std", .number(min: 1e-6, max: 1e6), default: "1", "initial standard deviation of a Gaussian policy")],
        example: "learner m = maml_rl < model policy inner < steps 1 lr 0.1 > outer < batch 20 > episodes 20 >")) { b, interp in
        guard case let .model(model)? = b.record["model"] else { preconditionFailure("validated model key") }
        let inner = b.sub("inner"), outer = b.sub("outer")
        let learner = LearnerValue(kind: "maml_rl", model: model, options: b.record, metaBatch: outer.int("batch"), rng: interp.rng.split()) { _ in
            throw LearnerMismatch(message: "'maml_rl' learns environments (navigation2d, cartpole), not task batches")
        }
        let (order, estimator) = (b.int("order"), PolicyGradientEstimator(rawValue: b.string("estimator")!)!)
        let advantage = AdvantageEstimation(gamma: Float(b.number("gamma")), lambda: Float(b.number("lambda")), normalize: b.bool("normalize"))
        let (episodes, std) = (b.int("episodes"), Float(b.number("std")))
        learner.makeRL = { env in
            MAMLRL(environment: env, policy: Policy(network: model.network, for: env.actionSpace, initialStd: std),
                   innerSteps: inner.int("steps"), innerRate: Float(inner.number("lr")), firstOrder: order == 1, estimator: estimator,
                   episodes: episodes, advantage: advantage, clip: Float(outer.number("clip")), epochs: outer.int("epochs"),
                   optimizer: outer.string("opt") == "sgd" ? SGD(learningRate: Float(outer.number("lr"))) : Adam(learningRate: Float(outer.number("lr"))))
        }
        return .learner(learner)
    }
}

extension Interpreter {
    /// The learner and environment of `train`/`eval ... on ENV`, when the target is an
    /// environment; nil otherwise.
    func learnerAndEnvironment(_ c: CommandInvocation) throws -> (LearnerValue, EnvironmentValue, MAMLRL)? {
        let t = try c.argument(.on, "tasks")
        guard case let .environment(env) = t.value else { return nil }
        let l = try c.argument(nil, "a learner")
        guard case let .learner(learner) = l.value else { throw RuntimeError("'\(c.name.name)' needs a learner, got a \(l.value.typeName)", at: l.range) }
        guard learner.makeRL != nil else {
            throw RuntimeError("'\(c.name.name) ... on' an environment needs a reinforcement learner (maml_rl); '\(learner.kind)' learns task batches", at: l.range)
        }
        let e = env.environment
        let needed = e.actionSpace.policyOutputs
        do {
            let out = try learner.model.network.outputShape(for: [e.observationSize])
            guard out == [needed] else {
                let what = if case .discrete = e.actionSpace { "one logit per action" } else { "the mean of each action dimension" }
                throw RuntimeError("the policy network outputs \(out), but \(e.name) needs \(needed) outputs (\(what))", at: l.range)
            }
        } catch let error as ShapeError {
            throw RuntimeError("the policy network does not take \(e.name)'s observations of size \(e.observationSize): \(error.message)", at: l.range)
        }
        do { return (learner, env, try learner.rlEngine(for: e)) } catch let error as LearnerMismatch {
            throw RuntimeError(error.message, at: l.range)
        }
    }

    /// Options of `train` and `eval` that belong to task batches only.
    private func rejectTaskOptions(_ c: CommandInvocation, _ keys: [String]) throws {
        for key in keys where c.options.keyRanges[key] != nil {
            throw c.options.error("'\(key)' is not supported when training or evaluating on an environment", key: key)
        }
    }

    func trainRL(_ c: CommandInvocation, learner: LearnerValue, engine: MAMLRL) throws -> Value {
        try rejectTaskOptions(c, ["log", "eval_every", "eval_tasks"])
        let o = c.options
        var iterations = o.int("iters")
        let checkpointPath = o.string("checkpoint")
        if let path = checkpointPath {
            // Before training, not after it.
            do { try TextFile.requireFolder(of: path) } catch {
                throw RuntimeError("cannot save the checkpoint \(path): \(error)", at: o.range(of: "checkpoint"))
            }
        }
        if o.bool("resume") {
            guard let path = checkpointPath else { throw o.error("'resume' needs 'checkpoint', the file to resume from", key: "resume") }
            if FileManager.default.fileExists(atPath: path) {
                do { try learner.restore(try Checkpoint.read(from: path)) } catch {
                    throw RuntimeError("cannot resume: \(error.message(about: path))", at: o.range(of: "checkpoint"))
                }
                iterations = max(iterations - learner.iterations, 0)
                output.write("resuming from \(path) at iteration \(learner.iterations)")
            }
        }
        var savedAt: Int?
        func saveCheckpoint() throws {
            guard let path = checkpointPath else { return }
            do { try learner.checkpoint().write(to: path) } catch {
                output.finishProgress()
                throw RuntimeError("cannot save the checkpoint: \(error.message(about: path))", at: o.range(of: "checkpoint"))
            }
            savedAt = learner.iterations
        }
        let batch = o.optionalInt("batch") ?? learner.metaBatch
        let window = o.int("log_every") > 0 ? o.int("log_every") : max(iterations / 20, 1)
        var losses: [Value] = [], before: [Value] = [], after: [Value] = []
        var sums: (Float, Float, Float) = (0, 0, 0)
        var count = 0, done = 0
        var last: (Float, Float, Float) = (.nan, .nan, .nan)
        let start = Date()
        var lastProgress = Date.distantPast
        func closeWindow() {
            let n = Float(max(count, 1))
            last = (sums.0 / n, sums.1 / n, sums.2 / n)
            losses.append(.float(Double(last.0)))
            before.append(.float(Double(last.1)))
            after.append(.float(Double(last.2)))
            sums = (0, 0, 0)
            count = 0
        }
        while done < iterations {
            if shouldInterrupt() { break }
            var generator = learner.rng
            let step: MetaRLStep
            do { step = try engine.metaStep(tasks: batch, using: &generator) } catch {
                output.finishProgress()
                throw error as? RuntimeError ?? RuntimeError("\(error)", at: c.range)
            }
            learner.rng = generator
            guard step.loss.isFinite, engine.policy.parameters.allSatisfy({ $0.scalars.allSatisfy(\.isFinite) }) else {
                output.finishProgress()
                throw RuntimeError("training diverged at iteration \(learner.iterations + 1) (loss \(step.loss)); lower the learning rates", at: c.range)
            }
            sums.0 += step.loss
            sums.1 += step.returnBefore
            sums.2 += step.returnAfter
            count += 1
            done += 1
            learner.iterations += 1
            if learner.iterations % o.int("every") == 0 { try saveCheckpoint() }
            if count == window || done == iterations { closeWindow() }
            if Date().timeIntervalSince(lastProgress) > 0.1 || done == iterations {
                lastProgress = Date()
                output.progress(ProgressState(label: "train \(learner.kind)", done: done, total: iterations, unit: "it", loss: step.loss,
                                              elapsed: Date().timeIntervalSince(start)))
            }
        }
        output.finishProgress()
        if savedAt != learner.iterations { try saveCheckpoint() }
        if count > 0 { closeWindow() }
        let seconds = Date().timeIntervalSince(start)
        if done < iterations { output.write("interrupted after \(done) of \(iterations) iterations") }
        return .record(Record([
            ("iterations", .int(done)), ("seconds", .float(seconds)), ("loss", .float(Double(last.0))), ("losses", .list(losses)),
            ("log_every", .int(window)), ("return_before", .float(Double(last.1))), ("return_after", .float(Double(last.2))),
            ("returns_before", .list(before)), ("returns_after", .list(after)),
            ("std", .list((engine.policy.logStd?.scalars ?? []).map { .float(Double(Foundation.exp($0))) })),
        ]))
    }

    func evaluateRL(_ c: CommandInvocation, learner: LearnerValue, engine: MAMLRL) throws -> Value {
        try rejectTaskOptions(c, ["support", "query", "episodes", "scores"])
        let o = c.options
        let steps = o.keyRanges["steps"] == nil ? [0, 1, 2, 3] : o.ints("steps")
        guard !steps.isEmpty, steps.allSatisfy({ $0 >= 0 && $0 <= 100 }) else { throw o.error("'steps' needs adaptation step counts in 0...100", key: "steps") }
        defer { output.finishProgress() }
        var generator = rng
        let scores = try engine.evaluate(tasks: o.int("tasks"), steps: steps, batch: o.int("batch"), using: &generator,
                                     shouldStop: shouldInterrupt, progress: progressReporter("eval \(learner.kind)"))
        rng = generator
        let evaluated = scores.first?.count ?? 0
        if evaluated < o.int("tasks") { throw RuntimeError("interrupted after \(evaluated) of \(o.int("tasks")) tasks", at: c.range) }
        if let i = scores.firstIndex(where: { $0.contains { !$0.isFinite } }) {
            throw RuntimeError("evaluation diverged: a return after \(steps[i]) steps is not a finite number; lower the inner learning rate", at: c.range)
        }
        return .report(EvaluationReport(metric: "return", rows: zip(steps, scores).map { ScoreSummary(steps: $0, scores: $1) }))
    }
}

// MARK: The pieces of meta-RL as functions of the language

extension Builtins {
    static func environmentArgument(_ name: String, _ a: BuiltinArgument) throws -> any MetaEnvironment {
        guard case let .environment(e) = a.value else {
            throw RuntimeError("'\(name)' needs an environment (env nav = navigation2d < ... >) first, got a \(a.value.typeName)", at: a.range)
        }
        return e.environment
    }

    /// Episodes as the language sees them (see `rollout`).
    static func trajectoriesValue(_ tr: Trajectories) -> Value {
        let n = tr.episodes * tr.horizon
        return .record(Record([
            ("observations", .tensor(tr.observations)), ("actions", .tensor(tr.actions)),
            ("rewards", .tensor(Tensor(shape: [tr.tasks, n], values: tr.rewards))), ("mask", .tensor(tr.maskTensor)),
            ("returns", .tensor(Tensor(tr.averageReturns))), ("task_params", .tensor(tr.taskParameters)),
            ("tasks", .int(tr.tasks)), ("episodes", .int(tr.episodes)), ("horizon", .int(tr.horizon)),
        ]))
    }

    /// Episodes back from their record, every shape checked against the others.
    static func trajectoriesArgument(_ name: String, _ a: BuiltinArgument) throws -> Trajectories {
        let problem = RuntimeError("'\(name)' needs episodes as 'rollout' returns them: < observations actions rewards mask task_params tasks episodes horizon > with consistent shapes", at: a.range)
        guard case let .record(r) = a.value, case let .tensor(obs)? = r["observations"], case let .tensor(actions)? = r["actions"],
              case let .tensor(rewards)? = r["rewards"], case let .tensor(mask)? = r["mask"], case let .tensor(params)? = r["task_params"],
              case let .int(t)? = r["tasks"], case let .int(e)? = r["episodes"], case let .int(h)? = r["horizon"],
              t >= 1, e >= 1, h >= 1, let n = Limits.product([e, h]) else { throw problem }
        guard obs.rank == 3, obs.shape[0] == t, obs.shape[1] == n, actions.rank == 3, Array(actions.shape.prefix(2)) == [t, n],
              rewards.shape == [t, n], mask.shape == [t, n], params.rank == 2, params.shape[0] == t else { throw problem }
        let m = mask.scalars
        guard m.allSatisfy({ $0 == 0 || $0 == 1 }) else {
            throw RuntimeError("'\(name)': the mask must hold 0s and 1s", at: a.range)
        }
        return Trajectories(tasks: t, episodes: e, horizon: h, observations: obs.detached(), actions: actions.detached(),
                            rewards: rewards.scalars, mask: m, taskParameters: params.detached())
    }

    static let rlFunctionList: [BuiltinFunction] = [
        function("env_tasks", "env_tasks(env, n, g)", "The parameters [n, P] of n new tasks of an environment family (a goal [x, y] for navigation2d; pole mass, length and cart mass for cartpole), drawn from a generator made by 'generator(seed)'.", "let goals = env_tasks(nav, 20, g)", arity: 3...3) { args, range, interp in
            try arity("env_tasks", args, 3...3, range)
            let env = try environmentArgument("env_tasks", args[0])
            guard case let .int(n) = args[1].value, n >= 1, n <= Limits.maximumSize else {
                throw RuntimeError("'env_tasks' needs a task count in 1...\(Limits.maximumSize), got \(args[1].value.nestedText)", at: args[1].range)
            }
            let box = try generatorArgument("env_tasks", args[2], interp)
            interp.tracer?.fail("it draws tasks ('env_tasks')")
            return .tensor(try env.sampleTasks(n, using: &box.rng))
        },
        function("rollout", "rollout(env, policy, tasks, episodes, g, log_std)",
                 "Runs 'episodes' episodes of each task of 'tasks' (as 'env_tasks' gives them), all stepped together, and returns them as a record < observations [T, E*H, O] actions [T, E*H, width] rewards [T, E*H] mask [T, E*H] returns [T] task_params tasks episodes horizon >: the steps of each task episode after episode, the mask 1 while an episode runs, returns the average return per episode of each task. 'policy' is a function of the observations [T, E, O] of one step giving the mean of each action dimension [T, E, A] (continuous actions: a Gaussian with standard deviation e^log_std, log_std [A] or [T, A] per task) or one logit per action [T, E, K] (discrete actions, no log_std). Actions are drawn from the generator 'g'; nothing is differentiated (score the episodes with gaussian_log_prob or categorical_log_prob).",
                 "let tr = rollout(nav, fn(o) -> net(o, fast), goals, 20, g, log_std)", arity: 5...6) { args, range, interp in
            try arity("rollout", args, 5...6, range)
            let env = try environmentArgument("rollout", args[0])
            guard case let .function(policy) = args[1].value else {
                throw RuntimeError("'rollout' needs a policy function of the observations, got a \(args[1].value.typeName)", at: args[1].range)
            }
            let p = try env.taskParameterCount()
            guard case let .tensor(tasks) = args[2].value, tasks.rank == 2, tasks.shape[1] == p, tasks.shape[0] >= 1,
                  tasks.scalars.allSatisfy(\.isFinite) else {
                throw RuntimeError("'rollout' needs the tasks as a tensor [tasks, \(p)] of finite numbers (as 'env_tasks' gives them), got \(args[2].value.nestedText)", at: args[2].range)
            }
            guard case let .int(episodes) = args[3].value, episodes >= 1, episodes <= 100_000 else {
                throw RuntimeError("'rollout' needs an episode count in 1...100000, got \(args[3].value.nestedText)", at: args[3].range)
            }
            let box = try generatorArgument("rollout", args[4], interp)
            let t = tasks.shape[0], o = env.observationSize, outputs = env.actionSpace.policyOutputs
            try Limits.requireFloats(Limits.product([t, episodes, env.horizon, o + env.actionSpace.width + 2]),
                                     for: "\(episodes) episodes of \(env.horizon) steps for each of \(t) tasks", at: range)
            var logStd: Tensor?
            switch env.actionSpace {
            case .continuous:
                guard args.count == 6, case let .tensor(s) = args[5].value, s.shape == [outputs] || s.shape == [t, outputs],
                      s.scalars.allSatisfy({ $0.isFinite && abs($0) < 30 }) else {
                    throw RuntimeError("'rollout' on \(env.name) (continuous actions) needs a log standard deviation [\(outputs)] or [\(t), \(outputs)] of finite numbers last", at: args.count == 6 ? args[5].range : range)
                }
                logStd = s.detached()
            case .discrete:
                guard args.count == 5 else {
                    throw RuntimeError("'rollout' on \(env.name) (discrete actions: a categorical policy) takes no log standard deviation", at: args[5].range)
                }
            }
            interp.tracer?.fail("it runs episodes ('rollout')")
            if interp.deploying { throw RuntimeError("'rollout' does not run when deploying", at: range) }
            let tr = try rollout(env, taskParameters: tasks.detached(), episodes: episodes, using: &box.rng) { obs, rng in
                let out = try interp.call(policy, arguments: [(nil, .tensor(obs), args[1].range)], at: range)
                guard case let .tensor(y) = out, y.shape == [t, episodes, outputs] else {
                    throw RuntimeError("'rollout': the policy must give a tensor [\(t), \(episodes), \(outputs)] for observations \(obs.shape) (\(env.actionSpace.policyOutputs) \(logStd == nil ? "logits" : "action means") per step), got \(out.nestedText)", at: args[1].range)
                }
                let values = y.detached()
                guard values.scalars.allSatisfy(\.isFinite) else {
                    throw RuntimeError("'rollout': the policy gave a value that is not a finite number", at: args[1].range)
                }
                return Policy.sampleActions(output: values, logStd: logStd, using: &rng)
            }
            return trajectoriesValue(tr)
        },
        function("advantages", "advantages(episodes, gamma = 0.99, lambda = 1, normalize = true)",
                 "Advantages [T, E*H] of episodes from 'rollout' (0 where the mask is 0): GAE with discount gamma and lambda over rllab's linear feature baseline, fitted to each task's own discounted returns (lambda 1: the returns minus the baseline), standardised per task with normalize; what maml_rl's inner and outer losses use. A constant.",
                 "let adv = advantages(tr)", arity: 1...4) { args, range, _ in
            try arity("advantages", args, 1...4, range)
            let tr = try trajectoriesArgument("advantages", args[0])
            var estimation = AdvantageEstimation()
            if args.count > 1 {
                guard let g = args[1].value.number, g >= 0, g <= 1 else { throw RuntimeError("'advantages' needs gamma in 0...1, got \(args[1].value.nestedText)", at: args[1].range) }
                estimation.gamma = Float(g)
            }
            if args.count > 2 {
                guard let l = args[2].value.number, l >= 0, l <= 1 else { throw RuntimeError("'advantages' needs lambda in 0...1, got \(args[2].value.nestedText)", at: args[2].range) }
                estimation.lambda = Float(l)
            }
            if args.count > 3 {
                guard case let .bool(b) = args[3].value else { throw RuntimeError("'advantages' needs normalize true or false, got \(args[3].value.nestedText)", at: args[3].range) }
                estimation.normalize = b
            }
            return .tensor(estimation.advantages(tr))
        },
        function("dice_loss", "dice_loss(logp, advantages, mask, horizon)",
                 "The loaded-DiCE policy-gradient loss of each task (Foerster et al. 2018, Farquhar et al. 2019), negated: -sum_t (e^(L_t - stop(L_t)) - e^(L_(t-1) - stop(L_(t-1)))) A_t m_t / sum(m) over [T, steps] tensors, L_t the running sum of logp within each episode of 'horizon' steps (the steps hold whole episodes, as 'rollout' gives them). Its value is 0 and its gradient the policy gradient (pg_loss's), and differentiated again it includes the episodes' own dependence on the policy: the unbiased inner loss of second-order MAML-RL, maml_rl's 'estimator dice'. Gives [T].",
                 "sum(dice_loss(logp, adv, tr.mask, tr.horizon))", arity: 4...4) { args, range, interp in
            try arity("dice_loss", args, 4...4, range)
            var tensors: [Tensor] = []
            for (i, name) in ["logp", "advantages", "mask"].enumerated() {
                guard case let .tensor(t) = args[i].value else {
                    throw RuntimeError("'dice_loss' needs \(name) as a tensor [tasks, steps], got a \(args[i].value.typeName)", at: args[i].range)
                }
                tensors.append(t)
            }
            guard case let .int(h) = args[3].value, h >= 1, h <= 100_000 else {
                throw RuntimeError("'dice_loss' needs the episodes' horizon as an int in 1...100000, got \(args[3].value.nestedText)", at: args[3].range)
            }
            return .tensor(try interp.tensorOperation("dice_loss", tensors, at: range) { ts throws(ShapeError) in
                try Primitives.checkEpisodes("dice_loss", [("logp", ts[0]), ("advantages", ts[1]), ("mask", ts[2])])
                guard ts[0].shape[1] % h == 0 else { throw ShapeError("dice_loss: \(ts[0].shape[1]) steps are not whole episodes of horizon \(h)") }
                return PolicyGradient.innerLoss(logProbabilities: ts[0], advantages: ts[1].detached(), mask: ts[2].detached(),
                                                episodes: ts[0].shape[1] / h, horizon: h, estimator: .dice)
            })
        },
        function("discounted_returns", "discounted_returns(episodes, gamma = 0.99)",
                 "The discounted return-to-go [T, E*H] of every step of episodes from 'rollout' (0 after an episode ends). A constant.",
                 "let g = discounted_returns(tr, 0.9)", arity: 1...2) { args, range, _ in
            try arity("discounted_returns", args, 1...2, range)
            let tr = try trajectoriesArgument("discounted_returns", args[0])
            var gamma: Float = 0.99
            if args.count > 1 {
                guard let g = args[1].value.number, g >= 0, g <= 1 else { throw RuntimeError("'discounted_returns' needs gamma in 0...1, got \(args[1].value.nestedText)", at: args[1].range) }
                gamma = Float(g)
            }
            return .tensor(Tensor(shape: [tr.tasks, tr.episodes * tr.horizon], values: AdvantageEstimation.discountedReturns(tr, gamma: gamma)))
        },
    ]
}
