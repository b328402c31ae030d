import FletcherDomain
import Foundation
import Testing

@Suite("Dispatch policy")
struct DispatchPolicyTests {
    @Test func answersAreClassifiedAsTheIssueSays() {
        #expect(DispatchPolicy.outcome(status: 200) == .delivered)
        #expect(DispatchPolicy.outcome(status: 202) == .delivered)
        #expect(DispatchPolicy.outcome(status: nil) == .retry(opensCircuit: false))
        for status in [408, 409, 425, 429, 500, 502, 503, 599] {
            #expect(DispatchPolicy.outcome(status: status) == .retry(opensCircuit: false), "\(status)")
        }
        for status in [401, 403, 404, 405] { #expect(DispatchPolicy.outcome(status: status) == .retry(opensCircuit: true)) }
        for status in [400, 410, 413, 422, 451, 301, 302] { #expect(DispatchPolicy.outcome(status: status) == .refused, "\(status)") }
    }

    @Test func backoffDoublesWithinJitterUpToTenMinutes() {
        #expect(DispatchPolicy.backoff(attempt: 1, jitter: 0) == 1)
        #expect(DispatchPolicy.backoff(attempt: 4, jitter: 0) == 8)
        #expect(DispatchPolicy.backoff(attempt: 4, jitter: 1) == 9.6)
        #expect(DispatchPolicy.backoff(attempt: 4, jitter: -1) == 6.4)
        #expect(DispatchPolicy.backoff(attempt: 30, jitter: 0) == 600)
        #expect(DispatchPolicy.backoff(attempt: 30, jitter: 1) == 720)
        #expect(DispatchPolicy.backoff(attempt: 3, jitter: 0.5, retryAfter: 42) == 42)
    }

    @Test func anOpenCircuitWaitsLongerAfterEachFailedProbe() {
        #expect(DispatchPolicy.circuitPause(failedProbes: 0) == 1)
        #expect(DispatchPolicy.circuitPause(failedProbes: 3) == 8)
        #expect(DispatchPolicy.circuitPause(failedProbes: 20) == 60)
    }

    // MARK: what becomes of a trigger

    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let limits = DispatchPolicy.Limits(maxAttempts: 3, maxAge: 600)

    static func decide(status: Int?, error: String? = nil, retryAfter: Double? = nil, attempt: Int, age: Double = 10) -> DispatchPolicy.Decision {
        DispatchPolicy.decide(
            status: status, error: error, retryAfter: retryAfter, attempt: attempt, createdAt: now.addingTimeInterval(-age), now: now,
            limits: limits, jitter: 0)
    }

    @Test func anAnswerIsDeliveredRetriedAfterTheBackoffOrRefused() {
        #expect(Self.decide(status: 202, attempt: 1) == .delivered)
        #expect(Self.decide(status: 503, attempt: 1) == .retry(at: Self.now.addingTimeInterval(1), opensCircuit: false))
        #expect(Self.decide(status: nil, error: "timeout", attempt: 2) == .retry(at: Self.now.addingTimeInterval(2), opensCircuit: false))
        #expect(Self.decide(status: 404, attempt: 2) == .retry(at: Self.now.addingTimeInterval(2), opensCircuit: true))
        #expect(Self.decide(status: 429, retryAfter: 30, attempt: 1) == .retry(at: Self.now.addingTimeInterval(30), opensCircuit: false))
        #expect(
            Self.decide(status: 422, attempt: 2)
                == .giveUp(.init(reason: .refused, error: "refused by the compute platform", attemptsMade: 2)))
    }

    @Test func aRetryableFailureIsGivenUpOnTheLastAttemptOrWhenTheNextWouldComeTooLate() {
        #expect(
            Self.decide(status: 503, attempt: 3)
                == .giveUp(.init(reason: .exhausted, error: "gave up after 3 attempts: HTTP 503", attemptsMade: 3)))
        #expect(
            Self.decide(status: nil, error: "timeout", attempt: 3)
                == .giveUp(.init(reason: .exhausted, error: "gave up after 3 attempts: timeout", attemptsMade: 3)))
        // Made 590 s ago, may live 600 s: a wait of 10 s is allowed, one of 11 s is not.
        #expect(Self.decide(status: 429, retryAfter: 10, attempt: 1, age: 590) == .retry(at: Self.now.addingTimeInterval(10), opensCircuit: false))
        #expect(
            Self.decide(status: 429, retryAfter: 11, attempt: 1, age: 590)
                == .giveUp(.init(reason: .exhausted, error: "gave up after 1 attempts: HTTP 429", attemptsMade: 1)))
    }

    @Test func aTriggerOutOfAttemptsOrTooOldIsGivenUpBeforeItIsSent() {
        func check(attempt: Int, age: Double) -> DispatchPolicy.GiveUp? {
            DispatchPolicy.giveUpBeforeSending(attempt: attempt, createdAt: Self.now.addingTimeInterval(-age), now: Self.now, limits: Self.limits)
        }
        #expect(check(attempt: 3, age: 600) == nil)
        #expect(check(attempt: 4, age: 10) == .init(reason: .exhausted, error: "max_attempts (3) exhausted", attemptsMade: 3))
        #expect(check(attempt: 1, age: 600.5) == .init(reason: .exhausted, error: "max_age_s (600) exceeded", attemptsMade: 0))
        #expect(check(attempt: 4, age: 700)?.error == "max_attempts (3) exhausted", "attempts are checked first")
    }

    // MARK: the circuit

    typealias Circuit = DispatchPolicy.Circuit

    @Test func failuresInARowOpenTheCircuitAtTheThreshold() {
        var circuit = Circuit.closed
        for failure in 1..<DispatchPolicy.circuitThreshold {
            circuit = circuit.after(.failed(opensCircuit: false), at: Self.now)
            #expect(circuit == Circuit(consecutiveFailures: failure, failedProbes: 0, openUntil: nil))
            #expect(!circuit.isOpen)
        }
        circuit = circuit.after(.failed(opensCircuit: false), at: Self.now)
        #expect(circuit == Circuit(consecutiveFailures: 5, failedProbes: 0, openUntil: Self.now.addingTimeInterval(1)))
        #expect(circuit.isOpen)
    }

    @Test func aMisconfiguredEndpointOpensTheCircuitAtOnce() {
        let circuit = Circuit(consecutiveFailures: 1, failedProbes: 0, openUntil: nil).after(.failed(opensCircuit: true), at: Self.now)
        #expect(circuit == Circuit(consecutiveFailures: 5, failedProbes: 0, openUntil: Self.now.addingTimeInterval(1)))
    }

    @Test func eachFailedProbeDoublesThePause() {
        let open = Circuit(consecutiveFailures: 5, failedProbes: 0, openUntil: Self.now)
        let once = open.after(.failed(opensCircuit: false), at: Self.now)
        #expect(once == Circuit(consecutiveFailures: 6, failedProbes: 1, openUntil: Self.now.addingTimeInterval(2)))
        let twice = once.after(.failed(opensCircuit: true), at: Self.now)
        #expect(twice == Circuit(consecutiveFailures: 7, failedProbes: 2, openUntil: Self.now.addingTimeInterval(4)))
    }

    @Test func anAnswerClosesTheCircuitWhateverItWas() {
        let open = Circuit(consecutiveFailures: 9, failedProbes: 4, openUntil: Self.now.addingTimeInterval(16))
        #expect(open.after(.answered, at: Self.now) == .closed)
        #expect(Circuit(consecutiveFailures: 2, failedProbes: 0, openUntil: nil).after(.answered, at: Self.now) == .closed)
    }

    @Test func aClosedCircuitAllowsMaxInFlightAnOpenOneOneProbeAfterItsPause() {
        let closed = Circuit(consecutiveFailures: 4, failedProbes: 0, openUntil: nil)
        #expect(closed.capacity(maxInFlight: 8, liveLeases: 3, now: Self.now) == 5)
        #expect(closed.capacity(maxInFlight: 8, liveLeases: 9, now: Self.now) == 0)
        let open = Circuit(consecutiveFailures: 5, failedProbes: 1, openUntil: Self.now.addingTimeInterval(2))
        #expect(open.capacity(maxInFlight: 8, liveLeases: 0, now: Self.now) == 0)
        #expect(open.capacity(maxInFlight: 8, liveLeases: 0, now: Self.now.addingTimeInterval(2)) == 1)
        #expect(open.capacity(maxInFlight: 8, liveLeases: 1, now: Self.now.addingTimeInterval(2)) == 0)
    }

    @Test func whatRecordingAnAttemptDoesToTheCircuit() {
        typealias Recording = DispatchPolicy.Recording
        #expect(Recording.delivered.circuitEvent(httpStatus: 202) == .answered)
        #expect(Recording.retry(opensCircuit: false).circuitEvent(httpStatus: nil) == .failed(opensCircuit: false))
        #expect(Recording.retry(opensCircuit: true).circuitEvent(httpStatus: 401) == .failed(opensCircuit: true))
        // A give-up closes the circuit when its attempt got an answer (a refusal, or 503 on the last
        // attempt), and leaves it when it got none (a timeout, or not sent at all).
        #expect(Recording.failed.circuitEvent(httpStatus: 422) == .answered)
        #expect(Recording.failed.circuitEvent(httpStatus: 503) == .answered)
        #expect(Recording.failed.circuitEvent(httpStatus: nil) == nil)
    }
}
