import FletcherApp
import FletcherDomain
@testable import FletcherHTTP
import FletcherTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing

/// A clock moved by hand, for the authenticator's pauses and token times.
final class ManualClock: Sendable {
    private let time = Mutex(Date(timeIntervalSince1970: 1_900_000_000))

    var now: Date { time.withLock { $0 } }
    var read: @Sendable () -> Date { { self.now } }

    func advance(by seconds: TimeInterval) { time.withLock { $0 += seconds } }
}

/// How a login was answered: its status code and `Retry-After`.
struct LoginAnswer: Sendable, Hashable, CustomStringConvertible {
    var status: Int
    var retryAfter: String?

    static let ok = LoginAnswer(status: 200)
    static let unauthorized = LoginAnswer(status: 401)
    static func paused(_ seconds: Int) -> LoginAnswer { LoginAnswer(status: 429, retryAfter: String(seconds)) }

    init(status: Int, retryAfter: String? = nil) {
        self.status = status
        self.retryAfter = retryAfter
    }

    var description: String { retryAfter.map { "\(status) (Retry-After \($0))" } ?? "\(status)" }
}

extension Authenticator {
    /// Logs in and tells how it was answered.
    func attempt(_ service: String, key: String, from client: ClientAddress) async -> LoginAnswer {
        do {
            _ = try await authenticate(service: service, key: key, client: client)
            return .ok
        } catch let problem as Problem {
            return LoginAnswer(status: Int(problem.status.code), retryAfter: problem.headers[.retryAfter])
        } catch {
            return LoginAnswer(status: 500, retryAfter: "\(error)")
        }
    }

    /// Sends `count` logins at once and returns their answers.
    func attempts(_ count: Int, _ service: String, key: String, from client: ClientAddress) async -> [LoginAnswer] {
        await withTaskGroup(of: LoginAnswer.self) { group in
            for _ in 0..<count {
                group.addTask { await self.attempt(service, key: key, from: client) }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
    }
}

@Suite("Login throttling")
struct LoginThrottleTests {
    static let guesser = ClientAddress(try! SocketAddress(ipAddress: "203.0.113.7", port: 40_000))
    static let holder = ClientAddress(try! SocketAddress(ipAddress: "198.51.100.20", port: 40_001))

    /// The test services (bcrypt cost 4) on a clock the test moves.
    static func authenticator(clock: ManualClock, observe: (@Sendable (String) -> Void)? = nil) async -> Authenticator {
        await Authenticator(
            secret: TestServices.secret, accounts: TestServices.accounts, bcrypt: BcryptVerifier(threads: 2, observe: observe),
            now: clock.read)
    }

    /// Many workers of one platform logging in at once queue on the bcrypt threads; none is refused.
    @Test func aBurstOfCorrectLoginsOfOneServiceAllAnswer200() async throws {
        let clock = ManualClock()
        let router = try buildRouter(
            store: try await TestStores.make(.sqlite), authenticator: await Self.authenticator(clock: clock), logger: TestAPI.logger,
            concurrency: ConcurrencyLimit(maxRequests: 1_000))
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: TestAPI.logger)
        let statuses = try await app.test(.router) { client in
            let api = APIClient(client: client)
            return try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<600 {
                    group.addTask {
                        try await api.send(.post, "/api/authenticate", json: ["service": "publisher", "key": "publisher-key"]).status
                    }
                }
                return try await group.reduce(into: [HTTPResponse.Status: Int]()) { $0[$1, default: 0] += 1 }
            }
        }
        #expect(statuses == [.ok: 600])
    }

    /// A stranger's failures pause the name for the stranger's address only.
    @Test func aGuesserFromOneAddressDoesNotBlockACorrectLoginFromAnother() async throws {
        let clock = ManualClock()
        let authenticator = await Self.authenticator(clock: clock)
        let guesses = await authenticator.attempts(20, "publisher", key: "guess", from: Self.guesser)
        #expect(guesses.filter { $0 == .unauthorized }.count == 5, "\(guesses)")
        #expect(guesses.filter { $0 == .paused(1) }.count == 15, "\(guesses)")

        #expect(await authenticator.attempt("publisher", key: "publisher-key", from: Self.holder) == .ok)
        #expect(await authenticator.attempt("publisher", key: "publisher-key", from: .unknown) == .ok)
        // The guesser's address is paused, even with the right key.
        #expect(await authenticator.attempt("publisher", key: "publisher-key", from: Self.guesser) == .paused(1))
    }

