public import AsyncHTTPClient
import FletcherJSON
public import Foundation
import HTTPTypes
import OpenAPIRuntime
import NIOCore
import OpenAPIAsyncHTTPClient
import Synchronization

/// A connection to a Fletcher server: `client`, generated from the server's own `openapi.yaml`,
/// has every operation of the API. Given a service and its key, it logs in when first needed,
/// sends the token with every request, logs in again a minute before the token expires, and once
/// more (sending the request again) when the server answers 401.
///
/// ```swift
/// let fletcher = FletcherConnection(url: URL(string: "http://localhost:3000")!, service: "ops", key: key)
/// let page = try await fletcher.client.listDataProducts(query: .init(state: ["failed"])).ok.body.json
/// ```
public struct FletcherConnection: Sendable {
    /// The service and its key (`REMOTE_APIS`).
    public struct Credentials: Sendable, Hashable {
        public var service: String
        public var key: String

        public init(service: String, key: String) {
            self.service = service
            self.key = key
        }
    }

    public let url: URL
    public let client: Client
    let tokens: Tokens?

    /// `url` is the server's base (`http://host:3000`); `credentials` nil: only the reads that
    /// need no login work. `timeout` bounds each request. With `refusalsThrow`, an answer other
    /// than 2xx throws `FletcherRefusal` (its status and the problem's detail) instead of being the
    /// operation's documented output: for callers that treat every refusal alike.
    public init(
        url: URL, credentials: Credentials? = nil, httpClient: HTTPClient = .shared, timeout: Duration = .seconds(60),
        refusalsThrow: Bool = false
    ) {
        let transport = AsyncHTTPClientTransport(configuration: .init(client: httpClient, timeout: .seconds(timeout.components.seconds)))
        let configuration = Configuration(dateTranscoder: MicrosecondDates())
        let plain = Client(serverURL: url, configuration: configuration, transport: transport)
        self.url = url
        tokens = credentials.map { Tokens(credentials: $0, client: plain) }
        // Outermost first: a refusal is judged after the bearer middleware's one retry.
        var middlewares: [any ClientMiddleware] = refusalsThrow ? [RefusalMiddleware()] : []
        if let tokens { middlewares.append(BearerMiddleware(tokens: tokens)) }
        client = Client(serverURL: url, configuration: configuration, transport: transport, middlewares: middlewares)
    }

    /// A decoder of the server's JSON outside the generated operations (the messages of
    /// `streamEvents`, say): times as the server writes them.
    public static func jsonDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            try MicrosecondDates().decode(try decoder.singleValueContainer().decode(String.self))
        }
        return decoder
    }

    /// An encoder writing JSON as the server does: times in RFC 3339 with microseconds, keys sorted.
    public static func jsonEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(MicrosecondDates.write(date))
        }
        return encoder
    }

    /// A token for the credentials: the one held while it has more than a minute left, else a new one.
    public func token() async throws -> String {
        guard let tokens else { throw FletcherClientError.noCredentials }
        return try await tokens.current(renew: false)
    }
}

/// Times as the server writes them (RFC 3339 with microseconds) and reads them (with or without
/// fractional seconds, any offset).
struct MicrosecondDates: DateTranscoder {
    func encode(_ date: Date) throws -> String { Self.write(date) }

    /// `2026-12-04T10:00:00.123456Z`, as the server writes it (`JSONBytes.writeDate`).
    static func write(_ date: Date) -> String {
        var bytes: [UInt8] = []
        JSONBytes.writeDate(date, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    func decode(_ text: String) throws -> Date {
        if let date = JSONBytes.readDate(text) { return date }
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return date }
        if let date = try? Date.ISO8601FormatStyle().parse(text) { return date }
        throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "'\(text)' is not an RFC 3339 time"))
    }
}

/// What the connection itself refuses (the server's answers are the operations' outputs).
public enum FletcherClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An operation needing a login, on a connection without credentials.
    case noCredentials
    /// The server refused the credentials (401), with its reason.
    case loginRefused(String)
    /// The server answered the login with something else than a token.
    case unexpectedLoginAnswer(Int)

    public var description: String {
        switch self {
        case .noCredentials: "no service and key given (FLETCHER_SERVICE, FLETCHER_KEY)"
        case .loginRefused(let detail): "login refused: \(detail)"
        case .unexpectedLoginAnswer(let status): "the server answered the login with HTTP \(status)"
        }
    }
}

