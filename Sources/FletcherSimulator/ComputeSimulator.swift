public import AsyncHTTPClient
import Foundation
public import Hummingbird
public import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Synchronization

/// A stand-in compute platform (`fletcher simulate-compute`): it accepts Fletcher's triggers,
/// honours `Idempotency-Key` (a duplicate starts no second job), then reports the job `running`
/// and, after a while, `success` (or `failed`, at random) to the trigger's callback URL,
/// authenticating as a configured service.
public final class ComputeSimulator: Sendable {
    public struct Settings: Sendable {
        public var host = "127.0.0.1"
        public var port = 4000
        public var service = "local"
        public var key = ""
        /// How long a job runs, seconds.
        public var runSeconds = 2.0
        /// The share of jobs that fail (0 to 1).
        public var failureRate = 0.0

        public init() {}
    }

    /// One job the simulator started.
    struct Job: Sendable {
        var runId: UUID
        var link: String
    }

    let settings: Settings
    let logger: Logger
    private let jobs = Mutex<[String: Job]>([:])
    private let tokens = Mutex<[String: String]>([:])

    public init(settings: Settings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    /// The simulator's web server (run it with `runService()`).
    public func application(client: HTTPClient) -> some ApplicationProtocol {
        let router = Router()
        router.post("/jobs") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            guard let trigger = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
                let productId = trigger["data_product_id"] as? String, let callback = trigger["callback_url"] as? String
            else { return Response(status: .badRequest) }
            let key = request.headers[.init("Idempotency-Key")!] ?? (trigger["trigger_id"] as? String ?? UUID().uuidString)
            let (job, isNew) = self.jobs.withLock { jobs -> (Job, Bool) in
                if let job = jobs[key] { return (job, false) }
                let runId = UUID()
                let job = Job(runId: runId, link: "http://\(self.settings.host):\(self.settings.port)/runs/\(runId.uuidString.lowercased())")
                jobs[key] = job
                return (job, true)
            }
            if isNew {
                let name = trigger["name"] as? String ?? "?"
                self.logger.info("job started", metadata: ["product": "\(name)", "run": "\(job.runId)"])
                Task { await self.run(job, productId: productId, callback: callback, client: client) }
            }
            let answer = #"{"run_id": "\#(job.runId.uuidString.lowercased())", "link": "\#(job.link)"}"#
            return Response(
                status: .accepted, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: answer)))
        }
        router.get("/runs/:id") { _, context -> String in
            "Simulated run \(context.parameters.get("id") ?? "")\n"
        }
        return Application(
            router: router, configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "fletcher-simulator"),
            logger: logger)
    }

    /// Reports the job running, then finished.
    private func run(_ job: Job, productId: String, callback: String, client: HTTPClient) async {
        try? await Task.sleep(for: .milliseconds(100))
        await report(productId, "running", job: job, passback: nil, callback: callback, client: client)
        try? await Task.sleep(for: .milliseconds(Int(settings.runSeconds * 1000)))
        let failed = Double.random(in: 0..<1) < settings.failureRate
        await report(
            productId, failed ? "failed" : "success", job: job,
            passback: ["simulated": true, "rows": Int.random(in: 100...100_000)], callback: callback, client: client)
    }

    private func report(
        _ productId: String, _ state: String, job: Job, passback: [String: any Sendable]?, callback: String, client: HTTPClient
    ) async {
        var update: [String: Any] = ["id": productId, "state": state, "run_id": job.runId.uuidString.lowercased(), "link": job.link]
        if let passback { update["passback"] = passback }
        for attempt in 0..<5 {
            do {
                let token = try await token(for: callback, client: client, renew: attempt > 0)
                var request = HTTPClientRequest(url: callback)
                request.method = .PUT
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "Authorization", value: "Bearer \(token)")
                request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: [update])))
                let response = try await client.execute(request, timeout: .seconds(10))
                if response.status.code == 200 { return }
                logger.warning("report refused", metadata: ["status": "\(response.status.code)", "state": "\(state)"])
                if response.status.code != 401 { return }
            } catch {
                logger.warning("report failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .milliseconds(200 * (attempt + 1)))
        }
    }

    /// A token for the Fletcher the callback URL belongs to (cached; renewed on a 401).
    private func token(for callback: String, client: HTTPClient, renew: Bool) async throws -> String {
        guard let url = URL(string: callback), let scheme = url.scheme, let host = url.host else { throw SimulatorError.badCallback }
        let base = "\(scheme)://\(host)\(url.port.map { ":\($0)" } ?? "")"
        if !renew, let token = tokens.withLock({ $0[base] }) { return token }
        var request = HTTPClientRequest(url: base + "/api/authenticate")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(
            ByteBuffer(data: try JSONSerialization.data(withJSONObject: ["service": settings.service, "key": settings.key])))
        let response = try await client.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 16)
        guard response.status.code == 200,
            let json = try JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
            let token = json["access_token"] as? String
        else { throw SimulatorError.authenticationFailed(Int(response.status.code)) }
        tokens.withLock { $0[base] = token }
        return token
    }

    enum SimulatorError: Error {
        case badCallback
        case authenticationFailed(Int)
    }
}
