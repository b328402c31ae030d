import ArgumentParser
import AsyncHTTPClient
import FletcherSimulator
import Foundation
import Hummingbird
import Logging

struct SimulateCompute: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate-compute",
        abstract: "Run a stand-in compute platform that accepts Fletcher's triggers and reports back.",
        discussion: """
            Point COMPUTE_TARGETS at it:
              {"cams": {"url": "http://127.0.0.1:4000/jobs",
                        "cancel_url": "http://127.0.0.1:4000/cancel"}}
            Each trigger (POST /jobs) starts a job; a duplicate Idempotency-Key starts none. The job \
            reports running after about 0.1 s, then, after --run-seconds, success or failed to the \
            trigger's callback URL, logging in as --service with the key read from SIMULATOR_KEY. Each \
            report names its trigger_id; a report Fletcher refuses with 409 (no longer the product's \
            current try) is counted as stale, not retried.

            Outcomes are drawn once per job: --fail-rate of the jobs fail, --hang-rate of them report \
            running and then nothing more (until cancelled; pair it with a max_running_s timeout), the \
            rest succeed. --fail-rate 0.3 --hang-rate 0.1 fails 30 % and hangs 10 %.

            POST /cancel with {"trigger_id": …} stops a running or hanging job (200 {"cancelled": true}, \
            also when repeated); 409 when the job already finished, 404 for an unknown trigger_id, 400 \
            for a body without trigger_id.

            GET /stats answers the counters as JSON (triggers_received, jobs_started, jobs_succeeded, \
            jobs_failed, jobs_hung, cancels_received, jobs_cancelled, cancels_unknown, cancels_too_late, \
            reports_accepted, reports_stale, reports_failed); they are logged again at shutdown. A job \
            counts as succeeded or failed only once Fletcher accepted its final report.
            """)

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on.") var port = 4000
    @Option(help: "The service to report states as (needs the update role).") var service = "local"
    @Option(help: "Seconds a job runs after reporting running.") var runSeconds = 2.0
    @Option(name: [.customLong("fail-rate"), .customLong("failure-rate")], help: "Share of jobs that fail, from 0 to 1.")
    var failRate = 0.0
    @Option(help: "Share of jobs that report running and then nothing more, from 0 to 1 (--fail-rate plus --hang-rate at most 1).")
    var hangRate = 0.0

    func validate() throws {
        do {
            try settings.validate()
        } catch {
            throw ValidationError(error.description)
        }
        guard ProcessInfo.processInfo.environment["SIMULATOR_KEY"]?.isEmpty == false else {
            throw ValidationError("set SIMULATOR_KEY to the key of --service \(service)")
        }
    }

    var settings: ComputeSimulator.Settings {
        var settings = ComputeSimulator.Settings()
        settings.host = host
        settings.port = port
        settings.service = service
        settings.key = ProcessInfo.processInfo.environment["SIMULATOR_KEY"] ?? ""
        settings.runSeconds = runSeconds
        settings.failRate = failRate
        settings.hangRate = hangRate
        return settings
    }

    func run() async throws {
        let logger = bootstrapLogging(level: .info)
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let simulator = ComputeSimulator(settings: settings, logger: logger)
        do {
            try await simulator.application(client: client).runService()
        } catch {
            simulator.logStats()
            try? await client.shutdown()
            throw error
        }
        simulator.logStats()
        try await client.shutdown()
    }
}
