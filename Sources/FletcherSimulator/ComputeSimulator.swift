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
/// and, after a while, `success` or `failed` to the trigger's callback URL — or nothing more, for
/// a job drawn to hang — authenticating as a configured service. `POST /cancel` stops a job;
/// `GET /stats` counts what happened.
public final class ComputeSimulator: Sendable {
    let settings: Settings
    let logger: Logger
    private let ledger = Mutex(JobLedger())
    private let tokens = Mutex<[String: String]>([:])

    public init(settings: Settings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    /// The counters so far.
    public var stats: SimulatorStats { ledger.withLock(\.stats) }

    /// Logs the counters as one JSON object (at shutdown).
    public func logStats() {
        logger.info("simulator stats", metadata: ["stats": .string(Self.json(stats))])
    }

    /// Waits until every job started so far has stopped acting: it made its final report, went
    /// silent, or was cancelled. For tests, so that they can check that nothing more is reported.
    public func jobsSettled() async {
        for task in ledger.withLock(\.tasks) { await task.value }
    }

    /// The simulator's web server (run it with `runService()`).
    public func application(client: HTTPClient) -> some ApplicationProtocol {
        let router = Router()
        router.post("/jobs") { request, _ -> Response in
            try await self.receiveTrigger(request, client: client)
        }
        router.post("/cancel") { request, _ -> Response in
            try await self.receiveCancel(request)
        }
        router.get("/stats") { _, _ -> Response in
            Self.jsonResponse(.ok, Self.json(self.stats))
        }
        router.get("/runs/:id") { _, context -> String in
            "Simulated run \(context.parameters.get("id") ?? "")\n"
        }
        return Application(
            router: router, configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "fletcher-simulator"),
            logger: logger)
    }

    /// `POST /jobs`: starts a job for a new idempotency key, answers with the job's run either way.
    private func receiveTrigger(_ request: Request, client: HTTPClient) async throws -> Response {
        ledger.withLock { $0.receiveTrigger() }
        let body = try await request.body.collect(upTo: 1 << 20)
        guard let trigger = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
            let productId = trigger["data_product_id"] as? String, let callback = trigger["callback_url"] as? String
        else { return Self.problem(.badRequest, "a trigger needs data_product_id and callback_url (strings)") }
        let key = request.headers[.init("Idempotency-Key")!] ?? (trigger["trigger_id"] as? String ?? UUID().uuidString)
        let (job, isNew) = ledger.withLock { ledger -> (SimulatedJob, Bool) in
            if let job = ledger.job(key) { return (job, false) }
            let runId = UUID()
            var job = SimulatedJob(
                runId: runId, link: "http://\(settings.host):\(settings.port)/runs/\(runId.uuidString.lowercased())",
                outcome: settings.outcome(draw: Double.random(in: 0..<1)), attempt: trigger["try"] as? Int)
            let started = job
            job.task = Task { await self.run(started, key: key, productId: productId, callback: callback, client: client) }
            ledger.start(key, job)
            return (job, true)
        }
        if isNew {
            logger.info(
                "job started",
                metadata: [
                    "product": "\(trigger["name"] as? String ?? "?")", "trigger": "\(key)", "try": "\(job.attempt.map(String.init) ?? "?")",
                    "run": "\(job.runId.uuidString.lowercased())", "outcome": "\(job.outcome.rawValue)",
                ])
        }
        let answer = #"{"run_id": "\#(job.runId.uuidString.lowercased())", "link": "\#(job.link)"}"#
        return Self.jsonResponse(.accepted, answer)
    }

