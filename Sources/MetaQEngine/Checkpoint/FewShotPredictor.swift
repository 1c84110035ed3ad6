/// The labels of a support set: target values (regression) or class labels (classification).
public enum SupportTargets: Sendable, Equatable {
    /// One row of output values per example (one value for a scalar regression).
    case values([[Float]])
    /// One class label per example.
    case labels([Int])
}

/// What a ``FewShotPredictor`` predicts for each query example.
public enum Predictions: Sendable, Equatable {
    /// Regression: one row of output values per query example.
    case values([[Float]])
    /// Classification: the most probable class of each query example, and the probability of
    /// every class.
    case classes(labels: [Int], probabilities: [[Float]])
}

/// A request that does not fit the model: wrong feature counts, labels out of range, a
/// support set that cannot be adapted on. `description` says what to fix.
public struct PredictionError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The adaptation of a learner whose rule is not the engine's (one written in a script):
/// given a support set and a step count, predictions for query inputs `[1, n, ...]`.
public protocol ScriptedAdaptation: AnyObject, Sendable {
    /// Steps used when a request gives none.
    var defaultSteps: Int { get }
    func predictions(support: Split, query: Tensor, steps: Int) throws -> Tensor
}

/// A meta-learned model, ready for deployment: it adapts to a task from a few labelled
/// examples (the support set) and predicts outputs for new inputs of that task (the query).
///
/// Adaptation is functional: it builds fast weights from the meta-parameters and never
/// changes them, so one predictor serves any number of tasks, concurrently.
///
/// ```swift
/// let predictor = try FewShotPredictor(checkpoint: try Checkpoint.read(from: "sine.mqm"))
/// let result = try predictor.predict(
///     support: [[0.5], [1.0], [2.0]], targets: .values([[0.4], [0.8], [0.9]]),
///     query: [[1.5]], steps: 5)
/// if case let .values(rows) = result { print(rows[0][0]) }
/// ```
public final class FewShotPredictor: @unchecked Sendable {
    /// How a learner adapts to a support set.
    private enum Method {
        /// Its kind's rule (``LearnerKind``): SGD steps or class prototypes.
        case rule(AdaptationRule)
        /// A rule written in a script.
        case scripted(ScriptedAdaptation)
    }

