import FletcherDomain
import FletcherStore
import Foundation
import GRDB

/// SQL on the `compute_platform` table: each platform's circuit, loaded and saved as
/// `DispatchPolicy.Circuit` (the transitions are the policy's).
enum PlatformQueries {
    /// Makes the platform's row if it has none yet (a closed circuit).
    static func ensure(_ compute: Compute, _ db: Database) throws {
        try db.execute(sql: "INSERT INTO compute_platform (compute) VALUES (?) ON CONFLICT DO NOTHING", arguments: [compute.rawValue])
    }

    /// The platform's circuit (closed when it has no row). The write transaction already excludes
    /// every other writer.
    static func circuit(_ compute: Compute, _ db: Database) throws -> DispatchPolicy.Circuit {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT consecutive_failures, failed_probes, open_until FROM compute_platform WHERE compute = ?",
                arguments: [compute.rawValue])
        else { return .closed }
        return DispatchPolicy.Circuit(
            consecutiveFailures: row[0], failedProbes: row[1], openUntil: (row[2] as Int64?).map(Date.init(microsecondsSince1970:)))
    }

    /// Saves the platform's circuit; a row that already holds it is not written.
    static func save(_ circuit: DispatchPolicy.Circuit, of compute: Compute, _ db: Database) throws {
        let openUntil = circuit.openUntil?.microsecondsSince1970
        try db.execute(
            sql: """
                UPDATE compute_platform SET consecutive_failures = ?1, failed_probes = ?2, open_until = ?3
                WHERE compute = ?4 AND (consecutive_failures IS NOT ?1 OR failed_probes IS NOT ?2 OR open_until IS NOT ?3)
                """,
            arguments: [circuit.consecutiveFailures, circuit.failedProbes, openUntil, compute.rawValue])
    }

    /// Applies `event` to the platform's circuit at `now`, with the event of its opening or
    /// closing, if it does either, in the same transaction (docs/RULES.md rule 28); returns that event.
    static func record(_ event: DispatchPolicy.CircuitEvent, of compute: Compute, now: Date, _ db: Database) throws -> [PlanEvent] {
        let current = try circuit(compute, db)
        let next = current.after(event, at: now)
        try save(next, of: compute, db)
        guard let told = current.event(becoming: next, of: compute, at: now) else { return [] }
        try EventQueries.insert([told], db)
        return [told]
    }

    /// Every platform's consecutive failures (for `/metrics`).
    static func failures(_ db: Database) throws -> [(compute: String, failures: Int)] {
        try Row.fetchAll(db, sql: "SELECT compute, consecutive_failures FROM compute_platform").map { row in (row[0], row[1]) }
    }
}
