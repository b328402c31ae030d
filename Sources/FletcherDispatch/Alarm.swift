import Dispatch
import Synchronization

/// A timer a platform's loop sets before each wait, to be woken when its next trigger falls due or
/// its poll interval passes: one dispatch timer source per loop, set again on every turn (no task
/// per turn). Setting it replaces the time it was set for; it rings once per setting.
final class Alarm: Sendable {
    private let timer: Mutex<any DispatchSourceTimer>

    /// `ring` runs on a dispatch queue when the alarm goes off.
    init(ring: @escaping @Sendable () -> Void) {
        let timer = DispatchSource.makeTimerSource()
        timer.setEventHandler(handler: ring)
        timer.schedule(deadline: .distantFuture)
        timer.activate()
        self.timer = Mutex(timer)
    }

    /// Rings once, `delay` from now (on the system's monotonic clock), unless set again first.
    func set(after delay: Duration) {
        let (seconds, attoseconds) = delay.components
        let nanoseconds = max(0, seconds) * 1_000_000_000 + max(0, attoseconds) / 1_000_000_000
        timer.withLock { $0.schedule(deadline: .now() + .nanoseconds(Int(clamping: nanoseconds))) }
    }

    /// Does not ring until set again.
    func disarm() {
        timer.withLock { $0.schedule(deadline: .distantFuture) }
    }

    deinit {
        timer.withLock { $0.cancel() }
    }
}
