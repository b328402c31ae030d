import FletcherDomain
import FletcherJSON
@testable import FletcherHTTP
import FletcherStore
import FletcherTestSupport
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@Suite("Plan JSON fast path")
struct PlanJSONTests {
    /// A plan with every kind of field: nulls, nested extra, escapes, a run id and link, a disabled product.
    static func variedPlan() throws -> Plan {
        let names = Names()
        var fixture = PlanFixture(
            names: names,
            extra: .object(["team": .string("Ünïcode \"q\" \\ / \n\t\u{1}"), "n": .array([.integer(-7), .number(0.25), .number(1e-7), .bool(true), .null])])
        ).products("a", "b", "c").chain("a", "b", "c")
        fixture.products[1].passthrough = nil
        fixture.products[2].extra = .object(["deep": .object(["x": .array([])])])
        fixture.edges[0].extra = .string("edge ✓")
        var plan = try fixture.plan()
        plan = try PlanMutation.update([StateUpdate(id: names["a"], state: .success, runId: UUID(), link: "https://runs/1?a=b&c", passback: .object(["rows": .integer(42)]))])
            .apply(to: plan, datasetId: fixture.datasetId, by: "platform \"x\"", at: Date(timeIntervalSince1970: 1_763_868_013.123456)).plan
        plan = try PlanMutation.disable([names["c"]]).apply(to: plan, datasetId: fixture.datasetId, by: "p", at: Date()).plan
        // Tries, timers and limits: set, unset, whole and fractional.
        plan.dataProducts[0].tryNumber = 3
        plan.dataProducts[0].triggerId = UUID()
        plan.dataProducts[0].retryAt = Date(timeIntervalSince1970: 1_763_868_043.5)
        plan.dataProducts[0].limits = ProductLimits(retries: 5, maxQueuedSeconds: 0.25, maxRunningSeconds: 86_400)
        plan.dataProducts[1].timeoutAt = Date(timeIntervalSince1970: 1_763_868_013.000001)
        plan.dataProducts[1].limits = ProductLimits(retries: 0, maxRunningSeconds: 1e-3)
        // Deadlines: missed and not made good (late), missed and made good, armed.
        plan.dataProducts[1].deadline = Date(timeIntervalSince1970: 1_763_868_000.25)
        plan.dataProducts[1].deadlineMissed = true
        plan.dataProducts[0].deadline = Date(timeIntervalSince1970: 1_763_868_000)
        plan.dataProducts[0].deadlineMissed = true
        plan.dataProducts[2].deadline = Date(timeIntervalSince1970: 1_863_868_000)
        plan.dataset.deadline = Date(timeIntervalSince1970: 1_763_868_001)
        plan.dataset.deadlineMissed = true
        return plan
    }

    @Test func theFastEncodingIsTheSameJSONAsTheGeneratedOne() throws {
        let plan = try Self.variedPlan()
        let fast = try JSONSerialization.jsonObject(with: Data(PlanJSON.encode(plan))) as? NSDictionary
        let generated = try JSONSerialization.jsonObject(with: Data(WireJSON.plan(plan, pretty: false).utf8)) as? NSDictionary
        #expect(fast != nil)
        #expect(fast == generated)
        let products = fast?["data_products"] as? [NSDictionary]
        #expect(products?.map { $0["late"] as? Bool } == [false, true, false])
        #expect((fast?["dataset"] as? NSDictionary)?["late"] as? Bool == true)
    }

    @Test func aProductListPageIsTheSameJSONAsTheGeneratedOne() throws {
        let plan = try Self.variedPlan()
        for next in [nil, ProductCursor(ListedProduct(datasetId: plan.dataset.id, product: plan.dataProducts[1]))] {
            var page = ProductPage(fetched: plan.dataProducts.map { ListedProduct(datasetId: plan.dataset.id, product: $0) }, limit: 10)
            page.next = next
            let fast = try JSONSerialization.jsonObject(with: Data(PlanJSON.encode(page))) as? NSDictionary
            let generated = try JSONSerialization.jsonObject(with: WireJSON.page(page)) as? NSDictionary
            #expect(fast != nil)
            #expect(fast == generated)
            #expect((fast?["data_products"] as? [NSDictionary])?.count == 3)
        }
        let empty = try JSONSerialization.jsonObject(with: Data(PlanJSON.encode(ProductPage(fetched: [], limit: 1)))) as? NSDictionary
        #expect(empty == ["data_products": [], "next_cursor": NSNull()] as NSDictionary)
    }

