import Dispatch
import Foundation
import Hummingbird
import MetaQEngine
import NIOCore

/// Limits and address of a ``PredictionServer``.
public struct ServeConfiguration: Sendable {
    /// The address to listen on; loopback by default, so the server is not reachable from
    /// other machines unless asked.
    public var host = "127.0.0.1"
    /// The port; 0 picks a free one (see `onServerRunning`).
    public var port = 8080
    /// The largest request body accepted, in bytes (413 beyond it).
    public var maxBodyBytes = 1 << 20
    /// The most adaptation steps a request may ask for.
    public var maxSteps = 100
    /// The most support examples, and the most query examples, in one request.
    public var maxExamples = 1000
    /// Requests adapting at the same time; more wait in line.
    public var concurrency = max(ProcessInfo.processInfo.activeProcessorCount, 1)
    /// Requests that may wait for a slot; beyond this the server answers 503.
    public var queueLimit = 64
    /// Seconds a connection may stay open without a request in progress before the server
    /// closes it, so idle clients cannot hold connections for ever.
    public var idleTimeout = 30.0

    public init() {}
}

/// Why the server could not start, as a message for the user.
public struct ServeError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// An HTTP server with a JSON API that adapts a meta-learned model to each request's support
/// set and predicts its query inputs.
///
/// - `GET /health`: `{"status": "ok", "learner": "maml", "task": "regression", ...}`.
/// - `POST /v1/predict`: a ``PredictRequest``; replies with a ``PredictResponse``, or a 4xx
///   with `{"error": "..."}` for a request that is malformed (400), too large (413) or does
///   not fit the model (422); 503 when too many requests are waiting.
///
/// Adaptation never changes the served meta-model, and at most `concurrency` requests adapt
/// at once, each on its own thread outside the server's event loops.
///
/// ```swift
/// let predictor = try FewShotPredictor(checkpoint: try Checkpoint.read(from: "sine.mqm"))
/// var settings = ServeConfiguration()
/// settings.port = 8080
/// try await PredictionServer(predictor: predictor, configuration: settings).run()
/// ```
public struct PredictionServer: Sendable {
    public let predictor: FewShotPredictor
    public let configuration: ServeConfiguration
    /// The meta-iterations the served model was trained for (reported by `/health`).
    public let trainedIterations: Int
    private let admission: Admission

    public init(predictor: FewShotPredictor, configuration: ServeConfiguration = ServeConfiguration(), trainedIterations: Int = 0) {
        self.predictor = predictor
        self.configuration = configuration
        self.trainedIterations = trainedIterations
        admission = Admission(slots: max(configuration.concurrency, 1), queueLimit: max(configuration.queueLimit, 0))
    }

