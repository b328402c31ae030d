import FletcherDomain
public import FletcherHTTP
import FletcherJSON
import FletcherStore
import Foundation
import Hummingbird
import ServiceLifecycle

extension WebUI {
    /// How long after a change notice the page is told, gathering a burst of changes into one event.
    static let coalescing = Duration.milliseconds(100)
    /// A comment line this often keeps proxies from closing an idle stream.
    static let heartbeat = LiveTicks.heartbeat

    /// `/plan/{dataset_id}/events`: server-sent events for a plan page. The first event carries every
    /// state; each later one only what changed, within a fraction of a second of the commit (through
    /// the store's change feed, so changes made by other processes on PostgreSQL arrive too).
    func events(_ request: Request, context: some RequestContext) async throws -> Response {
        guard let id = datasetId(context),
            let initial = try await store.plan(id)
        else { return Response(status: .notFound) }
        let store = self.store
        let changes = store.changeFeed.subscribe(to: id)
        let body = ResponseBody { writer in
            var previous = LiveSnapshot(plan: initial)
            try await writer.write(ByteBuffer(string: previous.event(since: nil, now: Date())))
            for await tick in Self.merged(changes: changes) {
                switch tick {
                case .heartbeat:
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                case .changed:
                    guard let plan = try await store.plan(id) else { continue }
                    let current = LiveSnapshot(plan: plan)
                    try await writer.write(ByteBuffer(string: current.event(since: previous, now: Date())))
                    previous = current
                }
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .init("X-Accel-Buffering")!: "no"],
            body: body)
    }

    typealias Tick = LiveTick

    /// Change notices (a burst gathered into one) and heartbeats, as one sequence, which ends when
    /// the server shuts down gracefully (so open pages do not hold it up).
    static func merged(changes: AsyncStream<UUID>) -> AsyncStream<Tick> {
        LiveTicks.merged(changes: changes, coalescing: coalescing, heartbeat: heartbeat, shutdown: gracefulShutdown)
    }

    /// ServiceLifecycle's graceful shutdown, as `LiveTicks` watches for it.
    public static let gracefulShutdown: LiveTicks.ShutdownWatch = { operation, onShutdown in
        await withGracefulShutdownHandler {
            await operation()
        } onGracefulShutdown: {
            onShutdown()
        }
    }
}

/// What a live plan page shows, to send it the differences.
struct LiveSnapshot {
    var states: [UUID: DataProductState]
    /// The products with a try or a timer (the others have none to show).
    var timers: [UUID: Timers]
    var structure: String
    var paused: Bool
    /// The products shown late, and whether the dataset is (docs/RULES.md rule 27).
    var late: Set<UUID>
    var datasetLate: Bool
    var modifiedBy: String
    var lastModified: Date

    /// A product's try and timers, as the table's Try and Timer cells show them (docs/RULES.md rules 22–24).
    struct Timers: Equatable {
        var tryNumber = 0
        var retryAt: Date?
        var timeoutAt: Date?
        /// Fletcher's timeout passback on a product that is `failed`.
        var timedOut: TimeoutNote?

        static let none = Timers()

        init() {}

        init(_ product: DataProduct) {
            tryNumber = product.tryNumber
            retryAt = product.retryAt
            timeoutAt = product.timeoutAt
            timedOut = product.state == .failed ? TimeoutNote(product.passback) : nil
        }

        /// `{"try", "retry_at"?, "timeout_at"?, "timed_out"?: {"phase", "limit_s"?, "try"}}`: the whole of
        /// the product's timers, so a key left out is a timer it does not have (a big plan's first
        /// event names thousands of products).
        var payload: [String: Any] {
            var payload: [String: Any] = ["try": tryNumber]
            if let retryAt { payload["retry_at"] = RFC3339.string(retryAt) }
            if let timeoutAt { payload["timeout_at"] = RFC3339.string(timeoutAt) }
            if let timedOut {
                var note: [String: Any] = ["phase": timedOut.phase.rawValue, "try": timedOut.tryNumber]
                if let limit = timedOut.limit { note["limit_s"] = limit }
                payload["timed_out"] = note
            }
            return payload
        }
    }

    init(plan: Plan) {
        states = Dictionary(plan.dataProducts.map { ($0.id, $0.state) }, uniquingKeysWith: { _, last in last })
        var timers: [UUID: Timers] = [:]
        for product in plan.dataProducts where product.tryNumber != 0 || product.retryAt != nil || product.timeoutAt != nil {
            timers[product.id] = Timers(product)
        }
        self.timers = timers
        structure = PlanView.structure(plan)
        paused = plan.dataset.paused
        late = Set(plan.dataProducts.filter(\.isLate).map(\.id))
        datasetLate = plan.isLate
        modifiedBy = plan.dataset.modifiedBy
        lastModified = plan.lastModified
    }

    /// The products whose lateness differs from `previous`'s, by id (when nil, every late one):
    /// a big plan's products late together are named once, not in every event.
    func lateChanges(since previous: LiveSnapshot?) -> [String: Bool] {
        var changes: [String: Bool] = [:]
        for id in late where previous?.late.contains(id) != true { changes[id.lowercased] = true }
        for id in previous?.late.subtracting(late) ?? [] { changes[id.lowercased] = false }
        return changes
    }

    /// An SSE `plan` event: the states that differ from `previous` (all of them when nil), the tries
    /// and timers that differ (when nil, every product's that has one, and `full`: the others have
    /// none), counts, status, structure, the products whose lateness changed (when nil, the late ones)
    /// and whether the dataset is late, and the server's time `now` (the page's countdowns count by it).
    func event(since previous: LiveSnapshot?, now: Date) -> String {
        var changed: [String: String] = [:]
        for (id, state) in states where previous?.states[id] != state { changed[id.lowercased] = state.rawValue }
        var changedTimers: [String: Any] = [:]
        for (id, timers) in timers where previous?.timers[id] != timers { changedTimers[id.lowercased] = timers.payload }
        for id in previous?.timers.keys.filter({ timers[$0] == nil }) ?? [] { changedTimers[id.lowercased] = Timers.none.payload }
        var counts: [String: Int] = [:]
        for state in DataProductState.allCases { counts[state.rawValue] = 0 }
        for state in states.values { counts[state.rawValue, default: 0] += 1 }
        let payload: [String: Any] = [
            "states": changed, "timers": changedTimers, "full": previous == nil, "now": RFC3339.string(now),
            "counts": counts, "structure": structure, "paused": paused,
            "late": lateChanges(since: previous), "dataset_late": datasetLate,
            "modified_by": modifiedBy, "modified_date": RFC3339.string(lastModified),
            "modified_text": RFC3339.readable(lastModified),
        ]
        let data = (try? JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys])) ?? Data("{}".utf8)
        return "event: plan\ndata: " + String(decoding: data, as: UTF8.self) + "\n\n"
    }
}
