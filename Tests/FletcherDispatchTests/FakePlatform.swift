import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A compute platform on loopback for the dispatcher's tests: it records every trigger it gets and
/// answers as the test's script says.
final class FakePlatform: Sendable {
    struct Received: Sendable {
        var triggerId: String
        var idempotencyKey: String?
        var attempt: Int
        var body: [String: any Sendable]
        var at: Date
    }

    /// What to answer: status, headers, JSON body, and how long to wait first.
    struct Answer: Sendable {
        var status: HTTPResponse.Status = .accepted
        var headers: HTTPFields = [:]
        var body: String = #"{"run_id": null}"#
        var delay: Duration = .zero
        /// When set, the answer waits until the test opens this gate.
        var gate: Gate? = nil
    }

    /// Holds answers until the test opens it (then lets every one through, now and later).
    final class Gate: Sendable {
        private let state = Mutex<(open: Bool, waiting: [CheckedContinuation<Void, Never>])>((false, []))

        func open() {
            let waiting = state.withLock { state in
                state.open = true
                defer { state.waiting = [] }
                return state.waiting
            }
            for continuation in waiting { continuation.resume() }
        }

        func wait() async {
            await withCheckedContinuation { continuation in
                let isOpen = state.withLock { state in
                    if !state.open { state.waiting.append(continuation) }
                    return state.open
                }
                if isOpen { continuation.resume() }
            }
        }
    }

    private struct State {
        var received: [Received] = []
        var open = 0
        var mostOpen = 0
    }

    private let state = Mutex(State())
    let script: @Sendable (Received, Int) -> Answer

    /// `script` gets each request and its number (from 1).
    init(script: @escaping @Sendable (Received, Int) -> Answer = { _, _ in Answer() }) {
        self.script = script
    }

    var received: [Received] { state.withLock { $0.received } }
    var mostOpenAtOnce: Int { state.withLock { $0.mostOpen } }
    /// Requests being answered now (waiting out their delay).
    var openNow: Int { state.withLock { $0.open } }

    /// Distinct jobs started: duplicates of an `Idempotency-Key` start none.
    var jobs: Int { Set(received.compactMap(\.idempotencyKey)).count }

    func application() -> some ApplicationProtocol {
        let router = Router()
        router.post("/jobs") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 1 << 20)
            let json = (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView)) as? [String: Any]) ?? [:]
            var sendable: [String: any Sendable] = [:]
            for (key, value) in json { sendable[key] = "\(value)" }
            let received = Received(
                triggerId: json["trigger_id"] as? String ?? "", idempotencyKey: request.headers[.init("Idempotency-Key")!],
                attempt: json["attempt"] as? Int ?? 0, body: sendable, at: Date())
            let number = self.state.withLock { state -> Int in
                state.received.append(received)
                state.open += 1
                state.mostOpen = max(state.mostOpen, state.open)
                return state.received.count
            }
            let answer = self.script(received, number)
            await answer.gate?.wait()
            try? await Task.sleep(for: answer.delay)
            self.state.withLock { $0.open -= 1 }
            var headers = answer.headers
            headers[.contentType] = "application/json"
            return Response(status: answer.status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: answer.body)))
        }
        var logger = Logger(label: "fake-platform")
        logger.logLevel = .critical
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
    }
}
