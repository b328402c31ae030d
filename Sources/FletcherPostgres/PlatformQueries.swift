import FletcherDomain
import FletcherStore
import Foundation
import Logging
import PostgresNIO

/// SQL on the `compute_platform` table: the circuit breaker, and the lock every claim takes, so that
/// the live leases counted are the live leases (across all processes).
enum PlatformQueries {
    static func capacity(
        _ compute: Compute, maxInFlight: Int, now: Date, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> Int {
        try await connection.query(
            "INSERT INTO compute_platform (compute) VALUES (\(compute.rawValue)) ON CONFLICT DO NOTHING", logger: logger)
        var failures = 0
        var openUntil: PostgresTimestamp?
        for try await (count, until) in try await connection.query(
            "SELECT consecutive_failures, open_until FROM compute_platform WHERE compute = \(compute.rawValue) FOR UPDATE",
            logger: logger
        ).decode((Int32, PostgresTimestamp?).self) {
            failures = Int(count)
            openUntil = until
        }
        var live = 0
        for try await count in try await connection.query(
            """
            SELECT count(*) FROM dispatch_trigger
            WHERE compute = \(compute.rawValue) AND state IN ('pending', 'cancelled') AND lease_owner IS NOT NULL
                AND lease_expires_at > \(now.postgres)
            """, logger: logger
        ).decode(Int64.self) {
            live = Int(count)
        }
        if failures >= DispatchPolicy.circuitThreshold {
            guard (openUntil?.date ?? .distantPast) <= now else { return 0 }
            return max(0, 1 - live)
        }
        return max(0, maxInFlight - live)
    }

    /// The platform answered: its circuit closes. A healthy platform's row is not written (nor
    /// locked), so deliveries do not queue behind each other on it.
    static func recordAnswer(_ compute: Compute, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query(
            """
            UPDATE compute_platform SET consecutive_failures = 0, failed_probes = 0, open_until = NULL
            WHERE compute = \(compute.rawValue)
                AND (consecutive_failures <> 0 OR failed_probes <> 0 OR open_until IS NOT NULL)
            """, logger: logger)
    }

    static func recordFailure(
        _ compute: Compute, opensCircuit: Bool, now: Date, _ connection: PostgresConnection, _ logger: Logger
    ) async throws {
        var failures = 0
        var probes = 0
        for try await (count, failedProbes) in try await connection.query(
            "SELECT consecutive_failures, failed_probes FROM compute_platform WHERE compute = \(compute.rawValue) FOR UPDATE",
            logger: logger
        ).decode((Int32, Int32).self) {
            failures = Int(count)
            probes = Int(failedProbes)
        }
        let wasOpen = failures >= DispatchPolicy.circuitThreshold
        failures += 1
        if opensCircuit { failures = max(failures, DispatchPolicy.circuitThreshold) }
        var openUntil: PostgresTimestamp?
        if failures >= DispatchPolicy.circuitThreshold {
            if wasOpen { probes += 1 }
            openUntil = now.addingTimeInterval(DispatchPolicy.circuitPause(failedProbes: probes)).postgres
        }
        try await connection.query(
            """
            UPDATE compute_platform SET consecutive_failures = \(Int32(failures)), failed_probes = \(Int32(probes)),
                open_until = \(openUntil)
            WHERE compute = \(compute.rawValue)
            """, logger: logger)
    }
}
