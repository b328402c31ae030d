import FletcherDomain
import FletcherJSON
import Foundation
import Logging
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

    /// The payload of `sender`'s hello, said when its listener starts listening.
    static func hello(from sender: UUID) -> String { sender.lowercased }

    /// The payload of `sender`'s heartbeat (`ChangeListeners.beatDue`): its second word is no dataset
    /// id, so every listener ignores it but for having heard something.
    static func heartbeat(from sender: UUID) -> String { sender.lowercased + " " + heartbeatWord }
    static let heartbeatWord = "heartbeat"
}

/// Whether another Fletcher process listens for change notifications on this database.
///
/// Each store's listener connection names itself (`applicationName`) and says hello on the channel
/// (a payload of its instance id alone) each time it starts listening. Every `checkInterval` the
/// store asks PostgreSQL (an ordinary store call) whether a session other than its own listener
/// has that name. A hello makes the others notify at once; a check can turn notifications off once
/// nobody else is there. Until a check has answered since the listener connected, or while it is
/// not connected, others are assumed present (a notification too many costs time, one too few a
/// stale live page).
///
/// A write made just before another process's hello reached this one is not announced to it: the
/// newcomer tells its own feed that every dataset may have changed once `resyncDelay` has passed
/// (`PlanChangeFeed.resync`).
///
/// A listening connection whose network path went silent (a firewall or NAT that forgot it, a peer
/// gone without a reset) never fails: it only stops hearing. So a listener that heard nothing for
/// `quietLimit` (5 s) has a heartbeat sent on the channel (through the pool); one that does not
/// hear even that within `heartbeatWait` (5 s) of its commit is taken for dead, and its connection
/// is closed for the listener to connect anew.
///
/// A store that does not listen (behind a transaction pooler with no `DATABASE_LISTEN_URL`) hears
/// nobody: it checks all the same, every `checkInterval`, so that its writes notify the processes
/// that do listen; and it tells its own feed every `pollInterval` that every dataset may have changed.
final class ChangeListeners: Sendable {
    /// The `application_name` of a listening connection.
    static let applicationName = "fletcher listener"
    static let checkInterval = Duration.seconds(1)
    /// After starting to listen, when the feed's subscribers are told to look again.
    static let resyncDelay = Duration.seconds(2)
    /// How often a store that does not listen has its live pages look again.
    static let pollInterval = Duration.seconds(2)
    /// A listener that heard nothing this long has a heartbeat sent.
    let quietLimit: Duration
    /// A listener that does not hear its heartbeat this long after it was sent is taken for dead.
    let heartbeatWait: Duration
    /// Whether this store listens; if not, its checks exclude no session.
    let listens: Bool

    /// What a check was asked with: the hellos heard so far and this store's listening session.
    struct Ticket: Equatable {
        var hellos: UInt64
        var listener: Int32
    }

    private struct State {
        /// Nil: not known (no check answered since the listener connected).
        var othersPresent: Bool?
        /// Hellos heard since start: a check asked before the latest hello cannot say nobody is there.
        var hellos: UInt64 = 0
        /// This store's listening session (its backend's process id), while it listens.
        var listener: Int32?
        /// Sessions listened on so far.
        var sessions = 0
        /// When the listener last heard anything (or started listening).
        var heardAt: ContinuousClock.Instant?
        /// When a heartbeat not heard yet was sent.
        var beatSentAt: ContinuousClock.Instant?
        /// Notifications heard so far (a heartbeat heard before its sending returned is no silence).
        var heardCount: UInt64 = 0
    }
    private let state = Mutex(State())

    init(listens: Bool = true, quietLimit: Duration = .seconds(5), heartbeatWait: Duration = .seconds(5)) {
        self.listens = listens
        self.quietLimit = quietLimit
        self.heartbeatWait = heartbeatWait
    }

    /// Whether writes should notify: true unless a check found nobody else listening.
    var othersPresent: Bool { state.withLock { $0.othersPresent ?? true } }

    /// How many sessions this store has listened on so far.
    var sessions: Int { state.withLock { $0.sessions } }

    /// Whether this process's listener is listening now.
    var isListening: Bool { state.withLock { $0.listener != nil } }

    /// This store listens, on the session of backend `pid`.
    func listening(on pid: Int32, at now: ContinuousClock.Instant = .now) {
        state.withLock {
            $0.sessions += 1
            $0.listener = pid
            $0.othersPresent = nil
            $0.heardAt = now
            $0.beatSentAt = nil
        }
    }

