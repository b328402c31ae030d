import AsyncHTTPClient
import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Tracing

extension Dispatcher {
    /// Sends one claimed trigger (`send`); when traces are on, in a span `trigger <compute>` (or
    /// `cancel <compute>`) of the trace of the request that queued it — the request sent is a span
    /// of its own under it, whose `traceparent` the platform gets, so its job joins that trace.
    func deliver(_ claim: ClaimedTrigger, to target: ComputeTarget) async {
        guard let tracer else { return await send(claim, to: target) }
        let trigger = claim.trigger
        await tracer.withSpan(
            "\(trigger.isCancel ? "cancel" : "trigger") \(trigger.compute.rawValue)",
            context: TraceParent.context(trigger.traceContext, tracer)
        ) { span in
            span.attributes["fletcher.dataset_id"] = trigger.datasetId.lowercased
            span.attributes["fletcher.data_product_id"] = trigger.dataProductId.lowercased
            span.attributes["fletcher.trigger_id"] = (trigger.cancel?.triggerId ?? trigger.id).lowercased
            span.attributes["fletcher.compute"] = trigger.compute.rawValue
            span.attributes["fletcher.try"] = trigger.tryNumber
            span.attributes["fletcher.attempt"] = claim.attempt
            await send(claim, to: target)
        }
    }

