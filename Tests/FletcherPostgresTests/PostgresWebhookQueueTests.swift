import FletcherDomain
@testable import FletcherPostgres
import FletcherStore
import FletcherTestSupport
import Foundation
import PostgresNIO
import Synchronization
import Testing

/// The webhook queue across processes (docs/RULES.md rule 29): two stores on one database relay
/// and claim at once while events are written.
@Suite("PostgreSQL webhook queue")
struct PostgresWebhookQueueTests {
    /// What the workers claimed, and any breach of the queue's rules seen at a claim.
    final class Deliveries: Sendable {
        private struct State {
            var inFlight: [UUID: UUID] = [:]
            var claimed: [UUID] = []
            var sequences: [UUID: [Int64]] = [:]
            var breaches: [String] = []
        }
        private let state = Mutex(State())

        /// Claims made now: none of a dataset with one of its deliveries still in flight, and no
        /// more in flight than `maxInFlight`. A delivery leaves the flight before it is marked done,
        /// so the next of its dataset can be claimed only after it has left.
        func claimed(_ claims: [ClaimedDelivery], maxInFlight: Int) {
            state.withLock { state in
                for claim in claims {
                    let event = claim.delivery.event
                    guard let dataset = event.datasetId, let sequence = event.sequence else {
                        state.breaches.append("an event of no dataset: \(event.type)")
                        continue
                    }
                    if state.inFlight[dataset] != nil { state.breaches.append("two deliveries of \(dataset) in flight") }
                    state.inFlight[dataset] = event.id
                    state.claimed.append(event.id)
                    state.sequences[dataset, default: []].append(sequence)
                }
                if state.inFlight.count > maxInFlight { state.breaches.append("\(state.inFlight.count) in flight") }
            }
        }

        func landing(_ claim: ClaimedDelivery) {
            state.withLock { state in _ = claim.delivery.event.datasetId.map { state.inFlight[$0] = nil } }
        }

        var claimed: [UUID] { state.withLock { $0.claimed } }
        var sequences: [UUID: [Int64]] { state.withLock { $0.sequences } }
        var breaches: [String] { state.withLock { $0.breaches } }
    }

    final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        var isSet: Bool { value.load(ordering: .relaxed) }
        func set() { value.store(true, ordering: .relaxed) }
    }

    /// Returns once the feed gives every event committed so far (it waits for every transaction
    /// older than their own to end).
    func settled(_ store: PostgresStore) async throws {
        let xid = try await store.database.client.withConnection { connection in
            var xid: Int64 = 0
            for try await id in try await connection.query("SELECT pg_current_xact_id()::text::int8", logger: store.logger)
                .decode(Int64.self)
            {
                xid = id
            }
            return xid
        }
        try await eventually("the event feed past transaction \(xid)", timeout: .seconds(120)) {
            try await store.eventFeedEnd().order > xid
        }
    }

    @Test(.enabled(if: TestEngine.available.contains(.postgres)))
    func twoProcessesQueueAndDeliverEachEventOnceEachDatasetInOrder() async throws {
        let (first, second) = try await TestStores.pair(.postgres, isolated: true)
        let store = try #require(first as? PostgresStore)
        let stores = [first, second]
        let names = Names()
        let endpoint = "hook"
        let maxInFlight = 4
        _ = try await first.relayEvents(endpoint: endpoint, limit: 10, now: Date(), subscription: .everything)
        let datasets = (0..<6).map { names.id("dataset\($0)") }
        for (index, dataset) in datasets.enumerated() {
            let fixture = PlanFixture(names: names, dataset: "dataset\(index)").products("product\(index)")
            _ = try await first.apply(.submit(fixture.submission), to: dataset, by: "publisher")
        }
        let deliveries = Deliveries()
        let stop = Flag()
        try await withThrowingTaskGroup(of: Void.self) { workers in
            // Two workers in each process, each relaying a page and delivering what it claims, over and over.
            for (index, store) in stores.enumerated() {
                for worker in 0..<2 {
                    workers.addTask {
                        let owner = "process\(index)-worker\(worker)"
                        while !stop.isSet {
                            _ = try await store.relayEvents(endpoint: endpoint, limit: 7, now: Date(), subscription: .everything)
                            let claims = try await store.claimDeliveries(
                                endpoint: endpoint, maxInFlight: maxInFlight, owner: owner, leaseSeconds: 600, now: Date())
                            deliveries.claimed(claims, maxInFlight: maxInFlight)
                            for claim in claims {
                                deliveries.landing(claim)
                                #expect(try await store.markDeliveryDone(claim, owner: owner))
                            }
                            if claims.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
                        }
                    }
                }
            }
            // Meanwhile both processes pause and unpause every dataset, each dataset in turns.
            try await withThrowingTaskGroup(of: Void.self) { writers in
                for (index, dataset) in datasets.enumerated() {
                    writers.addTask {
                        for round in 0..<10 {
                            let store = stores[(index + round) % 2]
                            _ = try await store.apply(.pause, to: dataset, by: "operator")
                            _ = try await store.apply(.unpause, to: dataset, by: "operator")
                        }
                    }
                }
                try await writers.waitForAll()
            }
            try await settled(store)
            var expected: [UUID: [StoredEvent]] = [:]
            for dataset in datasets {
                var cursor = EventCursor.start
                while true {
                    let page = try await first.events(after: cursor, matching: EventFilter(datasetId: dataset), limit: 100)
                    expected[dataset, default: []] += page.events
                    if page.events.isEmpty { break }
                    cursor = page.next
                }
            }
            let count = expected.values.map(\.count).reduce(0, +)
            #expect(count >= datasets.count * 20)
            try await eventually("every event delivered", timeout: .seconds(120)) { deliveries.claimed.count >= count }
            stop.set()
            try await workers.waitForAll()
            // Each event once, each dataset's in sequence order.
            let claimed = deliveries.claimed
            #expect(claimed.count == count)
            #expect(Set(claimed) == Set(expected.values.flatMap { $0.map(\.id) }))
            for dataset in datasets {
                #expect(deliveries.sequences[dataset] == expected[dataset]?.compactMap(\.sequence))
            }
            #expect(deliveries.breaches.isEmpty, "\(deliveries.breaches.prefix(5))")
        }
        #expect(try await second.nextDeliveryDue(endpoint: endpoint) == nil)
        #expect(try await second.webhookQueueStatus().map(\.pending) == [0])
        // Delivered deliveries are removed, not kept.
        let rows = try await store.database.client.withConnection { connection in
            var rows: Int64 = -1
            for try await count in try await connection.query("SELECT count(*) FROM webhook_delivery", logger: store.logger)
                .decode(Int64.self)
            {
                rows = count
            }
            return rows
        }
        #expect(rows == 0)
    }
}
