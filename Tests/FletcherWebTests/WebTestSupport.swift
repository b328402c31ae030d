import FletcherApp
import FletcherDomain
import FletcherHTTP
import FletcherStore
import FletcherTestSupport
import Foundation
import Hummingbird
import HummingbirdBcrypt
import HummingbirdTesting
import Logging

/// The whole application (API and pages) on a test store, to look at pages as a browser would.
struct WebTestApp {
    let store: any Store
    let application: Application<RouterResponder<ClientRequestContext>>

    init(engine: TestEngine, policy: OrchestrationPolicy = .none) async throws {
        store = try await TestStores.make(engine, policy: policy)
        var logger = Logger(label: "fletcher-web-test")
        logger.logLevel = .warning
        let authenticator = await Authenticator(
            secret: String(repeating: "k", count: 40),
            accounts: [ServiceAccount(service: "web", hash: Bcrypt.hash("web-key", cost: 4), roles: Set(Role.allCases))],
            bcrypt: BcryptVerifier(threads: 1))
        application = Application(
            router: try buildRouter(store: store, authenticator: authenticator, logger: logger),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
    }

    /// Stores a plan directly.
    @discardableResult
    func submit(_ fixture: PlanFixture) async throws -> Plan {
        try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "web").plan
    }

    func get(_ path: String, accept: String = "text/html") async throws -> Page {
        try await application.test(.router) { client in
            let response = try await client.execute(uri: path, method: .get, headers: [.accept: accept])
            return Page(status: response.status, headers: response.headers, text: String(buffer: response.body))
        }
    }
}

struct Page: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var text: String

    func count(_ fragment: String) -> Int { text.components(separatedBy: fragment).count - 1 }
    func contains(_ fragment: String) -> Bool { text.contains(fragment) }
}
