import FletcherDomain
import FletcherJSON
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
import Synchronization

/// Sends the stress tool's requests, timing each into the recorder under its kind.
///
/// Each request goes over a kept-alive connection that no other request is using at the time (one
/// is opened when none is idle, so there are as many as requests ever were in flight at once).
final class LoadClient: Sendable {
    let host: String
    let port: Int
    /// Set for https targets.
    let tls: NIOSSLContext?
    let hostHeader: String
    let basePath: String
    let base: String
    let service: String
    let key: String
    let recorder: StressRecorder
    private let token = Mutex<String?>(nil)
    private let idle = Mutex<[HTTP1Connection]>([])

    init(base: URL, service: String, key: String, recorder: StressRecorder) throws {
        guard let scheme = base.scheme?.lowercased(), scheme == "http" || scheme == "https", let host = base.host, !host.isEmpty else {
            throw StressError("the target URL must be http:// or https:// with a host: \(base)")
        }
        tls = scheme == "https" ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
        self.host = host
        port = base.port ?? (scheme == "https" ? 443 : 80)
        hostHeader = base.port.map { "\(host):\($0)" } ?? host
        let path = base.path
        basePath = path.hasSuffix("/") ? String(path.dropLast()) : path
        self.base = base.absoluteString.hasSuffix("/") ? String(base.absoluteString.dropLast()) : base.absoluteString
        self.service = service
        self.key = key
        self.recorder = recorder
    }

    struct Answer: Sendable {
        var status: Int
        var body: ByteBuffer?
        var error: String?
        /// The answer's `Retry-After` header.
        var retryAfter: String? = nil
        var ok: Bool { (200..<300).contains(status) }
    }

    /// Logs in; the token is used by every later authenticated request.
    func authenticate() async throws {
        let answer = await send(
            "authenticate", .POST, "/api/authenticate", json: .object(["service": .string(service), "key": .string(key)]), measured: false)
        guard answer.ok, let body = answer.body, case .object(let object) = try? JSONValue(parsing: String(buffer: body)).node,
            case .string(let token)? = object["access_token"]
        else {
            throw StressError("cannot authenticate as '\(service)' at \(base): \(answer.error ?? "HTTP \(answer.status)")")
        }
        self.token.withLock { $0 = token }
    }

    /// One timed request. `measured` requests count towards the run's totals and limit.
    func send(
        _ kind: String, _ method: HTTPMethod, _ path: String, json: JSONValue? = nil, authenticated: Bool = false, measured: Bool = true
    ) async -> Answer {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: basePath + path)
        head.headers.add(name: "Host", value: hostHeader)
        var body: ByteBuffer?
        if let json {
            let bytes = ByteBuffer(string: json.text)
            head.headers.add(name: "Content-Type", value: "application/json")
            head.headers.add(name: "Content-Length", value: String(bytes.readableBytes))
            body = bytes
        } else if method == .POST || method == .PUT {
            head.headers.add(name: "Content-Length", value: "0")
        }
        if authenticated, let token = token.withLock({ $0 }) { head.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let started = ContinuousClock.now
        var answer: Answer
        do {
            let response = try await exchange(head, body: body)
            answer = Answer(status: response.status, body: response.body, retryAfter: response.retryAfter)
        } catch {
            answer = Answer(status: 0, body: nil, error: "\(error)")
        }
        let elapsed = ContinuousClock.now - started
        let microseconds = elapsed.microseconds
        recorder.record(
            kind, microseconds: microseconds, ok: answer.ok,
            failure: "\(method) \(path) → \(answer.error ?? "HTTP \(answer.status) \(answer.body.map { String(buffer: $0).prefix(200) } ?? "")")")
        if measured { _ = recorder.countMeasured(ok: answer.ok) }
        return answer
    }

    /// One exchange on an idle connection, or a new one. A kept-alive connection the server closed
    /// meanwhile (its idle timeout) fails before anything is answered: the request is sent again,
    /// once, on a new connection.
    private func exchange(_ head: HTTPRequestHead, body: ByteBuffer?) async throws -> HTTP1Connection.Response {
        while let connection = idle.withLock({ $0.popLast() }) {
            guard connection.isOpen else { continue }
            do {
                return try await exchange(head, body: body, on: connection)
            } catch is HTTP1Connection.ConnectionClosed {
                break
            }
        }
        return try await exchange(head, body: body, on: try await HTTP1Connection.connect(host: host, port: port, tls: tls))
    }

    /// The exchange on `connection`, kept for the next request afterwards, or closed if it failed.
    private func exchange(_ head: HTTPRequestHead, body: ByteBuffer?, on connection: HTTP1Connection) async throws -> HTTP1Connection.Response {
        do {
            let response = try await connection.exchange(head, body: body)
            release(connection)
            return response
        } catch {
            connection.close()
            throw error
        }
    }

    /// The connections kept for later requests.
    var idleConnections: [HTTP1Connection] { idle.withLock { $0 } }

    /// Keeps a connection for the next request, unless the server asked to close it.
    private func release(_ connection: HTTP1Connection) {
        guard connection.isOpen else { return }
        idle.withLock { $0.append(connection) }
    }

    func shutdown() async {
        for connection in idle.withLock({ connections in defer { connections = [] }; return connections }) { connection.close() }
    }
}

struct StressError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
