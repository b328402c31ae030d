import AsyncHTTPClient
import FletcherDomain
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Synchronization

/// Sends the stress tool's requests, timing each into the recorder under its kind.
final class LoadClient: Sendable {
    let http: HTTPClient
    let base: String
    let service: String
    let key: String
    let recorder: StressRecorder
    private let token = Mutex<String?>(nil)

    init(base: URL, service: String, key: String, concurrency: Int, recorder: StressRecorder) {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.connectionPool = .init(idleTimeout: .seconds(120), concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency + 8)
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.base = base.absoluteString.hasSuffix("/") ? String(base.absoluteString.dropLast()) : base.absoluteString
        self.service = service
        self.key = key
        self.recorder = recorder
    }

    struct Answer: Sendable {
        var status: Int
        var body: ByteBuffer?
        var error: String?
        var ok: Bool { (200..<300).contains(status) }
    }

    /// Logs in; the token is used by every later authenticated request.
    func authenticate() async throws {
        let answer = await send(
            "authenticate", .POST, "/api/authenticate", json: .object(["service": .string(service), "key": .string(key)]), measured: false)
        guard answer.ok, let body = answer.body, case .object(let object) = try? JSONValue(parsing: String(buffer: body)),
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
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json.text))
        }
        if authenticated, let token = token.withLock({ $0 }) { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let started = ContinuousClock.now
        var answer: Answer
        do {
            let response = try await http.execute(request, timeout: .seconds(60))
            let body = try await response.body.collect(upTo: 64 << 20)
            answer = Answer(status: Int(response.status.code), body: body)
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

    func shutdown() async {
        try? await http.shutdown()
    }
}

struct StressError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
