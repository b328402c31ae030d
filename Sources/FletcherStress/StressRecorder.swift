import Foundation
import Histogram
import Synchronization

/// Counts and latency histograms (HdrHistogram, microseconds) per request kind, shared by the workers.
final class StressRecorder: Sendable {
    struct Kind: Sendable {
        var histogram = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
        var ok = 0
        var failed = 0
    }

    private let kinds = Mutex<[String: Kind]>([:])
    private let failures = Mutex<[String]>([])
    /// Requests answered (any status) since the measured phase began.
    let measured = Atomic<Int>(0)
    let measuredFailures = Atomic<Int>(0)

    func record(_ kind: String, microseconds: UInt64, ok: Bool, failure: @autoclosure () -> String = "") {
        kinds.withLock { kinds in
            _ = kinds[kind, default: Kind()].histogram.record(max(1, microseconds))
            if ok { kinds[kind]!.ok += 1 } else { kinds[kind]!.failed += 1 }
        }
        if !ok {
            let message = failure()
            failures.withLock { if $0.count < 10 { $0.append("\(kind): \(message)") } }
        }
    }

    /// Counts a request of the measured phase (setup requests are recorded but not counted).
    func countMeasured(ok: Bool) -> Int {
        if !ok { measuredFailures.add(1, ordering: .relaxed) }
        return measured.add(1, ordering: .relaxed).newValue
    }

    var snapshot: [String: Kind] { kinds.withLock { $0 } }
    var failureSamples: [String] { failures.withLock { $0 } }
}

extension Duration {
    /// Whole microseconds (never negative), as the histograms record them.
    var microseconds: UInt64 {
        UInt64(max(0, components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000))
    }
}
