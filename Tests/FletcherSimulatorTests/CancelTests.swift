import FletcherSimulator
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// `POST /cancel`: what it stops, how it answers, what it counts.
@Suite("Compute simulator: cancel")
struct CancelTests {
    typealias Report = FakeFletcher.Report
    typealias Harness = SimulatorHarness

    static func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])
    }

    @Test func cancellingARunningJobStopsItBeforeItsFinalReport() async throws {
        let fletcher = FakeFletcher()
        // Long enough that the cancel comes first; the job would report success after it.
        try await Harness.run(Harness.settings(runSeconds: 30), fletcher: fletcher) { simulator, client, callback in
            try await Harness.sendTrigger("t1", callback: callback, to: client)
            try await Harness.eventually("the running report") { simulator.stats.reportsAccepted == 1 }
            let response = try await Harness.cancel("t1", on: client)
            #expect(response.status == .ok)
            #expect(try Self.json(response)["cancelled"] as? Bool == true)
            await simulator.jobsSettled()
            #expect(fletcher.reports == [Report(state: "running", triggerId: "t1")])
            let stats = try await Harness.stats(client)
            #expect(stats.jobsCancelled == 1)
            #expect(stats.cancelsReceived == 1)
            #expect(stats.jobsSucceeded == 0)
        }
    }

    @Test func cancellingAHangingJobAnswers200() async throws {
        let fletcher = FakeFletcher()
        try await Harness.run(Harness.settings(hangRate: 1), fletcher: fletcher) { simulator, client, callback in
            try await Harness.sendTrigger("t1", callback: callback, to: client)
            try await Harness.eventually("the job to hang") { simulator.stats.jobsHung == 1 }
            let response = try await Harness.cancel("t1", reason: "timeout", on: client)
            #expect(response.status == .ok)
            await simulator.jobsSettled()
            #expect(fletcher.reports == [Report(state: "running", triggerId: "t1")])
            let stats = try await Harness.stats(client)
            #expect(stats.jobsCancelled == 1)
            #expect(stats.jobsHung == 1)
        }
    }

    @Test func aRepeatedCancelAnswers200AndCountsOnce() async throws {
        let fletcher = FakeFletcher()
        var settings = Harness.settings()
        // The job is still waiting to report running when both cancels come: it reports nothing.
        settings.runningAfter = .seconds(30)
        try await Harness.run(settings, fletcher: fletcher) { simulator, client, callback in
            try await Harness.sendTrigger("t1", callback: callback, to: client)
            #expect(try await Harness.cancel("t1", on: client).status == .ok)
            let again = try await Harness.cancel("t1", on: client)
            #expect(again.status == .ok)
            #expect(try Self.json(again)["cancelled"] as? Bool == true)
            await simulator.jobsSettled()
            #expect(fletcher.reports.isEmpty)
            let stats = try await Harness.stats(client)
            #expect(stats.cancelsReceived == 2)
            #expect(stats.jobsCancelled == 1)
            #expect(stats.cancelsTooLate == 0 && stats.cancelsUnknown == 0)
        }
    }

    @Test func cancellingAnUnknownTriggerAnswers404() async throws {
        try await Harness.run(Harness.settings()) { _, client, _ in
            let response = try await Harness.cancel("nobody", on: client)
            #expect(response.status == .notFound)
            #expect(response.headers[.contentType] == "application/problem+json")
            #expect(try Self.json(response)["detail"] as? String == "no job has trigger_id nobody")
            let stats = try await Harness.stats(client)
            #expect(stats.cancelsUnknown == 1)
            #expect(stats.cancelsReceived == 1)
            #expect(stats.jobsCancelled == 0)
        }
    }

    @Test func cancellingAFinishedJobAnswers409() async throws {
        try await Harness.run(Harness.settings()) { simulator, client, callback in
            try await Harness.sendTrigger("t1", callback: callback, to: client)
            try await Harness.eventually("the job to succeed") { simulator.stats.jobsSucceeded == 1 }
            let response = try await Harness.cancel("t1", on: client)
            #expect(response.status == .conflict)
            let stats = try await Harness.stats(client)
            #expect(stats.cancelsTooLate == 1)
            #expect(stats.jobsCancelled == 0)
        }
    }

    @Test(arguments: ["not json", #"{"reason": "clear"}"#, #"{"trigger_id": 7}"#, "[]"])
    func aCancelWithoutATriggerIdGets400(body: String) async throws {
        try await Harness.run(Harness.settings()) { _, client, _ in
            let response = try await client.execute(uri: "/cancel", method: .post, body: ByteBuffer(string: body))
            #expect(response.status == .badRequest)
            #expect(try Self.json(response)["status"] as? Int == 400)
            let stats = try await Harness.stats(client)
            #expect(stats.cancelsReceived == 1)
            #expect(stats.cancelsUnknown == 0)
        }
    }
}
