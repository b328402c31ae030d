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
    /// Sends one claimed trigger and records what the dispatch policy decides: delivered, retried
    /// later, or given up.
    func deliver(_ claim: ClaimedTrigger, to target: ComputeTarget) async {
        let trigger = claim.trigger
        let started = clock()
        if let giveUp = DispatchPolicy.giveUpBeforeSending(
            attempt: claim.attempt, createdAt: trigger.createdAt, now: started, limits: target.limits)
        {
            let record = DeliveryAttempt(
                triggerId: trigger.id, attempt: claim.attempt, httpStatus: nil, error: giveUp.error, durationMilliseconds: 0,
                process: process)
            await self.giveUp(claim, giveUp, status: nil, attempt: record)
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
        let decision = DispatchPolicy.decide(
            status: status, error: error, retryAfter: retryAfter, attempt: claim.attempt, createdAt: trigger.createdAt, now: now,
            limits: target.limits, jitter: jitter())
        do {
            switch decision {
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
            case .retry(let retryAt, let opensCircuit):
                if try await store.markRetry(claim, owner: process, attempt: attempt, retryAt: retryAt, opensCircuit: opensCircuit, now: now) {
                    metrics.attempt(trigger.compute, .retry)
                } else {
                    metrics.attempt(trigger.compute, .leaseLost)
                    logger.info("dispatch: lease lost before recording a retry", metadata: ["trigger": "\(trigger.id)"])
                }
            case .giveUp(let giveUp):
                await self.giveUp(claim, giveUp, status: status, attempt: attempt)
            }
        } catch let failure {
            // The database is unreachable: the lease will expire and the trigger be sent again (same id).
            logger.warning("dispatch: cannot record an attempt", metadata: ["trigger": "\(trigger.id)", "error": "\(failure)"])
        }
    }

    /// Fails the trigger and, through the rules, its product, with the passback of docs/RULES.md rule 19.
    private func giveUp(_ claim: ClaimedTrigger, _ giveUp: DispatchPolicy.GiveUp, status: Int?, attempt: DeliveryAttempt) async {
        let now = clock()
        let passback = JSONValue.object([
            "fletcher_dispatch": .object([
                "error": .string(giveUp.error), "http_status": status.map { .integer($0) } ?? .null,
                "attempts": .integer(giveUp.attemptsMade), "trigger_id": .string(claim.trigger.id.lowercased),
            ])
        ])
        let outcome: DispatchMetrics.Outcome = giveUp.reason == .refused ? .refused : .exhausted
        do {
            guard try await store.markFailed(claim, owner: process, attempt: attempt, passback: passback, now: now) else {
                metrics.attempt(claim.trigger.compute, .leaseLost)
                return
            }
            metrics.attempt(claim.trigger.compute, outcome)
            metrics.transitions.record(from: .queued, to: .failed, reason: .dispatch)
            logger.notice(
                "dispatch: trigger failed",
                metadata: ["trigger": "\(claim.trigger.id)", "product": "\(claim.trigger.dataProductId)", "error": "\(giveUp.error)"])
        } catch let failure {
            logger.warning("dispatch: cannot record a failed trigger", metadata: ["trigger": "\(claim.trigger.id)", "error": "\(failure)"])
        }
    }

    /// The POST of a trigger: same id and body on every attempt but for the attempt number.
    func request(for claim: ClaimedTrigger, to target: ComputeTarget) -> HTTPClientRequest {
        let trigger = claim.trigger
        // A loop runs only for targets with a URL (`Dispatcher.run`).
        var request = HTTPClientRequest(url: target.url?.absoluteString ?? "")
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
