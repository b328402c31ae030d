public import Foundation

/// How Fletcher treats a compute platform's answer to a trigger, when it tries again, when it gives
/// up, and what each result does to the platform's circuit (docs/RULES.md rules 17–20).
/// Pure: values in, new values out; the caller passes in the attempt, the jitter and the time, and
/// the stores only load and save the rows these values describe.
public enum DispatchPolicy {
    /// What an HTTP answer means.
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

    /// What an answer to a cancel means (docs/RULES.md rule 25): 404 (the platform does not know
    /// the job) and 409 (it has already ended) end the cancel as a 2xx does; otherwise as a trigger's.
    public static func cancelOutcome(status: Int?) -> Outcome {
        if status == 404 || status == 409 { return .delivered }
        return outcome(status: status)
    }

    // MARK: backoff (rule 18)

    /// The longest wait between attempts.
    public static let maximumBackoff: Double = 600

    /// Seconds to wait after failed attempt number `attempt` (1-based): 1 s × 2^(attempt−1), at most
    /// 10 minutes, spread by `jitter` (from −1 to 1) over ±20 %; or what `Retry-After` asked for.
    public static func backoff(attempt: Int, jitter: Double, retryAfter: Double? = nil) -> Double {
        if let retryAfter, retryAfter >= 0 { return min(retryAfter, maximumBackoff * 6) }
        let base = min(maximumBackoff, pow2(max(0, attempt - 1)))
        return base * (1 + 0.2 * min(1, max(-1, jitter)))
    }

    // MARK: what becomes of a trigger (rules 17–19)

    /// A platform's limits on one trigger (`max_attempts`, `max_age_s`).
    public struct Limits: Sendable, Hashable {
        public var maxAttempts: Int
        /// Seconds from the trigger's making after which no attempt is made.
        public var maxAge: Double

        public init(maxAttempts: Int, maxAge: Double) {
            self.maxAttempts = maxAttempts
            self.maxAge = maxAge
        }
    }

    /// Why a trigger is given up, and what its product's passback says.
    public struct GiveUp: Sendable, Hashable {
        public enum Reason: Sendable, Hashable {
            /// Out of attempts or too old.
            case exhausted
            /// The platform refused the job.
            case refused
        }

        public var reason: Reason
        /// The passback's `error`.
        public var error: String
        /// Attempts that reached the sending stage (the passback's `attempts`).
        public var attemptsMade: Int

        public init(reason: Reason, error: String, attemptsMade: Int) {
            self.reason = reason
            self.error = error
            self.attemptsMade = attemptsMade
        }
    }

    /// What to do with a claimed trigger after an attempt.
    public enum Decision: Sendable, Hashable {
        /// The platform has it: the trigger ends `delivered`.
        case delivered
        /// The trigger waits until `at`, then is sent again.
        case retry(at: Date, opensCircuit: Bool)
        /// The trigger ends `failed` and its product fails.
        case giveUp(GiveUp)
    }

    /// The give-up before sending: the claim's attempt number is past `maxAttempts` (its last attempt
    /// died with its process), or the trigger is older than `maxAge`. Nil: send it.
    public static func giveUpBeforeSending(attempt: Int, createdAt: Date, now: Date, limits: Limits) -> GiveUp? {
        if attempt > limits.maxAttempts {
            return GiveUp(reason: .exhausted, error: "max_attempts (\(limits.maxAttempts)) exhausted", attemptsMade: attempt - 1)
        }
        if now.timeIntervalSince(createdAt) > limits.maxAge {
            return GiveUp(reason: .exhausted, error: "max_age_s (\(Int(limits.maxAge))) exceeded", attemptsMade: attempt - 1)
        }
        return nil
    }

    /// What follows attempt number `attempt` of a trigger made at `createdAt`, answered at `now` with
    /// `status` (nil: no answer, `error` says why) and maybe a `Retry-After` of `retryAfter` seconds:
    /// delivered; retried after the backoff; or given up when refused, when this was the last attempt
    /// allowed, or when the next one would come past the trigger's maximum age.
    /// A cancel's answer is read by `cancelOutcome`.
    public static func decide(
        status: Int?, error: String?, retryAfter: Double?, attempt: Int, createdAt: Date, now: Date, limits: Limits, jitter: Double,
        isCancel: Bool = false
    ) -> Decision {
        switch isCancel ? cancelOutcome(status: status) : outcome(status: status) {
        case .delivered:
            return .delivered
        case .refused:
            return .giveUp(GiveUp(reason: .refused, error: "refused by the compute platform", attemptsMade: attempt))
        case .retry(let opensCircuit):
            let retryAt = now.addingTimeInterval(backoff(attempt: attempt, jitter: jitter, retryAfter: retryAfter))
            if attempt >= limits.maxAttempts || retryAt.timeIntervalSince(createdAt) > limits.maxAge {
                let why = error ?? "HTTP \(status ?? 0)"
                return .giveUp(GiveUp(reason: .exhausted, error: "gave up after \(attempt) attempts: \(why)", attemptsMade: attempt))
            }
            return .retry(at: retryAt, opensCircuit: opensCircuit)
        }
    }

