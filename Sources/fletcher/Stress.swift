import ArgumentParser
import FletcherStress
import Foundation

struct Stress: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay a realistic workload against a running Fletcher server and report throughput and latency.",
        discussion: """
            Submits --plans plans shaped like the original Fletcher's load-test plan (11 data products, \
            16 dependencies), then drives them to completion the way compute platforms do, restarting \
            each finished plan, with --concurrency requests in flight. Scenarios: mixed (4 state \
            updates to 1 visit of the index page, the search fragment and a plan page), updates, \
            reads (GET /api/plan/{id}), and dispatch (this tool is the compute platform: start the \
            server with COMPUTE_TARGETS='{"cams": {"url": "http://127.0.0.1:9100/jobs"}}'; reports \
            trigger latency). With --webhook-port, this tool is also a webhook endpoint: start the server \
            with WEBHOOKS='[{"url": "http://127.0.0.1:9200/hooks", "events": ["*"], "secret": "whsec_…"}]' \
            to have the webhook latency (a product's success sent to its data_product.succeeded \
            received) reported. --rate paces the requests. The service needs the publish and update roles; its key comes from \
            --key or FLETCHER_STRESS_KEY.
            """)

    @Option(help: "The server's address.") var url = "http://127.0.0.1:3000"
    @Option(help: "The service to log in as.") var service = "local"
    @Option(help: "The service's key (default: FLETCHER_STRESS_KEY).") var key: String?
    @Option(help: "Requests in flight at once.") var concurrency = 16
    @Option(help: "Seconds to run (after the set-up).") var duration: Double?
    @Option(help: "Stop after this many requests instead.") var requests: Int?
    @Option(help: "Plans to submit and drive.") var plans = 100
    @Option(help: "mixed, updates, reads, products or dispatch.") var scenario = "mixed"
    @Option(help: "Port the stand-in compute platform listens on (dispatch scenario).") var platformPort = 9100
    @Option(help: "Port a webhook receiver listens on (POST /hooks); reports the webhook latency.") var webhookPort: Int?
    @Option(help: "Requests per second, all workers together (default: as fast as answers come).") var rate: Double?
    @Option(help: "Also write the report as JSON to this file.") var json: String?
    @Option(help: "Write every state update's and clear's outcome to this file, one JSON line each (status, times, Retry-After).")
    var logWrites: String?
    @Flag(help: "Print no progress lines.") var quiet = false

    func validate() throws {
        guard let url = URL(string: url), ["http", "https"].contains(url.scheme ?? "") else {
            throw ValidationError("--url must be an http(s) URL")
        }
        guard Scenario(rawValue: scenario) != nil else {
            throw ValidationError("--scenario must be one of \(Scenario.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard concurrency >= 1, concurrency <= 10_000 else { throw ValidationError("--concurrency must be from 1 to 10000") }
        guard plans >= 1 else { throw ValidationError("--plans must be at least 1") }
        if let duration { guard duration > 0 else { throw ValidationError("--duration must be positive") } }
        if let requests { guard requests > 0 else { throw ValidationError("--requests must be positive") } }
        if let rate { guard rate > 0, rate <= 1_000_000 else { throw ValidationError("--rate must be from above 0 to 1000000 requests/s") } }
        if let webhookPort {
            guard (1...65535).contains(webhookPort), webhookPort != platformPort || Scenario(rawValue: scenario) != .dispatch else {
                throw ValidationError("--webhook-port must be a free port from 1 to 65535, not the platform's")
            }
        }
        guard (key ?? ProcessInfo.processInfo.environment["FLETCHER_STRESS_KEY"])?.isEmpty == false else {
            throw ValidationError("give the key of --service \(service) with --key or FLETCHER_STRESS_KEY")
        }
    }

    func run() async throws {
        let options = StressOptions(
            url: URL(string: url)!, service: service, key: key ?? ProcessInfo.processInfo.environment["FLETCHER_STRESS_KEY"] ?? "",
            concurrency: concurrency, duration: requests == nil ? .milliseconds(Int((duration ?? 30) * 1000)) : duration.map { .milliseconds(Int($0 * 1000)) },
            requests: requests, plans: plans, scenario: Scenario(rawValue: scenario)!, platformPort: platformPort,
            webhookPort: webhookPort, rate: rate, writeLog: logWrites)
        let quiet = quiet
        let report = try await StressRunner.run(options) { line in
            if !quiet { FileHandle.standardError.write(Data((line + "\n").utf8)) }
        }
        print(report.text)
        if let json { try report.json.write(to: URL(fileURLWithPath: json)) }
    }
}
