import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing

/// A stand-in for Fletcher's side of the simulator: it issues a token and records every state
/// report, answering each with the status `answer` chooses.
final class FakeFletcher: Sendable {
    /// One report item as received.
    struct Report: Sendable, Equatable {
        var state: String
        var triggerId: String?
    }

    /// Chooses the answer to a report from the report and how many reports of that state came before it.
    let answer: @Sendable (Report, Int) -> HTTPResponse.Status
    private let received = Mutex<[Report]>([])

    init(answer: @escaping @Sendable (Report, Int) -> HTTPResponse.Status = { _, _ in .ok }) {
        self.answer = answer
    }

    /// Every report received so far, oldest first (retries included).
    var reports: [Report] { received.withLock { $0 } }

    /// Runs the fake on a free port and calls `body` with its update URL.
    func run(_ body: @escaping @Sendable (String) async throws -> Void) async throws {
        let router = Router()
        router.post("/api/authenticate") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"access_token": "t"}"#)))
        }
        router.put("/api/data_product/:dataset/update") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            let items = try #require(try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [[String: Any]])
            let item = try #require(items.first)
            let report = Report(state: try #require(item["state"] as? String), triggerId: item["trigger_id"] as? String)
            let earlier = self.received.withLock { reports in
                defer { reports.append(report) }
                return reports.filter { $0.state == report.state }.count
            }
            return Response(status: self.answer(report, earlier))
        }
        var logger = Logger(label: "fake-fletcher")
        logger.logLevel = .critical
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
        try await app.test(.live) { client in
            let port = try #require(client.port)
            try await body("http://127.0.0.1:\(port)/api/data_product/d1/update")
        }
    }
}
