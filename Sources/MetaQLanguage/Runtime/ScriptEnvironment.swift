import Foundation
import MetaQEngine

// An environment family written in the language:
//
//     fn goals(n, g) -> rand(g, [n, 2], -0.5, 0.5)                 # task parameters [n, P]
//     fn start(tasks, episodes, g) -> zeros([rows(tasks), episodes, 2])   # states [T, E, S]
//     fn move(state, action, tasks) {                            # one step of every episode
//         let next = state + action
//         return < state next  reward -norm(next - tasks[:, None, :])  done zeros(...) >
//     }
//     env walk = custom_env < tasks goals reset start step move action continuous actions 2 action_limit 0.1 horizon 100 >
//
// It is an engine environment (MetaEnvironment) like navigation2d, so maml_rl, `rollout`,
// `env_tasks`, `eval` and `plot` take it unchanged. Its functions see a whole meta-batch at
// once (tensors with a task and an episode axis); `step` and `observe` are compiled to engine
// calls on their first calls (Trace.swift), so a rollout of 100 steps does not walk the tree
// 100 times. The declaration runs each function once on a small probe (2 tasks, 3 episodes)
// and checks what it returns, so a malformed environment is reported where it is declared.

final class ScriptEnvironment: MetaEnvironment, @unchecked Sendable {
    let name: String
    let observationSize: Int
    let stateSize: Int
    let actionSpace: ActionSpace
    let horizon: Int
    /// The number of parameters of one task (P), found by the declaration's probe.
    let parameterCount: Int
    let tasksFunction: Function
    let resetFunction: Function
    let stepFunction: Function
    let observeFunction: Function?
    let interpreter: Interpreter
    /// Where each function was given, for errors about what it returned.
    let ranges: [String: SourceRange]
    let stepCache = TraceCache()
    let observeCache = TraceCache()

    /// Checks the functions on a probe and makes the environment; errors name the function.
    init(name: String, actionSpace: ActionSpace, horizon: Int, tasks: Function, reset: Function, step: Function,
         observe: Function?, interpreter: Interpreter, ranges: [String: SourceRange]) throws {
        self.name = name
        self.actionSpace = actionSpace
        self.horizon = horizon
        tasksFunction = tasks
        resetFunction = reset
        stepFunction = step
        observeFunction = observe
        self.interpreter = interpreter
        self.ranges = ranges
        for (key, f, arities) in [("tasks", tasks, [2]), ("reset", reset, [3]), ("step", step, [3, 4])] + (observe.map { [("observe", $0, [2])] } ?? []) {
            if let n = f.arity, !arities.contains(n) {
                let want = ScriptEnvironment.signatures[key]!
                throw RuntimeError("custom_env: '\(key)' must be \(want), but '\(f.name)' takes \(n) parameter\(n == 1 ? "" : "s")", at: ranges[key]!)
            }
        }
        // The probe: its own generator, so declaring an environment draws nothing from the
        // script's; 2 tasks and 3 episodes make the task and episode axes distinguishable.
        var probe = RandomGenerator(seed: 0)
        let taskParameters = try Self.tasks(tasks, 2, &probe, interpreter, ranges["tasks"]!, count: nil)
        parameterCount = taskParameters.shape[1]
        let states = try Self.states(reset, taskParameters, 3, &probe, interpreter, ranges["reset"]!, size: nil)
        stateSize = states.shape[2]
        if let observe {
            let o = try interpreter.call(observe, arguments: [(nil, .tensor(states), ranges["observe"]!), (nil, .tensor(taskParameters), ranges["observe"]!)], at: ranges["observe"]!)
            guard case let .tensor(obs) = o, obs.rank == 3, obs.shape[0] == 2, obs.shape[1] == 3, obs.shape[2] >= 1 else {
                throw RuntimeError("custom_env: 'observe' must return the observations [tasks, episodes, O] of states [tasks, episodes, S]; for states \(states.shape) it returned \(o.nestedText)", at: ranges["observe"]!)
            }
            observationSize = obs.shape[2]
        } else {
            observationSize = stateSize
        }
        let actions = Tensor.zeros([2, 3, actionSpace.width])
        _ = try self.step(states, actions: actions, tasks: taskParameters, using: &probe)
    }

    static let signatures = [
        "tasks": "fn(n, g): the parameters [n, P] of n new tasks, drawn from the generator g (rand, randn)",
        "reset": "fn(tasks, episodes, g): the initial states [T, episodes, S] of tasks [T, P]",
        "step": "fn(state, action, tasks) or fn(state, action, tasks, g): one step of every episode, < state reward done > (states [T, E, S], rewards [T, E], done [T, E], 1 where an episode ends)",
        "observe": "fn(state, tasks): what the policy sees of states [T, E, S], [T, E, O] (default: the state)",
    ]

    // MARK: Calling the script

