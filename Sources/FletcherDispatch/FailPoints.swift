import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Named places in the dispatcher where a crash test can make the process die on the spot
/// (`FLETCHER_FAILPOINTS=dispatch.after_claim=kill`): the only way to kill it exactly between two
/// steps that follow each other within microseconds. Inactive unless set.
public struct FailPoints: Sendable, Hashable {
    public enum Point: String, Sendable, CaseIterable {
        /// A claim has committed its leases; no request has been sent.
        case afterClaim = "dispatch.after_claim"
        /// A request has been answered; nothing about it has been recorded.
        case afterSend = "dispatch.after_send"
    }

    /// Points that kill the process (SIGKILL, so nothing is flushed or cleaned up).
    public var killAt: Set<Point>

    public init(killAt: Set<Point> = []) {
        self.killAt = killAt
    }

    /// Parses `point=kill[,point=kill…]`; nil when any part is not understood.
    public init?(parsing text: String) {
        var points = Set<Point>()
        for entry in text.split(separator: ",") {
            let parts = entry.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, parts[1] == "kill", let point = Point(rawValue: parts[0]) else {
                return nil
            }
            points.insert(point)
        }
        killAt = points
    }

    func hit(_ point: Point) {
        guard killAt.contains(point) else { return }
        kill(getpid(), SIGKILL)
    }
}
