import FletcherAPI
import FletcherDomain
import FletcherJSON
@testable import FletcherHTTP
import FletcherStore
import FletcherTestSupport
import Foundation
import HTTPTypes
import Testing

/// Tries, limits and stale reports on the wire (docs/RULES.md rules 22–26): a product's JSON shows
/// its try and its trigger, a submission's limits are echoed and checked, and a report naming a
/// try that is not the current one is refused with 409 and changes nothing.
@Suite("Tries, limits and stale reports on the wire")
struct TriesEndpointTests {
    let names = Names()

    /// The product `id` in a plan answer.
    static func product(_ response: APIResponse, _ id: UUID) throws -> [String: Any] {
        let products = try #require(response.object["data_products"] as? [[String: Any]], "\(response.text.prefix(300))")
        return try #require(products.first { $0["id"] as? String == id.lowercased })
    }

    static func date(_ value: Any?) throws -> Date {
        try RFC3339DateTranscoder().decode(try #require(value as? String, "not a date: \(value ?? "nil")"))
    }

    @Test(arguments: TestEngine.available)
    func aProductShowsItsTryAndTriggerAndStaleReportsChangeNothing(engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        let fixture = PlanFixture(names: names).products("a", "b").edge("a", "b")
        let a = names["a"], b = names["b"]
        try await api.test { client in
            let token = try await client.token()
            let submitted = try await client.send(.post, "/api/plan", token: token, json: submissionJSON(fixture))
            #expect(submitted.status == .ok, "\(submitted.text)")
            // Queued: try 1 with its trigger; waiting: no try yet.
            let queued = try Self.product(submitted, a)
            #expect(queued["state"] as? String == "queued")
            #expect(queued["try"] as? Int == 1)
            let trigger = try #require(queued["trigger_id"] as? String)
            #expect(UUID(uuidString: trigger) != nil && trigger == trigger.lowercased())
            #expect(try Self.product(submitted, b)["try"] as? Int == 0)
            #expect(try Self.product(submitted, b)["trigger_id"] is NSNull)
            let plan = "/api/plan/\(fixture.datasetId.lowercased)"
            let read = try await client.send(.get, plan)
            #expect(try Self.product(read, a)["trigger_id"] as? String == trigger)
            #expect(try Self.product(read, a)["try"] as? Int == 1)

            // Reports naming another try, alone or beside a good one, are refused whole.
            let update = "/api/data_product/\(fixture.datasetId.lowercased)/update"
            let other = UUID().uuidString.lowercased()
            let stale: [[[String: Any]]] = [
                [["id": a.lowercased, "state": "success", "trigger_id": other]],
                [["id": a.lowercased, "state": "running", "trigger_id": trigger], ["id": b.lowercased, "state": "failed", "trigger_id": other]],
            ]
            for body in stale {
                let refused = try await client.send(.put, update, token: token, json: body)
                let detail = refused.expectProblem(.conflict)
                #expect(detail.contains(other), "\(detail)")
                #expect((try await client.send(.get, plan)).text == read.text, "a refused report changed the plan")
            }
            let detail = try await client.send(.put, update, token: token, json: stale[0]).expectProblem(.conflict)
            #expect(detail.contains(a.lowercased) && detail.contains("current try is 1 (trigger \(trigger))"), "\(detail)")
            let never = try await client.send(.put, update, token: token, json: [["id": b.lowercased, "state": "running", "trigger_id": other]])
            #expect(never.expectProblem(.conflict).contains("none (never queued)"))

            // The current try, named in any case: taken.
            let running = try await client.send(
                .put, update, token: token, json: [["id": a.lowercased, "state": "running", "trigger_id": trigger.uppercased()]])
            #expect(running.status == .ok, "\(running.text)")
            #expect(try Self.product(running, a)["state"] as? String == "running")
            #expect(try Self.product(running, a)["trigger_id"] as? String == trigger)
            // No trigger_id: as before tries existed.
            let done = try await client.send(.put, update, token: token, json: [["id": a.lowercased, "state": "success", "trigger_id": NSNull()]])
            #expect(done.status == .ok, "\(done.text)")
            #expect(done.states == [a.lowercased: "success", b.lowercased: "queued"])
            let child = try Self.product(done, b)
            #expect(child["try"] as? Int == 1)
            let childTrigger = try #require(child["trigger_id"] as? String)
            #expect(childTrigger != trigger)

            // A clear queues `a` again: a new try, and the old one's reports are stale.
            let cleared = try await client.send(.put, "/api/data_product/\(fixture.datasetId.lowercased)/clear", token: token, json: [a.lowercased])
            let again = try Self.product(cleared, a)
            #expect(again["try"] as? Int == 2)
            let second = try #require(again["trigger_id"] as? String)
            #expect(second != trigger)
            let late = try await client.send(.put, update, token: token, json: [["id": a.lowercased, "state": "success", "trigger_id": trigger]])
            #expect(late.expectProblem(.conflict).contains("current try is 2 (trigger \(second))"))
        }
    }

    @Test(arguments: TestEngine.available)
    func aSubmissionsLimitsAreEchoedAndArmItsTimers(engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        let fixture = PlanFixture(names: names).products("a", "b").edge("a", "b")
        let a = names["a"], b = names["b"]
        var body = submissionJSON(fixture)
        var products = try #require(body["data_products"] as? [[String: Any]])
        products[0]["retries"] = 2
        products[0]["max_queued_s"] = 60
        products[0]["max_running_s"] = 0.5
        products[1]["retries"] = NSNull()
        body["data_products"] = products
        let raw = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
        try await api.test { client in
            let token = try await client.token()
            let submitted = try await client.send(.post, "/api/plan", token: token, raw: raw)
            #expect(submitted.status == .ok, "\(submitted.text)")
            var product = try Self.product(submitted, a)
            #expect(product["retries"] as? Int == 2)
            #expect(product["max_queued_s"] as? Double == 60)
            #expect(product["max_running_s"] as? Double == 0.5)
            // Queued with a limit of 60 s: it times out 60 s after it was queued.
            let queuedAt = try Self.date(product["modified_date"])
            #expect(abs(try Self.date(product["timeout_at"]).timeIntervalSince(queuedAt) - 60) < 0.001)
            #expect(product["retry_at"] is NSNull)
            for field in ["retries", "max_queued_s", "max_running_s", "timeout_at", "retry_at"] {
                #expect(try Self.product(submitted, b)[field] is NSNull, "\(field)")
            }
            let plan = "/api/plan/\(fixture.datasetId.lowercased)"
            #expect(try Self.product(try await client.send(.get, plan), a)["max_running_s"] as? Double == 0.5)

            let update = "/api/data_product/\(fixture.datasetId.lowercased)/update"
            let running = try await client.send(.put, update, token: token, json: [["id": a.lowercased, "state": "running"]])
            product = try Self.product(running, a)
            #expect(abs(try Self.date(product["timeout_at"]).timeIntervalSince(try Self.date(product["modified_date"])) - 0.5) < 0.001)
            // Failed with retries left: a retry 30 s ± 20 % later, and no timeout.
            let failed = try await client.send(.put, update, token: token, json: [["id": a.lowercased, "state": "failed"]])
            product = try Self.product(failed, a)
            let wait = try Self.date(product["retry_at"]).timeIntervalSince(try Self.date(product["modified_date"]))
            #expect((24...36).contains(wait), "\(wait)")
            #expect(product["timeout_at"] is NSNull)

            // Resubmitted without limits: they are gone, and so is the pending retry.
            let resubmitted = try await client.send(.post, "/api/plan", token: token, json: submissionJSON(fixture))
            product = try Self.product(resubmitted, a)
            for field in ["retries", "max_queued_s", "max_running_s", "retry_at"] { #expect(product[field] is NSNull, "\(field)") }
            #expect(product["state"] as? String == "failed")
        }
    }

    /// Limits out of range, or not numbers (not integers, for `retries`), are a 400 naming the field,
    /// and nothing is stored; the ends of the ranges are taken.
    @Test(arguments: TestEngine.available)
    func badLimitsAre400NamingTheField(engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        let bad: [(String, String)] = [
            ("retries", "-1"), ("retries", "101"), ("retries", "2.5"), ("retries", #""3""#), ("retries", "true"), ("retries", "1e30"),
            ("max_queued_s", "0"), ("max_queued_s", "-5"), ("max_queued_s", "31536001"), ("max_queued_s", #""60""#),
            ("max_running_s", "1e9"), ("max_running_s", "{}"), ("max_running_s", "-0.0"),
        ]
        try await api.test { client in
            let token = try await client.token()
            for (field, value) in bad {
                let fixture = PlanFixture(names: Names()).products("a", "b")
                let json = String(decoding: try JSONSerialization.data(withJSONObject: submissionJSON(fixture)), as: UTF8.self)
                // The second product gets the value.
                let body = json.replacingOccurrences(
                    of: #""id":"\#(fixture.products[1].id.lowercased)""#, with: #""id":"\#(fixture.products[1].id.lowercased)","\#(field)":\#(value)"#)
                #expect(body != json)
                let detail = try await client.send(.post, "/api/plan", token: token, raw: body).expectProblem(.badRequest)
                #expect(detail.contains("data_products[1].\(field)"), "\(field): \(value) → \(detail)")
                try await client.send(.get, "/api/plan/\(fixture.datasetId.lowercased)").expectProblem(.notFound)
            }
            let fixture = PlanFixture(names: Names()).products("a", "b")
            var body = submissionJSON(fixture)
            var products = try #require(body["data_products"] as? [[String: Any]])
            products[0].merge(["retries": 0, "max_queued_s": 0.001, "max_running_s": 31_536_000]) { $1 }
            products[1].merge(["retries": 100]) { $1 }
            body["data_products"] = products
            let taken = try await client.send(.post, "/api/plan", token: token, json: body)
            #expect(taken.status == .ok, "\(taken.text)")
            #expect(try Self.product(taken, fixture.products[1].id)["retries"] as? Int == 100)
            #expect(try Self.product(taken, fixture.products[0].id)["max_running_s"] as? Double == 31_536_000)
        }
    }

    /// History events carry a state change's try and trigger, and whether an attempt is a cancel.
    @Test func historyEventsCarryTriesAndCancels() throws {
        let trigger = UUID(), run = UUID()
        let change = ProductEvent(
            sequence: 7, at: Date(timeIntervalSince1970: 1_000),
            kind: .stateChange(
                StateTransition(
                    dataProductId: UUID(), from: .failed, to: .queued, reason: .retry, runId: run, link: nil, tryNumber: 2,
                    triggerId: trigger),
                actor: "fletcher"))
        let cancel = ProductEvent(
            sequence: 8, at: Date(timeIntervalSince1970: 1_001),
            kind: .delivery(
                DeliveryAttempt(triggerId: trigger, attempt: 1, httpStatus: 404, error: nil, durationMilliseconds: 3, process: "p", isCancel: true)))
        let start = ProductEvent(
            sequence: 9, at: Date(timeIntervalSince1970: 1_002),
            kind: .delivery(DeliveryAttempt(triggerId: trigger, attempt: 1, httpStatus: 202, error: nil, durationMilliseconds: 3, process: "p")))
        let timeout = ProductEvent(
            sequence: 10, at: Date(timeIntervalSince1970: 1_003),
            kind: .stateChange(StateTransition(dataProductId: UUID(), from: .running, to: .failed, reason: .timeout), actor: "fletcher"))
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        let data = try encoder.encode(Components.Schemas.HistoryPage(HistoryPage(events: [change, cancel, start, timeout], nextCursor: nil)))
        let events = try #require((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["events"] as? [[String: Any]])
        #expect(events.count == 4)
        #expect(events[0]["reason"] as? String == "retry")
        #expect(events[0]["try"] as? Int == 2)
        #expect(events[0]["trigger_id"] as? String == trigger.uuidString.lowercased())
        #expect(events[0]["cancel"] is NSNull)
        #expect(events[1]["kind"] as? String == "delivery")
        #expect(events[1]["cancel"] as? Bool == true)
        #expect(events[1]["try"] is NSNull)
        #expect(events[1]["trigger_id"] as? String == trigger.uuidString.lowercased())
        #expect(events[2]["cancel"] as? Bool == false)
        #expect(events[3]["reason"] as? String == "timeout")
        #expect(events[3]["try"] as? Int == 0)
        #expect(events[3]["trigger_id"] is NSNull)
        // Every field the document requires is written.
        for event in events {
            #expect(event.keys.contains("try") && event.keys.contains("cancel") && event.keys.contains("trigger_id"))
        }
    }
}
