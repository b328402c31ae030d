import FletcherTestSupport
import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A compute platform on loopback for the dispatcher's tests: it records every trigger it gets and
/// answers as the test's script says.
final class FakePlatform: Sendable {
    struct Received: Sendable {
        /// `/jobs` for a trigger, `/cancel` for a cancel.
        var path: String = "/jobs"
        var triggerId: String
        var idempotencyKey: String?
        var attempt: Int
        var body: [String: any Sendable]
        var at: Date
        /// The request's headers and body as sent.
        var headers: HTTPFields = [:]
        var rawBody: [UInt8] = []
    }

    /// What to answer: status, headers, JSON body, and what to wait for first: a gate the test
    /// opens (a platform that answers only when the test says so), then a delay.
    struct Answer: Sendable {
        var status: HTTPResponse.Status = .accepted
        var headers: HTTPFields = [:]
        var body: String = #"{"run_id": null}"#
        var heldUntil: Gate? = nil
        var delay: Duration = .zero
    }

    private struct State {
        var received: [Received] = []
        var open = 0
        var mostOpen = 0
    }

    private let state = Mutex(State())
    let script: @Sendable (Received, Int) -> Answer
    let paths: [String]

    /// `script` gets each request and its number (from 1); `paths` are the POST routes served.
    init(paths: [String] = ["/jobs", "/cancel"], script: @escaping @Sendable (Received, Int) -> Answer = { _, _ in Answer() }) {
        self.paths = paths
        self.script = script
    }

    var received: [Received] { state.withLock { $0.received } }
    var mostOpenAtOnce: Int { state.withLock { $0.mostOpen } }
    /// Requests being answered now (waiting out their delay).
    var openNow: Int { state.withLock { $0.open } }

    /// Distinct jobs started: duplicates of an `Idempotency-Key` start none.
    var jobs: Int { Set(received.filter { $0.path == "/jobs" }.compactMap(\.idempotencyKey)).count }

    /// The cancels received, in order.
    var cancels: [Received] { received.filter { $0.path == "/cancel" } }

    func application() -> some ApplicationProtocol {
        let router = Router()
        for path in paths {
            router.post(RouterPath(path)) { request, _ -> Response in
                let buffer = try await request.body.collect(upTo: 1 << 20)
                let json = (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any]) ?? [:]
                var sendable: [String: any Sendable] = [:]
                for (key, value) in json { sendable[key] = "\(value)" }
                let received = Received(
                    path: path, triggerId: json["trigger_id"] as? String ?? "", idempotencyKey: request.headers[.init("Idempotency-Key")!],
                    attempt: json["attempt"] as? Int ?? 0, body: sendable, at: Date(), headers: request.headers,
                    rawBody: Array(buffer.readableBytesView))
                let number = self.state.withLock { state -> Int in
                    state.received.append(received)
                    state.open += 1
                    state.mostOpen = max(state.mostOpen, state.open)
                    return state.received.count
                }
                let answer = self.script(received, number)
                try? await answer.heldUntil?.wait()
                try? await Task.sleep(for: answer.delay)
                self.state.withLock { $0.open -= 1 }
                var headers = answer.headers
                headers[.contentType] = "application/json"
                return Response(status: answer.status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: answer.body)))
            }
        }
        var logger = Logger(label: "fake-platform")
        logger.logLevel = .critical
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
    }
}
