import FletcherApp
import FletcherDomain
import FletcherJSON
import FletcherHTTP
import FletcherStore
import FletcherTestSupport
import Foundation
import Hummingbird
import HummingbirdBcrypt
import HummingbirdTesting
import Logging
import NIOCore
import Testing

/// The services the HTTP tests log in as; every key is "<service>-key".
enum TestServices {
    static let secret = "test-secret-long-enough-for-hs256-signing"
    static let accounts: [ServiceAccount] = [
        account("publisher", roles: Set(Role.allCases)),
        account("reader", roles: []),
        account("pauser", roles: [.pause]),
        account("updater", roles: [.update]),
    ]

    static func account(_ service: String, roles: Set<Role>) -> ServiceAccount {
        ServiceAccount(service: service, hash: Bcrypt.hash("\(service)-key", cost: 4), roles: roles)
    }
}

/// A Fletcher application on a test store, built by the same `buildRouter` the server uses.
struct TestAPI {
    let store: any Store
    let application: Application<RouterResponder<ClientRequestContext>>

    init(engine: TestEngine, accounts: [ServiceAccount] = TestServices.accounts) async throws {
        try await self.init(store: TestStores.make(engine), accounts: accounts)
    }

    init(store: any Store, accounts: [ServiceAccount] = TestServices.accounts, secret: String = TestServices.secret) async throws {
        self.init(store: store, router: try await Self.router(store: store, accounts: accounts, secret: secret))
    }

    /// An application serving `router` (made by `router(…)` with other limits, say).
    init(store: any Store, router: Router<ClientRequestContext>) {
        self.store = store
        application = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: Self.logger)
    }

    static var logger: Logger {
        var logger = Logger(label: "fletcher-http-test")
        logger.logLevel = .warning
        return logger
    }

    /// The server's routes on `store`, as `buildRouter` makes them.
    static func router(
        store: any Store, accounts: [ServiceAccount] = TestServices.accounts, maxBodyBytes: Int = 16 << 20,
        maxConcurrentRequests: Int = 512, secret: String = TestServices.secret, readiness: DatabaseReadiness = DatabaseReadiness(ready: true)
    ) async throws -> Router<ClientRequestContext> {
        let authenticator = await Authenticator(secret: secret, accounts: accounts, bcrypt: BcryptVerifier(threads: 2))
        return try buildRouter(
            store: store, authenticator: authenticator, logger: logger, maxBodyBytes: maxBodyBytes,
            concurrency: ConcurrencyLimit(maxRequests: maxConcurrentRequests), readiness: readiness)
    }

    /// Runs `body` with a client of the application (routed in process, or over a socket with `.live`).
    func test<T: Sendable>(_ mode: TestingSetup = .router, _ body: @Sendable (APIClient) async throws -> T) async throws -> T {
        try await application.test(mode) { client in try await body(APIClient(client: client)) }
    }
}

/// Answers as the tests look at them.
struct APIResponse: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var text: String

    /// The body parsed as JSON (dictionaries and arrays, NSNull for null).
    var json: Any? { try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) }
    var object: [String: Any] { json as? [String: Any] ?? [:] }

    /// Checks this is a problem+json answer with the status, and returns its detail.
    @discardableResult
    func expectProblem(_ expected: HTTPResponse.Status, sourceLocation: SourceLocation = #_sourceLocation) -> String {
        #expect(status == expected, "\(text)", sourceLocation: sourceLocation)
        #expect(headers[.contentType] == "application/problem+json", sourceLocation: sourceLocation)
        let problem = object
        #expect(problem["status"] as? Int == expected.code, sourceLocation: sourceLocation)
        #expect(problem["title"] as? String == expected.reasonPhrase, sourceLocation: sourceLocation)
        #expect(problem["type"] as? String != nil, sourceLocation: sourceLocation)
        return problem["detail"] as? String ?? ""
    }
}

struct APIClient: Sendable {
    let client: any TestClientProtocol
    /// Where `send` sends instead, when set: a connection of its own to the live server.
    private var patientConnection: TestClient? = nil

    init(client: any TestClientProtocol) {
        self.client = client
    }

    /// Runs `body` with a client whose requests go to the same live server on a connection of their
    /// own, each waiting up to `timeout` for its answer: the live test client's limit is 20 s,
    /// which the full suite beside a CPU burner has exceeded.
    func patient<T: Sendable>(timeout: Duration = .seconds(180), _ body: @Sendable (APIClient) async throws -> T) async throws -> T {
        let port = try #require(client.port, "a live server")
        let connection = TestClient(host: "localhost", port: port, configuration: .init(timeout: timeout))
        connection.connect()
        var patient = self
        patient.patientConnection = connection
        let result = await Result { try await body(patient) }
        try await connection.shutdown()
        return try result.get()
    }

    func send(
        _ method: HTTPRequest.Method, _ path: String, token: String? = nil, json: Any? = nil, raw: String? = nil,
        headers extraHeaders: HTTPFields = [:]
    ) async throws -> APIResponse {
        var headers = extraHeaders
        if let token { headers[.authorization] = "Bearer \(token)" }
        var body: ByteBuffer?
        if let json {
            headers[.contentType] = "application/json"
            body = ByteBuffer(bytes: Array(try JSONSerialization.data(withJSONObject: json, options: [.fragmentsAllowed])))
        } else if let raw {
            if headers[.contentType] == nil { headers[.contentType] = "application/json" }
            body = ByteBuffer(string: raw)
        }
        if let patientConnection {
            let response = try await patientConnection.execute(.init(path, method: method, authority: "localhost", headers: headers, body: body))
            return APIResponse(status: response.status, headers: response.headers, text: String(buffer: response.body ?? ByteBuffer()))
        }
        let response = try await client.execute(uri: path, method: method, headers: headers, body: body)
        return APIResponse(status: response.status, headers: response.headers, text: String(buffer: response.body))
    }

    /// Logs in and returns the access token.
    func token(_ service: String = "publisher") async throws -> String {
        let response = try await send(.post, "/api/authenticate", json: ["service": service, "key": "\(service)-key"])
        #expect(response.status == .ok, "\(response.text)")
        return try #require(response.object["access_token"] as? String)
    }
}

/// The JSON of a plan submission, built by name.
func submissionJSON(_ fixture: PlanFixture) -> [String: Any] {
    [
        "dataset": ["id": fixture.datasetId.lowercased, "extra": ["source": "test"]],
        "data_products": fixture.products.map { product in
            [
                "id": product.id.lowercased, "compute": product.compute.rawValue, "name": product.name,
                "version": product.version, "eager": product.eager, "passthrough": ["k": "v"], "extra": [:] as [String: Any],
            ] as [String: Any]
        },
        "dependencies": fixture.edges.map { ["parent_id": $0.parentId.lowercased, "child_id": $0.childId.lowercased] },
    ]
}

extension APIResponse {
    /// States of the plan in this answer, by data product id.
    var states: [String: String] {
        var states: [String: String] = [:]
        for product in object["data_products"] as? [[String: Any]] ?? [] {
            states[product["id"] as? String ?? ""] = product["state"] as? String
        }
        return states
    }
}
