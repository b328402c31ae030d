import FletcherApp
import FletcherDomain
import FletcherHTTP
import FletcherTestSupport
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HTTPTypes
import Hummingbird
import HummingbirdBcrypt
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing

@Suite("Limits and hardening")
struct HardeningTests {
    /// On a clock that does not move, so the first pause (1 s) cannot end during the test.
    @Test func repeatedFailedLoginsAreThrottledForKnownAndUnknownNamesAlike() async throws {
        let router = try buildRouter(
            store: try await TestStores.make(.sqlite), authenticator: await LoginThrottleTests.authenticator(clock: ManualClock()),
            logger: TestAPI.logger)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: TestAPI.logger)
        try await app.test(.router) { client in
            let client = APIClient(client: client)
            for service in ["publisher", "nobody-by-this-name"] {
                for _ in 0..<5 {
                    try await client.send(.post, "/api/authenticate", json: ["service": service, "key": "wrong"]).expectProblem(.unauthorized)
                }
                let throttled = try await client.send(.post, "/api/authenticate", json: ["service": service, "key": "wrong"])
                let detail = throttled.expectProblem(.tooManyRequests)
                #expect(throttled.headers[.retryAfter] == "1")
                #expect(detail == "Too many failed logins for this service; retry in 1 s")
            }
            // Another service is not affected.
            #expect(try await client.send(.post, "/api/authenticate", json: ["service": "reader", "key": "reader-key"]).status == .ok)
        }
    }

    /// Guesses sent in parallel from one address cost what sequential ones do: of 20 at once, only
    /// the 5 free ones are checked, the rest wait for them and are refused with 429 once they failed.
    @Test func parallelGuessesAreThrottledLikeSequentialOnes() async throws {
        let checks = Mutex(0)
        let authenticator = await LoginThrottleTests.authenticator(clock: ManualClock(), observe: { _ in checks.withLock { $0 += 1 } })
        let answers = await authenticator.attempts(20, "publisher", key: "wrong", from: LoginThrottleTests.guesser)
        #expect(answers.filter { $0 == .unauthorized }.count == 5, "\(answers)")
        #expect(answers.filter { $0 == .paused(1) }.count == 15, "\(answers)")
        #expect(checks.withLock { $0 } == 5)
    }

    /// An unknown service name costs a bcrypt check as a wrong key does, so answer times do not tell
    /// which names exist: one check per attempt, at the configured cost. A check's time is set by its
    /// cost, so the same cost is the same time; the times themselves are not compared (other work on
    /// the machine stretches them at random).
    @Test func anUnknownServiceCostsTheSameBcryptCheckAsAWrongKey() async throws {
        let accounts = (0..<3).map { ServiceAccount(service: "svc\($0)", hash: Bcrypt.hash("key\($0)", cost: 6), roles: [.update]) }
        let checked = Mutex<[String]>([])
        let authenticator = await Authenticator(
            secret: TestServices.secret, accounts: accounts,
            bcrypt: BcryptVerifier(threads: 1, observe: { hash in checked.withLock { $0.append(hash) } }), now: ManualClock().read)
        func hashesChecked(_ attempt: () async -> LoginAnswer, answers expected: LoginAnswer) async -> [String] {
            checked.withLock { $0 = [] }
            #expect(await attempt() == expected)
            return checked.withLock { $0 }
        }
        let client = LoginThrottleTests.holder
        for round in 0..<3 {
            let unknown = await hashesChecked({ await authenticator.attempt("ghost\(round)", key: "key\(round)", from: client) }, answers: .unauthorized)
            let wrongKey = await hashesChecked({ await authenticator.attempt("svc\(round)", key: "nope", from: client) }, answers: .unauthorized)
            let rightKey = await hashesChecked({ await authenticator.attempt("svc\(round)", key: "key\(round)", from: client) }, answers: .ok)
            #expect(wrongKey == [accounts[round].hash] && rightKey == [accounts[round].hash])
            #expect(unknown.count == 1, "one bcrypt check for an unknown name")
            #expect(unknown.first?.hasPrefix("$2b$06$") == true, "\(unknown)")
            #expect(!accounts.map(\.hash).contains(unknown.first ?? ""), "a hash no key is known for")
        }
    }

    @Test func deeplyNestedFreeFormJSONIsRefused() async throws {
        let api = try await TestAPI(engine: .sqlite)
        let nested = String(repeating: "[", count: 40) + #"{"leaf": true}"# + String(repeating: "]", count: 40)
        let body = #"{"dataset": {"id": "\#(UUID().uuidString.lowercased())", "extra": \#(nested)}, "data_products": [], "dependencies": []}"#
        try await api.test { client in
            let token = try await client.token()
            let detail = try await client.send(.post, "/api/plan", token: token, raw: body).expectProblem(.badRequest)
            #expect(detail.contains("deeper than"))
        }
    }

    @Test func aBodyLargerThanTheCapIs413() async throws {
        let store = try await TestStores.make(.sqlite)
        let router = try await TestAPI.router(store: store, maxBodyBytes: 4096)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let token = try await APIClient(client: client).token()
            let big = String(repeating: "x", count: 10_000)
            let body: [String: Any] = [
                "dataset": ["id": UUID().uuidString.lowercased(), "extra": big], "data_products": [] as [Any], "dependencies": [] as [Any],
            ]
            try await APIClient(client: client).send(.post, "/api/plan", token: token, json: body).expectProblem(.contentTooLarge)
        }
    }

    @Test func beyondTheConcurrencyBoundRequestsGetAFast503() async throws {
        let gate = AsyncStream<Void>.makeStream()
        let entered = AsyncStream<Void>.makeStream()
        let router = Router()
        router.add(middleware: ProblemResponseMiddleware())
        router.add(middleware: RequestLimitsMiddleware(maxBodyBytes: 1024, concurrency: ConcurrencyLimit(maxRequests: 1)))
        router.get("/slow") { _, _ -> String in
            entered.continuation.yield()
            for await _ in gate.stream { break }
            return "done"
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            // The slow request on a connection of its own (the test client has one).
            let port = try #require(client.port)
            let slow = Task { try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/slow")!) }
            for await _ in entered.stream { break }
            let refused = try await client.execute(uri: "/slow", method: .get)
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.headers[.retryAfter] == "1")
            #expect(refused.headers[.contentType] == "application/problem+json")
            gate.continuation.yield()
            let (_, answer) = try await slow.value
            #expect((answer as? HTTPURLResponse)?.statusCode == 200)
        }
    }

    @Test func htmlPagesCarryAPolicyThatNeedsNoInlineScript() async throws {
        let api = try await TestAPI(engine: .sqlite)
        try await api.test { client in
            let page = try await client.send(.get, "/")
            let policy = try #require(page.headers[.contentSecurityPolicy])
            #expect(policy.contains("script-src 'self';") && policy.contains("frame-ancestors 'none'"))
            #expect(!policy.contains("unsafe-eval"))
            #expect(page.headers[.xContentTypeOptions] == "nosniff")
            #expect(!page.text.contains("<script>"))  // every script is a file
            let swagger = try await client.send(.get, "/swagger")
            #expect(swagger.headers[.contentSecurityPolicy]?.contains("https://cdn.jsdelivr.net") == true)
            let json = try await client.send(.get, "/health")
            #expect(json.headers[.contentSecurityPolicy] == nil && json.headers[.xContentTypeOptions] == "nosniff")
            // Answers made from thrown errors too: an unknown path, a missing token, a bad id.
            for (path, status) in [("/no/such/page", 404), ("/api/plan/not-a-uuid", 400)] {
                let problem = try await client.send(.get, path)
                #expect(Int(problem.status.code) == status, "\(path)")
                #expect(problem.headers[.xContentTypeOptions] == "nosniff", "\(path)")
            }
            let refused = try await client.send(.put, "/api/data_product/\(UUID())/update", raw: "[]")
            #expect(refused.status == .unauthorized && refused.headers[.xContentTypeOptions] == "nosniff")
        }
    }
}