    // MARK: the circuit breaker (rule 20)

    /// Consecutive failures after which a platform's circuit opens.
    public static let circuitThreshold = 5

    /// How long an open circuit waits before its next probe: 1 s doubled for each failed probe, at most a minute.
    public static func circuitPause(failedProbes: Int) -> Double {
        min(60, pow2(max(0, failedProbes)))
    }

    /// A platform's circuit, as its `compute_platform` row stores it.
    public struct Circuit: Sendable, Hashable {
        /// Failed attempts in a row (retried ones); the circuit is open from `circuitThreshold` on.
        public var consecutiveFailures: Int
        /// Probes that failed since the circuit opened.
        public var failedProbes: Int
        /// While open: when the next probe may be sent.
        public var openUntil: Date?

        public init(consecutiveFailures: Int, failedProbes: Int, openUntil: Date?) {
            self.consecutiveFailures = consecutiveFailures
            self.failedProbes = failedProbes
            self.openUntil = openUntil
        }

        /// A platform that answers: its row as first written.
        public static let closed = Circuit(consecutiveFailures: 0, failedProbes: 0, openUntil: nil)

        public var isOpen: Bool { consecutiveFailures >= circuitThreshold }

        /// How many more triggers may be leased at `now`, with `liveLeases` held by every process:
        /// `allowance` less those.
        public func capacity(maxInFlight: Int, liveLeases: Int, now: Date) -> Int {
            max(0, allowance(maxInFlight: maxInFlight, now: now) - liveLeases)
        }

        /// How many leases may be live at `now`: `maxInFlight`; while open, none until the pause
        /// is over, then one probe at a time.
        public func allowance(maxInFlight: Int, now: Date) -> Int {
            guard isOpen else { return maxInFlight }
            return (openUntil ?? .distantPast) <= now ? 1 : 0
        }

        /// The circuit after `event` at `now`. An answer closes it, whatever it was. A failure counts
        /// one more (the threshold at once when it `opensCircuit`); from the threshold on the circuit
        /// is open for `circuitPause`, longer after each failure of a probe (a failure while open).
        public func after(_ event: CircuitEvent, at now: Date) -> Circuit {
            switch event {
            case .answered:
                return .closed
            case .failed(let opensCircuit):
                var next = self
                next.consecutiveFailures += 1
                if opensCircuit { next.consecutiveFailures = max(next.consecutiveFailures, circuitThreshold) }
                next.openUntil = nil
                guard next.isOpen else { return next }
                if isOpen { next.failedProbes += 1 }
                next.openUntil = now.addingTimeInterval(circuitPause(failedProbes: next.failedProbes))
                return next
            }
        }
    }

    /// What an attempt that is recorded tells about its platform.
    public enum CircuitEvent: Sendable, Hashable {
        /// The platform answered.
        case answered
        /// The attempt failed and is retried.
        case failed(opensCircuit: Bool)
    }

    /// How an attempt is recorded, as the store's `mark…` names it.
    public enum Recording: Sendable, Hashable {
        /// `markDelivered`: the trigger ends `delivered`.
        case delivered
        /// `markRetry`: the trigger waits for its next attempt.
        case retry(opensCircuit: Bool)
        /// `markFailed`: the trigger ends `failed`, its product fails.
        case failed

        /// What recording the attempt (which got `httpStatus`, nil for none) does to the platform's
        /// circuit: a delivery closes it; a retry counts a failure; a give-up closes it when the
        /// attempt got an HTTP status (any answer shows the platform is reachable) and leaves it as
        /// it is otherwise (nil). An attempt whose lease was lost records nothing at all.
        public func circuitEvent(httpStatus: Int?) -> CircuitEvent? {
            switch self {
            case .delivered: .answered
            case .retry(let opensCircuit): .failed(opensCircuit: opensCircuit)
            case .failed: httpStatus == nil ? nil : .answered
            }
        }
    }

    private static func pow2(_ exponent: Int) -> Double {
        exponent >= 30 ? Double(1 << 30) : Double(1 << exponent)
    }
}
