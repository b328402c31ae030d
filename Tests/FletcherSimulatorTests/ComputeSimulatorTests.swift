import AsyncHTTPClient
import FletcherSimulator
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@Suite("Compute simulator")
struct ComputeSimulatorTests {
    static var logger: Logger {
        var logger = Logger(label: "simulator-test")
        logger.logLevel = .critical
        return logger
    }

    /// A trigger as Fletcher sends it; the callback goes nowhere (the job's reports fail quietly).
    static func trigger(_ triggerId: String) -> ByteBuffer {
        ByteBuffer(
            string: #"{"trigger_id": "\#(triggerId)", "data_product_id": "p1", "name": "sales", "callback_url": "http://127.0.0.1:9/api/data_product/x"}"#
        )
    }

    static func runId(_ response: TestResponse) throws -> String {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
        return try #require(json["run_id"] as? String)
    }

    @Test func aRepeatedIdempotencyKeyStartsNoSecondJob() async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        var settings = ComputeSimulator.Settings()
        settings.runSeconds = 3600
        let simulator = ComputeSimulator(settings: settings, logger: Self.logger)
        do {
            try await simulator.application(client: client).test(.router) { client in
                let first = try await client.execute(
                    uri: "/jobs", method: .post, headers: [.init("Idempotency-Key")!: "k1"], body: Self.trigger("t1"))
                #expect(first.status == .accepted)
                let again = try await client.execute(
                    uri: "/jobs", method: .post, headers: [.init("Idempotency-Key")!: "k1"], body: Self.trigger("t1"))
                #expect(again.status == .accepted)
                #expect(try Self.runId(again) == Self.runId(first))
                let other = try await client.execute(
                    uri: "/jobs", method: .post, headers: [.init("Idempotency-Key")!: "k2"], body: Self.trigger("t2"))
                #expect(try Self.runId(other) != Self.runId(first))
                #expect(simulator.stats.triggersReceived == 3)
                #expect(simulator.stats.jobsStarted == 2)
            }
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    @Test func aBodyThatIsNoTriggerGets400() async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let simulator = ComputeSimulator(settings: .init(), logger: Self.logger)
        do {
            try await simulator.application(client: client).test(.router) { client in
                let response = try await client.execute(uri: "/jobs", method: .post, body: ByteBuffer(string: #"{"name": "x"}"#))
                #expect(response.status == .badRequest)
                #expect(simulator.stats.triggersReceived == 1)
                #expect(simulator.stats.jobsStarted == 0)
            }
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }
}
