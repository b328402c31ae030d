import FletcherDomain
import FletcherStore
import Foundation
import GRDB

/// SQL on the `compute_platform` table: the circuit breaker, and the lock claims take.
enum PlatformQueries {
    /// How many triggers may be leased now: `maxInFlight` less the live leases, or one probe at a
    /// time once an open circuit's pause is over.
    static func capacity(_ compute: Compute, maxInFlight: Int, now: Date, _ db: Database) throws -> Int {
        try db.execute(sql: "INSERT INTO compute_platform (compute) VALUES (?) ON CONFLICT DO NOTHING", arguments: [compute.rawValue])
        let row = try Row.fetchOne(
            db, sql: "SELECT consecutive_failures, open_until FROM compute_platform WHERE compute = ?", arguments: [compute.rawValue])!
        let live = try Int.fetchOne(
            db,
            sql: """
                SELECT count(*) FROM dispatch_trigger
                WHERE compute = ? AND state IN ('pending', 'cancelled') AND lease_owner IS NOT NULL AND lease_expires_at > ?
                """, arguments: [compute.rawValue, now.microsecondsSince1970]) ?? 0
        let failures: Int = row[0]
        if failures >= DispatchPolicy.circuitThreshold {
            let openUntil: Int64? = row[1]
            guard (openUntil ?? 0) <= now.microsecondsSince1970 else { return 0 }
            return max(0, 1 - live)
        }
        return max(0, maxInFlight - live)
    }

    /// The platform answered: its circuit closes.
    static func recordAnswer(_ compute: Compute, _ db: Database) throws {
        try db.execute(
            sql: """
                UPDATE compute_platform SET consecutive_failures = 0, failed_probes = 0, open_until = NULL
                WHERE compute = ? AND (consecutive_failures <> 0 OR failed_probes <> 0 OR open_until IS NOT NULL)
                """,
            arguments: [compute.rawValue])
    }

    /// The platform failed once more; past the threshold (or at once) its circuit opens, for longer
    /// after each failed probe.
    static func recordFailure(_ compute: Compute, opensCircuit: Bool, now: Date, _ db: Database) throws {
        let row = try Row.fetchOne(
            db, sql: "SELECT consecutive_failures, failed_probes FROM compute_platform WHERE compute = ?",
            arguments: [compute.rawValue])
        let wasOpen = (row?[0] as Int? ?? 0) >= DispatchPolicy.circuitThreshold
        var failures = (row?[0] as Int? ?? 0) + 1
        if opensCircuit { failures = max(failures, DispatchPolicy.circuitThreshold) }
        var probes = row?[1] as Int? ?? 0
        var openUntil: Int64?
        if failures >= DispatchPolicy.circuitThreshold {
            if wasOpen { probes += 1 }
            openUntil = now.addingTimeInterval(DispatchPolicy.circuitPause(failedProbes: probes)).microsecondsSince1970
        }
        try db.execute(
            sql: "UPDATE compute_platform SET consecutive_failures = ?, failed_probes = ?, open_until = ? WHERE compute = ?",
            arguments: [failures, probes, openUntil, compute.rawValue])
    }
}
