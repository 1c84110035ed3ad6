import ArgumentParser
import Foundation
import MetaQEngine
import MetaQLanguage
import MetaQServe

/// A failure while running a command (not a usage mistake, so no usage text follows it).
struct CommandFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Reads a checkpoint for deployment, turning problems into a clear command-line error.
func loadPredictor(_ path: String) throws -> (FewShotPredictor, Checkpoint) {
    do {
        let checkpoint = try Checkpoint.read(from: path)
        return (try Deployment.predictor(for: checkpoint), checkpoint)
    } catch {
        throw CommandFailure(error.message(about: path))
    }
}

struct Adapt: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Adapt a saved meta-model to a support set and predict a query set.",
        discussion: """
            Both files are CSV with a header row. In the support file the target column (--target, \
            default y) holds regression values or, for a classifier, integer class labels 0, 1, ...; \
            every other column is a feature (or only those given with --features). The query file \
            needs the same feature columns, found by name; a target column in it is ignored.

            Output is CSV: the query's feature columns, then 'prediction' for a regression model, or \
            'label' and one probability column per class ('p0', 'p1', ...) for a classifier.

            Example: metaq adapt sine.mqm --support support.csv --query query.csv --steps 10 --out predictions.csv
            """)

    @ArgumentParser.Argument(help: "A learner checkpoint (.mqm) written by 'save' or 'train ... < checkpoint ... >'.") var model: String
    @Option(help: "The support set: features and the target column.") var support: String
    @Option(help: "The query set: the same feature columns.") var query: String
    @Option(help: "The target column of the support set.") var target = "y"
    @Option(help: "Comma-separated feature columns (default: every column but the target).") var features: String?
    // Unconditional, so that "--steps -1" is read as a (negative) count rather than as an
    // unknown option leaving --steps without a value.
    @Option(parsing: .unconditional, help: "Adaptation steps (default: the learner's inner steps).") var steps: Int?
    @Option(help: "Write the predictions to this file instead of standard output.") var out: String?

    func validate() throws {
        if let steps, !(0...InnerLoop.maximumSteps).contains(steps) {
            throw ValidationError("--steps must be from 0 to \(InnerLoop.maximumSteps), got \(steps)")
        }
    }

    func run() throws {
        let (predictor, _) = try loadPredictor(model)
        let columns = features?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let supportSet: CSVExamples, querySet: CSVExamples
        do {
            supportSet = try CSVExamples(path: support, targetColumn: target, featureColumns: columns)
            querySet = try CSVExamples(path: query, targetColumn: target, featureColumns: supportSet.featureColumns, requireTarget: false)
        } catch {
            throw CommandFailure("\(error)")
        }
        let targets: SupportTargets
        if predictor.loss == .crossEntropy {
            let labels = supportSet.targets!.map { Int(exactly: $0) }
            if let bad = labels.firstIndex(of: nil) {
                throw CommandFailure("\(support): row \(bad + 1) of column '\(target)' is \(supportSet.targets![bad]); a classifier needs integer class labels")
            }
            targets = .labels(labels.map { $0! })
        } else {
            guard predictor.outputCount == 1 else {
                throw CommandFailure("this model has \(predictor.outputCount) outputs; a CSV support set gives one target column")
            }
            targets = .values(supportSet.targets!.map { [$0] })
        }
        let predictions: Predictions
        do {
            predictions = try predictor.predict(support: supportSet.features, targets: targets, query: querySet.features, steps: steps)
        } catch {
            throw CommandFailure(error.description)
        }
        let text = predictionsCSV(features: querySet, predictions: predictions)
        if let out {
            do { try text.write(toFile: out, atomically: true, encoding: .utf8) } catch {
                throw CommandFailure("cannot write \(out): \(error.localizedDescription)")
            }
        } else {
            print(text, terminator: "")
        }
    }

    /// The query rows with their predictions, as CSV.
    func predictionsCSV(features: CSVExamples, predictions: Predictions) -> String {
        func quoted(_ name: String) -> String {
            name.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) ? "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : name
        }
        var header = features.featureColumns.map(quoted)
        var rows = features.features.map { $0.map { "\($0)" } }
        switch predictions {
        case let .values(values):
            header += values.first!.count == 1 ? ["prediction"] : values.first!.indices.map { "prediction_\($0)" }
            for (i, row) in values.enumerated() { rows[i] += row.map { "\($0)" } }
        case let .classes(labels, probabilities):
            header += ["label"] + probabilities.first!.indices.map { "p\($0)" }
            for i in labels.indices { rows[i] += ["\(labels[i])"] + probabilities[i].map { "\($0)" } }
        }
        return ([header] + rows).map { $0.joined(separator: ",") }.joined(separator: "\n") + "\n"
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a saved meta-model over HTTP: adapt to each request's support set and predict its query.",
        discussion: """
            GET /health reports the model. POST /v1/predict takes JSON
              {"support": {"x": [[...], ...], "y": [...]}, "query": {"x": [[...], ...]}, "steps": 5}
            and replies {"predictions": [...], "steps": 5}; a classifier also returns "probabilities". \
            Bad requests get a 4xx reply with {"error": "..."}. Each request adapts a copy of the \
            weights: the served model never changes. Binds to 127.0.0.1 unless --host says otherwise; \
            stops on Ctrl-C or SIGTERM.
            """)

    @ArgumentParser.Argument(help: "A learner checkpoint (.mqm).") var model: String
    @Option(help: "The address to listen on.") var host = "127.0.0.1"
    @Option(help: "The port (0: any free port, printed at start).") var port = 8080
    @Option(help: "The largest request body, in bytes.") var maxBody = 1 << 20
    @Option(help: "The most adaptation steps a request may ask for.") var maxSteps = 100
    @Option(help: "The most support (and query) examples per request.") var maxExamples = 1000
    @Option(help: "Requests adapting at once (default: the number of cores).") var concurrency: Int?
    @Option(help: "Requests that may wait for a free slot before the server answers 503.") var queue = 64
    @Option(help: "Seconds before an idle connection is closed.") var idleTimeout = 30.0

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
        guard maxBody > 0, maxSteps >= 0, maxExamples > 0, queue >= 0, (concurrency ?? 1) > 0,
              idleTimeout > 0, idleTimeout <= 86_400 else {
            throw ValidationError("limits must be positive")
        }
    }

    func run() async throws {
        let (predictor, checkpoint) = try loadPredictor(model)
        // Requests run side by side; each keeps to one thread.
        Parallel.setThreads(1)
        var settings = ServeConfiguration()
        settings.host = host
        settings.port = port
        settings.maxBodyBytes = maxBody
        settings.maxSteps = maxSteps
        settings.maxExamples = maxExamples
        settings.queueLimit = queue
        settings.idleTimeout = idleTimeout
        if let concurrency { settings.concurrency = concurrency }
        let server = PredictionServer(predictor: predictor, configuration: settings, trainedIterations: checkpoint.step)
        let task = predictor.loss == .crossEntropy ? "classification" : "regression"
        let summary = "\(predictor.learnerName) \(task), \(predictor.featureCount) feature\(predictor.featureCount == 1 ? "" : "s")"
        do {
            try await server.run { [host] boundPort in
                print("serving \(model) (\(summary)) on http://\(host):\(boundPort)")
                fflush(nil)
            }
        } catch let error as ServeError {
            throw CommandFailure(error.description)
        }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a checkpoint (.mqm) and describe what it holds.",
        discussion: "Validates the whole file; a damaged, foreign or newer-version file fails with a message naming the problem (exit status 1).")

    @ArgumentParser.Argument(help: "The checkpoint.") var file: String

    func run() throws {
        let checkpoint: Checkpoint
        do { checkpoint = try Checkpoint.read(from: file) } catch {
            throw CommandFailure(error.message(about: file))
        }
        let model = checkpoint.makeModel()
        print("\(file): a valid metaq checkpoint")
        print("model:      \(checkpoint.attributes["model"] ?? "network") with \(model.parameterCount) parameters, input shape \(checkpoint.inputShape.map { "\($0)" } ?? "not recorded")")
        print("layers:     \(checkpoint.layers.map(Value.layerText).joined(separator: " -> "))")
        if let learner = checkpoint.learner {
            print("learner:    \(checkpoint.attributes["learner"] ?? learner.configuration.name) (\(learner.loss.rawValue)), \(checkpoint.step) iterations trained")
            print("optimizer:  \(learner.optimizer.kind), step \(learner.optimizer.step), " + learner.optimizer.hyperparameters.sorted { $0.key < $1.key }.map { "\($0.key) \(Float($0.value))" }.joined(separator: ", "))
            if !learner.tensors.isEmpty { print("learned:    \(learner.tensors.count) tensors besides the parameters (\(learner.tensors.keys.sorted().prefix(3).joined(separator: ", "))\(learner.tensors.count > 3 ? ", ..." : ""))") }
        } else {
            print("learner:    none (a model alone)")
        }
        if !checkpoint.generators.isEmpty { print("generators: \(checkpoint.generators.keys.sorted().joined(separator: ", "))") }
    }
}