    @Test func answersCarryTheFastEncodingOfTheWholePlan() async throws {
        let api = try await TestAPI(engine: .sqlite)
        let names = Names()
        let fixture = PlanFixture(names: names, extra: .object(["k": .string("v \"w\"")])).products("a", "b").edge("a", "b")
        try await api.test(.live) { client in
            let token = try await client.token()
            let submitted = try await client.send(.post, "/api/plan", token: token, json: submissionJSON(fixture))
            #expect(submitted.status == .ok)
            #expect(submitted.headers[.contentLength] == String(submitted.text.utf8.count))
            let stored = try #require(try await api.store.plan(fixture.datasetId))
            let expected = try JSONSerialization.jsonObject(with: Data(WireJSON.plan(stored, pretty: false).utf8)) as? NSDictionary
            for response in [submitted, try await client.send(.get, "/api/plan/\(fixture.datasetId.lowercased)")] {
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "application/json; charset=utf-8")
                #expect(try JSONSerialization.jsonObject(with: Data(response.text.utf8)) as? NSDictionary == expected)
            }
            // Errors are untouched.
            try await client.send(.get, "/api/plan/\(UUID().uuidString.lowercased())").expectProblem(.notFound)
        }
    }

    /// A plan big enough to keep its rows' JSON: every answer is still exactly the generated
    /// encoding of the stored plan, and an update re-encodes only the rows it changed.
    @Test(arguments: TestEngine.available)
    func bigPlansReuseTheJSONOfRowsAChangeLeftAlone(_ engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        let names = Names()
        let count = PlanFragments.minimumProducts + 40
        var built = PlanFixture(names: names)
        for i in 0..<count { built = built.products("p\(i)", eager: i % 10 != 0) }
        for i in 0..<(count - 1) where i % 10 != 9 { built = built.edge("p\(i)", "p\(i + 1)") }
        let fixture = built
        let id = fixture.datasetId.lowercased
        try await api.test { client in
            let submission = submissionJSON(fixture)
            let token = try await client.token()
            func check(_ response: APIResponse) async throws {
                #expect(response.status == .ok, "\(response.text.prefix(300))")
                let stored = try #require(try await api.store.plan(fixture.datasetId))
                let expected = try JSONSerialization.jsonObject(with: Data(WireJSON.plan(stored, pretty: false).utf8)) as? NSDictionary
                #expect(try JSONSerialization.jsonObject(with: Data(response.text.utf8)) as? NSDictionary == expected)
            }
            func fragment(at position: Int) async throws -> [UInt8]? {
                let plan = try #require(try await api.store.plan(fixture.datasetId))
                return try #require(api.store.planCache.fragments(of: plan)).snapshot.products[position]
            }
            func address(_ bytes: [UInt8]?) -> UnsafeRawPointer? { bytes?.withUnsafeBytes { $0.baseAddress } }

            try await check(try await client.send(.post, "/api/plan", token: token, json: submission))
            try await check(try await client.send(.get, "/api/plan/\(id)"))
            let untouched = try #require(try await fragment(at: 500))
            let head = try #require(try await fragment(at: 0))
            let update = "/api/data_product/\(id)/update"
            for (product, state) in [("p0", "running"), ("p0", "success"), ("p1", "running"), ("p1", "success")] {
                try await check(
                    try await client.send(.put, update, token: token, json: [["id": names[product].lowercased, "state": state]]))
            }
            // Rows the updates left alone kept their JSON; the ones they changed were written anew.
            #expect(address(try await fragment(at: 500)) == address(untouched))
            #expect(address(try await fragment(at: 0)) != address(head))
            #expect(String(decoding: try #require(try await fragment(at: 0)), as: UTF8.self).contains(#""state":"success""#))
            try await check(
                try await client.send(.put, "/api/data_product/\(id)/clear", token: token, json: [names["p0"].lowercased]))
            try await check(try await client.send(.get, "/api/plan/\(id)"))
            // A resubmission (rows appended; every resubmitted row is stamped anew) still answers exactly.
            let more = fixture.products("extra-1", "extra-2").edge("p1039", "extra-1")
            try await check(try await client.send(.post, "/api/plan", token: token, json: submissionJSON(more)))
            try await check(try await client.send(.get, "/api/plan/\(id)"))
        }
    }

    /// A plan's pieces, read to the end, are its whole encoding, cut only between rows; a plan
    /// keeping fragments gets them filled by the pieces as by the whole encoding.
    @Test func piecesAreTheWholeEncodingCutBetweenRows() async throws {
        var built = PlanFixture(names: Names())
        for i in 0..<(PlanFragments.minimumProducts + 5) { built = built.products("p\(i)") }
        for i in 0..<PlanFragments.minimumProducts { built = built.edge("p\(i)", "p\(i + 1)") }
        let big = try built.plan()
        for plan in [try Self.variedPlan(), big] {
            let whole = PlanJSON.encode(plan)
            for pieceSize in [1, 700, PlanJSON.pieceSize] {
                var pieces: [ArraySlice<UInt8>] = []
                for await piece in PlanJSON.Pieces(plan, pieceSize: pieceSize) { pieces.append(piece) }
                #expect(Array(pieces.joined()) == whole)
                // Every piece but the last reaches the size asked for, and ends a row (or the head).
                for piece in pieces.dropLast() {
                    #expect(piece.count >= pieceSize)
                    #expect([UInt8(ascii: "}"), UInt8(ascii: "[")].contains(piece.last))
                }
                #expect((pieces.count > 1) == (whole.count > pieceSize))
            }
        }
        let kept = try #require(PlanFragments.forPlan(products: big.dataProducts.count, dependencies: big.dependencies.count))
        for await _ in PlanJSON.Pieces(big, fragments: kept) {}
        let snapshot = kept.snapshot
        #expect(snapshot.products.allSatisfy { $0 != nil } && snapshot.dependencies.allSatisfy { $0 != nil })
        #expect(PlanJSON.encode(big, fragments: kept) == PlanJSON.encode(big))
        // Kept at their size (a cached plan holds them for good): no room left from writing.
        let fragments = (snapshot.products + snapshot.dependencies).compactMap { $0 }
        #expect(fragments.allSatisfy { $0.capacity - $0.count < 32 })
    }

    /// An answer too big to hold whole is sent as it is written: chunked, without a length, and the
    /// same JSON.
    @Test func bigAnswersAreSentInPieces() async throws {
        let api = try await TestAPI(engine: .sqlite)
        var built = PlanFixture(names: Names())
        for i in 0..<9_500 { built = built.products("p\(i)") }
        let fixture = built.edge("p0", "p1")
        try await api.test(.live) { client in
            let token = try await client.token()
            let submitted = try await client.send(.post, "/api/plan", token: token, json: submissionJSON(fixture))
            let read = try await client.send(.get, "/api/plan/\(fixture.datasetId.lowercased)")
            let stored = try #require(try await api.store.plan(fixture.datasetId))
            #expect(PlanJSON.estimatedSize(of: stored) > PlanJSON.streamedSize)
            let expected = try JSONSerialization.jsonObject(with: Data(WireJSON.plan(stored, pretty: false).utf8)) as? NSDictionary
            for response in [submitted, read] {
                #expect(response.status == .ok)
                #expect(response.headers[.contentLength] == nil)
                #expect(response.headers[.transferEncoding] == "chunked")
                #expect(try JSONSerialization.jsonObject(with: Data(response.text.utf8)) as? NSDictionary == expected)
            }
        }
    }

    @Test func timesAreWrittenAsRFC3339WithMicroseconds() throws {
        let cases: [(Double, String)] = [
            (0, "1970-01-01T00:00:00.000000Z"), (1_763_868_013.123456, "2025-11-23T03:20:13.123456Z"),
            (951_782_400, "2000-02-29T00:00:00.000000Z"), (-1.5, "1969-12-31T23:59:58.500000Z"),
            (253_402_300_799.5, "9999-12-31T23:59:59.500000Z"),
        ]
        for (seconds, text) in cases {
            #expect(try RFC3339DateTranscoder().encode(Date(timeIntervalSince1970: seconds)) == text)
        }
    }
}
