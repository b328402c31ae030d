import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation

/// One try of a data product (docs/RULES.md rule 22), pieced together from its triggers and its
/// history for the product's page: when it was queued and delivered, its run, how it ended and
/// whether Fletcher cancelled it at the platform.
struct ProductTry: Equatable {
    var number: Int
    var triggerId: UUID?
    var queuedAt: Date?
    /// The first attempt the platform accepted (2xx).
    var deliveredAt: Date?
    /// Attempts to deliver the trigger, and the last one's answer.
    var deliveryAttempts = 0
    var lastDelivery: String?
    /// The trigger's state in the queue, when the queue still holds it.
    var triggerState: TriggerState?
    var runId: UUID?
    var outcome: Outcome = .unknown
    var endedAt: Date?
    var cancel: Cancel?

    /// How a try ended, or that it has not.
    enum Outcome: Equatable {
        /// Known from its trigger alone: its state changes are older than the history read.
        case unknown
        case queued
        case running
        case success
        /// Reported failed; `dispatch` when its trigger could not be delivered (docs/RULES.md rule 19).
        case failed(dispatch: Bool)
        /// Failed by Fletcher in `phase` (`queued` or `running`) after `limit` seconds (rule 24).
        case timedOut(phase: DataProductState, limit: Double?)
        /// Left `queued` or `running` by a clear, a disable or a downstream reset (or a timeout).
        case cancelled(CancelReason)
        /// Still open when the next try started (an update reporting `queued`).
        case superseded(by: Int)

        var isOpen: Bool { self == .queued || self == .running }

        var isFailure: Bool {
            switch self {
            case .failed, .timedOut: true
            default: false
            }
        }
    }

    /// Fletcher's cancel of the try at its platform (docs/RULES.md rule 25).
    struct Cancel: Equatable {
        var reason: CancelReason?
        /// The cancel's state in the queue, when the queue still holds it.
        var state: TriggerState?
        var attempts = 0
        var lastAnswer: String?
        /// When the platform took it (2xx, 404 or 409 end a cancel).
        var deliveredAt: Date?
    }
}

/// Builds a product's tries, newest first.
enum ProductTries {
    /// Tries shown; older ones are in the history API.
    static let shown = 20
    /// History read beyond the page's first page, to find the start of the oldest try shown: at
    /// most this many more reads of `pageSize` events.
    static let extraReads = 3
    static let pageSize = 200

    /// `triggers` newest first (starts and cancels), `events` newest first (possibly not reaching back
    /// to the first try: an older try then takes its times from its trigger alone).
    static func build(
        product: DataProduct, triggers: [Trigger], events: [ProductEvent], policy: OrchestrationPolicy = .none,
        limit: Int = shown
    ) -> [ProductTry] {
        var tries: [Int: ProductTry] = [:]
        var numberOf: [UUID: Int] = [:]
        func learn(_ number: Int, triggerId: UUID?) {
            if tries[number] == nil { tries[number] = ProductTry(number: number) }
            if let triggerId {
                if tries[number]?.triggerId == nil { tries[number]?.triggerId = triggerId }
                numberOf[triggerId] = number
            }
        }
        for trigger in triggers where trigger.cancel == nil {
            // A trigger written before tries were numbered is known by its id, if it is the current try's.
            let number = trigger.tryNumber > 0 ? trigger.tryNumber : trigger.id == product.triggerId ? product.tryNumber : 0
            guard number > 0 else { continue }
            learn(number, triggerId: trigger.id)
            tries[number]?.queuedAt = trigger.createdAt
            tries[number]?.triggerState = trigger.state
        }
        for event in events.reversed() {
            switch event.kind {
            case .stateChange(let change, _):
                guard change.tryNumber > 0 else { continue }
                let number = change.tryNumber
                if change.to == .queued {
                    // A new try: one still open is superseded by it.
                    for (other, earlier) in tries where other < number && earlier.outcome.isOpen && earlier.endedAt == nil {
                        tries[other]?.outcome = .superseded(by: number)
                        tries[other]?.endedAt = event.at
                    }
                }
                learn(number, triggerId: change.triggerId)
                apply(change, at: event.at, to: &tries[number]!)
            case .delivery(let attempt):
                guard let number = numberOf[attempt.triggerId] else { continue }
                record(attempt, at: event.at, in: &tries[number]!)
            }
        }
        for trigger in triggers {
            guard let order = trigger.cancel else { continue }
            guard let number = numberOf[order.triggerId] ?? (trigger.tryNumber > 0 ? trigger.tryNumber : nil) else { continue }
            learn(number, triggerId: order.triggerId)
            var cancel = tries[number]?.cancel ?? ProductTry.Cancel()
            cancel.reason = order.reason
            cancel.state = trigger.state
            tries[number]?.cancel = cancel
        }
        if product.tryNumber > 0 {
            learn(product.tryNumber, triggerId: product.triggerId)
            current(product, in: &tries[product.tryNumber]!)
        }
        let effective = policy.effective(for: product)
        return tries.values.sorted { $0.number > $1.number }.prefix(limit).map { found in
            var found = found
            // An earlier try's limit is the one configured now; the current try's passback names its own.
            if case .timedOut(let phase, nil) = found.outcome {
                found.outcome = .timedOut(phase: phase, limit: effective.limit(in: phase))
            }
            return found
        }
    }

