import CoreMetrics
import FletcherDispatch
public import FletcherDomain
public import FletcherHTTP
public import FletcherStore
import Foundation
public import Prometheus
import Synchronization

/// `/metrics`: everything counted in this process (swift-metrics into a swift-prometheus registry),
/// plus gauges read at scrape time: this process's pool use and open event streams, and, from the
/// database so that they hold across processes, the dispatcher's queue per platform, plans and
/// data products by state and pending retries and armed timeouts per compute type (the last two
/// counted at most every `countsInterval`, as it scans the tables).
public final class PrometheusExporter: MetricsExporter {
    public let registry = PrometheusCollectorRegistry()
    public let factory: PrometheusMetricsFactory
    let store: any Store
    let dispatched: Set<Compute>
    let countsInterval: Duration
    private let lastCounts = Mutex<ContinuousClock.Instant?>(nil)

    public init(store: any Store, dispatched: Set<Compute>, countsInterval: Duration = .seconds(30)) {
        var factory = PrometheusMetricsFactory(registry: registry)
        let fine: [Duration] = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(20),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
            .seconds(5), .seconds(10), .seconds(30), .seconds(60),
        ]
        factory.defaultDurationHistogramBuckets = fine
        self.factory = factory
        self.store = store
        self.dispatched = dispatched
        self.countsInterval = countsInterval
    }

    public func exposition() async -> String {
        await refreshDatabaseGauges()
        return registry.emitToString()
    }

    private func gauge(_ label: String, _ dimensions: [(String, String)] = [], _ value: Double) {
        Gauge(label: label, dimensions: dimensions, factory: factory).record(value)
    }

    func refreshDatabaseGauges() async {
        let pool = store.poolUsage.snapshot
        gauge("fletcher_db_pool_connections_in_use", [], Double(pool.inUse))
        gauge("fletcher_db_pool_waiting", [], Double(pool.waiting))
        gauge("fletcher_db_pool_capacity", [], Double(store.poolUsage.capacity))
        gauge("fletcher_live_streams", [], Double(store.changeFeed.openStreams))
        do {
            try await store.checkHealth()
            gauge("fletcher_db_up", [], 1)
        } catch {
            gauge("fletcher_db_up", [], 0)
            return
        }
        let now = Date()
        if let queues = try? await store.queueStatus(now: now) {
            let byCompute = Dictionary(uniqueKeysWithValues: queues.map { ($0.compute, $0) })
            for compute in Compute.allCases {
                let status = byCompute[compute]
                let labels = [("compute", compute.rawValue)]
                let pending = Double(status?.pending ?? 0)
                gauge("fletcher_dispatch_pending", labels, pending)
                gauge("fletcher_dispatch_undeliverable", labels, dispatched.contains(compute) ? 0 : pending)
                gauge("fletcher_dispatch_in_flight", labels, Double(status?.inFlight ?? 0))
                gauge(
                    "fletcher_dispatch_oldest_pending_age_seconds", labels,
                    status?.oldestPending.map { max(0, now.timeIntervalSince($0)) } ?? 0)
                gauge("fletcher_dispatch_circuit_open", labels, status?.circuitOpen == true ? 1 : 0)
                gauge("fletcher_dispatch_consecutive_failures", labels, Double(status?.consecutiveFailures ?? 0))
            }
        }
        if let hooks = try? await store.webhookQueueStatus() {
            for status in hooks {
                let labels = [("endpoint", status.endpoint)]
                gauge("fletcher_webhook_pending", labels, Double(status.pending))
                gauge(
                    "fletcher_webhook_oldest_pending_age_seconds", labels,
                    status.oldest.map { max(0, now.timeIntervalSince($0)) } ?? 0)
                gauge("fletcher_webhook_consecutive_failures", labels, Double(status.consecutiveFailures))
            }
        }
        let due = lastCounts.withLock { last in
            let clock = ContinuousClock.now
            guard last.map({ clock - $0 >= countsInterval }) ?? true else { return false }
            last = clock
            return true
        }
        if due, let counts = try? await store.stateCounts() {
            gauge("fletcher_datasets", [("state", "active")], Double(counts.activeDatasets))
            gauge("fletcher_datasets", [("state", "paused")], Double(counts.pausedDatasets))
            for state in DataProductState.allCases {
                gauge("fletcher_data_products", [("state", state.rawValue)], Double(counts.dataProducts[state] ?? 0))
            }
        }
        if due, let timers = try? await store.timerCounts() {
            for compute in Compute.allCases {
                let labels = [("compute", compute.rawValue)]
                gauge("fletcher_retries_pending", labels, Double(timers[compute]?.retries ?? 0))
                gauge("fletcher_timeouts_armed", labels, Double(timers[compute]?.timeouts ?? 0))
            }
        }
    }
}