    /// Runs `body` with a generator value whose draws come from `rng` (and advance it).
    private static func withGenerator<R>(_ rng: inout RandomGenerator, _ interpreter: Interpreter, _ body: (Value) throws -> R) rethrows -> R {
        let box = GeneratorBox(rng)
        let f = interpreter.generatorFunction(box, name: "generator")
        defer {
            interpreter.generators[ObjectIdentifier(f)] = nil
            rng = box.rng
        }
        return try body(.function(f))
    }

    private static func tasks(_ f: Function, _ n: Int, _ rng: inout RandomGenerator, _ interpreter: Interpreter, _ range: SourceRange, count: Int?) throws -> Tensor {
        let result = try withGenerator(&rng, interpreter) { g in
            try interpreter.call(f, arguments: [(nil, .int(n), range), (nil, g, range)], at: range)
        }
        let want = count.map { "[\(n), \($0)]" } ?? "[\(n), P]"
        guard case let .tensor(t) = result, t.rank == 2, t.shape[0] == n, t.shape[1] >= 1, count == nil || t.shape[1] == count else {
            throw RuntimeError("custom_env: 'tasks' must return the parameters \(want) of \(n) new tasks, got \(result.nestedText)", at: range)
        }
        guard t.scalars.allSatisfy(\.isFinite) else {
            throw RuntimeError("custom_env: 'tasks' gave a task parameter that is not a finite number", at: range)
        }
        return t.detached()
    }

    private static func states(_ f: Function, _ tasks: Tensor, _ episodes: Int, _ rng: inout RandomGenerator, _ interpreter: Interpreter,
                               _ range: SourceRange, size: Int?) throws -> Tensor {
        let result = try withGenerator(&rng, interpreter) { g in
            try interpreter.call(f, arguments: [(nil, .tensor(tasks), range), (nil, .int(episodes), range), (nil, g, range)], at: range)
        }
        let t = tasks.shape[0]
        guard case let .tensor(s) = result, s.rank == 3, s.shape[0] == t, s.shape[1] == episodes, s.shape[2] >= 1, size == nil || s.shape[2] == size else {
            throw RuntimeError("custom_env: 'reset' must return the initial states [\(t), \(episodes), \(size.map(String.init) ?? "S")] of \(t) tasks and \(episodes) episodes, got \(result.nestedText)", at: range)
        }
        guard s.scalars.allSatisfy(\.isFinite) else {
            throw RuntimeError("custom_env: 'reset' gave a state that is not a finite number", at: range)
        }
        return s.detached()
    }

    // MARK: MetaEnvironment

    func taskParameterCount() -> Int { parameterCount }

    func sampleTasks(_ count: Int, using rng: inout RandomGenerator) throws -> Tensor {
        try Self.tasks(tasksFunction, count, &rng, interpreter, ranges["tasks"]!, count: parameterCount)
    }

    func reset(tasks: Tensor, episodes: Int, using rng: inout RandomGenerator) throws -> Tensor {
        try Self.states(resetFunction, tasks, episodes, &rng, interpreter, ranges["reset"]!, size: stateSize)
    }

    func observe(_ states: Tensor, tasks: Tensor) throws -> Tensor {
        guard let observeFunction else { return states }
        let range = ranges["observe"]!
        let o = try interpreter.callCompiled(observeFunction, [.tensor(states), .tensor(tasks)], cache: observeCache, at: range)
        let want = [states.shape[0], states.shape[1], observationSize]
        guard case let .tensor(obs) = o, obs.shape == want else {
            throw RuntimeError("custom_env: 'observe' must return observations \(want), got \(o.nestedText)", at: range)
        }
        guard obs.scalars.allSatisfy(\.isFinite) else {
            throw RuntimeError("custom_env: 'observe' gave an observation that is not a finite number", at: range)
        }
        return obs.detached()
    }

    func step(_ states: Tensor, actions: Tensor, tasks: Tensor, using rng: inout RandomGenerator) throws -> EnvironmentStep {
        let range = ranges["step"]!
        var given = actions
        if case let .continuous(_, low, high) = actionSpace {
            given = Tensor(shape: actions.shape, values: actions.scalars.map { $0.isNaN ? 0 : Swift.min(Swift.max($0, low), high) })
        }
        let arguments: [Value] = [.tensor(states), .tensor(given), .tensor(tasks)]
        let result: Value
        if stepFunction.arity == 4 {
            // Noisy dynamics draw from the rollout's generator; such a step is interpreted.
            result = try Self.withGenerator(&rng, interpreter) { g in
                try interpreter.call(stepFunction, arguments: (arguments + [g]).map { (nil, $0, range) }, at: range)
            }
        } else {
            result = try interpreter.callCompiled(stepFunction, arguments, cache: stepCache, at: range)
        }
        let (t, e) = (states.shape[0], states.shape[1])
        guard case let .record(r) = result else {
            throw RuntimeError("custom_env: 'step' must return a record < state reward done >, got \(result.nestedText)", at: range)
        }
        for key in r.fields.map(\.key) where !["state", "reward", "done"].contains(key) {
            throw RuntimeError("custom_env: 'step' returned an unknown field '\(key)' (it returns < state reward done >)", at: range)
        }
        guard case let .tensor(next)? = r["state"], next.shape == [t, e, stateSize] else {
            throw RuntimeError("custom_env: 'step' must return the next states as 'state' [\(t), \(e), \(stateSize)], got \(r["state"]?.nestedText ?? "none")", at: range)
        }
        guard case let .tensor(reward)? = r["reward"], reward.shape == [t, e] else {
            throw RuntimeError("custom_env: 'step' must return the rewards as 'reward' [\(t), \(e)], got \(r["reward"]?.nestedText ?? "none")", at: range)
        }
        var done = Tensor.zeros([t, e])
        switch r["done"] {
        case nil: break
        case let .tensor(d)? where d.shape == [t, e]: done = d.detached()
        case let .bool(b)?: done = Tensor.full(b ? 1 : 0, shape: [t, e])
        case let v?:
            throw RuntimeError("custom_env: 'step' must return 'done' as [\(t), \(e)] (1 where an episode ends) or a bool, got \(v.nestedText)", at: range)
        }
        guard next.scalars.allSatisfy(\.isFinite) else {
            throw RuntimeError("custom_env: 'step' gave a next state that is not a finite number", at: range)
        }
        guard reward.scalars.allSatisfy(\.isFinite) else {
            throw RuntimeError("custom_env: 'step' gave a reward that is not a finite number", at: range)
        }
        return EnvironmentStep(states: next.detached(), rewards: reward.detached(), done: done)
    }
}