    private let model: Sequential
    private let parameters: [Tensor]
    private let method: Method
    /// The name of the learner that was saved (`maml`, `protonet`, ...).
    public let learnerName: String
    public let loss: LossKind
    /// The shape of one input example; requests give it flattened.
    public let inputShape: [Int]
    /// Outputs per example: regression values, classes, or (for a prototypical network) the
    /// embedding size.
    public let outputCount: Int
    /// The adaptation steps used when a request gives none: the learner's own inner steps.
    public let defaultSteps: Int
    /// Whether adaptation takes steps at all (a prototypical network adapts in one pass).
    public var adaptsBySteps: Bool {
        if case .rule(.prototypes) = method { return false }
        return true
    }
    /// The features of one flattened input example.
    public var featureCount: Int { inputShape.reduce(1, *) }
    /// The parameters of the model.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// Prepares a checkpoint for deployment.
    ///
    /// - Throws: `CheckpointError` when the checkpoint holds no learner (a model alone cannot
    ///   be adapted: its learning rule is unknown) or does not record its input shape.
    public init(checkpoint: Checkpoint, scripted: ScriptedAdaptation? = nil) throws(CheckpointError) {
        if checkpoint.learner?.configuration.settings is ScriptSettings, scripted == nil {
            throw CheckpointError(.unsupported, "it holds a learner written in a script; deploy it with 'metaq adapt' or 'metaq serve', which rebuild it from the script saved inside")
        }
        guard let snapshot = checkpoint.learner else {
            throw CheckpointError(.unsupported, "the checkpoint holds a model without a learner; deployment needs a learner's checkpoint (save the learner, not its model)")
        }
        let firstLinear: [Int]? = if case let .linear(inputs, _)? = checkpoint.layers.first { [inputs] } else { nil }
        guard let inputShape = checkpoint.inputShape ?? firstLinear else {
            throw CheckpointError(.unsupported, "the checkpoint does not record the model's input shape")
        }
        let model = checkpoint.makeModel()
        let output: [Int]
        do { output = try model.outputShape(for: inputShape) } catch {
            throw CheckpointError(.inconsistent, "the model does not take inputs of shape \(inputShape): \(error.message)")
        }
        guard output.count == 1 else {
            throw CheckpointError(.unsupported, "the model's outputs have shape \(output); deployment needs one vector per example")
        }
        if let scripted {
            method = .scripted(scripted)
            defaultSteps = scripted.defaultSteps
        } else {
            let restored = try snapshot.makeLearner(model: checkpoint.makeModel())
            guard let rule = snapshot.configuration.kind.adaptation?(restored) else {
                throw CheckpointError(.unsupported, "a \(snapshot.configuration.name) learner cannot be deployed: it has no few-shot adaptation rule (deployable: \(LearnerKind.names { $0.isDeployable }))")
            }
            method = .rule(rule)
            switch rule {
            case let .gradient(inner, _): defaultSteps = inner.steps
            case .prototypes: defaultSteps = 0
            }
        }
        self.model = model
        parameters = model.parameters.map { $0.detached() }
        // The name it was declared with (a module's learner: matching, meta_lstm), which the
        // language writes in the checkpoint's attributes; else its kind's.
        learnerName = checkpoint.attributes["learner"].flatMap { $0.isEmpty ? nil : $0 } ?? snapshot.configuration.name
        loss = snapshot.loss
        self.inputShape = inputShape
        outputCount = output[0]
        if case .rule(.prototypes) = method {} else if loss == .crossEntropy, outputCount < 2 {
            throw CheckpointError(.unsupported, "a classifier needs at least 2 outputs, the model has \(outputCount)")
        }
    }

    /// Adapts to the support set (`support[i]` is one flattened example, `targets` its labels)
    /// with `steps` adaptation steps (nil: the learner's own), then predicts the query
    /// examples. The predictor itself does not change.
    ///
    /// - Throws: `PredictionError` saying what does not fit the model.
    public func predict(support: [[Float]], targets: SupportTargets, query: [[Float]], steps: Int? = nil) throws(PredictionError) -> Predictions {
        guard !support.isEmpty else { throw PredictionError("the support set is empty") }
        guard !query.isEmpty else { throw PredictionError("the query set is empty") }
        let supportInputs = try inputs(support, role: "support")
        let queryInputs = try inputs(query, role: "query")
        let steps = steps ?? defaultSteps
        guard steps >= 0 else { throw PredictionError("steps must be non-negative, got \(steps)") }
        let outputs: Tensor
        switch method {
        case let .rule(.gradient(inner, rates)):
            let supportTargets = try gradientTargets(targets, count: support.count)
            let fast = inner.adapt(model: model, loss: loss, support: Split(inputs: supportInputs, targets: supportTargets),
                                   from: parameters, steps: steps, rates: rates, createGraph: false)
            outputs = model.forward(queryInputs, parameters: fast.map { $0.detached() }, tasks: 1)
        case let .rule(.prototypes(protonet)):
            let labels = try prototypeLabels(targets, count: support.count)
            outputs = protonet.logits(support: Split(inputs: supportInputs, targets: .labels(labels)),
                                      queryInputs: queryInputs, parameters: parameters)
        case let .scripted(rule):
            let supportTargets = try gradientTargets(targets, count: support.count)
            do {
                outputs = try rule.predictions(support: Split(inputs: supportInputs, targets: supportTargets), query: queryInputs, steps: steps)
            } catch {
                throw PredictionError("the learner's script failed: \(error)")
            }
            guard outputs.rank >= 2, outputs.shape[0] == 1, outputs.shape[1] == query.count, outputs.shape.last == outputCount || loss == .crossEntropy else {
                throw PredictionError("the learner's script gave predictions of shape \(outputs.shape) for \(query.count) query examples")
            }
        }
        let rows = outputs.shape.last!
        let values = outputs.scalars
        guard values.allSatisfy(\.isFinite) else {
            throw PredictionError("adaptation diverged (non-finite outputs); use fewer steps")
        }
        if loss == .crossEntropy {
            let probabilities = outputs.softmax().scalars
            let perRow = (0..<query.count).map { Array(probabilities[$0 * rows..<($0 + 1) * rows]) }
            return .classes(labels: outputs.argmax(), probabilities: perRow)
        }
        return .values((0..<query.count).map { Array(values[$0 * rows..<($0 + 1) * rows]) })
    }

