import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation

/// The product detail's tries, limits and timers (docs/RULES.md rules 22–25).
enum TriesView {
    /// The fields after the state: the current try, the limits that apply, a pending retry and an
    /// armed timeout.
    static func fields(_ product: DataProduct, policy: OrchestrationPolicy, now: Date) -> HTML {
        let current: HTML =
            product.tryNumber == 0
            ? "<span class=\"none\">not queued yet</span>"
            : "\(product.tryNumber)\(product.triggerId.map { " — trigger <code>\($0.lowercased)</code>" as HTML })"
        var fields: HTML = """
            <dt>Try</dt><dd class="try-field">\(current)</dd>
            <dt>Limits</dt><dd>\(limits(product, policy: policy))</dd>
            """
        if let retryAt = product.retryAt {
            fields = """
                \(fields)
                <dt>Retry at</dt><dd class="retry-field">\(Layout.time(retryAt)) (\(TimerView.countdown(retryAt, now: now))), \
                as try \(product.tryNumber + 1)</dd>
                """
        }
        if let timeoutAt = product.timeoutAt {
            fields = """
                \(fields)
                <dt>Times out at</dt><dd class="timeout-field">\(Layout.time(timeoutAt)) \
                (\(TimerView.countdown(timeoutAt, now: now))), while \(product.state.rawValue)</dd>
                """
        }
        return fields
    }

    /// Retries, and how long it may stay queued and running: each with where it comes from (the
    /// product's own submission or its compute type's policy).
    static func limits(_ product: DataProduct, policy: OrchestrationPolicy) -> HTML {
        let effective = policy.effective(for: product)
        let own = product.limits
        let computePolicy = policy.computes[product.compute]
        func source(_ isOwn: Bool) -> String { isOwn ? "its own" : "\(product.compute.displayName)'s policy" }
        let retries: HTML =
            effective.retry.max == 0
            ? "retries: none\(own.retries != nil ? " (its own)" : "")"
            : "retries: up to \(effective.retry.max) (\(source(own.retries != nil))), \(product.retriesUsed) used"
        func limit(_ name: String, _ value: Double?, isOwn: Bool) -> HTML {
            guard let value else { return "\(name): no limit" }
            return "\(name): at most \(TimerView.duration(value)) (\(source(isOwn)))"
        }
        let queued = limit("queued", effective.maxQueued, isOwn: own.maxQueuedSeconds != nil)
        let running = limit("running", effective.maxRunning, isOwn: own.maxRunningSeconds != nil)
        let cancels: HTML = computePolicy?.cancels == true ? " · cancelled at the platform when it stops" : ""
        return "<span class=\"limits\">\(retries) · \(queued) · \(running)\(cancels)</span>"
    }

    /// The tries, newest first, as a table.
    static func section(_ tries: [ProductTry], product: DataProduct, historyPath: String, now: Date) -> HTML {
        guard !tries.isEmpty else { return "" }
        let rows = tries.map { found -> HTML in
            let isCurrent = found.number == product.tryNumber
            var outcome = outcomeText(found.outcome)
            if isCurrent, let retryAt = product.retryAt {
                outcome = "\(outcome) · \(TimerView.retry(retryAt, nextTry: product.tryNumber + 1, now: now))"
            }
            if isCurrent, let timeoutAt = product.timeoutAt { outcome = "\(outcome) · \(TimerView.timeout(timeoutAt, now: now))" }
            let current: HTML = isCurrent ? " class=\"current\"" : ""
            return """
                <tr\(current) data-try="\(found.number)"><td>\(found.number)</td>\
                <td><code>\(found.triggerId?.lowercased ?? "—")</code></td>\
                <td>\(found.queuedAt.map(Layout.time) ?? "—")</td><td>\(delivered(found))</td>\
                <td><code>\(found.runId?.lowercased ?? "—")</code></td><td class="outcome">\(outcome)</td>\
                <td>\(duration(found, now: now))</td><td class="cancel">\(cancel(found.cancel))</td></tr>
                """
        }
        let older: HTML =
            (tries.last?.number ?? 1) > 1
            ? "<p>Older tries are in <a href=\"\(historyPath)\">the history API</a>.</p>" : ""
        return """
            <h3>Tries</h3>
            <div class="table-scroll"><table class="tries">
            <thead><tr><th scope="col">Try</th><th scope="col">Trigger id</th><th scope="col">Queued</th>\
            <th scope="col">Delivered</th><th scope="col">Run id</th><th scope="col">Outcome</th>\
            <th scope="col">Duration</th><th scope="col">Cancel</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>
            \(older)
            """
    }