    /// The routes of the API.
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/health") { _, _ in
            var reply = health
            (reply.running, reply.waiting) = await admission.load
            return json(.ok, reply)
        }
        router.post("/v1/predict") { request, _ in
            await predict(request)
        }
        return router
    }

    /// The application, ready to run; `onServerRunning` receives the bound port.
    public func application(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        Application(
            router: router(),
            server: .http1(configuration: .init(idleTimeout: .nanoseconds(Int64(configuration.idleTimeout * 1e9)))),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "metaq"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? configuration.port) })
    }

    /// Serves until the process receives SIGINT or SIGTERM. An address that cannot be
    /// listened on (the port taken, say) is a ``ServeError`` naming it.
    public func run(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        do {
            try await application(onServerRunning: onServerRunning).runService()
        } catch let error as IOError where [EADDRINUSE, EACCES, EADDRNOTAVAIL].contains(error.errnoCode) {
            let address = "\(configuration.host):\(configuration.port)"
            switch error.errnoCode {
            case EADDRINUSE:
                throw ServeError("cannot listen on \(address): the port is already in use; stop what serves there or choose another --port")
            case EACCES:
                throw ServeError("cannot listen on \(address): permission denied (ports below 1024 need privileges); choose another --port")
            default:
                throw ServeError("cannot listen on \(address): this machine has no such address; choose another --host")
            }
        }
    }

    var health: HealthResponse {
        HealthResponse(learner: predictor.learnerName, task: predictor.loss == .crossEntropy ? "classification" : "regression",
                       features: predictor.featureCount, outputs: predictor.outputCount, parameters: predictor.parameterCount,
                       defaultSteps: defaultSteps,
                       maxSteps: configuration.maxSteps, maxExamples: configuration.maxExamples, trainedIterations: trainedIterations)
    }

    /// The adaptation steps of a request that gives none: the learner's own, at most
    /// `maxSteps` (a checkpoint's inner steps do not bypass the server's limit).
    var defaultSteps: Int { min(predictor.defaultSteps, configuration.maxSteps) }

    /// Handles `POST /v1/predict`, turning every failure into a reply with a message.
    func predict(_ request: Request) async -> Response {
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > configuration.maxBodyBytes {
            return tooLarge
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: configuration.maxBodyBytes)
        } catch let error as HTTPResponseError where error.status == .contentTooLarge {
            return tooLarge
        } catch {
            return failure(.badRequest, "cannot read the request body")
        }
        let parsed: PredictRequest
        let data = Data(buffer: body)
        do {
            parsed = try JSONDecoder().decode(PredictRequest.self, from: data)
        } catch let error as DecodingError {
            if case let .dataCorrupted(context) = error, context.codingPath.isEmpty,
               let problem = PredictRequest.numberProblem(in: data, maxSteps: configuration.maxSteps) {
                return failure(.badRequest, problem)
            }
            return failure(.badRequest, error.briefDescription)
        } catch {
            return failure(.badRequest, "the body is not valid JSON")
        }
        let limits = configuration
        if let steps = parsed.steps, !(0...limits.maxSteps).contains(steps) {
            return failure(.badRequest, "steps must be from 0 to \(limits.maxSteps), got \(steps)")
        }
        let steps = parsed.steps ?? defaultSteps
        for (name, count) in [("support.x", parsed.support.x.count), ("query.x", parsed.query.x.count)] where count > limits.maxExamples {
            return failure(.contentTooLarge, "\(name) has \(count) examples; at most \(limits.maxExamples) are accepted")
        }
        let targets: SupportTargets
        do { targets = try parsed.support.y.supportTargets(for: predictor.loss) } catch {
            return failure(.unprocessableContent, error.description)
        }
        guard await admission.enter() else {
            return failure(.serviceUnavailable, "too many requests are waiting; try again shortly")
        }
        let result = await runOffLoop { [predictor] in
            Result { () throws(PredictionError) in
                try predictor.predict(support: parsed.support.x, targets: targets, query: parsed.query.x, steps: steps)
            }
        }
        await admission.leave()
        switch result {
        case let .success(predictions):
            return json(.ok, PredictResponse(predictions: predictions, steps: predictor.adaptsBySteps ? steps : 0))
        case let .failure(error):
            return failure(.unprocessableContent, error.description)
        }
    }

    private var tooLarge: Response {
        failure(.contentTooLarge, "the request body exceeds \(configuration.maxBodyBytes) bytes")
    }
}

/// Runs CPU-bound work on a Dispatch thread, so that adaptation does not occupy the threads
/// of Swift's cooperative pool or the server's event loops.
private func runOffLoop<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        DispatchQueue.global(qos: .userInitiated).async { continuation.resume(returning: work()) }
    }
}

private func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let data = (try? encoder.encode(value)) ?? Data(#"{"error":"cannot encode the reply"}"#.utf8)
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data + [0x0A])))
}

private func failure(_ status: HTTPResponse.Status, _ message: String) -> Response {
    json(status, ErrorResponse(error: message))
}

/// Admits at most `slots` requests at a time, with at most `queueLimit` more waiting in
/// arrival order.
actor Admission {
    private let slots: Int
    private let queueLimit: Int
    private var running = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(slots: Int, queueLimit: Int) {
        self.slots = slots
        self.queueLimit = queueLimit
    }

    /// Takes a slot, waiting for one if needed; false when the queue is full.
    func enter() async -> Bool {
        if running < slots {
            running += 1
            return true
        }
        guard waiting.count < queueLimit else { return false }
        await withCheckedContinuation { waiting.append($0) }
        return true
    }

    /// Requests adapting now, and requests waiting for a slot.
    var load: (running: Int, waiting: Int) { (running, waiting.count) }

    /// Gives the slot to the next waiting request, or frees it.
    func leave() {
        if waiting.isEmpty {
            running -= 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}
