import AsyncHTTPClient
import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

extension Dispatcher {
    /// Sends one claimed trigger and records what happened: delivered, retried later, or given up.
    func deliver(_ claim: ClaimedTrigger, to target: ComputeTarget) async {
        let trigger = claim.trigger
        let started = clock()
        let age = started.timeIntervalSince(trigger.createdAt)
        if claim.attempt > target.maxAttempts || age > target.maxAge {
            let reason = claim.attempt > target.maxAttempts ? "max_attempts (\(target.maxAttempts)) exhausted" : "max_age_s (\(Int(target.maxAge))) exceeded"
            await giveUp(claim, error: reason, status: nil, started: started, sent: false, outcome: .exhausted)
            return
        }
        var status: Int?
        var error: String?
        var retryAfter: Double?
        var answer: [String: Any] = [:]
        do {
            let response = try await client.execute(request(for: claim, to: target), timeout: .milliseconds(Int64(target.timeout * 1000)), logger: logger)
            status = Int(response.status.code)
            retryAfter = response.headers.first(name: "Retry-After").flatMap { Self.retryAfterSeconds($0, now: clock()) }
            let body = try? await response.body.collect(upTo: 1 << 20)
            if let body, let json = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] { answer = json }
        } catch let failure {
            error = Self.describe(failure)
        }
        let now = clock()
        metrics.request(trigger.compute, seconds: now.timeIntervalSince(started))
        failPoints.hit(.afterSend)
        let attempt = DeliveryAttempt(
            triggerId: trigger.id, attempt: claim.attempt, httpStatus: status, error: error,
            durationMilliseconds: Int((now.timeIntervalSince(started) * 1000).rounded()), process: process)
        do {
            switch DispatchPolicy.outcome(status: status) {
            case .delivered:
                let runId = (answer["run_id"] as? String).flatMap(UUID.init(uuidString:))
                let link = answer["link"] as? String
                if try await store.markDelivered(claim, owner: process, attempt: attempt, runId: runId, link: link, now: now) {
                    metrics.attempt(trigger.compute, .delivered)
                    metrics.delivered(trigger.compute, latency: now.timeIntervalSince(trigger.createdAt))
                } else {
                    metrics.attempt(trigger.compute, .leaseLost)
                    logger.info("dispatch: lease lost before recording a delivery", metadata: ["trigger": "\(trigger.id)"])
                }
            case .retry(let opensCircuit):
                let delay = DispatchPolicy.backoff(attempt: claim.attempt, jitter: jitter(), retryAfter: retryAfter)
                let retryAt = now.addingTimeInterval(delay)
                if claim.attempt >= target.maxAttempts || retryAt.timeIntervalSince(trigger.createdAt) > target.maxAge {
                    await giveUp(claim, error: "gave up after \(claim.attempt) attempts: \(error ?? "HTTP \(status ?? 0)")",
                        status: status, started: started, sent: true, outcome: .exhausted, attempt: attempt)
                } else if try await store.markRetry(claim, owner: process, attempt: attempt, retryAt: retryAt, opensCircuit: opensCircuit, now: now) {
                    metrics.attempt(trigger.compute, .retry)
                } else {
                    metrics.attempt(trigger.compute, .leaseLost)
                    logger.info("dispatch: lease lost before recording a retry", metadata: ["trigger": "\(trigger.id)"])
                }
            case .refused:
                await giveUp(
                    claim, error: "refused by the compute platform", status: status, started: started, sent: true, outcome: .refused,
                    attempt: attempt)
            }
        } catch let failure {
            // The database is unreachable: the lease will expire and the trigger be sent again (same id).
            logger.warning("dispatch: cannot record an attempt", metadata: ["trigger": "\(trigger.id)", "error": "\(failure)"])
        }
    }

    /// Fails the trigger and, through the rules, its product, with the passback of docs/RULES.md rule 19.
    private func giveUp(
        _ claim: ClaimedTrigger, error: String, status: Int?, started: Date, sent: Bool, outcome: DispatchMetrics.Outcome,
        attempt: DeliveryAttempt? = nil
    ) async {
        let now = clock()
        let record =
            attempt
            ?? DeliveryAttempt(
                triggerId: claim.trigger.id, attempt: claim.attempt, httpStatus: status, error: error,
                durationMilliseconds: 0, process: process)
        let attempts = sent ? claim.attempt : claim.attempt - 1
        let passback = JSONValue.object([
            "fletcher_dispatch": .object([
                "error": .string(error), "http_status": status.map { .integer($0) } ?? .null, "attempts": .integer(attempts),
                "trigger_id": .string(claim.trigger.id.lowercased),
            ])
        ])
        do {
            guard try await store.markFailed(claim, owner: process, attempt: record, passback: passback, now: now) else {
                metrics.attempt(claim.trigger.compute, .leaseLost)
                return
            }
            metrics.attempt(claim.trigger.compute, outcome)
            metrics.transitions.record(from: .queued, to: .failed, reason: .dispatch)
            logger.notice(
                "dispatch: trigger failed", metadata: ["trigger": "\(claim.trigger.id)", "product": "\(claim.trigger.dataProductId)", "error": "\(error)"])
        } catch let failure {
            logger.warning("dispatch: cannot record a failed trigger", metadata: ["trigger": "\(claim.trigger.id)", "error": "\(failure)"])
        }
    }

    /// The POST of a trigger: same id and body on every attempt but for the attempt number.
    func request(for claim: ClaimedTrigger, to target: ComputeTarget) -> HTTPClientRequest {
        let trigger = claim.trigger
        var request = HTTPClientRequest(url: target.url.absoluteString)
        request.method = .POST
        for (name, value) in target.headers { request.headers.replaceOrAdd(name: name, value: value) }
        request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        request.headers.replaceOrAdd(name: "Idempotency-Key", value: trigger.id.lowercased)
        let body = JSONValue.object([
            "trigger_id": .string(trigger.id.lowercased), "dataset_id": .string(trigger.datasetId.lowercased),
            "data_product_id": .string(trigger.dataProductId.lowercased), "compute": .string(trigger.compute.rawValue),
            "name": .string(trigger.name), "version": .string(trigger.version), "passthrough": trigger.passthrough ?? .null,
            "attempt": .integer(claim.attempt), "callback_url": .string(configuration.callbackURL(datasetId: trigger.datasetId)),
        ])
        request.body = .bytes(ByteBuffer(string: body.text))
        return request
    }

    /// `Retry-After` as seconds from `now`: a number, or an HTTP date (RFC 9110's IMF-fixdate).
    static func retryAfterSeconds(_ value: String, now: Date) -> Double? {
        if let seconds = Double(value.trimmingCharacters(in: .whitespaces)), seconds >= 0 { return seconds }
        return (try? Date(value, strategy: httpDate)).map { max(0, $0.timeIntervalSince(now)) }
    }

    /// Parses `Sun, 06 Nov 1994 08:49:37 GMT`; made once, not per answer.
    private static let httpDate = Date.VerbatimFormatStyle(
        format: "\(weekday: .abbreviated), \(day: .twoDigits) \(month: .abbreviated) \(year: .defaultDigits) \(hour: .twoDigits(clock: .twentyFourHour, hourCycle: .zeroBased)):\(minute: .twoDigits):\(second: .twoDigits) GMT",
        locale: Locale(identifier: "en_US_POSIX"), timeZone: TimeZone(identifier: "GMT")!, calendar: Calendar(identifier: .gregorian)
    ).parseStrategy

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            if error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout { return "timeout" }
            return "\(error)"
        }
        return "\(error)"
    }
}
