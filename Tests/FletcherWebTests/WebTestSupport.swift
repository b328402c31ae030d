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

    /// Services: `web` holds every role, `viewer` none. `publicURL`: the server's `PUBLIC_URL`.
    init(engine: TestEngine, policy: OrchestrationPolicy = .none, publicURL: String? = nil) async throws {
        store = try await TestStores.make(engine, policy: policy)
        var logger = Logger(label: "fletcher-web-test")
        logger.logLevel = .warning
        let authenticator = await Authenticator(
            secret: String(repeating: "k", count: 40),
            accounts: [
                ServiceAccount(service: "web", hash: Bcrypt.hash("web-key", cost: 4), roles: Set(Role.allCases)),
                ServiceAccount(service: "viewer", hash: Bcrypt.hash("viewer-key", cost: 4), roles: []),
            ],
            bcrypt: BcryptVerifier(threads: 1))
        application = Application(
            router: try buildRouter(store: store, authenticator: authenticator, logger: logger, publicURL: publicURL),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
    }

    /// Stores a plan directly.
    @discardableResult
    func submit(_ fixture: PlanFixture) async throws -> Plan {
        try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "web").plan
    }

    func get(_ path: String, accept: String = "text/html", cookies: String? = nil) async throws -> Page {
        var headers: HTTPFields = [.accept: accept]
        if let cookies { headers[.cookie] = cookies }
        return try await send(path, method: .get, headers: headers)
    }

    /// Posts a form (`application/x-www-form-urlencoded`) as a browser does.
    func post(_ path: String, form: [(String, String)], cookies: String? = nil, headers extra: HTTPFields = [:]) async throws -> Page {
        var headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded", .accept: "text/html"]
        if let cookies { headers[.cookie] = cookies }
        headers.append(contentsOf: extra)
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let body = form.map { name, value in
            "\(name)=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)"
        }.joined(separator: "&")
        return try await send(path, method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    func send(_ path: String, method: HTTPRequest.Method, headers: HTTPFields, body: ByteBuffer? = nil) async throws -> Page {
        try await application.test(.router) { client in
            let response = try await client.execute(uri: path, method: method, headers: headers, body: body)
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

    /// The `Set-Cookie` fields.
    var setCookies: [String] { headers[values: .setCookie] }

    /// The value a `Set-Cookie` field gives the cookie `name`.
    func cookie(_ name: String) -> String? {
        for field in setCookies where field.hasPrefix(name + "=") {
            return String(field.dropFirst(name.count + 1).prefix { $0 != ";" })
        }
        return nil
    }

    /// The value of the first hidden form field `name`.
    func field(_ name: String) -> String? {
        guard let start = text.range(of: "name=\"\(name)\" value=\"") else { return nil }
        return String(text[start.upperBound...].prefix { $0 != "\"" })
    }
}
