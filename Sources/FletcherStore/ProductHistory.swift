public import FletcherDomain
public import Foundation

/// One entry of a data product's history: a state change, or an attempt to deliver its trigger.
public struct ProductEvent: Sendable, Hashable {
    /// Increases with every event stored; the history's cursor.
    public var sequence: Int64
    public var at: Date
    public var kind: Kind

    public enum Kind: Sendable, Hashable {
        /// The state changed, by `actor` (a service name, or `fletcher` for the rules and dispatch).
        case stateChange(StateTransition, actor: String)
        case delivery(DeliveryAttempt)
    }

    public init(sequence: Int64, at: Date, kind: Kind) {
        self.sequence = sequence
        self.at = at
        self.kind = kind
    }
}

/// One attempt to hand a trigger, or a cancel of one, to its compute platform.
public struct DeliveryAttempt: Sendable, Hashable {
    public var triggerId: UUID
    public var attempt: Int
    /// The platform's HTTP status, when it answered.
    public var httpStatus: Int?
    /// What went wrong, when something did.
    public var error: String?
    public var durationMilliseconds: Int
    /// Which Fletcher process sent it.
    public var process: String
    /// An attempt to cancel the try of `triggerId` (docs/RULES.md rule 25), not to start it.
    public var isCancel: Bool

    public init(
        triggerId: UUID, attempt: Int, httpStatus: Int?, error: String?, durationMilliseconds: Int, process: String,
        isCancel: Bool = false
    ) {
        self.triggerId = triggerId
        self.attempt = attempt
        self.httpStatus = httpStatus
        self.error = error
        self.durationMilliseconds = durationMilliseconds
        self.process = process
        self.isCancel = isCancel
    }
}

/// A page of history, newest first.
public struct HistoryPage: Sendable, Hashable {
    public var events: [ProductEvent]
    /// Pass as `before` for the next (older) page; nil on the last page.
    public var nextCursor: Int64?

    public init(events: [ProductEvent], nextCursor: Int64?) {
        self.events = events
        self.nextCursor = nextCursor
    }

    /// Builds a page from up to `limit + 1` events fetched newest first.
    public init(fetched: [ProductEvent], limit: Int) {
        events = Array(fetched.prefix(limit))
        nextCursor = fetched.count > limit ? events.last?.sequence : nil
    }
}
