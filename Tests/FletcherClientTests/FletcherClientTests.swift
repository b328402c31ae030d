import FletcherApp
import FletcherDomain
@testable import FletcherClient
import FletcherHTTP
import FletcherStore
import FletcherTestSupport
import Foundation
import HummingbirdBcrypt
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// The generated client and its login layer against a real server (a live socket), both engines.
@Suite("FletcherClient")
struct FletcherClientTests {
    static let secret = "client-test-secret-long-enough-for-hs256"

    /// Serves Fletcher on `store` on a live port, with an `ops` service holding every role and a
    /// `viewer` holding none, while `body` runs with the server's base URL.
    static func withServer<T: Sendable>(_ store: any Store, _ body: @Sendable (URL) async throws -> T) async throws -> T {
        let accounts = [
            ServiceAccount(service: "ops", hash: Bcrypt.hash("ops-key", cost: 4), roles: Set(Role.allCases)),
            ServiceAccount(service: "viewer", hash: Bcrypt.hash("viewer-key", cost: 4), roles: []),
        ]
        let authenticator = await Authenticator(secret: secret, accounts: accounts, bcrypt: BcryptVerifier(threads: 2))
        var logger = Logger(label: "fletcher-client-test")
        logger.logLevel = .warning
        let router = try buildRouter(store: store, authenticator: authenticator, logger: logger)
        let application = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
        return try await application.test(.live) { client in
            try await body(URL(string: "http://127.0.0.1:\(client.port!)")!)
        }
    }

    @Test(arguments: TestEngine.available)
    func submitsReadsListsAndClearsThroughTheGeneratedClient(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        try await Self.withServer(store) { url in
            let fletcher = FletcherConnection(url: url, credentials: .init(service: "ops", key: "ops-key"))
            let dataset = UUID().uuidString.lowercased()
            let a = UUID().uuidString.lowercased()
            let b = UUID().uuidString.lowercased()
            let submitted = try await fletcher.client.submitPlan(
                body: .json(
                    .init(
                        dataset: .init(id: dataset, extra: nil),
                        dataProducts: [a, b].enumerated().map { index, id in
                            .init(id: id, compute: .cams, name: "product \(index)", version: "1", eager: true, passthrough: nil, extra: nil)
                        },
                        dependencies: [.init(parentId: a, childId: b, extra: nil)])))
            let plan = try submitted.ok.body.json
            #expect(plan.dataProducts.map(\.state) == [.queued, .waiting])

            let updated = try await fletcher.client.updateDataProducts(
                path: .init(datasetId: dataset), body: .json([.init(id: a, state: .failed, runId: nil, link: nil, passback: nil)]))
            #expect(try updated.ok.body.json.dataProducts.first?.state == .failed)

            // The cross-dataset list, and a bulk clear's dry run, read as typed values.
            let failed = try await fletcher.client.listDataProducts(query: .init(state: ["failed"])).ok.body.json
            #expect(failed.dataProducts.map(\.value2.id) == [a])
            #expect(failed.dataProducts.first?.value1.datasetId == dataset)
            let dry = try await fletcher.client.bulkClear(body: .json(.init(filter: .init(state: .case1("failed")), dryRun: true))).ok.body.json
            #expect(dry.dryRun && dry.results.map(\.changed) == [[a]])
            #expect(dry.results.first?.products.first.map { [$0.from, $0.to] } == [.failed, .queued])

            // A refusal is the operation's documented answer, with the server's problem.
            let missing = try await fletcher.client.getPlan(path: .init(datasetId: UUID().uuidString.lowercased()))
            guard case .notFound(let notFound) = missing else {
                Issue.record("expected 404, got \(missing)")
                return
            }
            #expect(try notFound.body.applicationProblemJson.detail.contains("not found"))
        }
    }

    @Test(arguments: TestEngine.available)
    func aRefusedOrExpiringTokenIsRenewedAndABadKeyIsSaid(engine: TestEngine) async throws {
        let store = try await TestStores.make(engine, isolated: true)
        try await Self.withServer(store) { url in
            let fletcher = FletcherConnection(url: url, credentials: .init(service: "ops", key: "ops-key"))
            let tokens = try #require(fletcher.tokens)
            let first = try await fletcher.token()
            #expect(try await fletcher.token() == first)
            // Within a minute of its expiry: a new one.
            tokens.hold("stale", expires: Date().addingTimeInterval(30))
            #expect(try await fletcher.token() != "stale")
            // Refused by the server (401): logged in again, the request sent once more.
            tokens.hold("not-a-token", expires: Date().addingTimeInterval(3600))
            let dataset = UUID().uuidString.lowercased()
            let paused = try await fletcher.client.pausePlan(path: .init(datasetId: dataset))
            guard case .notFound = paused else {
                Issue.record("expected 404 for a missing dataset after a new login, got \(paused)")
                return
            }
            #expect(try await fletcher.token() != "not-a-token")

            let wrong = FletcherConnection(url: url, credentials: .init(service: "ops", key: "wrong"))
            await #expect(throws: FletcherClientError.self) { try await wrong.token() }
            let anonymous = FletcherConnection(url: url)
            await #expect(throws: FletcherClientError.noCredentials) { try await anonymous.token() }
            // A service without the role: 403, as documented.
            let viewer = FletcherConnection(url: url, credentials: .init(service: "viewer", key: "viewer-key"))
            guard case .forbidden = try await viewer.client.pausePlan(path: .init(datasetId: dataset)) else {
                Issue.record("expected 403")
                return
            }
        }
    }
}
