/// How Fletcher treats a compute platform's answer to a trigger, and when it tries again
/// (docs/RULES.md rules 17, 18 and 20).
/// Pure: the caller passes in the attempt, the jitter and the clock.
public enum DispatchPolicy {
    /// What to do after an attempt.
    public enum Outcome: Sendable, Hashable {
        /// 2xx: the platform has the job.
        case delivered
        /// Try again later; some answers (401, 403, 404, 405: a misconfigured endpoint) also open the
        /// platform's circuit at once.
        case retry(opensCircuit: Bool)
        /// Any other 4xx: the platform refuses this job; its product fails.
        case refused
    }

    /// The outcome of an HTTP status, or of no answer at all (nil: connection error or timeout).
    public static func outcome(status: Int?) -> Outcome {
        guard let status else { return .retry(opensCircuit: false) }
        switch status {
        case 200..<300: return .delivered
        case 401, 403, 404, 405: return .retry(opensCircuit: true)
        case 408, 409, 425, 429, 500..<600: return .retry(opensCircuit: false)
        default: return .refused
        }
    }

    /// The longest wait between attempts.
    public static let maximumBackoff: Double = 600

    /// Seconds to wait after failed attempt number `attempt` (1-based): 1 s × 2^(attempt−1), at most
    /// 10 minutes, spread by `jitter` (from −1 to 1) over ±20 %; or what `Retry-After` asked for.
    public static func backoff(attempt: Int, jitter: Double, retryAfter: Double? = nil) -> Double {
        if let retryAfter, retryAfter >= 0 { return min(retryAfter, maximumBackoff * 6) }
        let base = min(maximumBackoff, pow2(max(0, attempt - 1)))
        return base * (1 + 0.2 * min(1, max(-1, jitter)))
    }

    /// Consecutive failures after which a platform's circuit opens.
    public static let circuitThreshold = 5

    /// How long an open circuit waits before its next probe: 1 s doubled for each failed probe, at most a minute.
    public static func circuitPause(failedProbes: Int) -> Double {
        min(60, pow2(max(0, failedProbes)))
    }

    private static func pow2(_ exponent: Int) -> Double {
        exponent >= 30 ? Double(1 << 30) : Double(1 << exponent)
    }
}