    /// A state change of the try: its state after it, its run, its end.
    private static func apply(_ change: StateTransition, at date: Date, to found: inout ProductTry) {
        if let runId = change.runId { found.runId = runId }
        switch change.to {
        case .queued:
            found.queuedAt = date
            found.outcome = .queued
            found.endedAt = nil
        case .running:
            found.outcome = .running
            found.endedAt = nil
        case .success:
            found.outcome = .success
            found.endedAt = date
        case .failed:
            found.outcome =
                change.reason == .timeout
                ? .timedOut(phase: change.from ?? .running, limit: nil) : .failed(dispatch: change.reason == .dispatch)
            found.endedAt = date
        case .waiting, .disabled:
            // Only leaving `queued` or `running` ends a try; a clear of a finished one does not.
            guard found.outcome.isOpen else { return }
            found.outcome = .cancelled(cancelReason(change))
            found.endedAt = date
        }
    }

    /// What a cancel says when it left `queued` or `running` (as the rules decide it).
    private static func cancelReason(_ change: StateTransition) -> CancelReason {
        switch (change.reason, change.to) {
        case (.downstreamReset, _): .downstreamReset
        case (.timeout, _): .timeout
        case (_, .disabled): .disable
        default: .clear
        }
    }

    /// A delivery attempt of the try's trigger, or of its cancel.
    private static func record(_ attempt: DeliveryAttempt, at date: Date, in found: inout ProductTry) {
        let answer = attempt.httpStatus.map { "HTTP \($0)" } ?? attempt.error ?? "no answer"
        if attempt.isCancel {
            var cancel = found.cancel ?? ProductTry.Cancel()
            cancel.attempts += 1
            cancel.lastAnswer = answer
            if cancel.deliveredAt == nil, let status = attempt.httpStatus, (200..<300).contains(status) || status == 404 || status == 409 {
                cancel.deliveredAt = date
            }
            found.cancel = cancel
        } else {
            found.deliveryAttempts += 1
            found.lastDelivery = answer
            if found.deliveredAt == nil, let status = attempt.httpStatus, (200..<300).contains(status) { found.deliveredAt = date }
        }
    }

    /// The product's own fields are the last word on its current try.
    private static func current(_ product: DataProduct, in found: inout ProductTry) {
        if found.runId == nil { found.runId = product.runId }
        switch product.state {
        case .queued: found.outcome = .queued
        case .running: found.outcome = .running
        case .success: found.outcome = .success
        case .failed:
            if let note = TimeoutNote(product.passback), note.tryNumber == product.tryNumber {
                found.outcome = .timedOut(phase: note.phase, limit: note.limit)
            } else if !found.outcome.isFailure {
                found.outcome = .failed(dispatch: false)
            }
        case .waiting, .disabled:
            break
        }
        if !found.outcome.isOpen, found.endedAt == nil, product.state != .waiting, product.state != .disabled {
            found.endedAt = product.modifiedDate
        }
        if found.outcome.isOpen { found.endedAt = nil }
    }

    /// The history the tries are built from: `first` (the page's newest events), then older pages
    /// from `read` (given the cursor) while they have not reached back to the start of try `oldest`
    /// — at most `extraReads` more reads.
    static func events(
        first: HistoryPage?, reachingBackTo oldest: Int, read: (Int64) async throws -> HistoryPage?
    ) async rethrows -> [ProductEvent] {
        var events = first?.events ?? []
        var cursor = first?.nextCursor
        for _ in 0..<extraReads {
            guard let before = cursor, !reachesStart(of: oldest, in: events), let older = try await read(before) else { break }
            events += older.events
            cursor = older.nextCursor
        }
        return events
    }

    /// Whether `events` (newest first) reach back to the start of try `number` or beyond, so reading
    /// older history would add nothing to the tries from `number` on.
    static func reachesStart(of number: Int, in events: [ProductEvent]) -> Bool {
        for event in events.reversed() {
            guard case .stateChange(let change, _) = event.kind else { continue }
            return change.tryNumber < number || (change.tryNumber == number && change.to == .queued)
        }
        return false
    }

    /// The oldest try the page shows: of the newest `shown` tries, from the product's and its triggers'.
    static func oldestShown(product: DataProduct, triggers: [Trigger]) -> Int {
        let newest = max(product.tryNumber, triggers.map(\.tryNumber).max() ?? 0)
        return max(1, newest - shown + 1)
    }
}

/// What Fletcher's passback of a timed-out product says (`{"fletcher_timeout": {"phase", "limit_s",
/// "try"}}`, docs/RULES.md rule 24).
struct TimeoutNote: Equatable {
    var phase: DataProductState
    var limit: Double?
    var tryNumber: Int

    init(phase: DataProductState, limit: Double?, tryNumber: Int) {
        self.phase = phase
        self.limit = limit
        self.tryNumber = tryNumber
    }

    /// Reads a passback; nil unless it is Fletcher's timeout note.
    init?(_ passback: JSONValue?) {
        guard let passback, passback.text.contains("\"fletcher_timeout\""),
            case .object(let members) = passback.node, case .object(let note)? = members["fletcher_timeout"],
            case .string(let phaseText)? = note["phase"], let phase = DataProductState(rawValue: phaseText)
        else { return nil }
        self.phase = phase
        switch note["limit_s"] {
        case .integer(let value)?: limit = Double(value)
        case .number(let value)?: limit = value
        default: limit = nil
        }
        if case .integer(let value)? = note["try"] { tryNumber = value } else { tryNumber = 0 }
    }
}
