import FletcherDomain
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
}
