import Foundation
import Synchronization

/// The webhook receiver's view of successes: when each worker sent a product's `success` (oldest
/// first per product) and which `data_product.succeeded` webhooks have arrived, deduplicated by
/// their `webhook-id` (a retried delivery carries the same one).
final class WebhookBoard: Sendable {
    private struct State {
        var sent: [String: [ContinuousClock.Instant]] = [:]
        var pending = 0
        var seen: Set<String> = []
    }

    private let state = Mutex(State())
    let recorder: StressRecorder
    /// `data_product.succeeded` webhooks that arrived with no success sent for their product.
    let unexpected = Atomic<Int>(0)

    init(recorder: StressRecorder) {
        self.recorder = recorder
    }

    /// A worker is about to send the success of `key` (`TriggerBoard.key`): its webhook's latency
    /// counts from now.
    func sending(_ key: String) {
        let now = ContinuousClock.now
        state.withLock { state in
            state.sent[key, default: []].append(now)
            state.pending += 1
        }
    }

    /// The success of `key` was refused: no webhook is to come for it.
    func refused(_ key: String) {
        state.withLock { state in
            guard state.sent[key]?.popLast() != nil else { return }
            state.pending -= 1
            if state.sent[key]?.isEmpty == true { state.sent[key] = nil }
        }
    }

    /// The receiver got the `data_product.succeeded` webhook `id` for `key`.
    func arrived(id: String, key: String) {
        let now = ContinuousClock.now
        let since: ContinuousClock.Instant?? = state.withLock { state in
            guard state.seen.insert(id).inserted else { return .some(nil) }
            guard var queue = state.sent[key], !queue.isEmpty else { return nil }
            let first = queue.removeFirst()
            state.sent[key] = queue.isEmpty ? nil : queue
            state.pending -= 1
            return first
        }
        switch since {
        case .some(.some(let since)): recorder.record("webhook latency", microseconds: (now - since).microseconds, ok: true)
        case .none: unexpected.add(1, ordering: .relaxed)
        case .some(.none): break  // a redelivery
        }
    }

    /// Successes sent whose webhook has not arrived yet.
    var pending: Int { state.withLock { $0.pending } }

    /// Waits until every success sent has had its webhook, or `timeout` passed; the successes
    /// still waiting.
    func drain(timeout: Duration) async -> Int {
        let deadline = ContinuousClock.now + timeout
        while pending > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        return pending
    }
}
