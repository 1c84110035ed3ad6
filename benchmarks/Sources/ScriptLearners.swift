import Foundation
import MetaQEngine
import MetaQLanguage

// metaq-bench script-learners: second-order MAML written in metaq (examples/algorithms/maml.mq's
// learner) against the built-in `maml`, both declared by one script and timed alternately in
// one process, round after round, on the same meta-batches. Prints JSON: per workload both
// throughputs (meta-steps per second, summed over the rounds) and their ratio (script over
// built-in), with each round's ratio.

private struct ScriptLearnerResult: Encodable {
    var name: String
    var script: Double
    var builtin: Double
    var ratio: Double
    var roundRatios: [Double]
    var unit = "meta-iterations/s"
    var settings: [String: String]
}

private func learnerScript(model: String, tasks: String, loss: String, innerSteps: Int, lr: String, batch: Int) -> String {
    """
    seed 3
    model net = \(model)
    tasks family = \(tasks)
    fn adapt(params, extras, support, steps) {
        var fast = per_task(params, support.tasks)
        for i in range(steps) {
            fast = fast + grad(fn(p) -> sum(\(loss)(net(support.x, p), support.y)), fast, -\(lr))
        }
        return fast
    }
    fn meta_loss(params, extras, batch) {
        return \(loss)(net(batch.query.x, adapt(params, extras, batch.support, \(innerSteps))), batch.query.y)
    }
    learner mine = custom < model net loss meta_loss adapt adapt outer < opt adam lr 0.001 batch \(batch) > >
    seed 3
    model net2 = \(model)
    learner ref = maml < model net2 inner < steps \(innerSteps) lr \(lr) > outer < opt adam lr 0.001 batch \(batch) > >
    """
}

func runScriptLearners(_ arguments: [String]) {
    let rounds = optionValue("rounds", in: arguments).flatMap { Int($0) } ?? 5
    let budget = optionValue("budget", in: arguments).flatMap(Double.init) ?? 1.0
    let only: Set<String>? = optionValue("only", in: arguments).map { Set($0.split(separator: ",").map(String.init)) }
    Parallel.setThreads(optionValue("threads", in: arguments).flatMap { Int($0) } ?? 2)

    struct Workload {
        let name: String
        let script: String
        let loss: LossKind
        let batch: (inout RandomGenerator) -> TaskBatch
        let settings: [String: String]
    }
    let sine = RegressionTasks.sinusoid()
    let sineBatch: (inout RandomGenerator) -> TaskBatch = { try! sine.sample(tasks: 25, support: 10, query: 10, using: &$0) }
    let imageBatch: (inout RandomGenerator) -> TaskBatch = { randomImageTasks(32, using: &$0) }
    let mlp = "mlp < in 1 hidden [40, 40] out 1 >"
    let sineTasks = "sinusoid < support 10 query 10 >"
    let workloads = [
        Workload(name: "script_maml_sine", script: learnerScript(model: mlp, tasks: sineTasks, loss: "task_mse", innerSteps: 1, lr: "0.01", batch: 25),
                 loss: .meanSquaredError, batch: sineBatch, settings: ["meta_batch": "25", "K": "10", "inner_steps": "1", "order": "2"]),
        Workload(name: "script_maml_sine_5step", script: learnerScript(model: mlp, tasks: sineTasks, loss: "task_mse", innerSteps: 5, lr: "0.01", batch: 25),
                 loss: .meanSquaredError, batch: sineBatch, settings: ["meta_batch": "25", "K": "10", "inner_steps": "5", "order": "2"]),
        Workload(name: "script_maml_omniglot",
                 script: learnerScript(model: "conv4 < out 5 >", tasks: "omniglot_like < >", loss: "cross_entropy", innerSteps: 1, lr: "0.4", batch: 32),
                 loss: .crossEntropy, batch: imageBatch,
                 settings: ["ways": "5", "shots": "1", "queries": "15", "meta_batch": "32", "inner_steps": "1", "order": "2", "images": "random 28x28"]),
    ]
    var results: [ScriptLearnerResult] = []
    for w in workloads where only == nil || only!.contains(w.name) {
        // The task family line is only a declaration the learners do not use here (batches
        // come from `w.batch`); image workloads drop it.
        let text = w.loss == .crossEntropy ? w.script.replacingOccurrences(of: "tasks family = omniglot_like < >\n", with: "") : w.script
        let output = BufferedOutput()
        let interpreter = Interpreter(output: output)
        let diagnostics = interpreter.run(SourceFile(name: w.name + ".mq", text: text))
        guard diagnostics.isEmpty, let script = interpreter.metaLearner(named: "mine", loss: w.loss),
              let builtin = interpreter.metaLearner(named: "ref", loss: w.loss) else {
            FileHandle.standardError.write(Data("\(w.name): \(diagnostics.map(\.message))\n".utf8))
            exit(1)
        }
        var rng = RandomGenerator(seed: 9)
        let fixed = w.loss == .crossEntropy ? w.batch(&rng) : nil
        func measure(_ learner: MetaLearner) -> (Int, Double) {
            var n = 0
            let start = now()
            repeat {
                learner.metaStep(fixed ?? w.batch(&rng))
                n += 1
            } while now() - start < budget
            return (n, now() - start)
        }
        // Warm-up: the script's functions are traced, checked and compiled on their first calls.
        for _ in 0..<3 { script.metaStep(fixed ?? w.batch(&rng)); builtin.metaStep(fixed ?? w.batch(&rng)) }
        var scriptTotal = (0, 0.0), builtinTotal = (0, 0.0)
        var ratios: [Double] = []
        for round in 0..<rounds {
            // Alternate which goes first, so drift in the machine's speed falls on both.
            let (a, b) = round % 2 == 0 ? (measure(script), measure(builtin)) : { let b = measure(builtin); return (measure(script), b) }()
            scriptTotal = (scriptTotal.0 + a.0, scriptTotal.1 + a.1)
            builtinTotal = (builtinTotal.0 + b.0, builtinTotal.1 + b.1)
            ratios.append((Double(a.0) / a.1) / (Double(b.0) / b.1))
        }
        let s = Double(scriptTotal.0) / scriptTotal.1, b = Double(builtinTotal.0) / builtinTotal.1
        var settings = w.settings
        settings["rounds"] = "\(rounds)"
        settings["budget_per_round_s"] = "\(budget)"
        settings["threads"] = "\(Parallel.threads)"
        settings["compiled"] = interpreter.interpretedReason(of: "mine") ?? "yes"
        results.append(ScriptLearnerResult(name: w.name, script: s, builtin: b, ratio: s / b, roundRatios: ratios, settings: settings))
    }
    printReport(results)
}
