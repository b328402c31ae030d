import FletcherSimulator
import Hummingbird
import Testing

/// How jobs end, how their reports name their try, and how each report is counted.
@Suite("Compute simulator: outcomes and reports")
struct JobOutcomeTests {
    typealias Report = FakeFletcher.Report
    typealias Harness = SimulatorHarness

    @Test(arguments: [(0.0, "success"), (1.0, "failed")])
    func aJobReportsRunningThenItsOutcomeNamingItsTrigger(failRate: Double, outcome: String) async throws {
        let fletcher = FakeFletcher()
        try await Harness.run(Harness.settings(failRate: failRate), fletcher: fletcher) { simulator, client, callback in
            try await Harness.sendTrigger("t1", callback: callback, to: client)
            try await Harness.eventually("the final report to be counted") { simulator.stats.reportsAccepted == 2 }
            await simulator.jobsSettled()
            #expect(fletcher.reports == [Report(state: "running", triggerId: "t1"), Report(state: outcome, triggerId: "t1")])
            let stats = try await Harness.stats(client)
            #expect(stats.jobsStarted == 1)
            #expect(stats.jobsSucceeded == (outcome == "success" ? 1 : 0))
            #expect(stats.jobsFailed == (outcome == "failed" ? 1 : 0))
            #expect(stats.jobsHung == 0)
        }
    }

    @Test func aHangingJobReportsRunningAndThenNothing() async throws {
        let fletcher = FakeFletcher()
        try await Harness.run(Harness.settings(hangRate: 1), fletcher: fletcher) { simulator, client, callback in
            try await Harness.sendTrigger("t1", callback: callback, to: client)
            try await Harness.eventually("the job to hang") { simulator.stats.jobsHung == 1 }
            await simulator.jobsSettled()
            #expect(fletcher.reports == [Report(state: "running", triggerId: "t1")])
            let stats = try await Harness.stats(client)
            #expect(stats.jobsStarted == 1)
            #expect(stats.reportsAccepted == 1)
            #expect(stats.jobsSucceeded == 0 && stats.jobsFailed == 0)
        }
    }

    @Test func aReportRefusedAsStaleIsCountedAndNotRetried() async throws {
        let fletcher = FakeFletcher { report, _ in report.state == "success" ? .conflict : .ok }
        try await Harness.run(Harness.settings(), fletcher: fletcher) { simulator, client, callback in
            try await Harness.sendTrigger("t1", callback: callback, to: client)
            try await Harness.eventually("the stale report to be counted") { simulator.stats.reportsStale == 1 }
            await simulator.jobsSettled()
            #expect(fletcher.reports.filter { $0.state == "success" }.count == 1)
            let stats = try await Harness.stats(client)
            #expect(stats.jobsSucceeded == 0)
            #expect(stats.reportsAccepted == 1)
            #expect(stats.reportsFailed == 0)
        }
    }

    @Test func aReportAnswered503IsSentAgainAndCountedOnce() async throws {
        let fletcher = FakeFletcher { _, earlier in earlier == 0 ? .serviceUnavailable : .ok }
        try await Harness.run(Harness.settings(), fletcher: fletcher) { simulator, client, callback in
            try await Harness.sendTrigger("t1", callback: callback, to: client)
            try await Harness.eventually("the success to be counted") { simulator.stats.jobsSucceeded == 1 }
            await simulator.jobsSettled()
            #expect(fletcher.reports.map(\.state) == ["running", "running", "success", "success"])
            let stats = try await Harness.stats(client)
            #expect(stats.reportsAccepted == 2)
            #expect(stats.reportsFailed == 0)
        }
    }

    @Test func aReportThatNeverGetsThroughCountsAsFailedNotAsAnOutcome() async throws {
        let fletcher = FakeFletcher { _, _ in .serviceUnavailable }
        var settings = Harness.settings()
        settings.reportAttempts = 3
        try await Harness.run(settings, fletcher: fletcher) { simulator, client, callback in
            try await Harness.sendTrigger("t1", callback: callback, to: client)
            try await Harness.eventually("both reports to give up") { simulator.stats.reportsFailed == 2 }
            await simulator.jobsSettled()
            #expect(fletcher.reports.map(\.state) == ["running", "running", "running", "success", "success", "success"])
            let stats = try await Harness.stats(client)
            #expect(stats.jobsSucceeded == 0)
            #expect(stats.reportsAccepted == 0)
        }
    }

    @Test func aReportRefusedWith400IsNotSentAgain() async throws {
        let fletcher = FakeFletcher { _, _ in .badRequest }
        try await Harness.run(Harness.settings(), fletcher: fletcher) { simulator, client, callback in
            try await Harness.sendTrigger("t1", callback: callback, to: client)
            try await Harness.eventually("both reports to be refused") { simulator.stats.reportsFailed == 2 }
            await simulator.jobsSettled()
            #expect(fletcher.reports.map(\.state) == ["running", "success"])
        }
    }
}