    /// The listener heard a notification, any: its connection carries them.
    func heard(at now: ContinuousClock.Instant = .now) {
        state.withLock {
            $0.heardAt = now
            $0.beatSentAt = nil
            $0.heardCount &+= 1
        }
    }

    /// How many notifications the listener has heard: passed to `beatSent`.
    var heardCount: UInt64 { state.withLock { $0.heardCount } }

    /// Whether a heartbeat is to be sent: the listener listens, has heard nothing for `quietLimit`,
    /// and no heartbeat is on its way.
    func beatDue(at now: ContinuousClock.Instant) -> Bool {
        state.withLock { state in
            guard state.listener != nil, state.beatSentAt == nil, let heardAt = state.heardAt else { return false }
            return now - heardAt >= quietLimit
        }
    }

    /// A heartbeat was committed at `now`, sent when the listener had heard `heardBefore`
    /// notifications: if it has heard any since (the heartbeat itself, maybe), none is awaited.
    func beatSent(at now: ContinuousClock.Instant, heardBefore: UInt64) {
        state.withLock { state in
            guard state.listener != nil, state.beatSentAt == nil, state.heardCount == heardBefore else { return }
            state.beatSentAt = now
        }
    }

    /// Whether the listener is deaf: it has not heard the heartbeat sent `heartbeatWait` ago.
    func isDeaf(at now: ContinuousClock.Instant) -> Bool {
        state.withLock { state in
            guard state.listener != nil, let sent = state.beatSentAt else { return false }
            return now - sent >= heartbeatWait
        }
    }

    /// The listener's connection is gone: nothing is known until it is back and has checked.
    func lost() {
        state.withLock {
            $0.listener = nil
            $0.othersPresent = nil
            $0.heardAt = nil
            $0.beatSentAt = nil
        }
    }

    /// Another process started listening.
    func heardHello() {
        state.withLock {
            $0.hellos &+= 1
            $0.othersPresent = true
        }
    }

    /// A check to ask now (pass it to `checked` with the answer); nil while this store's listener is
    /// not listening. A store that never listens asks with no session of its own (process id 0).
    func checking() -> Ticket? {
        state.withLock { state in (listens ? state.listener : 0).map { Ticket(hellos: state.hellos, listener: $0) } }
    }

    /// A check's answer. Dropped when the listener changed since it was asked, and an answer of
    /// nobody also when a hello came since.
    func checked(othersPresent: Bool, ticket: Ticket) {
        state.withLock {
            guard (listens ? $0.listener : 0) == ticket.listener, othersPresent || $0.hellos == ticket.hellos else { return }
            $0.othersPresent = othersPresent
        }
    }

    /// Every `checkInterval`, asks `othersListen` (given this store's listening session) whether
    /// another process listens, until cancelled. A check that fails changes nothing (a lost database
    /// loses the listener too).
    func watch(_ logger: Logger, othersListen: (Int32) async throws -> Bool) async {
        while !Task.isCancelled {
            if let ticket = checking() {
                do {
                    checked(othersPresent: try await othersListen(ticket.listener), ticket: ticket)
                } catch {
                    logger.debug("cannot tell whether other processes listen", metadata: ["error": "\(PostgresDatabase.cause(of: error))"])
                }
            }
            try? await Task.sleep(for: Self.checkInterval)
        }
    }

    /// Every `interval`, sends a heartbeat through `beat` when one is due, and calls `deaf` when the
    /// listener did not hear it in time, until cancelled. A heartbeat that cannot be sent (the
    /// pool's connections fail too) judges nothing.
    func watchHearing(
        _ logger: Logger, every interval: Duration = checkInterval, beat: () async throws -> Void, deaf: () -> Void
    ) async {
        while !Task.isCancelled {
            if isDeaf(at: .now) {
                logger.warning("the change listener did not hear its own heartbeat: connecting it anew")
                lost()
                deaf()
            } else if beatDue(at: .now) {
                do {
                    let heardBefore = heardCount
                    try await beat()
                    beatSent(at: .now, heardBefore: heardBefore)
                } catch {
                    logger.debug("cannot send the change listener's heartbeat", metadata: ["error": "\(PostgresDatabase.cause(of: error))"])
                }
            }
            try? await Task.sleep(for: interval)
        }
    }
}
