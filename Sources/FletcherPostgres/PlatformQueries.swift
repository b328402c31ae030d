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

    /// Applies `event` to the platform's circuit at `now`: read (and locked) first only when the new
    /// circuit depends on it.
    static func record(
        _ event: DispatchPolicy.CircuitEvent, of compute: Compute, now: Date, _ connection: PostgresConnection, _ logger: Logger
    ) async throws {
        let current = try await event.readsCircuit ? lockCircuit(compute, connection, logger) : .closed
        try await save(current.after(event, at: now), of: compute, connection, logger)
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
