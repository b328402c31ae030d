import FletcherDomain
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Who a write's change notification comes from, and whether it is sent at all.
///
/// A notification costs every write far more than its few bytes: PostgreSQL commits notifying
/// transactions one at a time (each holds a database-wide lock through its commit, fsync included,
/// so they cannot share a WAL flush), then wakes every listener. A process alone on its database
/// has nobody to tell (it announces its own commits to its own feed directly), so it sends none:
/// `sent` is what `ChangeListeners.othersPresent` says.
struct ChangeNotice: Sendable {
    /// The writing store's instance id, the first word of the payload (its listener skips its echo).
    var sender: UUID
    var sent: Bool

    /// The payload announcing a change of `datasetId`.
    func payload(_ datasetId: UUID) -> String { sender.lowercased + " " + datasetId.lowercased }
}

/// Whether another Fletcher process listens for change notifications on this database.
///
/// Each store's listener connection names itself (`applicationName`); every `checkInterval` it
/// asks PostgreSQL whether another session on the database has that name, and it says hello on
/// the channel (a payload of its instance id alone) each time it starts listening. A hello makes
/// the others notify at once; a check can turn notifications off once nobody else is there. Until
/// a check has answered, or while the listener is not connected, others are assumed present (a
/// notification too many costs time, one too few a stale live page).
///
/// A write made just before another process's hello reached this one is not announced to it: the
/// newcomer tells its own feed that every dataset may have changed once `resyncDelay` has passed
/// (`PlanChangeFeed.resync`).
final class ChangeListeners: Sendable {
    /// The `application_name` of a listening connection.
    static let applicationName = "fletcher listener"
    static let checkInterval = Duration.seconds(1)
    /// After starting to listen, when the feed's subscribers are told to look again.
    static let resyncDelay = Duration.seconds(2)

    /// Whether another listener exists, per PostgreSQL; the whole question, asked on the listener's
    /// own connection (whose `pg_backend_pid()` is excluded).
    static let othersQuery: PostgresQuery = """
        SELECT EXISTS (
            SELECT 1 FROM pg_stat_activity
            WHERE datname = current_database() AND application_name = \(applicationName) AND pid <> pg_backend_pid()
        )
        """

    private struct State {
        /// Nil: not known (no check answered since the listener connected).
        var othersPresent: Bool?
        /// Hellos heard since start: a check asked before the latest hello cannot say nobody is there.
        var hellos: UInt64 = 0
    }
    private let state = Mutex(State())

    init() {}

    /// Whether writes should notify: true unless a check found nobody else listening.
    var othersPresent: Bool { state.withLock { $0.othersPresent ?? true } }

    /// Another process started listening.
    func heardHello() {
        state.withLock {
            $0.hellos &+= 1
            $0.othersPresent = true
        }
    }

    /// A check is asked; pass what this returns to `checked`.
    func checking() -> UInt64 { state.withLock { $0.hellos } }

    /// A check's answer, asked when `checking` returned `ticket`: an answer of nobody is dropped
    /// when a hello came after it was asked.
    func checked(othersPresent: Bool, ticket: UInt64) {
        state.withLock {
            if othersPresent || $0.hellos == ticket { $0.othersPresent = othersPresent }
        }
    }

    /// The listener's connection is gone: nothing is known until it is back and has checked.
    func lost() { state.withLock { $0.othersPresent = nil } }

    /// Every `checkInterval`, asks on `connection` whether another process listens, until cancelled
    /// or a check fails (then others are assumed present until the listener reconnects).
    func watch(_ connection: PostgresConnection, _ logger: Logger) async {
        do {
            while true {
                let ticket = checking()
                for try await present in try await connection.query(Self.othersQuery, logger: logger).decode(Bool.self) {
                    checked(othersPresent: present, ticket: ticket)
                }
                try await Task.sleep(for: Self.checkInterval)
            }
        } catch {
            lost()
            if !Task.isCancelled {
                logger.warning("cannot tell whether other processes listen; notifying them all", metadata: ["error": "\(error)"])
            }
        }
    }
}