    /// Sends one claimed trigger and records what the dispatch policy decides: delivered, retried
    /// later, or given up.
    /// A cancel (docs/RULES.md rule 25) goes the same way to the platform's `cancel_url`.
    func send(_ claim: ClaimedTrigger, to target: ComputeTarget) async {
        let trigger = claim.trigger
        let started = clock()
        // A cancel's attempts are recorded under the try's trigger id, the key the platform knows.
        let recordedId = trigger.cancel?.triggerId ?? trigger.id
        var giveUpNow = DispatchPolicy.giveUpBeforeSending(
            attempt: claim.attempt, createdAt: trigger.createdAt, now: started, limits: target.limits)
        if trigger.isCancel && target.cancelURL == nil {
            giveUpNow = DispatchPolicy.GiveUp(reason: .refused, error: "no cancel_url configured", attemptsMade: claim.attempt - 1)
        }
        if let giveUp = giveUpNow {
            let record = DeliveryAttempt(
                triggerId: recordedId, attempt: claim.attempt, httpStatus: nil, error: giveUp.error, durationMilliseconds: 0,
                process: process, isCancel: trigger.isCancel)
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
            triggerId: recordedId, attempt: claim.attempt, httpStatus: status, error: error,
            durationMilliseconds: Int((now.timeIntervalSince(started) * 1000).rounded()), process: process, isCancel: trigger.isCancel)
        let decision = DispatchPolicy.decide(
            status: status, error: error, retryAfter: retryAfter, attempt: claim.attempt, createdAt: trigger.createdAt, now: now,
            limits: target.limits, jitter: jitter(), isCancel: trigger.isCancel)
        do {
            switch decision {
            case .delivered where trigger.isCancel:
                if let events = try await store.markDelivered(claim, owner: process, attempt: attempt, runId: nil, link: nil, now: now) {
                    metrics.events.record(events)
                    metrics.cancel(trigger.compute, status == 404 ? .unknown : status == 409 ? .alreadyEnded : .cancelled)
                } else {
                    metrics.cancel(trigger.compute, .leaseLost)
                }
            case .delivered:
                let runId = (answer["run_id"] as? String).flatMap(UUID.init(uuidString:))
                let link = answer["link"] as? String
                if let events = try await store.markDelivered(claim, owner: process, attempt: attempt, runId: runId, link: link, now: now) {
                    metrics.events.record(events)
                    metrics.attempt(trigger.compute, .delivered)
                    metrics.delivered(trigger.compute, latency: now.timeIntervalSince(trigger.createdAt))
                } else {
                    metrics.attempt(trigger.compute, .leaseLost)
                    logger.info("dispatch: lease lost before recording a delivery", metadata: ["trigger": "\(trigger.id)"])
                }
            case .retry(let retryAt, let opensCircuit):
                let events = try await store.markRetry(
                    claim, owner: process, attempt: attempt, retryAt: retryAt, opensCircuit: opensCircuit, now: now)
                let recorded = events != nil
                metrics.events.record(events ?? [])
                if trigger.isCancel {
                    metrics.cancel(trigger.compute, recorded ? .retry : .leaseLost)
                } else if recorded {
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
    /// A cancel given up fails no product (rule 25).
    private func giveUp(_ claim: ClaimedTrigger, _ giveUp: DispatchPolicy.GiveUp, status: Int?, attempt: DeliveryAttempt) async {
        let now = clock()
        if claim.trigger.isCancel {
            do {
                let events = try await store.markFailed(claim, owner: process, attempt: attempt, passback: .null, now: now)
                metrics.events.record(events ?? [])
                metrics.cancel(claim.trigger.compute, events != nil ? .failed : .leaseLost)
                if events != nil {
                    logger.notice(
                        "dispatch: cancel failed",
                        metadata: ["trigger": "\(attempt.triggerId)", "product": "\(claim.trigger.dataProductId)", "error": "\(giveUp.error)"])
                }
            } catch let failure {
                logger.warning("dispatch: cannot record a failed cancel", metadata: ["trigger": "\(attempt.triggerId)", "error": "\(failure)"])
            }
            return
        }
        let passback = JSONValue.object([
            "fletcher_dispatch": .object([
                "error": .string(giveUp.error), "http_status": status.map { .integer($0) } ?? .null,
                "attempts": .integer(giveUp.attemptsMade), "trigger_id": .string(claim.trigger.id.lowercased),
            ])
        ])
        let outcome: DispatchMetrics.Outcome = giveUp.reason == .refused ? .refused : .exhausted
        do {
            guard let events = try await store.markFailed(claim, owner: process, attempt: attempt, passback: passback, now: now) else {
                metrics.attempt(claim.trigger.compute, .leaseLost)
                return
            }
            metrics.events.record(events)
            metrics.attempt(claim.trigger.compute, outcome)
            metrics.transitions.record(from: .queued, to: .failed, reason: .dispatch)
            logger.notice(
                "dispatch: trigger failed",
                metadata: ["trigger": "\(claim.trigger.id)", "product": "\(claim.trigger.dataProductId)", "error": "\(giveUp.error)"])
        } catch let failure {
            logger.warning("dispatch: cannot record a failed trigger", metadata: ["trigger": "\(claim.trigger.id)", "error": "\(failure)"])
        }
    }

    /// The POST of a trigger: same id and body on every attempt but for the attempt number. A
    /// cancel's goes to `cancel_url`, keyed by the cancelled try's trigger id (docs/RULES.md rule 25).
    func request(for claim: ClaimedTrigger, to target: ComputeTarget) -> HTTPClientRequest {
        let trigger = claim.trigger
        // A loop runs only for targets with a URL (`Dispatcher.run`); a cancel only with a cancel URL (`deliver`).
        let url = trigger.isCancel ? target.cancelURL : target.url
        var request = HTTPClientRequest(url: url?.absoluteString ?? "")
        request.method = .POST
        for (name, value) in target.headers { request.headers.replaceOrAdd(name: name, value: value) }
        request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        let body: JSONValue
        if let cancel = trigger.cancel {
            request.headers.replaceOrAdd(name: "Idempotency-Key", value: cancel.triggerId.lowercased)
            body = JSONValue.object([
                "trigger_id": .string(cancel.triggerId.lowercased), "dataset_id": .string(trigger.datasetId.lowercased),
                "data_product_id": .string(trigger.dataProductId.lowercased), "run_id": cancel.runId.map { .string($0.lowercased) } ?? .null,
                "try": .integer(trigger.tryNumber), "reason": .string(cancel.reason.rawValue),
            ])
        } else {
            request.headers.replaceOrAdd(name: "Idempotency-Key", value: trigger.id.lowercased)
            body = JSONValue.object([
                "trigger_id": .string(trigger.id.lowercased), "dataset_id": .string(trigger.datasetId.lowercased),
                "data_product_id": .string(trigger.dataProductId.lowercased), "compute": .string(trigger.compute.rawValue),
                "name": .string(trigger.name), "version": .string(trigger.version), "passthrough": trigger.passthrough ?? .null,
                "attempt": .integer(claim.attempt), "try": .integer(trigger.tryNumber),
                "callback_url": .string(configuration.callbackURL(datasetId: trigger.datasetId)),
            ])
        }
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
