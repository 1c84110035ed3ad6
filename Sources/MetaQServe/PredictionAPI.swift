import Foundation
import MetaQEngine

/// The body of `POST /v1/predict`: a task's support set to adapt on and the query inputs to
/// predict, with an optional number of adaptation steps.
///
/// ```json
/// {"support": {"x": [[-2.0], [0.5], [3.1]], "y": [1.2, -0.3, 0.8]},
///  "query": {"x": [[0.0], [1.0]]},
///  "steps": 5}
/// ```
///
/// `x` holds one list of features per example (an image flattened row by row). `y` holds one
/// number per example for a one-output regression model, a list of numbers per example for a
/// multi-output one, and an integer class label per example for a classifier.
public struct PredictRequest: Decodable, Sendable {
    public struct Support: Decodable, Sendable {
        public var x: [[Float]]
        public var y: TargetList
    }

    public struct Query: Decodable, Sendable {
        public var x: [[Float]]
    }

    public var support: Support
    public var query: Query
    public var steps: Int?
}

extension PredictRequest {
    /// Why a body that is valid JSON was refused by the decoder, which reports a number that
    /// does not fit its type (`1e39` as a 32-bit float, `1.5` as steps) as "not valid JSON":
    /// the first such number, by its path. Nil when the body is not JSON at all, or has no
    /// such number.
    static func numberProblem(in body: Data, maxSteps: Int) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: body) else { return nil }
        func problem(_ value: Any, at path: String) -> String? {
            if let dictionary = value as? [String: Any] {
                for key in dictionary.keys.sorted() {
                    if let found = problem(dictionary[key]!, at: path.isEmpty ? key : path + "." + key) { return found }
                }
            } else if let array = value as? [Any] {
                for (index, element) in array.enumerated() {
                    if let found = problem(element, at: path + "[\(index)]") { return found }
                }
            } else if let number = value as? NSNumber {
                let double = number.doubleValue
                if path == "steps" {
                    if double != double.rounded() || abs(double) > 1e15 {
                        return "steps must be a whole number from 0 to \(maxSteps), got \(double)"
                    }
                } else if !(abs(double) <= Double(Float.greatestFiniteMagnitude)) {
                    return "\(path) is \(double), beyond the largest 32-bit float (about 3.4e38)"
                }
            }
            return nil
        }
        return problem(object, at: "")
    }
}

/// The `y` of a support set: plain numbers, or one list of numbers per example.
public enum TargetList: Decodable, Sendable, Equatable {
    case numbers([Float])
    case rows([[Float]])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let numbers = try? container.decode([Float].self) {
            self = .numbers(numbers)
        } else if let rows = try? container.decode([[Float]].self) {
            self = .rows(rows)
        } else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "expected a list of numbers, or a list of lists of numbers")
        }
    }

    /// The targets as the predictor takes them, for a model with `loss`.
    func supportTargets(for loss: LossKind) throws(PredictionError) -> SupportTargets {
        switch (loss, self) {
        case let (.crossEntropy, .numbers(numbers)):
            let labels = numbers.map { Int(exactly: $0) }
            if let bad = labels.firstIndex(of: nil) {
                throw PredictionError("support.y[\(bad)] is \(numbers[bad]); a classifier needs integer class labels")
            }
            return .labels(labels.map { $0! })
        case (.crossEntropy, .rows):
            throw PredictionError("this model does classification: support.y must be a list of integer class labels")
        case let (.meanSquaredError, .numbers(numbers)):
            return .values(numbers.map { [$0] })
        case let (.meanSquaredError, .rows(rows)):
            return .values(rows)
        }
    }
}

/// The reply to `POST /v1/predict`. Regression: `{"predictions": [0.91, -0.2], "steps": 5}`
/// (a list of lists for a multi-output model). Classification: `{"predictions": [2, 0],
/// "probabilities": [[0.1, 0.2, 0.7], [0.8, 0.1, 0.1]], "steps": 0}`.
public struct PredictResponse: Encodable, Sendable {
    public var predictions: Predictions
    public var steps: Int

    enum CodingKeys: String, CodingKey { case predictions, probabilities, steps }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch predictions {
        case let .values(rows):
            if rows.allSatisfy({ $0.count == 1 }) {
                try container.encode(rows.map { $0[0] }, forKey: .predictions)
            } else {
                try container.encode(rows, forKey: .predictions)
            }
        case let .classes(labels, probabilities):
            try container.encode(labels, forKey: .predictions)
            try container.encode(probabilities, forKey: .probabilities)
        }
        try container.encode(steps, forKey: .steps)
    }
}

/// The reply to `GET /health`: the server is up, and what it serves.
public struct HealthResponse: Encodable, Sendable {
    public var status = "ok"
    public var learner: String
    public var task: String
    public var features: Int
    public var outputs: Int
    public var parameters: Int
    public var defaultSteps: Int
    public var maxSteps: Int
    public var maxExamples: Int
    public var trainedIterations: Int
    /// Requests adapting now, and waiting for a slot.
    public var running = 0
    public var waiting = 0

    enum CodingKeys: String, CodingKey {
        case status, learner, task, features, outputs, parameters, running, waiting
        case defaultSteps = "default_steps", maxSteps = "max_steps", maxExamples = "max_examples"
        case trainedIterations = "trained_iterations"
    }
}

/// An error reply: `{"error": "what is wrong"}`.
struct ErrorResponse: Encodable {
    var error: String
}

extension DecodingError {
    /// A short message naming the field at fault, e.g. `support.x[3][0]: expected a number`.
    var briefDescription: String {
        func path(_ keys: [CodingKey]) -> String {
            var text = ""
            for key in keys {
                if let index = key.intValue { text += "[\(index)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
            }
            return text.isEmpty ? "the body" : text
        }
        switch self {
        case let .keyNotFound(key, context):
            return "missing field '\(path(context.codingPath + [key]))'"
        case let .typeMismatch(type, context):
            return "\(path(context.codingPath)): expected \(Self.describe(type))"
        case let .valueNotFound(type, context):
            return "\(path(context.codingPath)): expected \(Self.describe(type)), found null"
        case let .dataCorrupted(context):
            if context.codingPath.isEmpty { return "the body is not valid JSON" }
            return "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "the body does not match the request format"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        let name = String(describing: type)
        if type == Float.self || type == Double.self { return "a number" }
        if type == Int.self { return "an integer" }
        if name.hasPrefix("Array") { return "a list" }
        return name.hasPrefix("Dictionary") ? "an object" : "a value of type \(name)"
    }
}