    /// After the free failures, each further failure doubles the pause, up to 300 s; a success clears the count.
    @Test func thePauseDoublesWithEachFurtherFailureUpToItsCap() async throws {
        let clock = ManualClock()
        let authenticator = await Self.authenticator(clock: clock)
        for _ in 0..<4 { #expect(await authenticator.attempt("reader", key: "guess", from: Self.guesser) == .unauthorized) }
        // A success clears the count: five free failures again.
        #expect(await authenticator.attempt("reader", key: "reader-key", from: Self.guesser) == .ok)
        for _ in 0..<5 { #expect(await authenticator.attempt("reader", key: "guess", from: Self.guesser) == .unauthorized) }

        var pauses: [Int] = []
        for _ in 0..<12 {
            let refused = await authenticator.attempt("reader", key: "guess", from: Self.guesser)
            #expect(refused.status == 429)
            let pause = try #require(refused.retryAfter.flatMap { Int($0) })
            pauses.append(pause)
            // Still paused a moment before the pause ends; one more failure once it has.
            clock.advance(by: Double(pause) - 0.5)
            #expect(await authenticator.attempt("reader", key: "guess", from: Self.guesser) == .paused(1))
            clock.advance(by: 0.5)
            #expect(await authenticator.attempt("reader", key: "guess", from: Self.guesser) == .unauthorized)
        }
        #expect(pauses == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300])
    }

    /// Unknown names are throttled exactly like configured ones, so a 429 tells nothing about which exist.
    @Test func unknownNamesArePausedLikeKnownOnes() async throws {
        let authenticator = await Self.authenticator(clock: ManualClock())
        for service in ["publisher", "nobody-by-this-name"] {
            let answers = await authenticator.attempts(8, service, key: "guess", from: Self.guesser)
            #expect(answers.sorted { $0.status < $1.status } == Array(repeating: .unauthorized, count: 5) + Array(repeating: .paused(1), count: 3))
        }
    }

    /// Pairs with no failures leave the table; beyond its capacity the oldest idle pair is forgotten.
    @Test func theTableIsBounded() async throws {
        let throttle = LoginThrottle(freeFailures: 1, maxPause: 300, capacity: 2)
        let start = Date(timeIntervalSince1970: 1_900_000_000)
        func fail(_ service: String, at seconds: TimeInterval) async {
            let now = start.addingTimeInterval(seconds)
            #expect(await throttle.begin(service, client: Self.guesser, now: now) == nil)
            throttle.end(service, client: Self.guesser, outcome: .failed, now: now)
        }
        await fail("a", at: 0)
        await fail("b", at: 0.1)
        #expect(await throttle.begin("a", client: Self.guesser, now: start.addingTimeInterval(0.2)) != nil, "a is paused")
        await fail("c", at: 0.3)
        // Each is paused for 1 s. "a" (touched at 0) was forgotten to make room for "c"; "b" and "c" are still paused.
        #expect(throttle.count == 2)
        #expect(await throttle.begin("b", client: Self.guesser, now: start.addingTimeInterval(0.5)) != nil)
        #expect(await throttle.begin("c", client: Self.guesser, now: start.addingTimeInterval(0.5)) != nil)
        #expect(await throttle.begin("a", client: Self.guesser, now: start.addingTimeInterval(0.5)) == nil)
        // Checking "a" again made room by forgetting "b"; a pair whose attempt succeeded leaves no trace.
        throttle.end("a", client: Self.guesser, outcome: .succeeded, now: start.addingTimeInterval(0.5))
        #expect(throttle.count == 1)
    }

    @Test func clientAddressesAreIPv4AddressesOrIPv6Slash64s() throws {
        func address(_ text: String) throws -> ClientAddress { ClientAddress(try SocketAddress(ipAddress: text, port: 1234)) }
        #expect(try address("192.0.2.1").description == "192.0.2.1")
        #expect(try address("::ffff:192.0.2.1") == address("192.0.2.1"))
        #expect(try address("2001:db8:0:1::5").description == "2001:db8:0:1::/64")
        #expect(try address("2001:db8:0:1:ffff::9") == address("2001:db8:0:1::5"))
        #expect(try address("2001:db8:0:2::5") != address("2001:db8:0:1::5"))
        #expect(try address("192.0.2.1") != address("192.0.2.2"))
        #expect(ClientAddress(try SocketAddress(unixDomainSocketPath: "/tmp/fletcher-test.sock")) == .unknown)
        #expect(ClientAddress(nil) == .unknown)
    }

    /// `ClientAddressMiddleware` hands the connection's peer address to the handlers behind it.
    @Test func theMiddlewareSetsTheAddressOfTheConnection() async throws {
        let router = Router(context: ClientRequestContext.self)
        router.add(middleware: ClientAddressMiddleware())
        router.get("/whoami") { _, _ in ClientAddress.current.description }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let answer = try await client.execute(uri: "/whoami", method: .get)
            #expect(String(buffer: answer.body) == "127.0.0.1")
        }
        #expect(ClientAddress.current == .unknown)
    }
}
