import AsyncHTTPClient
import FletcherSimulator
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

/// Runs simulators against a `FakeFletcher` and drives them through their routes.
enum SimulatorHarness {
    static var logger: Logger {
        var logger = Logger(label: "simulator-test")
        logger.logLevel = .critical
        return logger
    }

    /// Settings for fast tests: the job reports `running` at once and pauses 1 ms between report attempts.
    static func settings(runSeconds: Double = 0, failRate: Double = 0, hangRate: Double = 0) -> ComputeSimulator.Settings {
        var settings = ComputeSimulator.Settings()
        settings.runSeconds = runSeconds
        settings.failRate = failRate
        settings.hangRate = hangRate
        settings.runningAfter = .zero
        settings.reportBackoff = .milliseconds(1)
        return settings
    }

    /// Runs a simulator with `settings` whose jobs report to `fletcher`; `body` gets the simulator,
    /// a client for its routes and the callback URL to put in triggers.
    static func run(
        _ settings: ComputeSimulator.Settings, fletcher: FakeFletcher = FakeFletcher(),
        _ body: @escaping @Sendable (ComputeSimulator, any TestClientProtocol, String) async throws -> Void
    ) async throws {
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let simulator = ComputeSimulator(settings: settings, logger: logger)
        do {
            try await fletcher.run { callback in
                try await simulator.application(client: http).test(.router) { client in
                    try await body(simulator, client, callback)
                }
            }
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    /// A trigger as Fletcher sends it, with its try number.
    static func trigger(_ triggerId: String, callback: String, try number: Int = 1) -> ByteBuffer {
        let body: [String: Any] = [
            "trigger_id": triggerId, "dataset_id": "d1", "data_product_id": "p1", "compute": "cams", "name": "sales",
            "version": "1", "passthrough": NSNull(), "attempt": 1, "try": number, "callback_url": callback,
        ]
        return ByteBuffer(bytes: try! JSONSerialization.data(withJSONObject: body))
    }

    @discardableResult
    static func sendTrigger(_ triggerId: String, callback: String, to client: any TestClientProtocol) async throws -> TestResponse {
        let response = try await client.execute(
            uri: "/jobs", method: .post, headers: [.init("Idempotency-Key")!: triggerId], body: trigger(triggerId, callback: callback))
        #expect(response.status == .accepted)
        return response
    }

    /// A cancel as Fletcher sends it.
    static func cancel(_ triggerId: String, reason: String = "clear", on client: any TestClientProtocol) async throws -> TestResponse {
        let body: [String: Any] = [
            "trigger_id": triggerId, "dataset_id": "d1", "data_product_id": "p1", "run_id": NSNull(), "try": 1, "reason": reason,
        ]
        return try await client.execute(
            uri: "/cancel", method: .post, headers: [.init("Idempotency-Key")!: triggerId],
            body: ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
    }

    /// The counters as `GET /stats` answers them.
    static func stats(_ client: any TestClientProtocol) async throws -> SimulatorStats {
        let response = try await client.execute(uri: "/stats", method: .get)
        #expect(response.status == .ok)
        return try JSONDecoder().decode(SimulatorStats.self, from: Data(response.body.readableBytesView))
    }

    /// Polls `condition` until it holds; records an issue and throws after `timeout`.
    static func eventually(
        _ what: String, timeout: Duration = .seconds(60), _ condition: @Sendable () async throws -> Bool
    ) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while try await !condition() {
            guard clock.now < deadline else {
                Issue.record("timed out waiting for \(what)")
                throw TimedOut()
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    struct TimedOut: Error {}
}
