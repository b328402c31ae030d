@testable import FletcherApp
import CoreMetrics
import FletcherDomain
import FletcherJSON
import FletcherHTTP
@testable import FletcherPostgres
import FletcherStore
import FletcherTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization
import Testing

/// Plan reads answered on their event loop, against PostgreSQL: what they answer is the router's
/// answer, and never a plan another process has changed since.
// Behind a transaction pooler no loop has a connection of its own (`LoopRevisions`): every read
// takes the pool's way (`PoolerTests`).
@Suite(
    "Plan reads on the event loop, PostgreSQL", .enabled(if: TestEngine.available.contains(.postgres) && TestStores.pooler == .none))
struct PlanReadsOnTheLoopTests {
    static var logger: Logger {
        var logger = Logger(label: "plan-reads-test")
        logger.logLevel = .warning
        return logger
    }

    /// The server as `serve` builds it, on `store`: the router and the reads on the loop share one
    /// limit, one metrics registry and one logger.
    static func application(
        _ store: any Store, metrics: PrometheusExporter? = nil, logger: Logger = logger
    ) async throws -> some ApplicationProtocol {
        let authenticator = await Authenticator(secret: "test-secret-long-enough-for-hs256-signing", accounts: [], bcrypt: BcryptVerifier(threads: 1))
        let metrics = metrics ?? PrometheusExporter(store: store, dispatched: [])
        let concurrency = ConcurrencyLimit(maxRequests: 512, factory: metrics.factory)
        let router = try buildRouter(store: store, authenticator: authenticator, logger: logger, metrics: metrics, concurrency: concurrency)
        return Application(
            router: router,
            server: httpServer(
                headerTimeout: .seconds(10), idleTimeout: .seconds(30),
                planReads: PlanReadFastPath(store: store, concurrency: concurrency, metrics: metrics.factory, logger: logger)),
            configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: serverName),
            logger: logger)
    }

    /// The log lines of a logger, kept.
    final class Lines: Sendable {
        struct Line: Sendable {
            var message: String
            var metadata: [String: String]
        }
        private let lines = Mutex<[Line]>([])
        var all: [Line] { lines.withLock { $0 } }

        var logger: Logger {
            var logger = Logger(label: "plan-reads-test") { _ in Handler(lines: self) }
            logger.logLevel = .info
            return logger
        }

        struct Handler: LogHandler {
            let lines: Lines
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .info
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(event: LogEvent) {
                let all = metadata.merging(event.metadata ?? [:]) { $1 }
                lines.lines.withLock { $0.append(Line(message: "\(event.message)", metadata: all.mapValues { "\($0)" })) }
            }
        }
    }

    /// A read answered on the loop and one the router answers leave the same trace: the caller's
    /// request id returned and on the log line, one log line of the same shape each, and one count
    /// in the same request metric.
    @Test func readsOnTheLoopReportAsTheRoutersDo() async throws {
        let store = try await TestStores.make(.postgres)
        let postgres = try #require(store as? PostgresStore)
        let fixture = PlanFixture().products("a")
        _ = try await store.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        let lines = Lines()
        let metrics = PrometheusExporter(store: store, dispatched: [])
        let path = "/api/plan/\(fixture.datasetId.lowercased)"
        let idHeader = HTTPField.Name("X-Request-Id")!
        try await Self.application(store, metrics: metrics, logger: lines.logger).test(.live) { client in
            postgres.planCache.removeAll()
            let routed = try await client.execute(uri: path, method: .get, headers: [idHeader: "routed-read"])
            #expect(postgres.planCache.answers.count == 0, "answered by the router")
            var reads = 1
            var fast = routed
            try await eventually("a read answered on the event loop") {
                fast = try await client.execute(uri: path, method: .get, headers: [idHeader: "fast-read-\(reads)"])
                reads += 1
                return postgres.planCache.answers.count == 1
            }
            let fastId = "fast-read-\(reads - 1)"
            #expect(routed.headers[idHeader] == "routed-read")
            #expect(fast.headers[idHeader] == fastId)
            let requestLines = lines.all.filter { $0.message == "request" }
            #expect(requestLines.count == reads)
            let routedLine = try #require(requestLines.first { $0.metadata["request_id"] == "routed-read" })
            let fastLine = try #require(requestLines.first { $0.metadata["request_id"] == fastId })
            #expect(Set(routedLine.metadata.keys) == Set(fastLine.metadata.keys))
            for key in ["method", "path", "route", "status"] {
                #expect(routedLine.metadata[key] == fastLine.metadata[key], "\(key)")
            }
            #expect(fastLine.metadata["route"] == "/api/plan/{dataset_id}")
            let exposition = await metrics.exposition()
            let counted = exposition.split(separator: "\n").first {
                $0.hasPrefix("fletcher_http_requests_total{") && $0.contains(#"route="/api/plan/{dataset_id}""#)
            }
            #expect(counted?.hasSuffix(" \(reads)") == true, "\(counted ?? "no count")")
        }
    }

    static func states(_ body: ByteBuffer) throws -> [String: String] {
        let plan = try JSONValue(parsing: String(buffer: body))
        guard case .object(let members) = plan.node, case .array(let products)? = members["data_products"] else { return [:] }
        var states: [String: String] = [:]
        for case .object(let product) in products {
            if case .string(let name)? = product["name"], case .string(let state)? = product["state"] { states[name] = state }
        }
        return states
    }

    @Test func readsAnsweredOnTheLoopAreTheRoutersAnswersAndSeeOtherProcessesChanges() async throws {
        // Two stores on one database: the server's, and another process's.
        let (served, other) = try await TestStores.pair(.postgres)
        let store = try #require(served as? PostgresStore)
        let fixture = PlanFixture().products("a", "b").edge("a", "b")
        _ = try await other.apply(.submit(fixture.submission), to: fixture.datasetId, by: "publisher")
        let path = "/api/plan/\(fixture.datasetId.lowercased)"
        try await Self.application(served).test(.live) { client in
            // Not cached yet: the router reads the plan (and caches it, without an answer).
            let routed = try await client.execute(uri: path, method: .get)
            #expect(routed.status == .ok)
            #expect(store.planCache.answers.count == 0)
            // Cached and current: answered on the loop, which keeps the answer with the plan (once
            // the loop's connection is open: until then reads take the router's way).
            var fast = try await client.execute(uri: path, method: .get)
            try await eventually("a read answered on the event loop") {
                fast = try await client.execute(uri: path, method: .get)
                return store.planCache.answers.count == 1
            }
            #expect(fast.status == .ok)
            #expect(fast.body == routed.body)
            for name in [HTTPField.Name.contentType, .contentLength, .xContentTypeOptions, .server] {
                #expect(fast.headers[name] == routed.headers[name], "\(name)")
            }
            #expect(fast.headers[HTTPField.Name("X-Request-Id")!] != nil)
            #expect(fast.headers[.date] != nil)
            // Another process changes the plan: the next read sees it.
            _ = try await other.apply(.update([StateUpdate(id: fixture.names["a"], state: .running)]), to: fixture.datasetId, by: "platform")
            let changed = try await client.execute(uri: path, method: .get)
            #expect(try Self.states(changed.body) == ["a": "running", "b": "waiting"])
            // … and the read after it is answered on the loop again, changed.
            let again = try await client.execute(uri: path, method: .get)
            #expect(again.body == changed.body)
            #expect(store.planCache.answers.count == 1)
            // An unknown dataset is the router's 404.
            let unknown = try await client.execute(uri: "/api/plan/\(UUID().lowercased)", method: .get)
            #expect(unknown.status == .notFound)
        }
    }

    @Test func revisionsAskedTogetherOnALoopAreEachRight() async throws {
        let store = try await TestStores.isolatedPostgresStore()
        try await store.migrate()
        let first = PlanFixture(dataset: "first").products("a")
        let second = PlanFixture(dataset: "second").products("a")
        _ = try await store.apply(.submit(first.submission), to: first.datasetId, by: "publisher")
        _ = try await store.apply(.submit(second.submission), to: second.datasetId, by: "publisher")
        _ = try await store.apply(.update([StateUpdate(id: second.names["a"], state: .running)]), to: second.datasetId, by: "platform")
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        // The loop's first check fails at once and opens its connection.
        try await eventually("the loop's connection open") {
            (try? await store.database.loopRevisions.revision(of: first.datasetId, on: loop).get()) != nil
        }
        // Asked at once on one loop: the first goes alone, the others wait and go together.
        let questions = store.database.loopRevisions.asked.load(ordering: .relaxed)
        let asked = try await loop.flatSubmit {
            let ids = [first.datasetId, second.datasetId, UUID(), first.datasetId]
            return EventLoopFuture.whenAllSucceed(ids.map { store.database.loopRevisions.revision(of: $0, on: loop) }, on: loop)
        }.get()
        let firstRevision = try #require(asked[0])
        let secondRevision = try #require(asked[1])
        // Each its own dataset's (a commit bumps a revision by a random step: two commits' sum need
        // not pass one's).
        #expect(firstRevision == (try await Self.storedRevision(first.datasetId, store)))
        #expect(secondRevision == (try await Self.storedRevision(second.datasetId, store)))
        #expect(secondRevision != firstRevision)
        #expect(asked[2] == nil)
        #expect(asked[3] == firstRevision)
        #expect(store.database.loopRevisions.asked.load(ordering: .relaxed) - questions == 2, "four reads, two questions")
        // Asked from off the loop too.
        #expect(try await store.database.loopRevisions.revision(of: second.datasetId, on: loop).get() == secondRevision)
    }

    /// The dataset's revision as stored, read on a pooled connection with the store's own query.
    static func storedRevision(_ datasetId: UUID, _ store: PostgresStore) async throws -> Int64? {
        try await store.database.client.withConnection { connection in
            try await DatasetQueries.revision(datasetId, store.database.statements, connection, Logger(label: "fletcher-test"))
        }
    }

    @Test(arguments: [false, true])
    func aDatabaseTheLoopCannotReachLeavesReadsToTheRouter(listening: Bool) async throws {
        // A port nothing listens on, or a "database" that accepts connections and never answers.
        let accepted = Atomic<Int>(0)
        let socket = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                accepted.add(1, ordering: .relaxed)
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(socket.localAddress?.port)
        if !listening { try await socket.close() }
        defer { if listening { socket.close(promise: nil) } }
        var endpoint = try PostgresEndpoint(url: "postgres://fletcher@127.0.0.1:\(port)/none?sslmode=disable", maximumConnections: 1)
        // The loop's attempt on the silent server stays under way for the whole test, however slow
        // the machine: it is given up only after the connect timeout (and the check timeout).
        endpoint.connection.options.connectTimeout = .hours(1)
        let store = PostgresStore(endpoint: endpoint, logger: Self.logger)
        let fixture = PlanFixture().products("a")
        store.planCache.store(try fixture.plan(), revision: 1, lastModified: Date())
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        // No read waits for the connection: each is given to the router at once, while the attempt
        // is still under way (reads that waited for it would not be answered before it ends).
        let answers = (0..<20).map { _ in
            store.currentCachedAnswer(fixture.datasetId, on: loop, answerable: { _ in true }, encode: { _, _ in [1] })
        }
        let answered = Atomic<Int>(0)
        for answer in answers { answer.whenComplete { _ in answered.add(1, ordering: .relaxed) } }
        try await eventually("every read answered") { answered.load(ordering: .relaxed) == answers.count }
        guard answered.load(ordering: .relaxed) == answers.count else { return }
        for answer in answers { #expect(try await answer.get() == nil) }
        if listening {
            #expect(try await store.database.loopRevisions.isConnecting(on: loop).get(), "the reads did not wait for the attempt")
            try await eventually("the attempt accepted") { accepted.load(ordering: .relaxed) > 0 }
            #expect(accepted.load(ordering: .relaxed) == 1, "one attempt, not one per read")
        }
    }
}