    /// Flattened examples as a one-task batch `[1, n] + inputShape`.
    private func inputs(_ rows: [[Float]], role: String) throws(PredictionError) -> Tensor {
        var flat: [Float] = []
        flat.reserveCapacity(rows.count * featureCount)
        for (i, row) in rows.enumerated() {
            guard row.count == featureCount else {
                throw PredictionError("\(role) example \(i) has \(row.count) feature\(row.count == 1 ? "" : "s"); the model takes \(featureCount)")
            }
            guard row.allSatisfy(\.isFinite) else { throw PredictionError("\(role) example \(i) has a value that is not a finite number") }
            flat += row
        }
        return Tensor(shape: [1, rows.count] + inputShape, values: flat)
    }

    private func gradientTargets(_ targets: SupportTargets, count: Int) throws(PredictionError) -> Targets {
        switch (loss, targets) {
        case let (.meanSquaredError, .values(rows)):
            guard rows.count == count else { throw PredictionError("\(count) support examples but \(rows.count) targets") }
            for (i, row) in rows.enumerated() {
                guard row.count == outputCount else {
                    throw PredictionError("support target \(i) has \(row.count) value\(row.count == 1 ? "" : "s"); the model has \(outputCount) output\(outputCount == 1 ? "" : "s")")
                }
                guard row.allSatisfy(\.isFinite) else { throw PredictionError("support target \(i) is not a finite number") }
            }
            return .values(Tensor(shape: [1, count, outputCount], values: rows.flatMap { $0 }))
        case let (.crossEntropy, .labels(labels)):
            guard labels.count == count else { throw PredictionError("\(count) support examples but \(labels.count) labels") }
            if let bad = labels.first(where: { !(0..<outputCount).contains($0) }) {
                throw PredictionError("label \(bad) is out of range: the model classifies \(outputCount) classes, labelled 0 to \(outputCount - 1)")
            }
            return .labels(labels)
        case (.meanSquaredError, .labels):
            throw PredictionError("this model does regression: support targets must be numbers, not class labels")
        case (.crossEntropy, .values):
            throw PredictionError("this model does classification: support targets must be integer class labels")
        }
    }

    /// Labels for prototypes: every class from 0 to the largest label needs an example.
    private func prototypeLabels(_ targets: SupportTargets, count: Int) throws(PredictionError) -> [Int] {
        guard case let .labels(labels) = targets else {
            throw PredictionError("this model does classification: support targets must be integer class labels")
        }
        guard labels.count == count else { throw PredictionError("\(count) support examples but \(labels.count) labels") }
        guard let top = labels.max(), labels.allSatisfy({ $0 >= 0 }), top < 10_000 else {
            throw PredictionError("labels must be integers from 0 to at most 9999")
        }
        let present = Set(labels)
        if let missing = (0...top).first(where: { !present.contains($0) }) {
            throw PredictionError("class \(missing) has no support example; label classes 0 to \(top) without gaps")
        }
        return labels
    }
}
