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
            Point COMPUTE_TARGETS at it (e.g. {"cams": {"url": "http://127.0.0.1:4000/jobs"}}). Each \
            trigger starts a job (a duplicate Idempotency-Key starts none) that reports running, then \
            success or failed to the trigger's callback URL, logging in as --service with the key \
            read from SIMULATOR_KEY.
            """)

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on.") var port = 4000
    @Option(help: "The service to report states as (needs the update role).") var service = "local"
    @Option(help: "Seconds a job runs.") var runSeconds = 2.0
    @Option(help: "Share of jobs that fail, from 0 to 1.") var failureRate = 0.0

    func validate() throws {
        guard (0...1).contains(failureRate) else { throw ValidationError("--failure-rate must be from 0 to 1") }
        guard runSeconds >= 0 else { throw ValidationError("--run-seconds must not be negative") }
        guard ProcessInfo.processInfo.environment["SIMULATOR_KEY"]?.isEmpty == false else {
            throw ValidationError("set SIMULATOR_KEY to the key of --service \(service)")
        }
    }

    func run() async throws {
        var settings = ComputeSimulator.Settings()
        settings.host = host
        settings.port = port
        settings.service = service
        settings.key = ProcessInfo.processInfo.environment["SIMULATOR_KEY"] ?? ""
        settings.runSeconds = runSeconds
        settings.failureRate = failureRate
        let logger = bootstrapLogging(level: .info)
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let simulator = ComputeSimulator(settings: settings, logger: logger)
        do {
            try await simulator.application(client: client).runService()
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }
}
