import FletcherDomain
import FletcherStore
import Foundation
import Logging
import PostgresNIO

/// SQL on the `compute_platform` table: each platform's circuit, loaded and saved as
/// `DispatchPolicy.Circuit` (the transitions are the policy's). Its row is also the lock every
/// claim takes, so that the live leases counted are the live leases (across all processes).
enum PlatformQueries {
    /// Makes the platform's row if it has none yet (a closed circuit).
    static func ensure(_ compute: Compute, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query(
            "INSERT INTO compute_platform (compute) VALUES (\(compute.rawValue)) ON CONFLICT DO NOTHING", logger: logger)
    }

    /// The platform's circuit (closed when it has no row), its row locked until the transaction ends.
    static func lockCircuit(_ compute: Compute, _ connection: PostgresConnection, _ logger: Logger) async throws
        -> DispatchPolicy.Circuit
    {
        var circuit = DispatchPolicy.Circuit.closed
        for try await (failures, probes, openUntil) in try await connection.query(
            """
            SELECT consecutive_failures, failed_probes, open_until FROM compute_platform WHERE compute = \(compute.rawValue)
            FOR UPDATE
            """, logger: logger
        ).decode((Int32, Int32, PostgresTimestamp?).self) {
            circuit = DispatchPolicy.Circuit(consecutiveFailures: Int(failures), failedProbes: Int(probes), openUntil: openUntil?.date)
        }
        return circuit
    }

    /// Saves the platform's circuit. A row that already holds it is not written (nor locked), so
    /// the deliveries to a healthy platform do not queue behind each other on its row.
    static func save(
        _ circuit: DispatchPolicy.Circuit, of compute: Compute, _ connection: PostgresConnection, _ logger: Logger
    ) async throws {
        let failures = Int32(circuit.consecutiveFailures)
        let probes = Int32(circuit.failedProbes)
        let openUntil = circuit.openUntil?.postgres
        try await connection.query(
            """
            UPDATE compute_platform SET consecutive_failures = \(failures), failed_probes = \(probes), open_until = \(openUntil)
            WHERE compute = \(compute.rawValue)
                AND (consecutive_failures <> \(failures) OR failed_probes <> \(probes)
                    OR open_until IS DISTINCT FROM \(openUntil)::timestamptz)
            """, logger: logger)
    }

    /// Applies `event` to the platform's circuit at `now`, with the event of its opening or
    /// closing, if it does either, in the same transaction (docs/RULES.md rule 28); returns that event.
    static func record(
        _ event: DispatchPolicy.CircuitEvent, of compute: Compute, now: Date, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> [PlanEvent] {
        let current: DispatchPolicy.Circuit
        let next: DispatchPolicy.Circuit
        if event == .answered {
            guard let closed = try await close(compute, connection, logger) else { return [] }
            (current, next) = (closed, .closed)
        } else {
            current = try await lockCircuit(compute, connection, logger)
            next = current.after(event, at: now)
            try await save(next, of: compute, connection, logger)
        }
        guard let told = current.event(becoming: next, of: compute, at: now) else { return [] }
        try await EventQueries.record([told], connection, logger)
        return [told]
    }

    /// Closes the platform's circuit in one statement, returning what it was; nil when it was
    /// closed already, and then the row is neither written nor locked: the answers of a healthy
    /// platform do not queue behind each other on its row. A row changed by a transaction running
    /// meanwhile is waited for and read as that one leaves it.
    private static func close(_ compute: Compute, _ connection: PostgresConnection, _ logger: Logger) async throws
        -> DispatchPolicy.Circuit?
    {
        for try await (failures, probes, openUntil) in try await connection.query(
            """
            WITH old AS (
                SELECT compute, consecutive_failures, failed_probes, open_until FROM compute_platform
                WHERE compute = \(compute.rawValue) AND (consecutive_failures <> 0 OR failed_probes <> 0 OR open_until IS NOT NULL)
                FOR UPDATE
            )
            UPDATE compute_platform p SET consecutive_failures = 0, failed_probes = 0, open_until = NULL
            FROM old WHERE p.compute = old.compute
            RETURNING old.consecutive_failures, old.failed_probes, old.open_until
            """, logger: logger
        ).decode((Int32, Int32, PostgresTimestamp?).self) {
            return DispatchPolicy.Circuit(consecutiveFailures: Int(failures), failedProbes: Int(probes), openUntil: openUntil?.date)
        }
        return nil
    }

    /// Every platform's consecutive failures (for `/metrics`).
    static func failures(_ connection: PostgresConnection, _ logger: Logger) async throws -> [(compute: String, failures: Int)] {
        var failures: [(compute: String, failures: Int)] = []
        for try await (compute, count) in try await connection.query(
            "SELECT compute, consecutive_failures FROM compute_platform", logger: logger
        ).decode((String, Int32).self) {
            failures.append((compute, Int(count)))
        }
        return failures
    }
}