/// An answer other than 2xx, on a connection made with `refusalsThrow`.
public struct FletcherRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    /// The problem's `detail` (problem+json), or the body's first line.
    public var detail: String

    public init(status: Int, detail: String) {
        self.status = status
        self.detail = detail
    }

    public var description: String { "HTTP \(status): \(detail)" }
}

/// Turns every answer other than 2xx into a thrown `FletcherRefusal`.
struct RefusalMiddleware: ClientMiddleware {
    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        let (response, responseBody) = try await next(request, body, baseURL)
        guard response.status.kind != .successful else { return (response, responseBody) }
        var text = ""
        if let responseBody { text = String(decoding: try await ArraySlice(collecting: responseBody, upTo: 1 << 20), as: UTF8.self) }
        var detail = text.split(separator: "\n").first.map(String.init) ?? response.status.reasonPhrase
        if let problem = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], let said = problem["detail"] as? String {
            detail = said
        }
        throw FletcherRefusal(status: response.status.code, detail: detail)
    }
}

/// The token of one set of credentials, shared by every request of a connection.
final class Tokens: Sendable {
    /// A token is renewed this long before it expires.
    static let margin: TimeInterval = 60

    private let credentials: FletcherConnection.Credentials
    private let client: Client
    private let held = Mutex<(token: String, expires: Date)?>(nil)

    init(credentials: FletcherConnection.Credentials, client: Client) {
        self.credentials = credentials
        self.client = client
    }

    /// The held token unless `renew` or it is about to expire; else a new one, from a login.
    func current(renew: Bool) async throws -> String {
        if !renew, let held = held.withLock({ $0 }), held.expires.timeIntervalSinceNow > Self.margin { return held.token }
        let answer = try await client.authenticate(body: .json(.init(service: credentials.service, key: credentials.key)))
        switch answer {
        case .ok(let ok):
            let token = try ok.body.json
            let fresh = (token: token.accessToken, expires: Date(timeIntervalSince1970: TimeInterval(token.expires)))
            held.withLock { $0 = fresh }
            return fresh.token
        case .unauthorized(let refused):
            let detail = (try? refused.body.applicationProblemJson.detail) ?? "the service or key is wrong"
            throw FletcherClientError.loginRefused(detail)
        case .tooManyRequests(let refused):
            throw FletcherClientError.loginRefused((try? refused.body.applicationProblemJson.detail) ?? "too many attempts")
        default:
            throw FletcherClientError.unexpectedLoginAnswer(Self.status(of: answer))
        }
    }

    /// Holds `token` as if a login had given it, valid until `expires` (for tests of renewal).
    func hold(_ token: String, expires: Date) {
        held.withLock { $0 = (token, expires) }
    }

    private static func status(of answer: Operations.Authenticate.Output) -> Int {
        switch answer {
        case .ok: 200
        case .badRequest: 400
        case .unauthorized: 401
        case .contentTooLarge: 413
        case .tooManyRequests: 429
        case .serviceUnavailable: 503
        case .undocumented(let status, _): status
        }
    }
}

/// Sends the connection's token with every request but the login, and on a 401 logs in again and
/// sends the request once more (its body is collected first so that it can be).
struct BearerMiddleware: ClientMiddleware {
    let tokens: Tokens

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        guard operationID != "authenticate" else { return try await next(request, body, baseURL) }
        let bytes: ArraySlice<UInt8>? = if let body { try await ArraySlice(collecting: body, upTo: .max) } else { nil }
        var first = request
        first.headerFields[.authorization] = "Bearer \(try await tokens.current(renew: false))"
        let (response, responseBody) = try await next(first, bytes.map { HTTPBody($0) }, baseURL)
        guard response.status == .unauthorized else { return (response, responseBody) }
        var second = request
        second.headerFields[.authorization] = "Bearer \(try await tokens.current(renew: true))"
        return try await next(second, bytes.map { HTTPBody($0) }, baseURL)
    }
}
