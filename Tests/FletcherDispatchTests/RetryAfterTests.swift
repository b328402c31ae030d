@testable import FletcherDispatch
import Foundation
import Testing

/// A platform's `Retry-After`, as seconds or as an HTTP date, read as seconds from now.
@Suite("Retry-After")
struct RetryAfterTests {
    @Test func secondsAndHTTPDatesAreRead() {
        let now = Date(timeIntervalSince1970: 784_111_717)  // Sun, 06 Nov 1994 08:48:37 GMT
        #expect(Dispatcher.retryAfterSeconds("120", now: now) == 120)
        #expect(Dispatcher.retryAfterSeconds(" 7 ", now: now) == 7)
        #expect(Dispatcher.retryAfterSeconds("Sun, 06 Nov 1994 08:49:37 GMT", now: now) == 60)
        #expect(Dispatcher.retryAfterSeconds("Sun, 06 Nov 1994 08:47:37 GMT", now: now) == 0, "a date passed is now")
        #expect(Dispatcher.retryAfterSeconds("-3", now: now) == nil)
        #expect(Dispatcher.retryAfterSeconds("tomorrow", now: now) == nil)
    }
}