extension Builtins {
    static let scriptEnvironmentBlock = BlockBuiltin(schema: BlockSchema(
        "custom_env", .environment,
        summary: "An environment family written in the language, used like navigation2d or cartpole (maml_rl, rollout, env_tasks, eval, plot). Its functions see a whole batch at once: T tasks, E episodes each. 'tasks' is \(ScriptEnvironment.signatures["tasks"]!); 'reset' is \(ScriptEnvironment.signatures["reset"]!); 'step' is \(ScriptEnvironment.signatures["step"]!); the optional 'observe' is \(ScriptEnvironment.signatures["observe"]!). Continuous actions [T, E, actions] reach 'step' clipped to [-action_limit, action_limit]; a discrete action is its index [T, E, 1]. 'step' and 'observe' are compiled to engine calls on their first calls (a step taking the generator g draws noise and is interpreted). The declaration runs every function once on 2 tasks and 3 episodes and reports what does not fit.",
        keys: [KeySpec("tasks", .function, default: nil, ScriptEnvironment.signatures["tasks"]!),
               KeySpec("reset", .function, default: nil, ScriptEnvironment.signatures["reset"]!),
               KeySpec("step", .function, default: nil, ScriptEnvironment.signatures["step"]!),
               .optional("observe", .function, ScriptEnvironment.signatures["observe"]!),
               KeySpec("action", .choice(["continuous", "discrete"]), default: "continuous", "continuous actions (a Gaussian policy) or a choice among 'actions' (a categorical one)"),
               KeySpec("actions", .int(min: 1, max: 10_000), default: "1", "action dimensions (continuous) or the number of choices (discrete)"),
               KeySpec("action_limit", .number(min: 1e-6, max: 1e6), default: "1", "continuous actions are clipped to [-action_limit, action_limit]"),
               KeySpec("horizon", .int(min: 1, max: 100_000), default: "100", "steps per episode"),
               KeySpec("name", .string, default: "\"custom_env\"", "the family's name in messages and checkpoints")],
        example: "env walk = custom_env < tasks goals reset start step move actions 2 action_limit 0.1 horizon 100 >")) { b, interp in
        var functions: [String: Function] = [:]
        for key in ["tasks", "reset", "step", "observe"] {
            if case let .function(f)? = b.record[key] { functions[key] = f }
        }
        let limit = Float(b.number("action_limit"))
        let actionSpace: ActionSpace = b.string("action") == "discrete" ? .discrete(actions: b.int("actions"))
                                                                       : .continuous(dimensions: b.int("actions"), low: -limit, high: limit)
        if case .discrete = actionSpace, b.keyRanges["action_limit"] != nil {
            throw b.error("custom_env: 'action_limit' applies to continuous actions; discrete actions are indices", key: "action_limit")
        }
        var ranges: [String: SourceRange] = [:]
        for key in ["tasks", "reset", "step", "observe"] { ranges[key] = b.range(of: key) }
        let env = try ScriptEnvironment(name: b.string("name") ?? "custom_env", actionSpace: actionSpace, horizon: b.int("horizon"),
                                        tasks: functions["tasks"]!, reset: functions["reset"]!, step: functions["step"]!,
                                        observe: functions["observe"], interpreter: interp, ranges: ranges)
        let action = if case .discrete = actionSpace { "\(b.int("actions")) discrete actions" } else { "\(b.int("actions")) continuous actions in +-\(b.number("action_limit"))" }
        let summary = "written in the script: \(env.parameterCount) task parameters, states \(env.stateSize), observations \(env.observationSize), \(action), horizon \(env.horizon)"
        return .environment(EnvironmentValue(environment: env, summary: summary))
    }
}