    static func outcomeText(_ outcome: ProductTry.Outcome) -> HTML {
        switch outcome {
        case .unknown: "<span class=\"none\">older than the history read</span>"
        case .queued: "\(Layout.stateBadge(.queued)) still queued"
        case .running: "\(Layout.stateBadge(.running)) still running"
        case .success: Layout.stateBadge(.success)
        case .failed(let dispatch):
            dispatch ? "\(Layout.stateBadge(.failed)) trigger not delivered" : Layout.stateBadge(.failed)
        case .timedOut(let phase, let limit):
            "<span class=\"badge state failed\">timed out</span> (\(TimerView.phaseAndLimit(phase, limit)))"
        case .cancelled(let reason):
            "<span class=\"badge outcome cancelled\">cancelled</span> (\(reasonText(reason)))"
        case .superseded(let next):
            "<span class=\"badge outcome superseded\">superseded</span> by try \(next)"
        }
    }

    static func reasonText(_ reason: CancelReason) -> String {
        switch reason {
        case .clear: "cleared"
        case .disable: "disabled"
        case .downstreamReset: "upstream changed"
        case .timeout: "timed out"
        }
    }

    private static func delivered(_ found: ProductTry) -> HTML {
        if let deliveredAt = found.deliveredAt { return Layout.time(deliveredAt) }
        let attempts: HTML =
            found.deliveryAttempts == 0
            ? "" : " (\(found.deliveryAttempts) attempt\(found.deliveryAttempts == 1 ? "" : "s"), last \(found.lastDelivery ?? "—"))"
        switch found.triggerState {
        case .delivered?: return "yes"
        case .failed?: return "<span class=\"none\">not delivered</span>\(attempts)"
        case .cancelled?: return "<span class=\"none\">never sent</span>\(attempts)"
        case .pending?: return "<span class=\"none\">not yet</span>\(attempts)"
        case nil: return found.deliveryAttempts == 0 ? "—" : "<span class=\"none\">no</span>\(attempts)"
        }
    }

    private static func duration(_ found: ProductTry, now: Date) -> HTML {
        guard let queuedAt = found.queuedAt else { return "—" }
        if let endedAt = found.endedAt { return "\(TimerView.duration(endedAt.timeIntervalSince(queuedAt)))" }
        guard found.outcome.isOpen else { return "—" }
        return "\(TimerView.duration(now.timeIntervalSince(queuedAt))) so far"
    }

    private static func cancel(_ cancel: ProductTry.Cancel?) -> HTML {
        guard let cancel else { return "—" }
        let reason: HTML = cancel.reason.map { "\(reasonText($0)): " } ?? ""
        let attempts: HTML =
            cancel.attempts == 0 ? "" : ", \(cancel.attempts) attempt\(cancel.attempts == 1 ? "" : "s")"
        let last: HTML = cancel.lastAnswer.map { ", last \($0)" } ?? ""
        if let deliveredAt = cancel.deliveredAt {
            return "\(reason)delivered \(Layout.time(deliveredAt))\(last)"
        }
        switch cancel.state {
        case .delivered?: return "\(reason)delivered\(last)"
        case .failed?: return "\(reason)<span class=\"none\">gave up</span>\(last)\(attempts)"
        case .cancelled?: return "\(reason)<span class=\"none\">not sent</span>"
        case .pending?, nil: return "\(reason)<span class=\"none\">not delivered yet</span>\(last)\(attempts)"
        }
    }
}
