import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import MetaQEngine
@testable import MetaQServe
import Testing

/// A MAML sinusoid learner after a few meta-steps, as a deployable checkpoint.
private func sineCheckpoint() throws -> Checkpoint {
    var rng = RandomGenerator(seed: 21)
    let net = Sequential.mlp(sizes: [1, 32, 32, 1], using: &rng)
    let maml = MAML(model: net, loss: .meanSquaredError, inner: InnerLoop(steps: 2, learningRate: 0.01), optimizer: Adam(learningRate: 1e-3))
    for _ in 0..<5 { maml.metaStep(try RegressionTasks.sinusoid().sample(tasks: 4, support: 10, query: 10, using: &rng)) }
    return Checkpoint(learner: maml, inputShape: [1], step: 5)
}

/// An HTTP reply: status and JSON body.
private struct Reply: Sendable {
    let status: Int
    let body: Data
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
}

/// Starts a server on a free loopback port, runs `body` against it, and stops it.
private func withServer(_ configuration: ServeConfiguration = ServeConfiguration(), checkpoint: Checkpoint? = nil,
                        _ body: @Sendable (URL, PredictionServer) async throws -> Void) async throws {
    var settings = configuration
    settings.port = 0
    let server = PredictionServer(predictor: try FewShotPredictor(checkpoint: checkpoint ?? sineCheckpoint()), configuration: settings)
    let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.application { continuation.yield($0) }.run() }
        var iterator = ports.makeAsyncIterator()
        let port = try #require(await iterator.next())
        try await body(URL(string: "http://127.0.0.1:\(port)")!, server)
        group.cancelAll()
    }
}

private func send(_ base: URL, _ path: String, method: String = "GET", body: Data? = nil) async throws -> Reply {
    var request = URLRequest(url: base.appendingPathComponent(path))
    request.httpMethod = method
    request.httpBody = body
    if body != nil { request.setValue("application/json", forHTTPHeaderField: "Content-Type") }
    let (data, response) = try await URLSession.shared.data(for: request)
    let status = (response as? HTTPURLResponse)?.statusCode ?? -1
    return Reply(status: status, body: data)
}

private func predictBody(support: [[Float]], y: Any, query: [[Float]], steps: Int? = nil) throws -> Data {
    var object: [String: Any] = ["support": ["x": support, "y": y], "query": ["x": query]]
    if let steps { object["steps"] = steps }
    return try JSONSerialization.data(withJSONObject: object)
}

private let xs: [[Float]] = (0..<10).map { [Float($0) - 4.5] }
private let ys: [Float] = xs.map { 1.5 * sin($0[0] - 0.3) }

@Suite("Prediction server", .serialized)
struct ServerTests {
    @Test func healthReportsTheModel() async throws {
        try await withServer { base, _ in
            let reply = try await send(base, "health")
            #expect(reply.status == 200)
            #expect(reply.json["status"] as? String == "ok")
            #expect(reply.json["learner"] as? String == "maml")
            #expect(reply.json["features"] as? Int == 1)
            #expect(reply.json["default_steps"] as? Int == 2)
            #expect(reply.json["parameters"] as? Int == 1 * 32 + 32 + 32 * 32 + 32 + 32 + 1)
        }
    }