    /// `POST /cancel`: stops a running or hanging job (200, also when repeated), 409 when it already
    /// finished, 404 for an unknown trigger.
    private func receiveCancel(_ request: Request) async throws -> Response {
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: 1 << 20)
        } catch {
            ledger.withLock { $0.receiveBadCancel() }
            throw error
        }
        guard let cancel = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
            let key = cancel["trigger_id"] as? String
        else {
            ledger.withLock { $0.receiveBadCancel() }
            return Self.problem(.badRequest, "a cancel needs trigger_id (a string)")
        }
        let (answer, task) = ledger.withLock { $0.cancel(key) }
        let reason = cancel["reason"] as? String ?? "?"
        switch answer {
        case .cancelled(let first):
            task?.cancel()
            if first { logger.info("job cancelled", metadata: ["trigger": "\(key)", "reason": "\(reason)"]) }
            return Self.jsonResponse(.ok, #"{"cancelled": true}"#)
        case .unknown:
            logger.info("cancel of an unknown job", metadata: ["trigger": "\(key)", "reason": "\(reason)"])
            return Self.problem(.notFound, "no job has trigger_id \(key)")
        case .tooLate:
            logger.info("cancel too late", metadata: ["trigger": "\(key)", "reason": "\(reason)"])
            return Self.problem(.conflict, "the job of trigger_id \(key) already finished")
        }
    }

    /// Reports the job running, then finished (or nothing more, when it hangs); a cancel ends it
    /// before its next report.
    private func run(_ job: SimulatedJob, key: String, productId: String, callback: String, client: HTTPClient) async {
        do { try await Task.sleep(for: settings.runningAfter) } catch { return }
        guard ledger.withLock({ $0.isActive(key) }) else { return }
        let report = Report(productId: productId, triggerId: key, runId: job.runId, link: job.link, callback: callback)
        await deliver(report, state: "running", passback: nil, client: client)
        if job.outcome == .hang {
            ledger.withLock { $0.hang(key) }
            logger.info("job hangs", metadata: ["trigger": "\(key)"])
            return
        }
        do { try await Task.sleep(for: .seconds(settings.runSeconds)) } catch { return }
        guard ledger.withLock({ $0.finish(key) }) else { return }
        let state = job.outcome == .failed ? "failed" : "success"
        await deliver(report, state: state, passback: ["simulated": true, "rows": Int.random(in: 100...100_000)], client: client)
    }

    /// What a job's reports share.
    private struct Report: Sendable {
        var productId: String
        var triggerId: String
        var runId: UUID
        var link: String
        var callback: String
    }

    /// Sends one report in a task of its own, so that cancelling the job does not cut it off midway,
    /// and counts Fletcher's final answer.
    private func deliver(_ report: Report, state: String, passback: [String: any Sendable]?, client: HTTPClient) async {
        let outcome = await Task { await self.send(report, state: state, passback: passback, client: client) }.value
        ledger.withLock { $0.record(outcome, state: state) }
    }

    /// PUTs the report, trying again after a pause on no answer, a 5xx, 408 or 429 (and with a new
    /// token on a 401); a `running` report is given up once the job is cancelled.
    private func send(_ report: Report, state: String, passback: [String: any Sendable]?, client: HTTPClient) async -> ReportOutcome {
        var update: [String: Any] = [
            "id": report.productId, "state": state, "run_id": report.runId.uuidString.lowercased(), "link": report.link,
            "trigger_id": report.triggerId,
        ]
        if let passback { update["passback"] = passback }
        let metadata: Logger.Metadata = ["trigger": "\(report.triggerId)", "state": "\(state)"]
        var pause = settings.reportBackoff
        var renewToken = false
        for attempt in 1...max(1, settings.reportAttempts) {
            if attempt > 1 {
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, settings.maximumReportBackoff)
                if state == "running", !ledger.withLock({ $0.isActive(report.triggerId) }) { return .failed }
            }
            do {
                let token = try await token(for: report.callback, client: client, renew: renewToken)
                renewToken = false
                var request = HTTPClientRequest(url: report.callback)
                request.method = .PUT
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "Authorization", value: "Bearer \(token)")
                request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: [update])))
                let response = try await client.execute(request, timeout: .seconds(10))
                let status = Int(response.status.code)
                // Read the answer to its end, so that the connection serves the next request.
                do { for try await _ in response.body {} } catch {}
                if (200..<300).contains(status) { return .accepted }
                if status == 409 {
                    logger.info("report stale: not the product's current try", metadata: metadata)
                    return .stale
                }
                if status != 401, status != 408, status != 429, status < 500 {
                    logger.warning("report refused", metadata: metadata.merging(["status": "\(status)"]) { $1 })
                    return .failed
                }
                renewToken = status == 401
                logger.info("report not taken yet", metadata: metadata.merging(["status": "\(status)", "attempt": "\(attempt)"]) { $1 })
            } catch {
                logger.info("report not delivered yet", metadata: metadata.merging(["error": "\(error)", "attempt": "\(attempt)"]) { $1 })
            }
        }
        logger.warning("report failed: no more attempts", metadata: metadata)
        return .failed
    }

    /// A token for the Fletcher the callback URL belongs to (cached; renewed after a 401).
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

    private static func json(_ stats: SimulatorStats) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? String(decoding: encoder.encode(stats), as: UTF8.self)) ?? "{}"
    }

    private static func jsonResponse(_ status: HTTPResponse.Status, _ json: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: json)))
    }

    /// A problem+json answer.
    private static func problem(_ status: HTTPResponse.Status, _ detail: String) -> Response {
        let problem: [String: Any] = ["type": "about:blank", "title": status.reasonPhrase, "status": status.code, "detail": detail]
        let body = (try? JSONSerialization.data(withJSONObject: problem, options: .sortedKeys)) ?? Data()
        return Response(
            status: status, headers: [.contentType: "application/problem+json"], body: .init(byteBuffer: ByteBuffer(data: body)))
    }
}
