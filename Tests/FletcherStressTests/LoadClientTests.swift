import FletcherDomain
import FletcherJSON
@testable import FletcherStress
import FletcherTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// The stress tool's own HTTP/1.1 connections: requests and bodies go out and answers come back
/// whole; a connection is kept alive between requests, and one the server closed (its answer said
/// so, or it was idle too long) is replaced without the request failing.
@Suite("Stress tool connections")
struct LoadClientTests {
    /// Knows the client's port, which tells one connection from another.
    struct PeerContext: RequestContext {
        var coreContext: CoreRequestContextStorage
        let peerPort: Int
        let channel: any Channel
        init(source: ApplicationRequestContextSource) {
            coreContext = .init(source: source)
            peerPort = source.channel.remoteAddress?.port ?? -1
            channel = source.channel
        }
    }

    /// The connection of the last `/peer` request, as the server holds it.
    final class LastChannel: Sendable {
        let channel = Mutex<(any Channel)?>(nil)
    }

    /// Serves `/peer` (the client's port), `/bye` (the same, closing the connection) and `/echo`
    /// until `body` returns, with `idleTimeout`.
    static func withPeerServer(
        idleTimeout: TimeAmount = .hours(1), lastChannel: LastChannel? = nil,
        _ body: @Sendable (_ peer: @Sendable (LoadClient, String) async throws -> String, LoadClient, StressRecorder) async throws -> Void
    ) async throws {
        let router = Router(context: PeerContext.self)
        router.get("/peer") { _, context in
            lastChannel?.channel.withLock { $0 = context.channel }
            return "\(context.peerPort)"
        }
        router.get("/bye") { _, context in
            Response(status: .ok, headers: [.connection: "close"], body: .init(byteBuffer: ByteBuffer(string: "\(context.peerPort)")))
        }
        router.put("/echo") { request, _ -> ByteBuffer in try await request.body.collect(upTo: 1 << 20) }
        let app = Application(
            router: router, server: .http1(configuration: .init(idleTimeout: idleTimeout)),
            configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let recorder = StressRecorder()
            let load = try LoadClient(base: try #require(URL(string: "http://127.0.0.1:\(port)/")), service: "s", key: "k", recorder: recorder)
            @Sendable func peer(_ load: LoadClient, _ path: String) async throws -> String {
                let answer = await load.send("peer", .GET, path)
                #expect(answer.status == 200, "\(answer.error ?? "")")
                return String(buffer: try #require(answer.body))
            }
            try await body(peer, load, recorder)
            await load.shutdown()
        }
    }

    @Test func requestsShareAConnectionUntilTheServerClosesIt() async throws {
        // An idle timeout no busy machine reaches between these requests, which must share a connection.
        try await Self.withPeerServer(idleTimeout: .hours(1)) { peer, load, recorder in
            let first = try await peer(load, "/peer")
            #expect(try await peer(load, "/peer") == first, "a second request on a new connection")
            let echoed = await load.send("echo", .PUT, "/echo", json: .object(["state": .string("success")]))
            #expect(echoed.status == 200 && echoed.body.map { String(buffer: $0) } == #"{"state":"success"}"#)
            // Answered with "Connection: close": the next request goes on a new connection.
            #expect(try await peer(load, "/bye") == first)
            #expect(try await peer(load, "/peer") != first)
            #expect(recorder.measured.load(ordering: .relaxed) == 5 && recorder.measuredFailures.load(ordering: .relaxed) == 0)
        }
    }

    @Test func aConnectionTheServerClosedWhileIdleIsReplaced() async throws {
        let lastChannel = LastChannel()
        try await Self.withPeerServer(lastChannel: lastChannel) { peer, load, recorder in
            let first = try await peer(load, "/peer")
            // The server closes the connection while the client keeps it idle (as an idle timeout would).
            try await lastChannel.channel.withLock { $0 }?.close()
            try await eventually("the server to close the idle connection") { load.idleConnections.allSatisfy { !$0.isOpen } }
            #expect(try await peer(load, "/peer") != first)
            #expect(recorder.measured.load(ordering: .relaxed) == 2 && recorder.measuredFailures.load(ordering: .relaxed) == 0)
        }
    }

    @Test func aRefusedConnectionIsAFailedRequestWithItsReason() async throws {
        let recorder = StressRecorder()
        let load = try LoadClient(base: try #require(URL(string: "http://127.0.0.1:1")), service: "s", key: "k", recorder: recorder)
        let answer = await load.send("peer", .GET, "/")
        #expect(answer.status == 0 && !answer.ok)
        #expect(answer.error?.isEmpty == false)
        await load.shutdown()
    }

    @Test func onlyHTTPTargetsAreAccepted() throws {
        for url in ["ftp://127.0.0.1/", "file:///tmp/x", "http:///nohost"] {
            #expect(throws: StressError.self, "\(url)") {
                _ = try LoadClient(base: try #require(URL(string: url)), service: "s", key: "k", recorder: StressRecorder())
            }
        }
    }
}