    @Test func predictionsMatchTheEngineAndLeaveTheModelUntouched() async throws {
        let checkpoint = try sineCheckpoint()
        let direct = try FewShotPredictor(checkpoint: checkpoint)
            .predict(support: xs, targets: .values(ys.map { [$0] }), query: [[0], [1]], steps: 5)
        guard case let .values(expected) = direct else { Issue.record("not values"); return }
        try await withServer(checkpoint: checkpoint) { base, server in
            let body = try predictBody(support: xs, y: ys, query: [[0], [1]], steps: 5)
            // Concurrent requests for the same task all get the same answer.
            let replies = try await withThrowingTaskGroup(of: Reply.self) { group in
                for _ in 0..<12 { group.addTask { try await send(base, "v1/predict", method: "POST", body: body) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for reply in replies {
                #expect(reply.status == 200)
                let predictions = try #require(reply.json["predictions"] as? [Double])
                #expect(predictions.map(Float.init) == expected.map { $0[0] })
                #expect(reply.json["steps"] as? Int == 5)
            }
            // The served meta-parameters are the checkpoint's.
            let unadapted = try await send(base, "v1/predict", method: "POST", body: try predictBody(support: xs, y: ys, query: [[0]], steps: 0))
            let forward = server.predictor
            guard case let .values(rows) = try forward.predict(support: xs, targets: .values(ys.map { [$0] }), query: [[0]], steps: 0) else { return }
            #expect((unadapted.json["predictions"] as? [Double])?.map(Float.init) == [rows[0][0]])
            let saved = checkpoint.makeModel()(Tensor(shape: [1, 1], values: [0])).scalar
            #expect(abs(rows[0][0] - saved) < 1e-5)
        }
    }

    /// A request without steps takes the learner's own inner steps, capped by --max-steps:
    /// a checkpoint with many inner steps does not bypass the server's limit.
    @Test func defaultStepsAreCappedByMaxSteps() async throws {
        var settings = ServeConfiguration()
        settings.maxSteps = 1
        let checkpoint = try sineCheckpoint()  // 2 inner steps
        let direct = try FewShotPredictor(checkpoint: checkpoint)
            .predict(support: xs, targets: .values(ys.map { [$0] }), query: [[0]], steps: 1)
        guard case let .values(expected) = direct else { Issue.record("not values"); return }
        try await withServer(settings, checkpoint: checkpoint) { base, _ in
            #expect(try await send(base, "health").json["default_steps"] as? Int == 1)
            let reply = try await send(base, "v1/predict", method: "POST", body: try predictBody(support: xs, y: ys, query: [[0]]))
            #expect(reply.status == 200)
            #expect(reply.json["steps"] as? Int == 1)
            #expect((reply.json["predictions"] as? [Double])?.map(Float.init) == [expected[0][0]])
        }
    }

    /// A connection that sends nothing is closed after the idle timeout.
    @Test func idleConnectionsAreClosed() async throws {
        var settings = ServeConfiguration()
        settings.idleTimeout = 0.3
        try await withServer(settings) { base, _ in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            #expect(fd >= 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(try #require(base.port)).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            #expect(connected == 0)
            // The server closes its end: a read returns 0 well within 10 s.
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            #expect(poll(&descriptor, 1, 10_000) == 1, "the idle connection is still open after 10 s")
            var byte: UInt8 = 0
            #expect(read(fd, &byte, 1) == 0)
        }
    }

    /// A port another server holds gives a message naming it, not NIO's raw bind error.
    @Test func aTakenPortIsNamed() async throws {
        try await withServer { base, _ in
            var settings = ServeConfiguration()
            settings.port = try #require(base.port)
            let second = PredictionServer(predictor: try FewShotPredictor(checkpoint: sineCheckpoint()), configuration: settings)
            await #expect(throws: ServeError("cannot listen on 127.0.0.1:\(settings.port): the port is already in use; stop what serves there or choose another --port")) {
                try await second.run()
            }
        }
    }

    @Test func badRequestsGetClearErrors() async throws {
        var settings = ServeConfiguration()
        settings.maxBodyBytes = 4096
        settings.maxSteps = 10
        try await withServer(settings) { base, _ in
            func expectError(_ body: Data, _ status: Int, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
                let reply = try await send(base, "v1/predict", method: "POST", body: body)
                #expect(reply.status == status, sourceLocation: sourceLocation)
                let message = reply.json["error"] as? String ?? ""
                #expect(message.contains(text), "\(message)", sourceLocation: sourceLocation)
            }
            try await expectError(Data("{\"support\": [".utf8), 400, "not valid JSON")
            // Valid JSON whose numbers do not fit: named precisely, not "not valid JSON".
            try await expectError(Data(#"{"support": {"x": [[1]], "y": [1]}, "query": {"x": [[1e39]]}}"#.utf8), 400,
                                  "query.x[0][0] is 1e+39, beyond the largest 32-bit float")
            try await expectError(Data(#"{"support": {"x": [[1]], "y": [1]}, "query": {"x": [[1]]}, "steps": 1.5}"#.utf8), 400,
                                  "steps must be a whole number from 0 to 10, got 1.5")
            try await expectError(Data(#"{"support": {"x": [[1]], "y": [1]}, "query": {"x": [[1]]}, "steps": 1e30}"#.utf8), 400,
                                  "steps must be a whole number from 0 to 10, got 1e+30")
            try await expectError(Data("{\"query\": {\"x\": [[1]]}}".utf8), 400, "missing field 'support'")
            try await expectError(Data(#"{"support": {"x": [["a"]], "y": [1]}, "query": {"x": [[1]]}}"#.utf8), 400, "support.x[0][0]")
            try await expectError(try predictBody(support: [[1, 2]], y: [1], query: [[1]]), 422, "has 2 features; the model takes 1")
            try await expectError(try predictBody(support: [[1]], y: [1, 2], query: [[1]]), 422, "1 support examples but 2 targets")
            try await expectError(try predictBody(support: xs, y: ys, query: [[1]], steps: 11), 400, "steps must be from 0 to 10")
            try await expectError(try predictBody(support: [], y: [Float](), query: [[1]]), 422, "support set is empty")
            let huge = try predictBody(support: Array(repeating: [1], count: 2000), y: Array(repeating: 1, count: 2000), query: [[1]])
            try await expectError(huge, 413, "exceeds 4096 bytes")
            // The server is still healthy after all that.
            #expect(try await send(base, "health").status == 200)
        }
    }

    @Test func classifiersReturnLabelsAndProbabilities() async throws {
        var rng = RandomGenerator(seed: 22)
        let protonet = PrototypicalNetwork(model: Sequential.mlp(sizes: [2, 16, 8], using: &rng), optimizer: Adam())
        let checkpoint = Checkpoint(learner: protonet, inputShape: [2])
        try await withServer(checkpoint: checkpoint) { base, _ in
            let support: [[Float]] = [[0, 0], [0, 0.1], [5, 5], [5, 5.1]]
            let ok = try await send(base, "v1/predict", method: "POST", body: try predictBody(support: support, y: [0, 0, 1, 1], query: [[0, 0.05], [5, 5.05]]))
            #expect(ok.status == 200)
            #expect(ok.json["predictions"] as? [Int] == [0, 1])
            let probabilities = try #require(ok.json["probabilities"] as? [[Double]])
            #expect(probabilities.count == 2 && probabilities.allSatisfy { abs($0.reduce(0, +) - 1) < 1e-4 })
            let fractional = try await send(base, "v1/predict", method: "POST", body: try predictBody(support: support, y: [0, 0.5, 1, 1], query: [[0, 0]]))
            #expect(fractional.status == 422)
            #expect((fractional.json["error"] as? String)?.contains("integer class labels") == true)
        }
    }

    @Test func admissionQueuesThenRefuses() async {
        let admission = Admission(slots: 1, queueLimit: 1)
        #expect(await admission.enter())
        let waiter = Task { await admission.enter() }
        while await admission.load.waiting == 0 { await Task.yield() }
        #expect(await admission.enter() == false, "the queue is full")
        await admission.leave()
        #expect(await waiter.value, "the waiting request got the freed slot")
        await admission.leave()
        #expect(await admission.enter())
    }
}
