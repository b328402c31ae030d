public import FletcherDomain
public import Foundation

/// How one compute platform's share of the trigger queue stands, across all processes: what
/// `/metrics` reports for the dispatcher.
public struct DispatchQueueStatus: Sendable, Hashable {
    public var compute: Compute
    /// Triggers not yet delivered (leased or waiting).
    public var pending: Int
    /// Triggers leased right now: requests open at the platform, or about to be.
    public var inFlight: Int
    /// When the oldest pending trigger was written, if there is one.
    public var oldestPending: Date?
    /// Failures in a row; the circuit is open from `DispatchPolicy.circuitThreshold` on.
    public var consecutiveFailures: Int

    public init(compute: Compute, pending: Int, inFlight: Int, oldestPending: Date?, consecutiveFailures: Int) {
        self.compute = compute
        self.pending = pending
        self.inFlight = inFlight
        self.oldestPending = oldestPending
        self.consecutiveFailures = consecutiveFailures
    }

    public var circuitOpen: Bool { consecutiveFailures >= DispatchPolicy.circuitThreshold }

    /// Merges per-platform rows read from the trigger table and from the platform table.
    public static func merge(
        queues: [(compute: String, pending: Int, inFlight: Int, oldest: Date?)], failures: [(compute: String, failures: Int)]
    ) -> [DispatchQueueStatus] {
        var byCompute: [Compute: DispatchQueueStatus] = [:]
        for queue in queues {
            guard let compute = Compute(rawValue: queue.compute) else { continue }
            byCompute[compute] = DispatchQueueStatus(
                compute: compute, pending: queue.pending, inFlight: queue.inFlight, oldestPending: queue.oldest, consecutiveFailures: 0)
        }
        for platform in failures {
            guard let compute = Compute(rawValue: platform.compute) else { continue }
            byCompute[compute, default: DispatchQueueStatus(
                compute: compute, pending: 0, inFlight: 0, oldestPending: nil, consecutiveFailures: 0)]
                .consecutiveFailures = platform.failures
        }
        return byCompute.values.sorted { $0.compute.rawValue < $1.compute.rawValue }
    }
}
