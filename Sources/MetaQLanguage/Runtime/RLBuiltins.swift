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
                   KeySpec("lr", .positive, default: "0.01", "meta learning rate"),
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
        try rejectTaskOptions(c, ["checkpoint", "resume", "log", "eval_every", "eval_tasks"])
        let o = c.options
        let iterations = o.int("iters")
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
            let step = engine.metaStep(tasks: batch, using: &generator)
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
            if count == window || done == iterations { closeWindow() }
            if Date().timeIntervalSince(lastProgress) > 0.1 || done == iterations {
                lastProgress = Date()
                output.progress(ProgressState(label: "train \(learner.kind)", done: done, total: iterations, unit: "it", loss: step.loss,
                                              elapsed: Date().timeIntervalSince(start)))
            }
        }
        output.finishProgress()
        if count > 0 { closeWindow() }
        let seconds = Date().timeIntervalSince(start)
        if done < iterations { output.write("interrupted after \(done) of \(iterations) iterations") }
        return .record(Record([
            ("iterations", .int(done)), ("seconds", .float(seconds)), ("loss", .float(Double(last.0))), ("losses", .list(losses)),
            ("log_every", .int(window)), ("return_before", .float(Double(last.1))), ("return_after", .float(Double(last.2))),
            ("returns_before", .list(before)), ("returns_after", .list(after)),
        ]))
    }

    func evaluateRL(_ c: CommandInvocation, learner: LearnerValue, engine: MAMLRL) throws -> Value {
        try rejectTaskOptions(c, ["support", "query", "episodes", "scores"])
        let o = c.options
        let steps = o.keyRanges["steps"] == nil ? [0, 1, 2, 3] : o.ints("steps")
        guard !steps.isEmpty, steps.allSatisfy({ $0 >= 0 && $0 <= 100 }) else { throw o.error("'steps' needs adaptation step counts in 0...100", key: "steps") }
        defer { output.finishProgress() }
        var generator = rng
        let scores = engine.evaluate(tasks: o.int("tasks"), steps: steps, batch: o.int("batch"), using: &generator,
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
